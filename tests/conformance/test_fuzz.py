"""Schema-driven fuzz of both simulators' HTTP surface with schemathesis: requests generated from the definitions
(positive: valid by the schema; negative: malformed parameters and bodies), signed with the project's signers so
that they get past authentication. Every reply must come back in time, never be a 5xx, and validate (a 2xx
against its documented schema, an error against the venue's error body); a negative case must be refused with a
4xx. Bounded and derandomized, so it runs with the normal suite."""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from exchanges.backpack.signing import BackpackSigner
from exchanges.backpack.sim import BackpackSim
from exchanges.hibachi.sim import HibachiSim
from tests.conformance.spec import Venue, _load, venue

EXAMPLES = 8  # per operation and mode
FUZZ = settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
TIMEOUT_S = 5.0  # a reply later than this is a hang


def _schema(name: str, served: set[tuple[str, str]], mode: GenerationMode) -> Any:
    if mode is GenerationMode.NEGATIVE:
        served = {op for op in served if venue(name).can_be_malformed(*op)}
    loaded = schemathesis.openapi.from_dict(copy.deepcopy(_load(name)))
    # Unknown extra parameters are not malformed ones: venues ignore them, and so do the simulators.
    loaded.config.generation.update(modes=[mode], allow_extra_parameters=False)
    loaded.config.phases.update(phases=["fuzzing"])
    return loaded.include(name=sorted(f"{method} {path}" for method, path in served))


BP_OPS = BackpackSim.operations()
HB_OPS = HibachiSim.operations()
bp_positive = _schema("backpack", set(BP_OPS), GenerationMode.POSITIVE)
bp_negative = _schema("backpack", set(BP_OPS), GenerationMode.NEGATIVE)
hb_positive = _schema("hibachi", set(HB_OPS), GenerationMode.POSITIVE)
hb_negative = _schema("hibachi", set(HB_OPS), GenerationMode.NEGATIVE)


@pytest.fixture(scope="module")
def fuzz_bp() -> Iterator[tuple[BackpackSim, Venue, requests.Session]]:
    sim = BackpackSim(seed=5).start()
    yield sim, venue("backpack"), requests.Session()
    sim.stop()


@pytest.fixture(scope="module")
def fuzz_hb() -> Iterator[tuple[HibachiSim, Venue, requests.Session]]:
    sim = HibachiSim(seed=5).start()
    yield sim, venue("hibachi"), requests.Session()
    sim.stop()


def _send(session: requests.Session, kwargs: dict[str, Any]) -> requests.Response:
    kwargs.pop("cookies", None)
    return session.request(**kwargs, timeout=TIMEOUT_S)


def _judge(v: Venue, case: Any, reply: requests.Response, *, negative: bool) -> None:
    where = f"{case.method} {case.path} {reply.status_code} query={case.query} body={case.body!r:.200}"
    assert reply.status_code < 500, f"{where}: server error {reply.text[:200]}"
    # Malformed headers are replaced by a valid signature before sending: only query and body mutations count.
    malformed = {location.value for location, info in case.meta.components.items() if info.mode.is_negative}
    if negative and malformed - {"header"}:
        assert 400 <= reply.status_code < 500, f"{where}: a malformed request was accepted"
    problems = v.check(case.method, case.path, reply)
    assert not problems, f"{where}: {problems}"


def _backpack(fixture: tuple[BackpackSim, Venue, requests.Session], case: Any, *, negative: bool) -> None:
    sim, v, session = fixture
    kwargs = case.as_transport_kwargs(base_url=sim.rest_url)
    headers = {k: val for k, val in (kwargs.get("headers") or {}).items() if not k.lower().startswith("x-")}
    instruction = BP_OPS[(case.method, case.path)]
    if instruction is not None:  # sign exactly what goes on the wire, so that parameters are what gets judged
        signed = kwargs.get("params") if case.method == "GET" else kwargs.get("json")
        signer = BackpackSigner(sim.api_key, sim.api_secret, window_ms=5000)
        # The project's signer refuses nested values (the venue's string has no form for them): those go unsigned.
        with contextlib.suppress(TypeError, AttributeError):
            headers |= signer.headers(instruction, signed, int(time.time() * 1000))
    kwargs["headers"] = headers
    _judge(v, case, _send(session, kwargs), negative=negative)


def _hibachi(fixture: tuple[HibachiSim, Venue, requests.Session], case: Any, *, negative: bool) -> None:
    sim, v, session = fixture
    kwargs = case.as_transport_kwargs(base_url=sim.api_url)
    if HB_OPS[(case.method, case.path)]:  # the paper account's key and id, so that requests reach the handler
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": sim.paper.api_key}
        if case.method == "GET" and not negative:
            kwargs["params"] = {**(kwargs.get("params") or {}), "accountId": str(sim.paper.account_id)}
        elif isinstance(kwargs.get("json"), dict):
            kwargs["json"] = {**kwargs["json"], "accountId": sim.paper.account_id}
    _judge(v, case, _send(session, kwargs), negative=negative)


@bp_positive.parametrize()
@FUZZ
def test_backpack_positive(fuzz_bp: tuple[BackpackSim, Venue, requests.Session], case: Any) -> None:
    _backpack(fuzz_bp, case, negative=False)


@bp_negative.parametrize()
@FUZZ
def test_backpack_negative(fuzz_bp: tuple[BackpackSim, Venue, requests.Session], case: Any) -> None:
    _backpack(fuzz_bp, case, negative=True)


@hb_positive.parametrize()
@FUZZ
def test_hibachi_positive(fuzz_hb: tuple[HibachiSim, Venue, requests.Session], case: Any) -> None:
    _hibachi(fuzz_hb, case, negative=False)


@hb_negative.parametrize()
@FUZZ
def test_hibachi_negative(fuzz_hb: tuple[HibachiSim, Venue, requests.Session], case: Any) -> None:
    _hibachi(fuzz_hb, case, negative=True)


def test_simulators_still_answer_after_the_fuzz(
    fuzz_bp: tuple[BackpackSim, Venue, requests.Session], fuzz_hb: tuple[HibachiSim, Venue, requests.Session]
) -> None:
    assert fuzz_bp[2].get(fuzz_bp[0].rest_url + "/api/v1/ping", timeout=TIMEOUT_S).text == "pong"
    assert fuzz_hb[2].get(fuzz_hb[0].api_url + "/exchange/utc-timestamp", timeout=TIMEOUT_S).status_code == 200
