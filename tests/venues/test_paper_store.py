"""Paper venues keep their books on disk: saved before each reply, restored on the next start."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

from core.clock import SystemClock
from core.domain import Side
from exchanges.backpack.client import BackpackClient
from exchanges.base import OrderRequest, OrderStatus
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.signing import make_signer
from exchanges.paper import STATE_FILE, PaperVenues


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
