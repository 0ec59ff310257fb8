"""Risk limits: the pure rules, their configuration, the book that latches trips, the protocol and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

import supervisor
from actors.gate import TradingGate
from actors.limitbook import LimitBook
from actors.messages import BlockOpening, RecordEvent, SetMeta, WriteBatch
from control.protocol import CommandError, parse_request, request
from control.render import render_status
from core.clock import FakeClock
from core.config import ConfigError, LimitsConfig, load_settings
from core.domain import EventLevel, PairState, Venue
from core.limits import (
    LegExposure,
    Limit,
    Trip,
    check_collateral,
    check_daily_cost,
    check_drawdown,
    check_naked,
    check_open,
    daily_cost,
    opens_in_last_hour,
    pair_to_shed,
    parse_limit,
    total_equity,
    venue_exposure,
)
from storage.queries import Queries
from storage.records import jsonable
from storage.writes import Writes

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
CFG = LimitsConfig(
    max_notional_usd=D(300),
    max_daily_cost_usd=D(20),
    max_drawdown_usd=D(50),
    min_collateral_ratio_close=D("1.2"),
    max_naked_seconds=D(60),
    max_opens_per_hour=3,
)
BP, HB = Venue.BACKPACK, Venue.HIBACHI


def test_limit_names_parse_and_unknown_ones_name_the_known() -> None:
    assert parse_limit("max_drawdown_usd") is Limit.MAX_DRAWDOWN
    with pytest.raises(ValueError, match=r"unknown limit 'max_drawdown'; one of: max_notional_usd, .*max_opens"):
        parse_limit("max_drawdown")


def test_a_trip_is_kept_losslessly() -> None:
    trip = Trip(Limit.MIN_COLLATERAL_RATIO_CLOSE, D("1.123456789012345678"), D("1.2"), "why", NOW, HB, 7)
    assert Trip.from_dict(trip.limit, trip.as_dict()) == trip


def test_an_open_beyond_the_notional_of_either_venue_trips() -> None:
    assert check_open(CFG, NOW, {BP: D(200), HB: D(100)}, D(100), 0, D(0)) is None  # exactly at the cap
    trip = check_open(CFG, NOW, {BP: D(100), HB: D("200.01")}, D(100), 0, D(0))
    assert trip is not None and (trip.limit, trip.venue, trip.figure) == (Limit.MAX_NOTIONAL, HB, D("300.01"))
    assert "hibachi would hold 300.01 there, above limits.max_notional_usd = 300" in trip.reason


def test_an_open_past_the_hourly_count_or_the_days_cost_trips() -> None:
    assert check_open(CFG, NOW, {}, D(100), 2, D(20)) is None
    opens = check_open(CFG, NOW, {}, D(100), 3, D(0))
    assert opens is not None and opens.limit is Limit.MAX_OPENS_PER_HOUR and opens.figure == 3
    cost = check_open(CFG, NOW, {}, D(100), 0, D("20.01"))
    assert cost is not None and cost.limit is Limit.MAX_DAILY_COST
    assert check_daily_cost(CFG, NOW, D(20)) is None


def test_the_days_cost_counts_pairs_finished_in_24_hours_and_live_pairs() -> None:
    booked = [
        (NOW - timedelta(hours=23), D(-5)),  # lost 5
        (NOW - timedelta(hours=25), D(-100)),  # too old
        (NOW - timedelta(hours=1), D(2)),  # gained 2
        (None, D("-0.1")),  # a live pair's fees so far
    ]
    assert daily_cost(booked, NOW) == D("3.1")
    created = [NOW - timedelta(minutes=59), NOW - timedelta(minutes=61), NOW]
    assert opens_in_last_hour(created, NOW) == 2


def test_equity_needs_both_venues_and_drawdown_is_against_the_high_water_mark() -> None:
    assert total_equity({BP: D(100)}, (BP, HB)) is None  # a venue not read: a partial sum would look like a loss
    assert total_equity({BP: D(100), HB: None}, (BP, HB)) is None
    assert total_equity({BP: D(100), HB: D(50)}, (BP, HB)) == D(150)
    assert total_equity({BP: D(100), HB: D(50)}, (BP,)) == D(100)  # only the traded venues count
    assert check_drawdown(CFG, NOW, D(1000), D(950)) is None
    trip = check_drawdown(CFG, NOW, D(1000), D("949.99"))
    assert trip is not None and trip.figure == D("50.01") and "every pair closes" in trip.reason


def test_the_weakest_venue_below_the_bound_trips_and_its_biggest_open_pair_is_shed() -> None:
    assert check_collateral(CFG, NOW, {BP: None, HB: None}) is None  # nothing needs margin
    assert check_collateral(CFG, NOW, {BP: D(3), HB: D("1.2")}) is None
    trip = check_collateral(CFG, NOW, {BP: D("1.1"), HB: D("1.19")})
    assert trip is not None and trip.venue is BP and trip.figure == D("1.1")
    legs = [
        LegExposure(1, PairState.OPEN, BP, D(100)),
        LegExposure(2, PairState.OPEN, BP, D(150)),
        LegExposure(3, PairState.CLOSING, BP, D(500)),  # already closing: nothing to decide
        LegExposure(4, PairState.OPEN, HB, D(900)),  # another venue
        LegExposure(5, PairState.OPEN, BP, D(150)),
    ]
    assert pair_to_shed(BP, legs) == 2  # most held there; the older of two equal ones
    assert pair_to_shed(HB, legs[:3]) is None
    assert venue_exposure(legs, (BP, HB)) == {BP: D(900), HB: D(900)}
    third = Venue("third")
    # Every traded venue is there (0 when empty), and so is a venue a leg is still on.
    assert venue_exposure(legs[3:4], (BP, third)) == {BP: D(0), third: D(0), HB: D(900)}
    trip = check_open(CFG, NOW, venue_exposure([], (BP, third)), D(301), 0, D(0))
    assert trip is not None and trip.venue in (BP, third)


def test_only_pairs_naked_longer_than_the_bound_trip() -> None:
    trips = check_naked(CFG, NOW, {1: NOW - timedelta(seconds=60), 2: NOW - timedelta(seconds=61)})
    assert [(t.pair_id, t.figure) for t in trips] == [(2, D(61))]
    assert "closing it at market now" in trips[0].reason


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"min_collateral_ratio_close": "1.6"}, "limits.min_collateral_ratio_close = 1.6 must be <= trading.min_colla"),
        ({"min_collateral_ratio_close": "1"}, "limits.min_collateral_ratio_close = 1 must be > 1"),
        ({"max_notional_usd": "99"}, "limits.max_notional_usd = 99 must be >= trading.notional_usd = 100"),
        ({"max_opens_per_hour": 0}, "limits.max_opens_per_hour = 0 must be >= 1"),
        ({"max_drawdown_usd": "0"}, "limits.max_drawdown_usd = 0 must be > 0"),
        ({"max_naked_seconds": "-1"}, "limits.max_naked_seconds = -1 must be > 0"),
    ],
)
def test_bad_limits_are_config_errors(limits: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"limits": limits})
    assert any(line.startswith(message) for line in caught.value.lines), caught.value.lines


class _Writer:
    """The writer's part the book uses: SetMeta and RecordEvent, applied to a real database."""

    def __init__(self, repo: Queries) -> None:
        self.writes = Writes(repo.engine, FakeClock())
        self.events: list[RecordEvent] = []

    def __call__(self, message: Any) -> None:
        assert isinstance(message, WriteBatch)
        for item in message.items:
            if isinstance(item, SetMeta):
                self.writes.set_meta(item.key, item.value)
            else:
                assert isinstance(item, RecordEvent)
                self.events.append(item)


