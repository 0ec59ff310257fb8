"""The Monitor on its own: a real actor, the real writer on a temporary database, scripted venue actors, and
recorders in place of the closer and the coordinator. It reports what it saw; it moves no pair."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.gate import TradingGate
from actors.limitbook import LimitBook
from actors.messages import (
    BlockOpening,
    LegVanished,
    ReconcilePositions,
    ReconcileReport,
    Tick,
    UnblockOpening,
    UnknownPosition,
    WriteBatch,
)
from actors.monitor import Monitor
from actors.position_watch import MISMATCH_TICKS
from core.domain import EventLevel, PairState, Side
from tests.actors.test_closer_rig import BP, QTY, SYMBOLS, Rig, Seen, ask, rig
from tests.helpers import wait_until


class Monitored:
    """The rig with a Monitor started on it and recorders serving the closer and the coordinator."""

    def __init__(self, made: Rig) -> None:
        self.rig = made
        self.closer = made.recorder("closer")
        self.coordinator = made.recorder("coordinator")
        limits = LimitBook(made.settings.limits, TradingGate(), made.desk.write)
        self.ref = made.add("monitor", Monitor.start("monitor", 1, made.clock, None, desk=made.desk, limits=limits))

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            ask(self.ref, Tick(self.rig.clock.now()))

    def told(self, name: str) -> list[Any]:
        seen: list[Any] = ask(self.closer if name == "closer" else self.coordinator, Seen())
        return seen


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[Monitored]:
    for made in rig(tmp_path):
        yield Monitored(made)


def _set(made: Rig, symbol: str, quantity: Decimal) -> None:
    with made.books[BP].lock:
        made.books[BP].positions[symbol] = quantity


def test_agreeing_venues_raise_nothing_and_tell_nobody(monitor: Monitored) -> None:
    made = monitor.rig
    pair_id = made.open_pair()
    monitor.tick(3)
    assert monitor.told("closer") == [] and monitor.told("coordinator") == []
    assert "position_mismatch" not in made.kinds()
    assert made.repo.list_snapshots(pair_id)  # the readings themselves are recorded


def test_a_vanished_leg_is_reported_to_the_closer_only_once_readings_agree(monitor: Monitored) -> None:
    made = monitor.rig
    pair_id = made.open_pair()
    monitor.tick()
    _set(made, SYMBOLS[BP], Decimal(0))  # liquidated, or closed by hand
    monitor.tick(MISMATCH_TICKS - 1)
    assert monitor.told("closer") == []  # one reading could be an order filling in between
    monitor.tick()
    assert monitor.told("closer") == [LegVanished(BP, SYMBOLS[BP], Decimal(0), QTY, (pair_id,))]
    mismatch = made.repo.list_events(limit=10)[0]
    assert mismatch.kind == "position_mismatch" and mismatch.level is EventLevel.CRITICAL
    assert "backpack BTC_USDC_PERP: the venue holds 0, the pairs hold 0.01" in mismatch.message
    assert made.state(pair_id) is PairState.OPEN  # the monitor moves no pair: the closer decides
    assert monitor.told("coordinator") == []  # a leg of ours, not an unknown position: opening is not held here


def test_an_unknown_position_blocks_opening_and_is_reported_while_it_lasts(monitor: Monitored) -> None:
    made = monitor.rig
    key = "position:backpack:SOL_USDC_PERP"
    report = UnknownPosition(BP, "SOL_USDC_PERP", Decimal(-3), Decimal(100))
    _set(made, "SOL_USDC_PERP", Decimal(-3))
    monitor.tick(MISMATCH_TICKS - 1)
    assert monitor.told("closer") == [] and monitor.told("coordinator") == []
    monitor.tick()
    assert monitor.told("closer") == [report]
    blocks = monitor.told("coordinator")
    assert [type(b) for b in blocks] == [BlockOpening] and blocks[0].key == key
    assert "(reconcile.unknown_positions = alert)" in blocks[0].reason
    monitor.tick(2)
    assert monitor.told("closer") == [report] * 3  # the closer reads the venue again before adopting anything
    assert [type(b) for b in monitor.told("coordinator")] == [BlockOpening] * 3  # held while it lasts
    assert made.kinds().count("position_mismatch") == 1  # one alert for the episode
    _set(made, "SOL_USDC_PERP", Decimal(0))  # closed by hand
    monitor.tick()
    assert monitor.told("coordinator")[-1] == UnblockOpening(key)
    assert made.kinds()[-1] == "position_mismatch_cleared"
    monitor.tick()
    assert len(monitor.told("coordinator")) == 4 and len(monitor.told("closer")) == 3  # lifted once, then quiet


def test_a_pair_mid_trade_is_not_judged(monitor: Monitored) -> None:
    made = monitor.rig
    made.send(made.begin(), Side.LONG)  # an OPENING pair with one leg filled, the other not sent yet
    monitor.tick(MISMATCH_TICKS + 1)
    assert monitor.told("closer") == [] and monitor.told("coordinator") == []


def test_the_start_up_reading_reports_at_once(monitor: Monitored) -> None:
    made = monitor.rig
    _set(made, "SOL_USDC_PERP", Decimal(2))
    report = ask(monitor.ref, ReconcilePositions())
    assert isinstance(report, ReconcileReport) and report.complete
    assert report.decisions == ("backpack SOL_USDC_PERP: the venue holds 2, the pairs hold 0",)
    assert monitor.told("closer") == [UnknownPosition(BP, "SOL_USDC_PERP", Decimal(2), Decimal(100))]


def test_the_start_up_reading_is_incomplete_while_a_venue_cannot_be_read(monitor: Monitored) -> None:
    made = monitor.rig
    made.venue(BP).stop()
    report = ask(monitor.ref, ReconcilePositions())
    assert report == ReconcileReport(False, ())


def test_a_dead_closer_hears_the_unknown_position_on_the_next_reading(monitor: Monitored) -> None:
    made = monitor.rig
    monitor.closer.stop()
    _set(made, "SOL_USDC_PERP", Decimal(-3))
    monitor.tick(MISMATCH_TICKS)
    replacement: pykka.ActorRef[Any] = made.recorder("closer")
    monitor.closer = replacement
    monitor.tick()
    assert monitor.told("closer") == [UnknownPosition(BP, "SOL_USDC_PERP", Decimal(-3), Decimal(100))]


def test_a_tick_reads_each_symbols_mark_once_for_every_pair_on_it(monitor: Monitored) -> None:
    """Marks are read once per (venue, symbol) a tick: 1,000 pairs on one market asked 2,000 quotes a tick."""
    made = monitor.rig
    first, second = made.open_pair(), made.open_pair()
    with made.books[BP].lock:
        made.books[BP].quotes.clear()
    monitor.tick()
    with made.books[BP].lock:
        assert made.books[BP].quotes == [SYMBOLS[BP]]
    # Both pairs' readings came from it (their snapshots go to the writer after the tick, told, not asked).
    wait_until(lambda: bool(made.repo.list_snapshots(first) and made.repo.list_snapshots(second)), 10, "snapshots")


def test_a_tick_writes_the_figures_of_at_most_snapshot_pairs_per_tick_those_written_longest_ago(
    tmp_path: Path,
) -> None:
    for made in rig(tmp_path, {"monitor": {"snapshot_pairs_per_tick": 1}}):
        _one_snapshot_per_tick(Monitored(made))


def _one_snapshot_per_tick(monitor: Monitored) -> None:
    made = monitor.rig
    first, second = made.open_pair(), made.open_pair()

    def snapshots() -> tuple[int, int]:
        ask(made.directory.get("writer"), WriteBatch(()))  # the tick's batch, told before, is in
        return len(made.repo.list_snapshots(first)), len(made.repo.list_snapshots(second))

    monitor.tick()
    assert snapshots() == (0, 1)  # the newest pair first
    monitor.tick()
    assert snapshots() == (1, 1)
    monitor.tick()
    assert snapshots() == (1, 2)
