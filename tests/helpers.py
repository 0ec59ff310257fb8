"""Test helpers: waiting for a condition (bounded, never a fixed sleep that races)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from core.clock import FakeClock

ROOT = Path(__file__).resolve().parents[1]


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` until true; fail the test after `timeout_s` seconds."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without APP__ settings or armed fail points (a test's own config must be all a
    child process gets), plus `extra`."""
    drop = ("APP__", "PERP_FARMER_FAILPOINTS")
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(drop)} | extra


def spawn_simulator(module: str, seed: int, *args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """A standalone venue simulator (`python -m exchanges.<venue>.sim --port 0`) and the endpoints it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", "--seed", str(seed), *args],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def venue_sections(
    bp: dict[str, Any], hb: dict[str, Any], *, bp_extra: str = "", hb_extra: str = "", **over: str
) -> str:
    """The [backpack] and [hibachi] TOML sections pointing a live-mode supervisor at standalone simulators (the
    endpoints `spawn_simulator` printed); `over` replaces bp_key, bp_secret or hb_key, the extras add lines."""
    return f"""[backpack]
api_key = "{over.get("bp_key", bp["api_key"])}"
api_secret = "{over.get("bp_secret", bp["api_secret"])}"
rest_url = "{bp["rest"]}"
ws_url = "{bp["ws"]}"
{bp_extra}
[hibachi]
api_key = "{over.get("hb_key", hb["api_key"])}"
account_id = {hb["account_id"]}
key_type = "hmac"
hmac_secret = "{hb["hmac_secret"]}"
api_url = "{hb["api"]}"
data_api_url = "{hb["data_api"]}"
ws_market_url = "{hb["ws_market"]}"
account_ws_url = "{hb["ws_account"]}"
{hb_extra}
"""


@contextmanager
def standalone_simulators(seed: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Both venues' simulators as processes of their own (Backpack, Hibachi endpoints), stopped afterwards."""
    bp_proc, bp = spawn_simulator("exchanges.backpack.sim", seed)
    hb_proc, hb = spawn_simulator("exchanges.hibachi.sim", seed)
    try:
        yield bp, hb
    finally:
        for proc in (bp_proc, hb_proc):
            proc.terminate()
            proc.wait(10)


class SleeplessClock(FakeClock):
    """A FakeClock whose sleep() returns at once, recording how long was asked, and (with `advance_on_sleep`)
    moving fake time on by that much, for code under test that pauses between attempts."""

    def __init__(self, start: datetime, *, advance_on_sleep: bool = False) -> None:
        super().__init__(start)
        self.slept: list[float] = []
        self._advance_on_sleep = advance_on_sleep

    def sleep(self, seconds: float) -> None:
        """Record, and advance when asked to; never block."""
        self.slept.append(seconds)
        if self._advance_on_sleep:
            self.advance(max(seconds, 0.0))