def test_the_book_latches_a_trip_once_keeps_it_across_restarts_and_clears_it_by_name(repo: Queries) -> None:
    writer, gate = _Writer(repo), TradingGate()  # the gate as the coordinator keeps it: it applies what it is told
    book = LimitBook(CFG, writer, gate.apply)
    trip = Trip(Limit.MAX_DRAWDOWN, D(60), D(50), "equity fell", NOW)
    assert book.trip(trip) is True
    assert book.trip(Trip(Limit.MAX_DRAWDOWN, D(70), D(50), "fell more", NOW)) is False  # latched: no second write
    assert [(e.level, e.kind, e.message) for e in writer.events] == [
        (EventLevel.CRITICAL, "max_drawdown_usd_tripped", "equity fell")
    ]
    assert "resume --limit max_drawdown_usd" in gate.blocks["limit:max_drawdown_usd"]
    again_gate = TradingGate()
    again = LimitBook(CFG, writer, again_gate.apply)  # a restart: only the database is left
    again.restore(repo)
    assert again.tripped(Limit.MAX_DRAWDOWN) == trip
    assert "resume --limit max_drawdown_usd" in again.blocks()["limit:max_drawdown_usd"]  # the coordinator's to set
    for key, reason in again.blocks().items():
        again_gate.apply(BlockOpening(key, reason))
    assert again.clear(Limit.MAX_NOTIONAL) is None  # not tripped: nothing written
    assert again.clear(Limit.MAX_DRAWDOWN) == trip
    assert again.blocks() == {} and again_gate.blocks == {} and repo.get_meta(Limit.MAX_DRAWDOWN.key) is None
    assert writer.events[-1].kind == "max_drawdown_usd_cleared"


