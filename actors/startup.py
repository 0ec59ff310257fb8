"""Start-up reconciliation, driven from the main loop without blocking it: the closer settles unfinished pairs,
then the monitor compares venue positions with the pairs. Each step is an ask whose future the loop polls, so
the loop keeps turning (heartbeat, supervision, health) however long a venue takes to answer. Nothing opens
until an attempt completes (issue 6); a failed attempt is retried with backoff."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.gate import TradingGate
from actors.health import HealthTracker
from actors.messages import ReconcilePairs, ReconcilePositions, ReconcileReport, UnblockOpening
from core.clock import Clock
from core.domain import EventLevel
from storage.failure import is_storage_failure

log = logging.getLogger(__name__)

STARTUP_BLOCK = "startup"  # the gate's block that holds opening back until reconciliation completes
RECONCILE_TIMEOUT_S = 300.0
RECONCILE_RETRY_S = 1.0
RECONCILE_RETRY_MAX_S = 30.0


@dataclass(frozen=True, slots=True)
class Reconciled:
    """Both steps answered (complete or not)."""

    pairs: ReconcileReport
    positions: ReconcileReport


@dataclass(frozen=True, slots=True)
class ReconcileFailed:
    """A step raised, its actor was down, or it did not answer within the timeout."""

    error: BaseException


class StartupReconciliation:
    """Polls one reconciliation attempt: `poll()` is None while it runs, then its outcome (and it is reset)."""

    def __init__(self, ref: Callable[[str], pykka.ActorRef[Any] | None], timeout_s: float) -> None:
        self._ref = ref
        self._timeout_s = timeout_s
        self._future: pykka.Future[Any] | None = None
        self._started = 0.0
        self._pairs: ReconcileReport | None = None

    def poll(self, now: float) -> Reconciled | ReconcileFailed | None:
        """Start, advance or finish the attempt at monotonic `now`."""
        if self._future is None:
            return self._ask("closer", ReconcilePairs(), now)
        try:
            report: ReconcileReport = self._future.get(timeout=0)
        except pykka.Timeout:
            if now - self._started <= self._timeout_s:
                return None
            return self._fail(TimeoutError(f"no answer within {self._timeout_s:.0f}s"))
        except Exception as exc:  # noqa: BLE001 - a venue or an actor failed this attempt: the caller retries
            return self._fail(exc)
        if self._pairs is None:
            self._pairs = report
            return self._ask("monitor", ReconcilePositions(), now)
        pairs, self._pairs, self._future = self._pairs, None, None
        return Reconciled(pairs, report)

    def _ask(self, name: str, message: Any, now: float) -> ReconcileFailed | None:
        ref = self._ref(name)
        if ref is None:
            return self._fail(RuntimeError(f"the {name} is not running"))
        try:
            self._future = ref.ask(message, block=False)
        except pykka.ActorDeadError as exc:
            return self._fail(exc)
        self._started = now
        return None

    def _fail(self, error: BaseException) -> ReconcileFailed:
        self._future, self._pairs = None, None
        return ReconcileFailed(error)


class StartupReconciler:
    """Drives attempts from the main loop until one completes, then lifts the start-up block."""

    def __init__(
        self,
        ref: Callable[[str], pykka.ActorRef[Any] | None],
        gate: TradingGate,  # read here; written by the coordinator, told through `tell`
        tell: Callable[[UnblockOpening], Any],
        tracker: HealthTracker,
        on_storage_failure: Callable[[BaseException], None],
        record_event: Callable[..., None],  # (level, kind, message, **data), never raises
    ) -> None:
        self._ref = ref
        self._gate = gate
        self._tell = tell
        self._done = False
        self._tracker = tracker
        self._on_storage_failure = on_storage_failure
        self._record_event = record_event
        self._attempt = StartupReconciliation(ref, RECONCILE_TIMEOUT_S)
        self._retry_at = 0.0

    def poll(self, now: float) -> bool:
        """Advance the current attempt at monotonic `now`, never waiting; whether opening is past start-up."""
        if self._done:
            if STARTUP_BLOCK in self._gate.blocks:  # the lifting was lost (no coordinator then): say it again
                self._tell(UnblockOpening(STARTUP_BLOCK))
            return True
        if now < self._retry_at:
            return False
        outcome = self._attempt.poll(now)
        if outcome is None:
            return False
        if self.settle(outcome):
            return True
        failures = max(1, self._tracker.reconcile_failures)
        self._retry_at = now + min(RECONCILE_RETRY_MAX_S, RECONCILE_RETRY_S * 2 ** (failures - 1))
        return False

    def run_once(self, clock: Clock) -> bool:
        """One whole attempt of its own, waited for (the bench's way; the main loop polls instead). Returns
        whether it completed and lifted the start-up block."""
        attempt = StartupReconciliation(self._ref, RECONCILE_TIMEOUT_S)
        outcome = attempt.poll(clock.monotonic())
        while outcome is None:
            clock.sleep(0.01)
            outcome = attempt.poll(clock.monotonic())
        return self.settle(outcome)

    def settle(self, outcome: Reconciled | ReconcileFailed) -> bool:
        """Act on an attempt's outcome: lift the start-up block when both steps were complete."""
        if isinstance(outcome, ReconcileFailed):
            exc = outcome.error
            if is_storage_failure(exc):
                self._on_storage_failure(exc)
                return False
            failures = self._tracker.reconcile_failed(repr(exc))
            # The first failures are expected (a venue still starting); a run of them is a condition to fix.
            level = logging.WARNING if failures < self._tracker.reconcile_failures_unhealthy else logging.ERROR
            log.log(level, "start-up reconciliation failed (%d in a row): %r; retrying", failures, exc)
            return False
        pairs, positions = outcome.pairs, outcome.positions
        if not (pairs.complete and positions.complete):
            self._tracker.reconcile_failed("an order's outcome or a venue position is not settled yet")
            return False
        self._tracker.reconciled()
        self._done = True
        self._tell(UnblockOpening(STARTUP_BLOCK))
        unknown = (
            f"; venue positions nobody accounts for: {'; '.join(positions.decisions)}" if positions.decisions else ""
        )
        self._record_event(
            EventLevel.WARNING if unknown else EventLevel.INFO,
            "reconciled",
            f"start-up reconciliation done: {len(pairs.decisions)} unfinished pair(s) settled{unknown}",
        )
        return True
