"""The chaos run: the whole engine on paper venues in stepped fake time, under a seeded schedule of every
fault the simulators offer, with invariants checked all along.

`run_chaos(seed, real_seconds)` returns a Summary; a broken invariant raises ChaosFailure naming the seed.
Reproduce a run with `CHAOS_SEED=<seed> CHAOS_SECONDS=<s> python -m pytest tests/system/test_chaos.py -s`.

Time. The schedule and the engine run on a FakeClock: the driver moves fake time STEP_S at a time, and
only once the engine is idle (every actor waits for its inbox, for a peer, or for fake time; no simulator
request is being worked on). Real-time waits (an HTTP timeout, a held connection) thus cost no fake time,
as on a real machine where a timeout is short against a venue's request window. Fake time never runs
faster than SPEED; a step that does not become idle within IDLE_CAP_S real seconds is forced (counted).

What a seed replays: the fault schedule (a pure function of seed, length and kinds), the fake instants the
faults are applied at, the engine's ticks, and prices (a function of fake time); and so, in every run tried
(also three at once on two cores), the whole outcome: pairs, quantities, final states, faults taken, checks.
Not guaranteed: the order in which actors working in the same step reach a venue (thread scheduling), so
which of them meets a pending fault, and a websocket frame's arrival against fake time. `Summary.outcome()`
is what two runs are compared on.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import functools
import itertools
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pykka._actor
import pykka._threading

from actors.maker import MakerPhase, _Wake
from actors.runtime import Runtime
from core.clock import FakeClock
from core.config import load_settings
from core.domain import ACTIVE_STATES, PairState, Venue
from core.ledger import OrderState, is_unresolved, leg_book
from exchanges.account_stream import AccountStream, StreamTimings
from exchanges.base import OrderType, TimeInForce
from exchanges.sim.admin import apply_fault
from exchanges.sim.http import ArrivalClock, Request, Response, SimHttpServer

SPEED = 150.0  # at most this many fake seconds per real second
STEP_S = 1.0  # fake seconds per step of the driver
FAKE_PER_REAL = 30.0  # fake seconds a run covers per real second asked for (what a 2-core machine reaches)
CHECK_EVERY_S = 5.0  # fake seconds between invariant checks
STREAM_TICK_S = 0.01  # real seconds between an account stream's link checks (1.5 fake seconds at SPEED)
IDLE_CAP_S = 3.0  # real seconds a step may wait for the engine to become idle before it is forced
CHURN_LIMIT = 4  # same-instant cancel-and-rest-again of one pair's maker order on one venue (see _check_no_churn)
UNTENDED_S = 60.0  # fake seconds an order of ours may rest outside a maker phase (a phase cancels its own)
REPAIR_DEADLINE_S = 900.0  # fake seconds a pair may hold one leg without the other (NAKED, one-sided CLOSING)
SETTLE_FAKE_S = 1800.0  # fake seconds the book has to come to rest once the faults stop
ASSETS = ("BTC", "ETH", "SOL")
WINDOW_S = {Venue.BACKPACK: 5.0, Venue.HIBACHI: 15.0}  # each venue's request window (settings, simulators)
ORDER_PATH = {Venue.BACKPACK: "/api/v1/order", Venue.HIBACHI: "/trade/order"}
KINDS = (
    "reject", "reject_close", "http_5xx", "http_429", "latency", "blackhole", "partial_fill", "delay", "drop_ws",
    "freeze", "jump", "maintenance", "drop_private", "silence_private", "reorder_private", "clear",
)  # fmt: skip
# The faults of maker execution (drawn besides KINDS when a run rests post-only orders): a burst of post-only
# orders expired as if they would take, resting orders filled in part whatever the tape did, a fill that beats
# a cancel, and the private stream going silent while a maker order rests (counted taken per maker fill unheard).
MAKER_KINDS = ("post_only_storm", "resting_partial", "fill_racing_cancel", "silence_mid_fill")
MAKER_GAP_S = (8.0, 30.0)  # fake seconds between two faults of a maker run
# Maker settings at the chaos time scale (pairs live 18-54 fake seconds): short phases, orders split in chunks.
MAKER_SETTINGS: dict[str, Any] = {
    "maker_timeout_s": 15,
    "poll_s": 1,
    "imbalance_age_s": 3,
    "imbalance_usd": 30,
    "max_unhedged_usd": 60,
    "max_post_only_rejects": 5,
    "reprice_ticks": 1,
}
# Events and actor states that are failures unless the schedule caused them (it never kills actors today).
FAILURE_EVENTS = frozenset({"actor_restarted", "actor_given_up", "tick_failed"})


class ChaosFailure(AssertionError):
    """An invariant broke; the message carries the seed."""


Parked = Callable[[], bool]  # asked from the driver's thread: whether a thread's innermost mark lets time move


def _yes() -> bool:
    return True


def _no() -> bool:
    return False


def _busy(_: object) -> Parked:
    return _no


def _waiting(_: object) -> Parked:
    return _yes


# Venues whose account streams the schedule has silenced. A wait on such a stream can only end by its fake-time
# deadline, so it lets time move. Any other wait is work in progress: its events are on their way in real time
# (a step taken meanwhile would time it out on some runs and not on others, and a seed would not replay).
_SILENT_STREAMS: set[str] = set()
_STREAMS: dict[str, AccountStream] = {}  # each venue's account stream, the latest made


def _silenced(stream: AccountStream) -> Parked:
    return lambda: stream.venue in _SILENT_STREAMS


class _MakerWatch:
    """The maker phases running now (by their _Wake), and what a phase's wait for a fill may count on.

    A phase waits (real time) for its resting orders' fills to come over the account streams. That wait lets
    fake time move only when no fill of its orders is on its way: every fill the venue made is counted by the
    phase already, or its venue's stream is silenced or not trusted (the phase then polls at fake pace, or waits
    for its timeout), or an event of that order was discarded or sent over a link that was lost. And only a wait
    begun at the present fake instant: the phase's deadlines (timeout, polls, imbalance age) are looked at once
    it returns, so each time the driver moves fake time it wakes the phases (`wake_all`) and waits for them."""

    def __init__(self) -> None:
        self.phases: dict[int, MakerPhase] = {}
        self.sims: dict[Venue, Any] = {}
        self.clock: FakeClock | None = None
        self.unheard: set[tuple[str, str]] = set()  # (venue, venue order id) whose stream lost an event

    def clear(self) -> None:
        self.phases.clear()
        self.sims = {}
        self.clock = None
        self.unheard.clear()

    def now(self) -> float | None:
        return None if self.clock is None else self.clock.monotonic()

    def wake_all(self) -> None:
        """Have every phase waiting for a fill look at its deadlines again (fake time moved)."""
        for phase in list(self.phases.values()):
            with phase.wake._cond:
                phase.wake._cond.notify_all()

    def parked(self, wake: _Wake) -> bool:
        phase = self.phases.get(id(wake))
        if phase is None or not self.sims:
            return True
        if phase._hedging.locked():  # a hedge is out: the phase waits for it, and the hedger's thread is marked
            return True
        if wake.heard:  # an event arrived the phase has not taken yet
            return False
        for resting in list(phase.resting.values()):
            if resting is None or resting.venue_order_id is None:
                continue
            venue = phase.legs[resting.side].venue
            watch = phase.watches.get(resting.side)
            if venue.value in _SILENT_STREAMS or watch is None or not watch.healthy():
                continue
            if (venue.value, resting.venue_order_id) in self.unheard:
                continue
            if watch.order(resting.venue_order_id) is None:  # its acceptance is on its way (else polled)
                return False
            sim = self.sims[venue]
            with sim.engine.lock:
                order = sim.account().orders.get(resting.venue_order_id)
                behind = order is not None and (order.filled != resting.seen or order.status.is_final)
            if behind:
                return False
        return True


_MAKERS = _MakerWatch()


def _maker_waiting(wake: _Wake) -> Parked:
    began = _MAKERS.now()  # asked on entering the wait
    return lambda: began == _MAKERS.now() and _MAKERS.parked(wake)


def _between_messages(actor: pykka._actor.Actor) -> Parked:
    return actor.actor_inbox.empty  # parked when nothing is queued


def _awaiting(future: pykka._threading.ThreadingFuture) -> Parked:
    return lambda: future._result is None  # parked unless the answer is in and the caller is about to run


# Where a thread is told to be working or waiting: each entry marks the thread for the call's duration.
_MARKED: tuple[tuple[type, str, Callable[[Any], Parked]], ...] = (
    (pykka._actor.Actor, "_actor_loop_setup", _busy),
    (pykka._actor.Actor, "_actor_loop_running", _between_messages),
    (pykka._actor.Actor, "_handle_receive", _busy),
    (pykka._actor.Actor, "_actor_loop_teardown", _busy),
    (pykka._threading.ThreadingFuture, "get", _awaiting),
    (SimHttpServer, "dispatch", _busy),
    (SimHttpServer, "_hold_unanswered", _waiting),  # a never-answered request holds real time, no fake time
    (AccountStream, "wait_for", lambda stream: _silenced(stream)),
    (_Wake, "wait", _maker_waiting),
)


class _Marks:
    """What each thread is in, told by the thread itself: a stack of marks (a wait, or a piece of engine work)
    pushed on entering a marked call, innermost last. Not read off the threads' frames: in CPython 3.11 a
    running frame inspected from another thread (f_locals above all) can be corrupted, which crashed runs."""

    def __init__(self) -> None:
        self._stacks: dict[int, list[Parked]] = {}  # by thread ident; only its own thread writes an entry

    def wrap(self, function: Callable[..., Any], parked_of: Callable[[Any], Parked]) -> Callable[..., Any]:
        """`function` (a method, its owner first) marked with `parked_of(owner)` while it runs."""
        stacks = self._stacks

        @functools.wraps(function)
        def marked(owner: Any, *args: Any, **kwargs: Any) -> Any:
            stack = stacks.setdefault(threading.get_ident(), [])
            stack.append(parked_of(owner))
            try:
                return function(owner, *args, **kwargs)
            finally:
                stack.pop()

        return marked

    def parked(self, skip: frozenset[int]) -> bool:
        """Whether every thread not in `skip` is parked by its innermost mark, or has none (not engine work:
        feeds, publishers, servers waiting for a connection)."""
        for ident, stack in self._stacks.copy().items():  # copy(): a snapshot taken without running Python code
            innermost = stack[-1:]  # a slice: the owner may pop meanwhile
            if ident not in skip and innermost and not innermost[0]():
                return False
        return True

    def busy(self, skip: frozenset[int]) -> list[str]:
        """The names of the threads not parked (what `parked` found), for a forced step's diagnosis."""
        names = {t.ident: t.name for t in threading.enumerate()}
        found = []
        for ident, stack in self._stacks.copy().items():
            innermost = stack[-1:]
            if ident not in skip and innermost and not innermost[0]():
                found.append(names.get(ident, str(ident)))
        return found

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Mark the calls of _MARKED, in every thread, for the duration."""
        originals = [(owner, name, owner.__dict__[name]) for owner, name, _ in _MARKED]
        try:
            for (owner, name, parked_of), (_, _, original) in zip(_MARKED, originals, strict=True):
                setattr(owner, name, self.wrap(original, parked_of))
            yield
        finally:
            for owner, name, original in originals:
                setattr(owner, name, original)


@dataclass(frozen=True)
class Fault:
    """One entry of the schedule: at fake second `at` (from the start), do `kind` on `venue`."""

    at: float
    venue: str
    kind: str
    spec: dict[str, Any]

    def key(self) -> tuple[Any, ...]:
        """A comparable form."""
        return (round(self.at, 6), self.venue, self.kind, tuple(sorted((k, str(v)) for k, v in self.spec.items())))


def make_schedule(
    seed: int,
    fake_seconds: float,
    kinds: tuple[str, ...] = KINDS,
    makers: tuple[Venue, ...] = (),
    gap_s: tuple[float, float] = (15, 90),
) -> list[Fault]:
    """The faults of a run: a pure function of the seed, the run's fake length, the kinds drawn from and the
    range of gaps between faults. The maker kinds go to a venue of `makers` (the venues that rest post-only
    orders), when given."""
    rng = random.Random(seed)
    out: list[Fault] = []
    at = rng.uniform(5, 30)
    first = rng.sample(kinds, len(kinds))  # every kind once, in a drawn order, before any is drawn freely
    while at < fake_seconds:
        venue = rng.choice([Venue.BACKPACK, Venue.HIBACHI])
        kind = first.pop() if first else rng.choice(kinds)
        if kind in MAKER_KINDS and makers:
            venue = makers[0] if len(makers) == 1 else venue
        code: Any = 4 if venue is Venue.HIBACHI else "INVALID_ORDER"
        spec: dict[str, Any]
        match kind:
            case "reject":
                spec = {"kind": "reject", "code": code, "message": "chaos", "count": rng.randint(1, 2)}
            case "reject_close":
                spec = {"kind": "reject", "code": code, "message": "chaos", "count": rng.randint(1, 3),
                        "reduce_only": True}  # fmt: skip
            case "http_5xx":
                spec = {"kind": "http_error", "status": rng.choice([500, 502, 503]), "count": rng.randint(1, 3)}
            case "http_429":
                spec = {"kind": "http_error", "status": 429, "retry_after": 0.05, "count": 1}
            case "latency":
                spec = {"kind": "latency", "seconds": rng.choice([0, 0.01, 0.02])}
            case "blackhole":
                spec = {"kind": "blackhole", "count": 1}
            case "partial_fill":
                spec = {"kind": "partial_fill", "fraction": rng.choice(["0.3", "0.5", "0.8"]), "count": 1}
            case "delay":  # carried out after the client gave up, before the request's window ends
                seconds = round(rng.uniform(0.2, 0.8) * WINDOW_S[venue], 3)
                spec = {"kind": "delay", "seconds": seconds, "method": "POST", "path": ORDER_PATH[venue], "count": 1}
            case "drop_ws":
                spec = {"kind": "drop_ws"}
            case "freeze":  # both venues' feeds of one asset go quiet, then resume
                asset = rng.choice(ASSETS)
                spec = {"kind": "freeze", "asset": asset, "on": True}
                out.append(Fault(at + round(rng.uniform(75, 300), 3), venue.value, "unfreeze",
                                 {"kind": "freeze", "asset": asset, "on": False}))  # fmt: skip
            case "maintenance":  # Hibachi's exchange-info status: no order may be sent there meanwhile
                venue = Venue.HIBACHI
                spec = {"kind": "maintenance", "on": True}
                out.append(Fault(at + round(rng.uniform(30, 150), 3), venue.value, "maintenance_end",
                                 {"kind": "maintenance", "on": False}))  # fmt: skip
            case "drop_private":  # the account stream's socket closes: orders go to REST until it is back
                spec = {"kind": "drop_private_ws"}
            case "silence_private":  # the account stream stays open but tells nothing, then speaks again
                spec = {"kind": "silence_private", "on": True}
                out.append(Fault(at + round(rng.uniform(20, 200), 3), venue.value, "unsilence_private",
                                 {"kind": "silence_private", "on": False}))  # fmt: skip
            case "reorder_private":  # events of the next orders arrive out of order
                spec = {"kind": "reorder_private", "count": rng.randint(1, 4)}
            case "jump":
                spec = {"kind": "jump", "asset": rng.choice(ASSETS), "pct": str(rng.choice([-3, -1, 1, 3]))}
            case "post_only_storm":
                spec = {"kind": "post_only_storm", "count": rng.randint(3, 8)}
            case "resting_partial":
                spec = {"kind": "resting_partial", "fraction": rng.choice(["0.1", "0.25", "0.4"]),
                        "count": rng.randint(2, 6)}  # fmt: skip
            case "fill_racing_cancel":
                spec = {"kind": "fill_racing_cancel", "fraction": rng.choice(["0.3", "0.5", "0.9"]),
                        "count": rng.randint(1, 3)}  # fmt: skip
            case "silence_mid_fill":  # silence_private, short enough to fall inside a maker phase's life
                spec = {"kind": "silence_private", "on": True}
                out.append(Fault(at + round(rng.uniform(5, 40), 3), venue.value, "unsilence_private",
                                 {"kind": "silence_private", "on": False}))  # fmt: skip
            case _:
                spec = {"kind": "clear"}
        out.append(Fault(round(at, 3), venue.value, kind, spec))
        at += rng.uniform(*gap_s)
    return sorted(out, key=lambda f: f.at)


@dataclass
class Summary:
    """What a chaos run did and checked."""

    seed: int
    execution: str = "taker"
    real_seconds: float = 0.0
    fake_seconds: float = 0.0
    lifecycles: int = 0
    pairs_by_state: dict[str, int] = field(default_factory=dict)
    injected: Counter[str] = field(default_factory=Counter)
    taken: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    steps: int = 0
    forced_steps: int = 0
    forced_by: Counter[str] = field(default_factory=Counter)  # the threads found busy when a step was forced
    cut_short: bool = False
    schedule: list[Fault] = field(default_factory=list)
    pairs: list[tuple[Any, ...]] = field(default_factory=list)  # id, market, long venue, quantity, state
    # Orders awaited on an account stream, by venue and whether the stream told their outcome in time (the rest
    # went to REST). Timing-dependent, so not part of `outcome()`.
    stream_waits: Counter[str] = field(default_factory=Counter)
    # Maker runs: how the maker phases ended, maker fills and the orders that made them.
    maker: Counter[str] = field(default_factory=Counter)

    @property
    def faults(self) -> Counter[str]:
        """Faults that took effect (altered a request, a reply or a feed)."""
        return self.taken

    def outcome(self) -> dict[str, Any]:
        """What a replay of the seed is compared on: the schedule, the faults that took effect, the pairs (market,
        long venue, quantity, final state), the invariant checks made (but how many quiet-book comparisons), and the
        verdict (a run that returns passed every check; a failing one raises ChaosFailure instead)."""
        return {
            "schedule": [f.key() for f in self.schedule],
            # Which faults took effect; not how often: the request faults (latency, maintenance, errors) count the
            # requests that met them, and how many requests an order takes depends on whether the account streams'
            # threads (real time) told its outcome in time or REST was read.
            "taken": sorted(self.taken),
            "pairs": list(self.pairs),
            # How often the book was quiet enough to compare positions depends on the account streams' threads
            # (real time) against the checks (fake time): the comparison is made every time, its count not replayed.
            "checks": {k: v for k, v in sorted(self.checks.items()) if k != "positions_agree_when_quiet"},
            "maker": dict(sorted(self.maker.items())),
            "verdict": "every invariant held",
        }

    def render(self) -> str:
        """The printed summary."""

        def line(c: Counter[str]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(c.items()))

        states = ", ".join(f"{k} {v}" for k, v in sorted(self.pairs_by_state.items()))
        return (
            f"chaos seed {self.seed} ({self.execution}): {self.real_seconds:.0f} s real = "
            f"{self.fake_seconds / 3600:.1f} h simulated "
            f"({self.steps} steps, {self.forced_steps} forced{', CUT SHORT' if self.cut_short else ''}); "
            f"{self.lifecycles} pair lifecycles finished ({states}); actor restarts {self.restarts}\n"
            f"  faults injected {sum(self.injected.values())}: {line(self.injected)}\n"
            f"  faults taken effect {sum(self.taken.values())}: {line(self.taken)}\n"
            f"  invariant checks passed {sum(self.checks.values())}: {line(self.checks)}; violations 0\n"
            f"  orders awaited on the account streams: {line(self.stream_waits)}"
            + (f"\n  maker: {line(self.maker)}" if self.maker else "")
        )


@contextmanager
def _stream_ticks_for_fake_time() -> Iterator[None]:
    """Account streams check their link (keepalive, quietness) between receives of STREAM_TICK_S real seconds:
    at SPEED fake seconds per real one, their 0.25 s would be 37 fake seconds, past Hibachi's listen-key
    lifetime. The shorter tick keeps the keepalive on schedule in fake time, as it is in real time. And a stream is
    called quiet only after 60 fake seconds, not 15: under load its thread falls behind fake time now and then, and
    a stream distrusted for that sent orders to REST (more requests, so other request faults taken), which made a
    seed's run differ from its replay."""
    original = AccountStream.__init__

    @functools.wraps(original)
    def init(self: AccountStream, dialect: Any, clock: Any, timings: StreamTimings | None = None) -> None:
        ticks = dataclasses.replace(timings or StreamTimings(), recv_tick_s=STREAM_TICK_S, quiet_after_s=60.0)
        original(self, dialect, clock, ticks)
        _STREAMS[self.venue] = self

    AccountStream.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        AccountStream.__init__ = original  # type: ignore[method-assign]


