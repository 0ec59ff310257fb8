"""Supervision: start actors in order, restart dead ones with backoff, give up past N restarts in a window.

Two detection paths, since Pykka's `on_failure` misses deaths in `on_start` and wedged actors: the dying
actor's own report, and a liveness check on every `poll()`. Restarts are scheduled, never slept on.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pykka

from actors.base import DeathCallback, Directory
from actors.messages import Ping
from core.clock import Clock

log = logging.getLogger(__name__)

ActorFactory = Callable[[int, DeathCallback], pykka.ActorRef[Any]]
PING_TIMEOUT_S = 10.0


@dataclass
class RestartPolicy:
    """At most `max_restarts` in `window_s`; the n-th restart in a row waits backoff_min x 2^n (capped)."""

    max_restarts: int
    window_s: float
    backoff_min_s: float
    backoff_max_s: float
    _times: deque[float] = field(default_factory=deque)

    def on_failure(self, now: float) -> float | None:
        """Record a death at monotonic `now`; the delay before restarting, or None to give up."""
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        if len(self._times) >= self.max_restarts:
            return None
        delay = min(self.backoff_max_s, self.backoff_min_s * 2 ** len(self._times))
        self._times.append(now)
        return delay


@dataclass
class ChildSpec:
    """How to start one named actor, and its restart policy."""

    name: str
    factory: ActorFactory
    policy: RestartPolicy


@dataclass
class _Child:
    spec: ChildSpec
    ref: pykka.ActorRef[Any] | None = None
    generation: int = 0
    restarts: int = 0
    restart_at: float | None = None
    given_up: bool = False
    last_error: str | None = None


class Supervisor:
    """Owns the actors: starts them, watches them, restarts them, stops them in reverse order."""

    def __init__(
        self,
        clock: Clock,
        directory: Directory,
        *,
        on_restart: Callable[[str, int, str], None] | None = None,
        on_give_up: Callable[[str, str], None] | None = None,
    ) -> None:
        self.clock = clock
        self.directory = directory
        self._children: dict[str, _Child] = {}
        self._lock = threading.Lock()
        self._deaths: list[tuple[str, int, str]] = []
        self._on_restart = on_restart
        self._on_give_up = on_give_up

    def _report_death(self, name: str, generation: int, error: BaseException | None) -> None:
        """Called in the dying actor's thread: queue it for the next poll."""
        with self._lock:
            self._deaths.append((name, generation, repr(error)))

    def start_child(self, spec: ChildSpec) -> None:
        """Start an actor and confirm it serves (a death in on_start shows as a failed ping)."""
        child = _Child(spec)
        self._children[spec.name] = child
        self._start(child)

    def _start(self, child: _Child) -> bool:
        child.generation += 1
        ref = child.spec.factory(child.generation, self._report_death)
        child.ref = ref
        self.directory.set(child.spec.name, ref)
        try:
            ref.ask(Ping(), timeout=PING_TIMEOUT_S)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            log.error("actor %s did not start: %r", child.spec.name, exc)  # noqa: TRY400 - no traceback: expected
            child.last_error = f"did not start: {exc!r}"
            return False
        log.info("actor %s started (generation %d)", child.spec.name, child.generation)
        return True

    def poll(self) -> None:
        """Notice dead actors and restart those whose backoff has passed. Call often (main loop)."""
        now = self.clock.monotonic()
        with self._lock:
            deaths, self._deaths = self._deaths, []
        for name, generation, error in deaths:
            child = self._children.get(name)
            if child is not None and generation == child.generation:
                child.last_error = error
        for child in self._children.values():
            if child.given_up:
                continue
            if child.restart_at is None and (child.ref is None or not child.ref.is_alive()):
                self._schedule(child, now)
            if child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                child.restarts += 1
                if self._start(child) and self._on_restart is not None:
                    self._on_restart(child.spec.name, child.restarts, child.last_error or "died")

    def _schedule(self, child: _Child, now: float) -> None:
        delay = child.spec.policy.on_failure(now)
        error = child.last_error or "died"
        if delay is None:
            child.given_up = True
            log.critical("actor %s keeps dying (%s): not restarted again", child.spec.name, error)
            if self._on_give_up is not None:
                self._on_give_up(child.spec.name, error)
            return
        log.warning("actor %s died (%s); restart in %.2fs", child.spec.name, error, delay)
        child.restart_at = now + delay

    def restart_now(self, name: str, error: str) -> None:
        """Stop a misbehaving actor (e.g. its tick raised) so that the next poll restarts it."""
        child = self._children[name]
        child.last_error = error
        if child.ref is not None:
            child.ref.stop(block=False)

    def ref(self, name: str) -> pykka.ActorRef[Any] | None:
        """The current ref of a child (None while it is down)."""
        child = self._children.get(name)
        return None if child is None or child.ref is None or not child.ref.is_alive() else child.ref

    def status(self) -> dict[str, dict[str, Any]]:
        """Per actor: alive, generation, restarts, given up, last error."""
        return {
            name: {
                "alive": bool(c.ref is not None and c.ref.is_alive()),
                "generation": c.generation,
                "restarts": c.restarts,
                "given_up": c.given_up,
                "last_error": c.last_error,
            }
            for name, c in self._children.items()
        }

    def healthy(self) -> bool:
        """Every actor alive and none given up."""
        return all(s["alive"] and not s["given_up"] for s in self.status().values())

    def stop_all(self, timeout_s: float) -> list[str]:
        """Stop the actors in reverse start order, each after it finished its current message; never raises.
        Returns the names of those still busy at the deadline (their work is reconciled at the next start)."""
        deadline = self.clock.monotonic() + timeout_s
        busy: list[str] = []
        for child in reversed(list(self._children.values())):
            child.given_up = True  # no restarts while stopping
            if child.ref is None:
                continue
            remaining = max(0.1, deadline - self.clock.monotonic())
            try:
                child.ref.stop(block=True, timeout=remaining)
            except pykka.Timeout:
                busy.append(child.spec.name)
                log.error(  # noqa: TRY400 - a busy actor is expected here, its traceback says nothing
                    "actor %s did not stop within %.1fs; what it was doing is reconciled at the next start",
                    child.spec.name,
                    remaining,
                )
            except pykka.ActorDeadError:
                pass
        try:
            pykka.ActorRegistry.stop_all(block=True, timeout=1)
        except pykka.Timeout:
            log.error("some actors are still busy after stopping; exiting without them")  # noqa: TRY400
        return busy


def policy_from(max_restarts: int, window_s: Decimal, backoff_min_s: Decimal, backoff_max_s: Decimal) -> RestartPolicy:
    """A RestartPolicy from configuration values."""
    return RestartPolicy(max_restarts, float(window_s), float(backoff_min_s), float(backoff_max_s))
