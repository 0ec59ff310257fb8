"""The review's scenario: the database is lost while the venues keep their history, and a new database's
first open loses a reply. Its lookup must never take the lost database's order (same pair id, same leg,
same purpose, same attempt) for its own, book that order's fill and leave the other leg naked."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from actors.runtime import Runtime
from actors.trader import NOT_OURS
from core.config import load_settings
from core.domain import PairState, Venue
from exchanges.sim.http import NeverAnswerError, Request, Response
from tests.helpers import wait_until
from tests.system.conftest import FAST, Running, _merge

BTC_ONLY = [{"name": "BTC", "backpack_symbol": "BTC_USDC_PERP", "hibachi_symbol": "BTC/USDT-P"}]
# A lost reply is noticed after the read timeout and looked up once the request has expired: short here.
QUICK = {
    "trading": {"markets": BTC_ONLY},
    "timings": {"venue_timeout_s": 1},
    "hibachi": {"nonce_window_s": 1},
    "backpack": {"window_ms": 1000},
}
WEEK = timedelta(days=7)
SETTLED = (PairState.OPEN, PairState.FAILED, PairState.NAKED, PairState.CLOSING, PairState.CLOSED)


def _start(data_dir: Path, database: str, setup: Callable[[Runtime], None] | None = None) -> Running:
    overrides = {"data_dir": str(data_dir), "database": {"url": f"sqlite:///{data_dir / database}"}}
    settings = load_settings(None, _merge(_merge(FAST, overrides), QUICK))
    runtime = Runtime(settings, rng=random.Random(1)).start()
    try:
        if setup is not None:
            setup(runtime)
        return Running(runtime).go()
    except BaseException:
        runtime.shutdown()
        raise


def _stop(run: Running) -> None:
    run.halt()
    run.runtime.shutdown()


def _positions(runtime: Runtime) -> dict[Venue, D]:
    sims = {Venue.BACKPACK: runtime.paper.backpack, Venue.HIBACHI: runtime.paper.hibachi}  # type: ignore[union-attr]
    return {v: sum((p.quantity for p in s.account().positions.values()), D(0)) for v, s in sims.items()}


def _last_week(runtime: Runtime, lost: list[Response]) -> None:
    """The venues' history is a week old; the new database's first Hibachi order loses its reply."""
    paper = runtime.paper
    assert paper is not None
    for sim in (paper.backpack, paper.hibachi):
        with sim.engine.lock:
            for account in sim.engine.accounts.values():
                for order in account.orders.values():
                    order.created_at -= WEEK
                account.fills = [dataclasses.replace(f, ts=f.ts - WEEK) for f in account.fills]
    route = ("POST", "/trade/order")
    place = paper.hibachi.http._routes[route]

    def lose_the_first_reply(request: Request) -> Response:
        response = place(request)  # the venue does its work (places, or refuses a reused id) ...
        if not lost:
            lost.append(response)
            raise NeverAnswerError  # ... and its reply never arrives
        return response

    paper.hibachi.http._routes[route] = lose_the_first_reply


@pytest.mark.parametrize("same_namespace", [False, True], ids=["fresh-namespace", "namespace-collision"])
def test_a_new_database_never_books_an_order_of_the_lost_one(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch, same_namespace: bool
) -> None:
    if same_namespace:  # the odds the namespace leaves (core/ids.py): then the age rule alone must hold
        monkeypatch.setattr("storage.db.new_namespace", lambda: "samedb0")
    first = _start(short_dir, "lost.db")
    try:
        first.wait_pair(PairState.CLOSED, timeout_s=30, what="a pair opened and closed by the lost database")
        first.runtime.command("pause", {})
        wait_until(lambda: not first.repo.list_active_pairs(), 30, "the lost database's pairs all closed")
        old = [o for p in first.pairs() for o in first.repo.orders_for_pair(p.id)]
    finally:
        _stop(first)
    assert _positions(first.runtime) == {Venue.BACKPACK: 0, Venue.HIBACHI: 0}
    old_orders = {(o.venue, o.venue_order_id) for o in old if o.venue_order_id}

    lost: list[Response] = []
    second = _start(short_dir, "new.db", lambda runtime: _last_week(runtime, lost))
    try:
        pair = second.wait_pair(*SETTLED, timeout_s=30, what="the new database's first pair settled")
        assert pair.id == 1  # the new database restarted its pair ids: the same keys as the lost one's
        assert lost, "the first Hibachi order's reply was not lost"
        orders = second.repo.orders_for_pair(pair.id)
        assert not {(o.venue, o.venue_order_id) for o in orders} & old_orders, "booked the lost database's order"
        wait_until(lambda: not second.repo.list_pairs([PairState.OPENING, PairState.ROLLING_BACK]), 30, "settled")
        pair = second.repo.get_pair(pair.id)
        held = _positions(second.runtime)
        assert held[Venue.BACKPACK] == -held[Venue.HIBACHI], f"venues not hedged: {held}"
        assert "pair_naked" not in second.kinds()
        hibachi = next(o for o in orders if o.venue is Venue.HIBACHI)
        if same_namespace:  # the reused id was refused; the lookup found last week's order: not ours
            assert hibachi.client_id in {o.client_id for o in old}
            assert pair.state is PairState.FAILED
            # The client's lost-reply lookup, by the nonce it signed, finds nothing ("was not placed"); by client
            # id it would find last week's order and disown it ("not ours") before the desk's own check would.
            error = (hibachi.error or "").replace(NOT_OURS, "not ours")
            assert hibachi.status == "rejected" and ("not ours" in error or "was not placed" in error)
        else:  # a fresh namespace: ids the venues never saw, so the lost reply's lookup found our own order
            assert not {(o.venue, o.client_id) for o in orders} & {(o.venue, o.client_id) for o in old}
            assert pair.state in (PairState.OPEN, PairState.CLOSING, PairState.CLOSED)
            assert hibachi.status == "filled"
    finally:
        _stop(second)