_PHASE_ENDS = ("target traded", "maker timeout", "post-only refusals", "outcome is unknown", "below one step")


@contextmanager
def _phases_registered(counts: Counter[str]) -> Iterator[None]:
    """Keep every running MakerPhase in _MAKERS for its run (what the idle rule and the exposure check read);
    count how the phases ended in `counts`."""
    original = MakerPhase.run

    @functools.wraps(original)
    def run(self: MakerPhase) -> Any:
        _MAKERS.phases[id(self.wake)] = self
        try:
            result = original(self)
        finally:
            _MAKERS.phases.pop(id(self.wake), None)
        why = next((w for w in _PHASE_ENDS if w in result.reason), result.reason)
        counts[f"{self.purpose.value} phase {why}"] += 1
        counts["hedges"] += len(result.hedges)
        return result

    MakerPhase.run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        MakerPhase.run = original  # type: ignore[method-assign]


class _Errors(logging.Handler):
    """Collects log records that show an unhandled exception: ERROR or above with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Traceback" in record.getMessage():
            self.records.append(record)


def _settings(data_dir: Path, execution: str = "taker", maker_venue: str = "auto") -> Any:
    styles = {"open": execution, "close": execution}
    if execution != "taker":
        styles |= MAKER_SETTINGS | {"maker_venue": maker_venue}
    return load_settings(
        None,
        {
            "data_dir": str(data_dir),
            "trading": {
                "execution": styles,
                "min_duration_hours": "0.005",
                "max_duration_hours": "0.015",
                "cooldown_min_s": 1,
                "cooldown_max_s": 10,
                "max_concurrent_pairs": 3,
                "direction_policy": "random",
                "markets": [
                    {"name": "BTC", "backpack_symbol": "BTC_USDC_PERP", "hibachi_symbol": "BTC/USDT-P"},
                    {"name": "ETH", "backpack_symbol": "ETH_USDC_PERP", "hibachi_symbol": "ETH/USDT-P"},
                    {"name": "SOL", "backpack_symbol": "SOL_USDC_PERP", "hibachi_symbol": "SOL/USDT-P"},
                ],
            },
            "backpack": {"window_ms": int(WINDOW_S[Venue.BACKPACK] * 1000)},
            "hibachi": {"nonce_window_s": str(WINDOW_S[Venue.HIBACHI])},
            "monitor": {"interval_s": 20, "feed_stale_after_s": 45},
            # Chaos opens hundreds of pairs an hour and jumps prices on purpose: the risk limits (tested on their
            # own in test_limits.py) would stop it opening, so they are set out of reach here.
            "limits": {
                "max_notional_usd": 1_000_000,
                "max_daily_cost_usd": 1_000_000,
                "max_drawdown_usd": 1_000_000,
                "max_naked_seconds": 1_000_000,
                "max_opens_per_hour": 1_000_000,
            },
            "timings": {
                "tick_s": 1,
                "leg_retry_min_s": 2,
                "leg_retry_max_s": 60,
                "venue_timeout_s": "0.5",
                "restart_backoff_min_s": "0.1",
                "restart_backoff_max_s": 1,
                "max_restarts": 50,
            },
        },
    )


class _Chaos:
    def __init__(
        self,
        seed: int,
        fake_seconds: float,
        real_cap_s: float,
        kinds: tuple[str, ...],
        execution: str = "taker",
        check_churn: bool = False,
    ) -> None:
        self.seed = seed
        self.check_churn = check_churn
        self.fake_seconds = fake_seconds
        self.real_cap_s = real_cap_s
        self.execution = execution
        self.clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
        self.dir = Path(tempfile.mkdtemp(prefix="pf-chaos-", dir="/tmp"))
        # maker_taker rests on one venue, drawn from the seed (the maker faults go there); maker_maker on both.
        maker_venue = random.Random(seed).choice([Venue.BACKPACK, Venue.HIBACHI])
        makers = (maker_venue,) if execution == "maker_taker" else (Venue.BACKPACK, Venue.HIBACHI)
        # Maker runs are shorter (two styles share the time) and their faults come closer together.
        gaps = (15.0, 90.0) if execution == "taker" else MAKER_GAP_S
        self.summary = Summary(seed, execution, schedule=make_schedule(seed, fake_seconds, kinds, makers, gaps))
        settings = _settings(self.dir, execution, maker_venue.value)
        self.execution_config = settings.trading.execution
        self.runtime = Runtime(settings, self.clock, rng=random.Random(seed + 1))
        # Maker runs: orders seen by the venues' listeners without a database row; fills of post-only orders made
        # while their venue's stream was silenced; resting orders outside any maker phase, since when.
        self._unrecorded: list[str] = []
        self._seen_ids: set[tuple[Venue, str]] = set()
        self._post_only_filled: dict[tuple[Venue, str], Decimal] = {}
        self._mid_fill = 0
        self._untended: dict[tuple[Venue, str], datetime] = {}
        self.stop = threading.Event()
        self.unhedged_since: dict[int, datetime] = {}
        self._checked_orders: dict[Venue, int] = {}
        self._client_ids: dict[Venue, set[str]] = {Venue.BACKPACK: set(), Venue.HIBACHI: set()}
        self._unsettled: dict[Venue, dict[str, Any]] = {Venue.BACKPACK: {}, Venue.HIBACHI: {}}  # row not final yet
        self._maintenance_seen = 0
        self._last_event_id = 0
        self._errors = _Errors()
        self._go = threading.Event()
        self._closer_due = False
        self._send_tick: Callable[[str], None] = lambda name: None
        self._begun = 0
        self._done = 0
        self.allowed_restarts: Counter[str] = Counter()  # restarts the schedule caused on purpose (none today)
        self._marks = _Marks()
        self._runtime_step = self._marks.wrap(Runtime.step, _busy)

    def fail(self, message: str) -> None:
        raise ChaosFailure(f"chaos seed {self.seed}: {message}  (reproduce: CHAOS_SEED={self.seed})")

    def _sims(self) -> dict[Venue, Any]:
        paper = self.runtime.paper
        assert paper is not None
        return {Venue.BACKPACK: paper.backpack, Venue.HIBACHI: paper.hibachi}

    # ---- time -------------------------------------------------------------------------------------------

    def _main_loop(self) -> None:
        """The engine's main loop, one step() per fake step of the driver."""
        while not self.stop.is_set():
            if not self._go.wait(0.05):
                continue
            self._go.clear()
            self._begun += 1
            try:
                self._runtime_step(self.runtime)
            finally:
                self._done += 1

    def _idle(self) -> bool:
        """Whether no fake-time wait is due and every other thread is parked: asleep on the fake clock (the
        innermost wait when there), else as its marks tell."""
        if self.clock.sleepers_due() or self._go.is_set():
            return False
        return self._marks.parked(self.clock.asleep() | {threading.get_ident()})

    def _wait_idle(self) -> None:
        deadline = time.monotonic() + IDLE_CAP_S
        calm = 0
        while calm < 2:  # twice in a row: a thread just handed a reply has had time to pick it up
            calm = calm + 1 if self._idle() else 0
            if time.monotonic() > deadline:
                self.summary.forced_steps += 1
                due = self.clock.sleepers_due() or self._go.is_set()
                self.summary.forced_by.update(
                    ["fake-clock wait due"] if due else self._marks.busy(self.clock.asleep() | {threading.get_ident()})
                )
                return
            time.sleep(0.0003)

    def _step(self) -> None:
        """Advance fake time one step, run the engine's main loop once, wait until the engine is idle."""
        started = time.monotonic()
        self._advance()
        if self._done == self._begun:  # the previous step() returned (it may wait on an actor)
            self._go.set()
            while self._go.is_set() and not self.stop.is_set():
                time.sleep(0.0001)
        self._wait_idle()
        if self._closer_due:  # after the coordinator's and monitor's ticks of this instant have run (see _install)
            self._closer_due = False
            self._send_tick("closer")
            self._wait_idle()
        self.summary.steps += 1
        rest = STEP_S / SPEED - (time.monotonic() - started)
        if rest > 0:
            time.sleep(rest)

    def _advance(self) -> None:
        """Move fake time a step. With maker execution the venues' tapes (what fills resting orders) are read at
        once, under their locks, so the moves between two reads (and so the fills) are those of whole steps,
        whichever thread or request ticks a venue next."""
        if self.execution == "taker":
            self.clock.advance(STEP_S)
            return
        self._tick_venues(lambda: self.clock.advance(STEP_S))
        _MAKERS.wake_all()

    def _tick_venues(self, before: Callable[[], Any]) -> None:
        """Under both venues' locks: `before()`, then a read of their tapes (a maker run's fills come from the
        moves between two reads, and a tape numbers its sweeps: a read at a moment of real time would change
        both). Called after every step and after any fault that moves prices."""
        engines = [sim.engine for sim in self._sims().values()]
        for engine in engines:
            engine.lock.acquire()
        try:
            before()
            for engine in engines:
                engine.tick()
        finally:
            for engine in reversed(engines):
                engine.lock.release()

    def _elapsed(self) -> float:
        return self.summary.steps * STEP_S

    # ---- faults -----------------------------------------------------------------------------------------

    def _install(self) -> None:
        """Window checks at arrival for held requests; count maintenance replies as taken faults."""
        assert self.runtime.paper is not None
        # The venues' JSON state file is rewritten (fsync) after every request that changed it, whole: its cost
        # grows with the run's order history. Nothing here restarts the process, so it is not needed (the crash
        # tests cover it).
        self.runtime.paper.store = None
        # The closer's tick waits for the coordinator's of the same instant to have run: both read and write the
        # pairs (a market freed by a close may be chosen again), so in one step their order would be a race in
        # real time and a seed would not replay. Any order is one the engine may meet; this one is fixed.
        ticker = self.runtime._ticks
        self._send_tick = ticker.tick

        def deferred(name: str) -> None:
            if name == "closer":
                self._closer_due = True
            else:
                self._send_tick(name)

        ticker.tick = deferred  # type: ignore[method-assign]
        for sim in self._sims().values():
            sim.clock = sim.http.arrival_clock = ArrivalClock(sim.clock)
        if self.execution != "taker":
            _MAKERS.sims = self._sims()
            _MAKERS.clock = self.clock
            for venue, sim in self._sims().items():
                with sim.engine.lock:
                    sim.engine.order_listeners.append(functools.partial(self._on_venue_order, venue, sim.engine))
        hibachi = self._sims()[Venue.HIBACHI]

        def observe(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
            def run(request: Request) -> Response:
                if hibachi.status != "NORMAL":
                    self._maintenance_seen += 1
                return handler(request)

            return run

        hibachi.http.wrap_route("GET", "/market/exchange-info", observe)

    def _on_venue_order(self, venue: Venue, engine: Any, _account: Any, order: Any) -> None:
        """The venue's order listener (its engine lock held, before any reply or event goes out): an order is
        known to the database before the venue has it; a maker fill made while its stream is silent is a
        `silence_mid_fill` taken; an event its stream cannot deliver marks the order unheard (see _MakerWatch)."""
        key = (venue, order.id)
        if order.client_id is not None and key not in self._seen_ids:
            self._seen_ids.add(key)
            try:
                self.runtime.repo.get_order(venue, order.client_id)
            except LookupError:
                self._unrecorded.append(f"{venue} order {order.client_id} reached the venue with no database row")
        stream = _STREAMS.get(venue.value)
        if engine.faults.private_silent or stream is None or not stream.healthy():
            _MAKERS.unheard.add((venue.value, order.id))
        if order.order_type is OrderType.LIMIT and order.time_in_force is TimeInForce.POST_ONLY:
            before = self._post_only_filled.get(key, Decimal(0))
            self._post_only_filled[key] = order.filled
            if order.filled > before:
                self.summary.maker["maker fills"] += 1
            if order.filled > before and engine.faults.private_silent:
                self._mid_fill += 1

    def _apply(self, fault: Fault) -> None:
        sims = self._sims()
        sim = sims[Venue(fault.venue)]
        faults = sim.engine.faults
        match fault.spec["kind"]:
            case "maintenance":
                sim.status = "SCHEDULED_MAINTENANCE" if fault.spec["on"] else "NORMAL"
            case "post_only_storm":
                faults.expire_post_only(int(fault.spec["count"]))
            case "resting_partial":
                faults.partial_fill_resting(int(fault.spec["count"]), Decimal(fault.spec["fraction"]))
            case "fill_racing_cancel":
                faults.fill_on_cancel(int(fault.spec["count"]), Decimal(fault.spec["fraction"]))
            case _:  # a freeze or a jump moves the one price source both venues read
                if fault.spec["kind"] in ("drop_ws", "drop_private_ws"):  # events on the wire now are lost
                    with sim.engine.lock:
                        for order in sim.account().orders.values():
                            if not order.status.is_final:
                                _MAKERS.unheard.add((fault.venue, order.id))
                apply_fault(sim.engine, sim.ws, fault.spec)
        if fault.spec["kind"] == "silence_private" and fault.spec["on"]:
            _SILENT_STREAMS.add(fault.venue)
        elif fault.spec["kind"] in ("silence_private", "clear"):  # `clear` ends a silence too
            _SILENT_STREAMS.discard(fault.venue)
        if fault.kind not in ("unfreeze", "maintenance_end", "unsilence_private"):
            self.summary.injected[fault.kind] += 1

    def _taken(self) -> Counter[str]:
        taken: Counter[str] = Counter()
        for sim in self._sims().values():
            taken.update(sim.engine.faults.taken)
            if sim.ws.drops_taken:
                taken["drop_ws"] += sim.ws.drops_taken
        assert self.runtime.paper is not None
        taken.update(self.runtime.paper.prices.taken)
        if self._maintenance_seen:
            taken["maintenance"] = self._maintenance_seen
        if self._mid_fill:
            taken["silence_mid_fill"] = self._mid_fill
        return taken

    # ---- invariants -------------------------------------------------------------------------------------

    def check(self, final: bool = False) -> None:
        """Every invariant, on the book as it stands (the engine is idle when this runs)."""
        self._check_orders()
        self._check_open_legs_equal()
        self._check_unhedged_deadline()
        self._check_failures()
        if self.execution != "taker":
            self._check_recorded_first()
            self._check_maker_exposure()
            self._check_nothing_rests_untended()
        self._check_positions_when_quiet(final)

    def _check_recorded_first(self) -> None:
        """Every order had its database row when the venue received it (seen by the venue's listener)."""
        if self._unrecorded:
            self.fail(f"{len(self._unrecorded)} order(s) unrecorded when sent, first: {self._unrecorded[0]}")
        self.summary.checks["orders_recorded_before_sent"] += 1

    def _position(self, venue: Venue, symbol: str) -> Decimal:
        sim = self._sims()[venue]
        with sim.engine.lock:
            pos = sim.account().positions.get(symbol)
            return pos.quantity if pos is not None else Decimal(0)

    def _check_maker_exposure(self) -> None:
        """While a maker phase trades a pair, the venues' positions in its market (one pair per market) differ
        by no more than max_unhedged_usd at the phase's price plus one step, unless the pair is NAKED."""
        bound_usd = self.execution_config.max_unhedged_usd
        for phase in list(_MAKERS.phases.values()):
            if self.runtime.repo.get_pair(phase.pair_id).state is PairState.NAKED:
                continue
            net = sum((self._position(leg.venue, leg.symbol) for leg in phase.legs.values()), Decimal(0))
            bound = bound_usd / phase.price + phase.step
            if abs(net) > bound:
                self.fail(
                    f"pair {phase.pair_id} ({phase.purpose.value}, {phase.style.value}) holds {abs(net)} unhedged on "
                    f"the venues, over max_unhedged_usd {bound_usd} at {phase.price} plus a step ({bound:.8f}); "
                    f"phase counts {dict(phase.done)}"
                )
        self.summary.checks["maker_unhedged_within_bound"] += 1

    def _check_nothing_rests_untended(self) -> None:
        """No order of a finished pair rests on a venue, nor any order of ours for long outside a maker phase
        (a phase cancels what it rests before it ends)."""
        repo = self.runtime.repo
        now = self.clock.now()
        tended = {phase.pair_id for phase in _MAKERS.phases.values()}
        resting: set[tuple[Venue, str]] = set()
        for venue, sim in self._sims().items():
            with sim.engine.lock:
                orders = [o for o in sim.account().orders.values() if not o.status.is_final and o.client_id]
            for order in orders:
                row = repo.get_order(venue, order.client_id)
                pair = repo.get_pair(row.pair_id)
                if pair.state in (PairState.CLOSED, PairState.FAILED):
                    self.fail(f"{venue} order {order.client_id} still rests, of pair {pair.id} {pair.state.value}")
                if pair.id in tended:
                    continue
                key = (venue, order.client_id)
                resting.add(key)
                since = self._untended.setdefault(key, now)
                if (now - since).total_seconds() > UNTENDED_S:
                    self.fail(f"{venue} order {order.client_id} of pair {pair.id} ({pair.state.value}) has rested "
                              f"since {since} with no maker phase tending it")  # fmt: skip
        self._untended = {k: v for k, v in self._untended.items() if k in resting}
        self.summary.checks["nothing_rests_untended"] += 1

    def _check_orders(self) -> None:
        """Every venue order has a row (written before sending), no client id twice, and once a row is final
        the venue's fill agrees with it (a lookup done too early books a late order as never placed)."""
        repo = self.runtime.repo
        for venue, sim in self._sims().items():
            with sim.engine.lock:
                orders = list(sim.account().orders.values())
                fresh = orders[self._checked_orders.get(venue, 0) :]
                self._checked_orders[venue] = len(orders)
            for order in fresh:
                if order.client_id is None:
                    continue
                if order.client_id in self._client_ids[venue]:
                    self.fail(f"{venue} received client id {order.client_id} twice")
                self._client_ids[venue].add(order.client_id)
                self._unsettled[venue][order.client_id] = order
            for client_id, order in list(self._unsettled[venue].items()):
                try:
                    row = repo.get_order(venue, client_id)
                except LookupError:
                    self.fail(f"{venue} has order {client_id} with no database row")
                if is_unresolved(row):
                    continue
                del self._unsettled[venue][client_id]
                with sim.engine.lock:
                    filled = order.filled
                if row.filled_quantity != filled:
                    self.fail(
                        f"{venue} order {client_id} filled {filled} on the venue, but the database "
                        f"booked it {row.status} with {row.filled_quantity} filled ({row.error or ''})"
                    )
        self.summary.checks["orders_have_rows"] += 1
        self.summary.checks["final_orders_agree_with_venue"] += 1

    def _held(self, pair_id: int) -> dict[str, Decimal]:
        repo = self.runtime.repo
        return {
            leg.side.value: leg_book(leg.side, repo.orders_for_position(leg.id)).held
            for leg in repo.positions_for_pair(pair_id)
        }

    def _check_open_legs_equal(self) -> None:
        """An OPEN pair holds the same quantity on both legs (what each leg's orders filled)."""
        repo = self.runtime.repo
        for pair in repo.list_pairs([PairState.OPEN]):
            held = self._held(pair.id)
            if len(set(held.values())) != 1 and repo.get_pair(pair.id).state is PairState.OPEN:
                self.fail(f"pair {pair.id} is OPEN with unequal legs: {held}")
        self.summary.checks["open_legs_equal"] += 1

    def _check_unhedged_deadline(self) -> None:
        """NAKED, or CLOSING with one leg flat and the other not: both count against the repair deadline."""
        repo = self.runtime.repo
        now = self.clock.now()
        exposed: set[int] = set()
        for pair in repo.list_pairs([PairState.NAKED, PairState.CLOSING]):
            if pair.state is PairState.CLOSING:
                held = self._held(pair.id)
                if not (0 in held.values() and any(held.values())):
                    continue
            exposed.add(pair.id)
            since = self.unhedged_since.setdefault(pair.id, now)
            if (now - since).total_seconds() > REPAIR_DEADLINE_S:
                self.fail(f"pair {pair.id} has held one leg alone since {since} ({now - since} simulated)")
        self.unhedged_since = {k: v for k, v in self.unhedged_since.items() if k in exposed}
        self.summary.checks["unhedged_within_deadline"] += 1

    def _check_failures(self) -> None:
        """No actor restart, tick failure or unhandled exception, unless the schedule caused it."""
        status = self.runtime.supervisor.status()
        for name, actor in status.items():
            if actor["restarts"] > self.allowed_restarts[name] or actor["given_up"]:
                self.fail(
                    f"actor {name} restarted {actor['restarts']} time(s) (given up: {actor['given_up']}); "
                    f"last error: {actor['last_error']}"
                )
        events = self.runtime.repo.list_events(limit=100)
        if events and min(e.id for e in events) > self._last_event_id + 1:  # more came since: read them all
            events = self.runtime.repo.list_events(limit=1_000_000)
        events = [e for e in events if e.id > self._last_event_id]
        if events:
            self._last_event_id = max(e.id for e in events)
        for event in sorted(events, key=lambda e: e.id):
            if event.kind in FAILURE_EVENTS and self.allowed_restarts[str(event.data.get("actor"))] == 0:
                self.fail(f"{event.kind} event: {event.message}")
        if self._errors.records:
            first = self._errors.records[0]
            self.fail(
                f"{len(self._errors.records)} unhandled exception(s) logged, first: {first.name}: {first.getMessage()}"
            )
        self.summary.checks["no_restart_tick_error_or_exception"] += 1

    def _quiet_expected(self) -> dict[tuple[Venue, str], Decimal] | None:
        repo = self.runtime.repo
        if self.runtime.desk.claims.claimed():
            return None
        expected: dict[tuple[Venue, str], Decimal] = {}
        for pair in repo.list_pairs(ACTIVE_STATES):
            if pair.state is not PairState.OPEN:
                return None
            for leg in repo.positions_for_pair(pair.id):
                orders = repo.orders_for_position(leg.id)
                if any(is_unresolved(o) for o in orders):
                    return None
                key = (leg.venue, leg.symbol)
                expected[key] = expected.get(key, Decimal(0)) + leg.side.sign * leg_book(leg.side, orders).held
        return expected

    def _unquiet(self) -> str:
        """What keeps the book busy: pairs not OPEN, claims, and unresolved orders."""
        repo = self.runtime.repo
        parts = [f"claimed {sorted(self.runtime.desk.claims.claimed())}"]
        for pair in repo.list_pairs(ACTIVE_STATES):
            pending = [f"{o.venue}:{o.client_id}:{o.status}" for o in repo.orders_for_pair(pair.id) if is_unresolved(o)]
            if pair.state is not PairState.OPEN or pending:
                parts.append(f"pair {pair.id} {pair.state.value} unresolved {pending}")
        return "; ".join(parts)

    def _venue_positions(self) -> tuple[dict[tuple[Venue, str], Decimal], int]:
        out: dict[tuple[Venue, str], Decimal] = {}
        version = 0
        for venue, sim in self._sims().items():
            with sim.engine.lock:
                version += sim.engine.version
                for symbol, pos in sim.account().positions.items():
                    if pos.quantity:
                        out[(venue, symbol)] = pos.quantity
        return out, version

    def _check_positions_when_quiet(self, final: bool) -> None:
        before, v1 = self._venue_positions()
        expected = self._quiet_expected()
        after, v2 = self._venue_positions()
        if expected is None or v1 != v2 or before != after or self._quiet_expected() != expected:
            if final:
                stacks = Path(tempfile.gettempdir()) / f"chaos-{self.seed}-threads.txt"
                with stacks.open("w") as fh:  # where whatever holds the book is stuck
                    faulthandler.dump_traceback(file=fh, all_threads=True)
                self.fail(f"the book never became quiet at the end: {self._unquiet()}; thread stacks in {stacks}")
            return
        expected = {k: v for k, v in expected.items() if v}
        if expected != after:
            self.fail(f"database positions {expected} differ from venue positions {after}")
        self.summary.checks["positions_agree_when_quiet"] += 1

    def _check_no_churn(self) -> None:
        """A maker order is not cancelled unfilled and rested again at the same price and quantity in the same
        fake instant, over and over (nothing changed: the cancel was for nothing, and each costs two requests)."""
        repo = self.runtime.repo
        for pair in repo.list_pairs(None):
            churn: Counter[tuple[str, datetime]] = Counter()
            limits = sorted((o for o in repo.orders_for_pair(pair.id) if o.type == "limit"), key=lambda o: o.id)
            for venue in {o.venue for o in limits}:
                own = [o for o in limits if o.venue is venue]
                for a, b in itertools.pairwise(own):
                    same = all(getattr(a, f) == getattr(b, f) for f in ("created_at", "price", "quantity", "purpose"))
                    if same and a.status is OrderState.CANCELLED and not a.filled_quantity:
                        churn[(venue.value, a.created_at)] += 1
            worst = churn.most_common(1)
            if worst and worst[0][1] >= CHURN_LIMIT:
                (venue_name, at), n = worst[0]
                self.fail(f"pair {pair.id}: {n} maker orders on {venue_name} cancelled unfilled and rested again at "
                          f"the same price and quantity at {at} (order churn)")  # fmt: skip
        self.summary.checks["no_maker_order_churn"] += 1

    # ---- the run ----------------------------------------------------------------------------------------

    def run(self) -> Summary:
        """The run, its calls marked (before any actor starts: an actor looks its loop up once)."""
        _SILENT_STREAMS.clear()
        _STREAMS.clear()
        _MAKERS.clear()
        try:
            with (
                self._marks.installed(),
                self._stream_waits_counted(),
                _stream_ticks_for_fake_time(),
                _phases_registered(self.summary.maker),
            ):
                return self._run()
        finally:
            _SILENT_STREAMS.clear()
            _STREAMS.clear()
            _MAKERS.clear()

    @contextmanager
    def _stream_waits_counted(self) -> Iterator[None]:
        """Count each wait on an account stream by its outcome: told in time, or left to REST."""
        marked = AccountStream.wait_for
        waits = self.summary.stream_waits

        @functools.wraps(marked)
        def counted(stream: AccountStream, *args: Any, **kwargs: Any) -> Any:
            view = marked(stream, *args, **kwargs)
            waits[f"{stream.venue} {'told' if view is not None else 'rest'}"] += 1
            return view

        AccountStream.wait_for = counted  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            AccountStream.wait_for = marked  # type: ignore[method-assign]

    def _run(self) -> Summary:
        logging.getLogger().addHandler(self._errors)
        started = time.monotonic()
        loop = threading.Thread(target=self._main_loop, name="chaos-main", daemon=True)
        try:
            self.runtime.start()
            self._install()
            loop.start()
            pending = list(self.summary.schedule)
            next_check = 0.0
            while self._elapsed() < self.fake_seconds:
                if time.monotonic() - started > self.real_cap_s:
                    self.summary.cut_short = True
                    break
                while pending and pending[0].at <= self._elapsed():
                    fault = pending.pop(0)
                    if self.execution != "taker" and fault.spec["kind"] in ("jump", "freeze", "clear"):
                        self._tick_venues(lambda fault=fault: self._apply(fault))  # type: ignore[misc]
                    else:
                        self._apply(fault)
                self._step()
                if self.execution != "taker":  # exposure passes in seconds: looked at every step
                    self._check_maker_exposure()
                if self._elapsed() >= next_check:
                    next_check = self._elapsed() + CHECK_EVERY_S
                    self.check()
            self._settle()
            self._finish(started)
        finally:
            self.stop.set()
            loop.join(30)
            # Fake time keeps moving while the runtime stops: a maker phase cut short cancels its orders, and a
            # lookup's pause or a retry's backoff waits on the clock. Frozen, that actor's (non-daemon) thread
            # would outlive the test and hold the interpreter at exit.
            try:
                with self.clock.ticking():
                    self.runtime.shutdown()
            finally:
                logging.getLogger().removeHandler(self._errors)
                if not os.environ.get("CHAOS_KEEP"):
                    shutil.rmtree(self.dir, ignore_errors=True)
        return self.summary

    def _settle(self) -> None:
        """Stop the faults and let the book come to rest; then the final checks must hold."""
        for sim in self._sims().values():
            apply_fault(sim.engine, sim.ws, {"kind": "clear"})
        _SILENT_STREAMS.clear()
        self._sims()[Venue.HIBACHI].status = "NORMAL"
        # Asked from a thread of its own: the coordinator answers after its current tick, which may wait on
        # fake time, and only the driver moves fake time.
        threading.Thread(
            target=self.runtime.command, args=("pause", {"reason": "chaos run ending"}), name="chaos-pause", daemon=True
        ).start()
        end = self._elapsed() + SETTLE_FAKE_S
        while self._elapsed() < end:
            self._step()
            if self.summary.steps % int(CHECK_EVERY_S / STEP_S) == 0:
                self.check()
                if self._quiet_expected() is not None and self.runtime.gate.paused:
                    break
        self.check(final=True)

    def _finish(self, started: float) -> None:
        s = self.summary
        s.real_seconds = time.monotonic() - started
        s.fake_seconds = self._elapsed()
        s.taken = self._taken()
        status = self.runtime.supervisor.status()
        s.restarts = sum(a["restarts"] for a in status.values())
        counts = self.runtime.repo.count_pairs_by_state()
        s.pairs_by_state = {st.value: n for st, n in counts.items()}
        s.lifecycles = counts.get(PairState.CLOSED, 0) + counts.get(PairState.FAILED, 0)
        s.pairs = sorted(
            (p.id, p.market, p.long_venue.value, p.state.value) for p in self.runtime.repo.list_pairs(None)
        )
        dead = [name for name, a in status.items() if not a["alive"]]
        if dead:
            self.fail(f"actors not alive at the end: {dead}")
        s.checks["actors_alive_at_end"] += 1
        if self.check_churn:
            self._check_no_churn()
        # Nobody trades by hand here: any reported mismatch is a false alarm or a lost position.
        mismatches = [e.message for e in self.runtime.repo.list_events(limit=100000) if e.kind == "position_mismatch"]
        if mismatches:
            self.fail(f"{len(mismatches)} position mismatch(es) reported, first: {mismatches[0]}")
        s.checks["no_position_mismatch"] += 1


def run_chaos(
    seed: int,
    real_seconds: float,
    *,
    kinds: tuple[str, ...] | None = None,
    execution: str = "taker",
    check_churn: bool = False,
) -> Summary:
    """One chaos run of `real_seconds` x FAKE_PER_REAL fake seconds, opens and closes traded in `execution`
    style, faults drawn from `kinds` (KINDS, and MAKER_KINDS with a maker style); raises ChaosFailure (with the
    seed) if an invariant breaks; `check_churn` adds the maker churn check at the end. A run taking over 3x its
    real budget is cut short."""
    if kinds is None:
        kinds = KINDS if execution == "taker" else KINDS + MAKER_KINDS
    return _Chaos(seed, real_seconds * FAKE_PER_REAL, 3 * real_seconds + 30, kinds, execution, check_churn).run()
