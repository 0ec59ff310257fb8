"""Venue fixtures: a real simulator on 127.0.0.1 (port 0) and the real client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.clock import SystemClock
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.signing import make_signer
from exchanges.hibachi.sim import HibachiSim


@pytest.fixture
def bp_sim() -> Iterator[BackpackSim]:
    sim = BackpackSim(seed=7).start()
    yield sim
    sim.stop()


@pytest.fixture
def bp(bp_sim: BackpackSim) -> Iterator[BackpackClient]:
    client = BackpackClient(
        bp_sim.rest_url, bp_sim.api_key, bp_sim.api_secret, clock=SystemClock(), read_timeout_s=1.0, window_ms=1000,
        requests_per_s=200, backoff_s=0.01,
    )  # fmt: skip
    yield client
    client.close()


@pytest.fixture
def hb_sim() -> Iterator[HibachiSim]:
    sim = HibachiSim(seed=7, nonce_window_s=1.0).start()
    yield sim
    sim.stop()


def hibachi_client(sim: HibachiSim, key_type: str = "hmac", **options: object) -> HibachiClient:
    """The real client for the simulator's paper account, signing with `key_type`."""
    signer = make_signer(key_type, hmac_secret=sim.paper.hmac_secret, private_key=sim.paper.private_key)
    settings: dict[str, object] = {
        "clock": SystemClock(), "read_timeout_s": 1.0, "nonce_window_s": 1.0, "requests_per_s": 500,
        "backoff_s": 0.01, "settle_interval_s": 0.01,
    }  # fmt: skip
    settings.update(options)
    return HibachiClient(
        sim.api_url, sim.data_api_url, sim.paper.api_key, sim.paper.account_id, signer,
        **settings,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture(params=["hmac", "ecdsa"])
def hb(request: pytest.FixtureRequest, hb_sim: HibachiSim) -> Iterator[HibachiClient]:
    client = hibachi_client(hb_sim, request.param)
    yield client
    client.close()