def test_a_trip_whose_write_failed_is_written_on_the_next_breach(repo: Queries) -> None:
    writer = _Writer(repo)
    calls: list[int] = []

    def flaky(message: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("writer restarting")
        writer(message)

    gate = TradingGate()
    book = LimitBook(CFG, flaky, gate.apply)
    trip = Trip(Limit.MAX_DAILY_COST, D(30), D(20), "costly", NOW)
    with pytest.raises(RuntimeError):
        book.trip(trip)
    assert "limit:max_daily_cost_usd" in gate.blocks  # blocked all the same
    assert book.trip(Trip(Limit.MAX_DAILY_COST, D(31), D(20), "costlier", NOW)) is True
    assert Trip.from_dict(Limit.MAX_DAILY_COST, json.loads(repo.get_meta(Limit.MAX_DAILY_COST.key) or "")) == trip
    assert book.trip(trip) is False


def test_clearing_the_drawdown_starts_a_new_high_water_mark(repo: Queries) -> None:
    book = LimitBook(CFG, _Writer(repo), TradingGate().apply)
    assert book.high_water(D(1000)) == D(1000)
    assert book.high_water(D(900)) == D(1000)
    book.trip(Trip(Limit.MAX_DRAWDOWN, D(100), D(50), "fell", NOW))
    book.clear(Limit.MAX_DRAWDOWN)
    assert book.high_water(D(900)) == D(900)  # else the kill switch would trip again at once


def test_the_book_rows_give_each_limit_its_value_figure_and_state(repo: Queries) -> None:
    book = LimitBook(CFG, _Writer(repo), TradingGate().apply)
    book.measured({Limit.MAX_OPENS_PER_HOUR: D(2)})
    book.trip(Trip(Limit.MAX_NAKED_SECONDS, D(61), D(60), "pair 3 naked", NOW, pair_id=3))
    rows = {r["name"]: r for r in book.rows()}
    assert list(rows) == [limit.value for limit in Limit]
    assert rows["max_opens_per_hour"] == {
        "name": "max_opens_per_hour", "limit": D(3), "figure": D(2), "tripped": False, "reason": None, "since": None,
    }  # fmt: skip
    assert rows["max_naked_seconds"]["tripped"] and rows["max_naked_seconds"]["reason"] == "pair 3 naked"
    status = {
        "mode": "paper", "uptime_s": 1, "trading": {"mode": "normal", "blocks": {}}, "actors": {}, "pairs": {},
        "open_pairs": [], "alerts": [], "limits": list(rows.values()),
    }  # fmt: skip
    text = render_status(jsonable(status))  # as the reply reaches the CLI
    line = next(x for x in text.splitlines() if x.startswith("max_naked_seconds"))
    assert "60" in line and "TRIPPED 2026-03-01 12:00:00: pair 3 naked" in line
    assert next(x for x in text.splitlines() if x.startswith("max_opens_per_hour")).split()[1:] == ["3", "2", "ok"]


def test_resume_takes_a_known_limit_name_only() -> None:
    assert parse_request(request("resume", {"limit": "max_naked_seconds"})) == (
        "resume",
        {"limit": "max_naked_seconds"},
    )
    assert parse_request(request("resume")) == ("resume", {})
    with pytest.raises(CommandError) as caught:
        parse_request(request("resume", {"limit": "max_loss"}))
    assert caught.value.code == "unknown_limit" and "max_drawdown_usd" in caught.value.message
    with pytest.raises(CommandError) as caught:
        parse_request(request("resume", {"limit": 3}))
    assert caught.value.code == "bad_request"


def test_the_cli_sends_resume_limit(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    def call(_address: str, command: str, args: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        sent.append((command, args))
        return {"ok": True, "data": {"limit": args.get("limit"), "cleared": True, "still_tripped": []}}

    monkeypatch.setattr("control.client.call", call)
    assert supervisor.main(["resume", "--limit", "max_drawdown_usd"]) == 0
    assert supervisor.main(["resume"]) == 0
    assert sent == [("resume", {"limit": "max_drawdown_usd"}), ("resume", {})]
    with pytest.raises(SystemExit) as caught:
        supervisor.main(["resume", "--limit", "nope"])
    assert caught.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_the_high_water_mark_survives_a_restart(repo: Queries) -> None:
    # A slow bleed across restarts (each crash restarts the process) must still reach the drawdown bound.
    book = LimitBook(CFG, _Writer(repo), TradingGate().apply)
    assert book.high_water(D(1000)) == D(1000)
    assert book.high_water(D(980)) == D(1000)
    again = LimitBook(CFG, _Writer(repo), TradingGate().apply)
    again.restore(repo)
    assert again.high_water(D(960)) == D(1000)  # measured against the old mark, not a new one at 960
    again.trip(Trip(Limit.MAX_DRAWDOWN, D(100), D(50), "fell", NOW))
    again.clear(Limit.MAX_DRAWDOWN)
    third = LimitBook(CFG, _Writer(repo), TradingGate().apply)
    third.restore(repo)
    assert third.high_water(D(900)) == D(900)  # cleared: a new mark, in the database too
