"""A lost reply's lookup (exchanges/ambiguity.py): how long it waits and what each outcome carries, so a
caller (and an operator reading the log) can tell known-dead from unknown."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from core.domain import Side
from exchanges.ambiguity import resolve_lost_reply
from exchanges.base import OrderRequest, OrderResult, OrderStatus
from exchanges.errors import OrderNotFound, OrderOutcomeUnknown, VenueError, VenueUnavailable
from tests.helpers import SleeplessClock

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
CLIENT_ID = "pfabcdefg-7-L-open-0"
SYMBOL = "BTC_USDC_PERP"
CAUSE = VenueUnavailable("backpack", "ReadTimeout", code="E42")


def _request(created_at: datetime | None = START) -> OrderRequest:
    return OrderRequest(CLIENT_ID, SYMBOL, Side.LONG, D("0.01"), created_at=created_at)


def _found(created_at: datetime | None = START) -> OrderResult:
    return OrderResult("11", CLIENT_ID, SYMBOL, Side.LONG, OrderStatus.FILLED, D("0.01"), D("0.01"), D("65000"),
                       created_at=created_at)  # fmt: skip


def _lookup_raising(exc: VenueError) -> Callable[[str, str], OrderResult]:
    def lookup(_symbol: str, _client_id: str) -> OrderResult:
        raise exc

    return lookup


def test_it_waits_just_past_the_expiry_then_looks_up_by_our_client_id() -> None:
    clock, asked = SleeplessClock(START), []

    def lookup(symbol: str, client_id: str) -> OrderResult:
        asked.append((symbol, client_id, list(clock.slept)))
        return _found()

    assert resolve_lost_reply("backpack", _request(), CAUSE, 2.5, clock, lookup) == _found()
    assert len(clock.slept) == 1
    assert 2.5 < clock.slept[0] < 3.0  # past the venue's window, not a second more
    assert asked == [(SYMBOL, CLIENT_ID, clock.slept)]  # the lookup comes after the wait


@pytest.mark.parametrize("wait_s", [0, -1.0])
def test_an_already_expired_request_is_looked_up_at_once(wait_s: float) -> None:
    clock = SleeplessClock(START)
    resolve_lost_reply("backpack", _request(), CAUSE, wait_s, clock, lambda _s, _c: _found())
    assert clock.slept == []


def test_an_order_the_venue_does_not_know_was_not_placed() -> None:
    with pytest.raises(VenueUnavailable) as info:
        resolve_lost_reply(
            "backpack", _request(), CAUSE, 0, SleeplessClock(START), _lookup_raising(OrderNotFound("backpack", "nf"))
        )
    exc = info.value
    assert type(exc) is VenueUnavailable  # known dead, not OrderOutcomeUnknown
    assert exc.venue == "backpack"
    assert exc.code == "E42"  # the original failure's code
    assert exc.venue_message == f"order {CLIENT_ID} was not placed (ReadTimeout)"
    assert exc.__cause__ is CAUSE


def test_a_failed_lookup_leaves_the_outcome_unknown_with_the_client_id() -> None:
    lookup_error = VenueUnavailable("backpack", "502 Bad Gateway")
    with pytest.raises(OrderOutcomeUnknown) as info:
        resolve_lost_reply("backpack", _request(), CAUSE, 0, SleeplessClock(START), _lookup_raising(lookup_error))
    exc = info.value
    assert exc.venue == "backpack"
    assert exc.client_id == CLIENT_ID
    assert CLIENT_ID in exc.venue_message
    assert "outcome unknown" in exc.venue_message
    assert "ReadTimeout" in exc.venue_message
    assert "502 Bad Gateway" in exc.venue_message
    assert exc.__cause__ is lookup_error


def test_an_older_order_under_our_id_is_not_ours_and_keeps_the_venue_and_code() -> None:
    with pytest.raises(VenueUnavailable) as info:
        resolve_lost_reply(
            "backpack", _request(), CAUSE, 0, SleeplessClock(START), lambda _s, _c: _found(START - timedelta(days=7))
        )
    exc = info.value
    assert type(exc) is VenueUnavailable
    assert exc.venue == "backpack"
    assert exc.code == "E42"
    assert exc.venue_message.startswith(f"order {CLIENT_ID} was not placed (ReadTimeout)")
    assert "not ours" in exc.venue_message
    assert exc.__cause__ is CAUSE


def test_an_order_found_is_logged_with_venue_client_id_cause_and_status(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="exchanges.ambiguity"):
        resolve_lost_reply("backpack", _request(), CAUSE, 0, SleeplessClock(START), lambda _s, _c: _found())
    [record] = [r for r in caplog.records if r.name == "exchanges.ambiguity"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"backpack order {CLIENT_ID}: reply lost ({CAUSE}), found by lookup: filled"
    assert record.venue == "backpack"  # type: ignore[attr-defined]  # the structured field log sinks filter on
