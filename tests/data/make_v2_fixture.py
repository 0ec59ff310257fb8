"""Makes tests/data/v2.sql: a database written by perp-farmer at schema_version 2 (Alembic revision 0002, the last
before accounts), with rows in every table, dumped as SQL text so that a change to it shows in a diff.

It was run once, at the commit that added it (whose storage/schema.py is still at SCHEMA_VERSION 2):
    git checkout <that commit> && python tests/data/make_v2_fixture.py
Run with later code it would write a later schema, which is not what v2.sql stands for: leave v2.sql as it is,
and make a new fixture (under a new name) for a later revision.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import insert, update

from core.clock import FakeClock
from storage.db import open_database
from storage.schema import (
    CLIENT_ID_NAMESPACE_KEY,
    SCHEMA_VERSION,
    events,
    fills,
    hedge_pairs,
    meta,
    orders,
    positions,
    snapshots,
)

HERE = Path(__file__).resolve().parent
T0 = datetime(2026, 12, 10, 14, 5, 0, 654321, tzinfo=UTC)
NAMESPACE = "m7q2z9w"  # a fixed namespace, so the dump is the same each time the script runs


def _t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _pair(pid: int, state: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": pid, "market": "ETH", "long_venue": "hibachi", "short_venue": "backpack", "leverage": D("2"),
        "notional": D("750.50"), "quantity": D("0.3127"), "duration_s": 1800, "state": state,
        "created_at": _t(pid), "updated_at": _t(pid + 30), "opened_at": None, "expires_at": None,
        "closed_at": None, "close_reason": None, "realized_pnl": None, "fees": None, "funding": None,
        "volume": None, "points": None,
    }  # fmt: skip
    row.update(extra)
    return row


def _fill_database(url: str) -> None:
    assert SCHEMA_VERSION == 2, "run at a commit whose schema is version 2"
    engine = open_database(url, FakeClock(T0))
    with engine.begin() as conn:
        conn.execute(update(meta).where(meta.c.key == CLIENT_ID_NAMESPACE_KEY).values(value=NAMESPACE))
        conn.execute(insert(meta), [
            {"key": "trading.pause", "value": '{"reason": "maintenance", "by": "operator"}'},
            {"key": "limits.max_drawdown_usd", "value": '{"figure": "-51.2", "bound": "50"}'},
            {"key": "limits.high_water", "value": '{"equity": "10250.75"}'},
            {"key": "engine.heartbeat", "value": "2026-12-10T14:06:00.654321+00:00"},
        ])  # fmt: skip
        conn.execute(insert(hedge_pairs), [
            _pair(1, "planned"),
            _pair(2, "opening"),
            _pair(3, "open", opened_at=_t(10), expires_at=_t(1810)),
            _pair(4, "closing", market="BTC", opened_at=_t(11), expires_at=_t(1811)),
            _pair(5, "closed", opened_at=_t(12), expires_at=_t(1812), closed_at=_t(1900),
                  close_reason="duration elapsed", realized_pnl=D("0.000000000000000001"), fees=D("0.61"),
                  funding=D("-0.25"), volume=D("1501.987654321"), points=D("98765432109876543210.25")),
            _pair(6, "failed", close_reason="long leg rejected: 'min size' \"0.5\""),
            _pair(7, "naked", market="SOL", quantity=D("12.5")),
            _pair(8, "rolling_back"),
        ])  # fmt: skip
        conn.execute(insert(positions), [
            {"id": 1, "pair_id": 3, "venue": "hibachi", "symbol": "ETH/USDT-P", "side": "long",
             "quantity": D("0.3127"), "entry_price": D("2401.5"), "mark_price": D("2402"), "exit_price": None,
             "unrealized_pnl": D("0.15635"), "realized_pnl": None, "fees": D("0.15"), "funding": D("0.001"),
             "leverage_set": None, "venue_position_id": "pos-12", "state": "open", "updated_at": _t(20)},
            {"id": 2, "pair_id": 3, "venue": "backpack", "symbol": "ETH_USDC_PERP", "side": "short",
             "quantity": D("0.3127"), "entry_price": D("2401.75"), "mark_price": D("2402.1"), "exit_price": None,
             "unrealized_pnl": D("-0.109445"), "realized_pnl": None, "fees": D("0.12"), "funding": D("-0.001"),
             "leverage_set": D("2"), "venue_position_id": None, "state": "open", "updated_at": _t(21)},
            {"id": 3, "pair_id": 5, "venue": "backpack", "symbol": "ETH_USDC_PERP", "side": "short",
             "quantity": D("0.3127"), "entry_price": D("2400"), "mark_price": None, "exit_price": D("2399.25"),
             "unrealized_pnl": None, "realized_pnl": D("0.234525"), "fees": D("0.31"), "funding": D("0"),
             "leverage_set": D("2"), "venue_position_id": None, "state": "closed", "updated_at": _t(1900)},
            {"id": 4, "pair_id": 2, "venue": "hibachi", "symbol": "ETH/USDT-P", "side": "long",
             "quantity": D("0"), "entry_price": None, "mark_price": None, "exit_price": None,
             "unrealized_pnl": None, "realized_pnl": None, "fees": None, "funding": None,
             "leverage_set": None, "venue_position_id": None, "state": "pending", "updated_at": _t(2)},
        ])  # fmt: skip
        order = {
            "venue_order_id": None, "attempt": 0, "type": "market", "reduce_only": False, "price": None,
            "filled_quantity": D("0"), "avg_price": None, "fee": None, "error": None,
        }  # fmt: skip
        conn.execute(insert(orders), [
            {**order, "id": 1, "pair_id": 3, "position_id": 1, "venue": "hibachi", "client_id": "m7q2z9w-3-o-0-l",
             "venue_order_id": "0x9c", "purpose": "open", "side": "long", "quantity": D("0.3127"),
             "status": "filled", "filled_quantity": D("0.3127"), "avg_price": D("2401.5"), "fee": D("0.15"),
             "created_at": _t(5), "updated_at": _t(6)},
            {**order, "id": 2, "pair_id": 3, "position_id": 2, "venue": "backpack", "client_id": "4001002003",
             "venue_order_id": "220011", "purpose": "open", "side": "short", "quantity": D("0.3127"),
             "status": "filled", "filled_quantity": D("0.3127"), "avg_price": D("2401.75"), "fee": D("0.12"),
             "type": "limit", "price": D("2401.750000000000000001"), "created_at": _t(5), "updated_at": _t(7)},
            {**order, "id": 3, "pair_id": 5, "position_id": 3, "venue": "backpack", "client_id": "4001002004",
             "purpose": "close", "attempt": 1, "side": "long", "quantity": D("0.3127"), "reduce_only": True,
             "status": "filled", "filled_quantity": D("0.3127"), "avg_price": D("2399.25"), "fee": D("0.31"),
             "created_at": _t(1890), "updated_at": _t(1895)},
            {**order, "id": 4, "pair_id": 6, "position_id": 4, "venue": "hibachi", "client_id": "m7q2z9w-6-o-0-l",
             "purpose": "open", "side": "long", "quantity": D("0.5"), "status": "rejected",
             "error": "MinSize: ünïcödé ✓", "created_at": _t(50), "updated_at": _t(51)},
            {**order, "id": 5, "pair_id": 8, "position_id": 4, "venue": "hibachi", "client_id": "m7q2z9w-8-r-0-s",
             "purpose": "rollback", "side": "short", "quantity": D("0.3127"), "reduce_only": True,
             "status": "in_flight", "created_at": _t(60), "updated_at": _t(60)},
        ])  # fmt: skip
        # Revision 0002's point: one fill id on two orders of one venue (Backpack's trade ids per symbol).
        conn.execute(insert(fills), [
            {"id": 1, "order_id": 2, "venue": "backpack", "venue_fill_id": "77", "price": D("2401.75"),
             "quantity": D("0.2"), "fee": D("0.08"), "fee_asset": "USDC", "is_maker": True, "ts": _t(6)},
            {"id": 2, "order_id": 2, "venue": "backpack", "venue_fill_id": "78", "price": D("2401.75"),
             "quantity": D("0.1127"), "fee": D("0.04"), "fee_asset": "USDC", "is_maker": False, "ts": _t(6.25)},
            {"id": 3, "order_id": 3, "venue": "backpack", "venue_fill_id": "77", "price": D("2399.25"),
             "quantity": D("0.3127"), "fee": D("0.31"), "fee_asset": "USDC", "is_maker": False, "ts": _t(1895)},
            {"id": 4, "order_id": 1, "venue": "hibachi", "venue_fill_id": "h-1", "price": D("2401.5"),
             "quantity": D("0.3127"), "fee": D("0.15"), "fee_asset": None, "is_maker": None, "ts": _t(6)},
        ])  # fmt: skip
        conn.execute(insert(events), [
            {"id": 1, "ts": _t(1), "level": "info", "kind": "pair_planned", "pair_id": 1, "message": "planned",
             "data": {"notional": "750.50", "legs": ["hibachi", "backpack"]}},
            {"id": 2, "ts": _t(5), "level": "info", "kind": "pair_opening", "pair_id": 3, "message": "opening",
             "data": {"mid": {"hibachi": "2401.4", "backpack": "2401.6"}}},
            {"id": 3, "ts": _t(8), "level": "critical", "kind": "limit_tripped", "pair_id": None,
             "message": "max_drawdown_usd: -51.2 beyond 50", "data": {}},
            {"id": 4, "ts": _t(9), "level": "warning", "kind": "note", "pair_id": 7, "message": "ünïcödé ✓",
             "data": {"list": [1, 2.5, None, "x"], "nested": {"ok": False}}},
        ])  # fmt: skip
        conn.execute(insert(snapshots), [
            {"id": 1, "ts": _t(30), "pair_id": 3, "long_mark": D("2402"), "short_mark": D("2402.1"),
             "long_upnl": D("0.15635"), "short_upnl": D("-0.109445"), "long_collateral_ratio": D("0.5"),
             "short_collateral_ratio": D("0.4998"), "divergence": D("0.0000416")},
            {"id": 2, "ts": _t(31), "pair_id": 4, "long_mark": None, "short_mark": None, "long_upnl": None,
             "short_upnl": None, "long_collateral_ratio": None, "short_collateral_ratio": None, "divergence": None},
        ])  # fmt: skip
    engine.dispose()


def main() -> None:
    """Write v2.sql beside this script."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v2.db"
        _fill_database(f"sqlite:///{path}")
        conn = sqlite3.connect(path)
        lines = list(conn.iterdump())
        conn.close()
    (HERE / "v2.sql").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
