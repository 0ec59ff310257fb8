"""The Closer's retry schedule runs on monotonic time: a wall-clock step neither stalls nor floods retries."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any, cast

from actors.closer import Closer
from actors.desk import Desk
from actors.messages import OrderRejected, Tick
from core.clock import FakeClock
from core.config import PointsConfig, UnknownPositions
from core.domain import PairState, Side, Venue

START = datetime(2026, 3, 1, tzinfo=UTC)


class _Repo:
    def __init__(self, pair: Any) -> None:
        self.pair = pair

    def list_active_pairs(self) -> list[Any]:
        return [self.pair]


def _closer(clock: FakeClock) -> tuple[Closer, list[int]]:
    pair = SimpleNamespace(id=7, state=PairState.CLOSING, expires_at=None, updated_at=START)
    engine = SimpleNamespace(leg_retry_min_s=D(2), leg_retry_max_s=D(120))
    desk = SimpleNamespace(
        repo=_Repo(pair),
        claims=SimpleNamespace(claimed=lambda: set()),
        settings=SimpleNamespace(
            timings=engine,
            points=PointsConfig(per_usd={Venue.BACKPACK: D(1), Venue.HIBACHI: D(1)}),
            reconcile=SimpleNamespace(unknown_positions=UnknownPositions.ALERT),
        ),
        event=lambda *args, **kw: None,
    )
    closer = Closer("closer", 0, clock, None, desk=cast(Desk, desk))
    worked: list[int] = []
    closer._work = lambda pair: worked.append(pair.id)  # type: ignore[method-assign]
    rejected = OrderRejected(Venue.HIBACHI, "c1", "4", "refused")
    closer._failed_attempt(cast(Any, pair), {Side.SHORT: D("0.01")}, [rejected])  # first retry due in 2 s
    return closer, worked


def test_a_wall_step_forward_does_not_make_a_retry_due() -> None:
    clock = FakeClock(START)
    closer, worked = _closer(clock)
    clock.step_wall(3600)
    closer.handle(Tick(clock.now()))
    assert worked == []  # an hour of wall time passed in no time at all: the backoff has not
    clock.advance(1.9)
    closer.handle(Tick(clock.now()))
    assert worked == []
    clock.advance(0.1)
    closer.handle(Tick(clock.now()))
    assert worked == [7]


def test_a_wall_step_back_does_not_stall_a_retry() -> None:
    clock = FakeClock(START)
    closer, worked = _closer(clock)
    clock.step_wall(-3600)
    clock.advance(2)
    closer.handle(Tick(clock.now()))
    assert worked == [7]  # due after 2 s of monotonic time, however far the wall clock went back


def _orphan_closer(clock: FakeClock, updated_at: datetime) -> tuple[Closer, list[int]]:
    closer, _ = _closer(clock)
    closer._retries.clear()
    pair = SimpleNamespace(id=8, state=PairState.OPENING, expires_at=None, updated_at=updated_at)
    closer.desk.repo.pair = pair  # type: ignore[attr-defined]
    recovered: list[int] = []
    closer.recovery.recover = lambda pair: recovered.append(pair.id)  # type: ignore[method-assign]
    return closer, recovered


def test_a_wall_step_forward_does_not_make_a_half_open_pair_an_orphan() -> None:
    clock = FakeClock(START)
    closer, recovered = _orphan_closer(clock, START)  # its opener let go of it just now
    closer.handle(Tick(clock.now()))
    clock.step_wall(3600)  # the stored update now looks an hour old: a request of its opener may still land
    closer.handle(Tick(clock.now()))
    assert recovered == []
    clock.advance(119)
    closer.handle(Tick(clock.now()))
    assert recovered == []
    clock.advance(1)
    closer.handle(Tick(clock.now()))
    assert recovered == [8]


def test_a_wall_step_back_does_not_stall_an_orphan() -> None:
    clock = FakeClock(START)
    closer, recovered = _orphan_closer(clock, START)
    closer.handle(Tick(clock.now()))
    clock.step_wall(-3600)
    clock.advance(120)
    closer.handle(Tick(clock.now()))
    assert recovered == [8]  # 120 s of monotonic time watched, however the wall clock moved
