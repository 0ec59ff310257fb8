"""Paper venues keep their books on disk: saved before each reply, restored on the next start."""

from __future__ import annotations

import json
import threading
from decimal import Decimal as D
from pathlib import Path

from core.clock import SystemClock
from core.domain import Side
from exchanges.backpack.client import BackpackClient
from exchanges.base import OrderRequest, OrderStatus
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.signing import make_signer
from exchanges.paper import STATE_FILE, PaperVenues
from exchanges.sim.store import SimStore
from tests.helpers import wait_until


def _clients(venues: PaperVenues) -> tuple[BackpackClient, HibachiClient]:
    bp, hb = venues.backpack, venues.hibachi
    signer = make_signer("hmac", hmac_secret=hb.paper.hmac_secret)
    return (
        BackpackClient(bp.rest_url, bp.api_key, bp.api_secret),
        HibachiClient(hb.api_url, hb.data_api_url, hb.paper.api_key, hb.paper.account_id, signer),
    )


def test_books_survive_a_restart(tmp_path: Path) -> None:
    venues = PaperVenues.start(SystemClock(), seed=3, state_dir=tmp_path)
    bp, hb = _clients(venues)
    bp.set_leverage("BTC_USDC_PERP", D(3))
    hb.set_leverage("BTC/USDT-P", D(2))
    long = bp.place_order(OrderRequest("11", "BTC_USDC_PERP", Side.LONG, D("0.01")))
    short = hb.place_order(OrderRequest("pf-1-S-open-0", "BTC/USDT-P", Side.SHORT, D("0.01")))
    assert long.status is OrderStatus.FILLED and short.status is OrderStatus.FILLED
    # Already on disk when the replies came back: a kill -9 now would lose nothing.
    saved = json.loads((tmp_path / STATE_FILE).read_text())
    assert [o["client_id"] for o in saved["backpack"]["accounts"]["paper"]["orders"]] == ["11"]
    assert [o["client_id"] for o in saved["hibachi"]["accounts"]["paper"]["orders"]] == ["pf-1-S-open-0"]
    equity = (bp.account().equity, hb.account().equity)
    venues.stop()

    again = PaperVenues.start(SystemClock(), seed=3, state_dir=tmp_path)
    try:
        bp, hb = _clients(again)
        assert [(p.side, p.quantity) for p in bp.positions()] == [(Side.LONG, D("0.01"))]
        assert [(p.side, p.quantity) for p in hb.positions()] == [(Side.SHORT, D("0.01"))]
        assert bp.leverage_limit() == D(3)
        assert again.hibachi.account().market_imr == {"BTC/USDT-P": D("0.5")}
        assert bp.get_order("BTC_USDC_PERP", "11").venue_order_id == long.venue_order_id
        assert hb.get_order("BTC/USDT-P", "pf-1-S-open-0") == short
        collateral = (again.backpack.account().collateral, again.hibachi.account().collateral)
        assert collateral[0] < D(10000) and collateral[1] < D(10000)  # the fees paid are remembered
        assert abs(bp.account().equity - equity[0]) < D(50)  # prices resume near where they were
        later = bp.place_order(OrderRequest("12", "BTC_USDC_PERP", Side.SHORT, D("0.01"), reduce_only=True))
        assert int(later.venue_order_id) > int(long.venue_order_id)  # ids continue, never reused
        assert bp.positions() == []
    finally:
        again.stop()


class _HeldStore(SimStore):
    """A SimStore whose next save, once `hold` is set, waits for `release`; it notes each save's Backpack
    version and which thread made it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.hold, self.holding, self.release = threading.Event(), threading.Event(), threading.Event()
        self.saves: list[tuple[int, str]] = []

    def save_parts(self, parts: dict[str, str]) -> None:
        if self.hold.is_set() and threading.current_thread().name != "paper-store":
            self.hold.clear()
            self.holding.set()
            assert self.release.wait(30)
        super().save_parts(parts)
        self.saves.append((json.loads(parts["backpack"])["version"], threading.current_thread().name))


def test_requests_waiting_for_a_save_are_answered_after_one_that_holds_their_change(tmp_path: Path) -> None:
    venues = PaperVenues.start(SystemClock(), seed=3, state_dir=tmp_path)
    store = _HeldStore(tmp_path / STATE_FILE)
    venues.store = store
    engine = venues.backpack.engine
    saved_when_answered: dict[str, tuple[int, int]] = {}  # request -> (its change's version, newest saved)

    def request(name: str) -> None:  # what a simulator's request thread does: change, then save before replying
        engine.touch()
        version = engine.version
        venues.save_if_changed()
        saved_when_answered[name] = (version, max(v for v, _ in store.saves))

    base = engine.version
    try:
        store.hold.set()
        first = threading.Thread(target=request, args=("first",), name="first")
        first.start()
        assert store.holding.wait(10)  # the first request's save is under way, its state read
        waiting = [threading.Thread(target=request, args=(f"r{i}",), name=f"r{i}") for i in range(8)]
        for thread in waiting:
            thread.start()
        wait_until(lambda: engine.version >= base + 9, what="every request's change")
        assert not saved_when_answered  # no reply leaves while the save its change needs has not finished
        store.release.set()
        for thread in [first, *waiting]:
            thread.join(10)
    finally:
        venues.stop()
    assert len(saved_when_answered) == 9
    assert all(newest >= version for version, newest in saved_when_answered.values())
    # The eight that came during the first save share what follows it: the first's, one more (two if one of
    # them was still on its way in when it started) and the stop's own, where saving after each took ten.
    assert len([name for _, name in store.saves if name != "paper-store"]) <= 4
