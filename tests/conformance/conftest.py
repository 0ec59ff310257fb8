"""Both simulators on 127.0.0.1 (port 0), one per module, with some trading and a funding settlement behind them
so that every history and market-data reply has rows to check."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from exchanges.backpack.signing import BackpackSigner
from exchanges.backpack.sim import BackpackSim
from exchanges.hibachi.sim import HibachiSim


class BackpackCaller:
    """Sends Backpack requests, signed with the project's own signer when given an instruction."""

    def __init__(self, sim: BackpackSim) -> None:
        self.sim = sim
        self.signer = BackpackSigner(sim.api_key, sim.api_secret, window_ms=5000)
        self.session = requests.Session()

    def __call__(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        instruction: str | None = None,
    ) -> requests.Response:
        headers: dict[str, str] = {}
        if instruction is not None:
            signed = params if method == "GET" else body
            headers = self.signer.headers(instruction, signed, int(time.time() * 1000))
        return self.session.request(
            method, self.sim.rest_url + path, params=params, json=body, headers=headers, timeout=5
        )


def settle_funding(sim: BackpackSim | HibachiSim) -> None:
    """Bring every market's next funding settlement to now and let the engine settle it."""
    now = int(datetime.now(UTC).timestamp())
    for symbol in sim.engine.markets:
        sim.engine.schedule_funding(symbol, now)
    with sim.engine.lock:
        sim.engine.tick()


@pytest.fixture(scope="module")
def bp_sim() -> Iterator[BackpackSim]:
    sim = BackpackSim(seed=11).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def hb_sim() -> Iterator[HibachiSim]:
    sim = HibachiSim(seed=11).start()
    yield sim
    sim.stop()
