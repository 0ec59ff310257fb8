"""Pieces of a clean stop: closing every pair on exit (`run --close-on-exit`), and running each stop step so
that one failing never skips the ones after it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pykka

from actors.messages import CloseAll, CloseResult
from core.clock import Clock
from core.domain import PairState

log = logging.getLogger(__name__)


def close_on_exit(closer: Callable[[], pykka.ActorRef[Any] | None], clock: Clock, timeout: float) -> None:
    """Close every pair, retrying until `timeout`; raises naming the pairs still open then."""
    deadline = clock.monotonic() + timeout
    left: list[int] = []
    while True:
        ref = closer()
        if ref is None:
            raise RuntimeError("the closer is down")
        remaining = max(0.1, deadline - clock.monotonic())
        # block=True spelled out: only then do pykka's overloads type the reply as the reply rather than maybe a Future
        result: CloseResult = ref.ask(CloseAll("shutdown with --close-on-exit"), block=True, timeout=remaining)
        left = sorted(pid for pid, state in result.states.items() if state is not PairState.CLOSED)
        if not left or clock.monotonic() >= deadline:
            break
        clock.sleep(min(1.0, max(0.0, deadline - clock.monotonic())))
    if left:
        raise RuntimeError(f"pairs still open: {', '.join(map(str, left))}")


def attempt(what: str, step: Callable[[], Any]) -> bool:
    """Run one stop step; a failure is logged in one line and reported as False, never raised."""
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - one failed step must not skip the ones after it
        log.error("shutdown: %s failed: %s", what, f"{type(exc).__name__}: {exc}".splitlines()[0])  # noqa: TRY400
        return False
    return True
