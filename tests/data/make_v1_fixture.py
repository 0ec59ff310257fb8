"""Makes tests/data/v1.sql: a database written by perp-farmer's first schema (schema_version 1, made before
Alembic), with rows in every table, dumped as SQL text so that a change to it shows in a diff.

It was run once, at the commit that added it (the last one whose storage/db.py predates Alembic):
    git checkout <that commit> && python tests/data/make_v1_fixture.py
Run with later code it would write a later schema, which is not what v1.sql stands for: leave v1.sql as it is,
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
from storage.schema import CLIENT_ID_NAMESPACE_KEY, events, fills, hedge_pairs, meta, orders, positions, snapshots

HERE = Path(__file__).resolve().parent
T0 = datetime(2026, 11, 3, 9, 30, 0, 123456, tzinfo=UTC)
NAMESPACE = "k3v9q2x"  # a fixed namespace, so the dump is the same each time the script runs


def _t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _pair(pid: int, state: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": pid, "market": "BTC", "long_venue": "backpack", "short_venue": "hibachi", "leverage": D("3"),
        "notional": D("1000.00"), "quantity": D("0.0153"), "duration_s": 3600, "state": state,
        "created_at": _t(pid), "updated_at": _t(pid + 60), "opened_at": None, "expires_at": None,
        "closed_at": None, "close_reason": None, "realized_pnl": None, "fees": None, "funding": None,
        "volume": None, "points": None,
    }  # fmt: skip
    row.update(extra)
    return row


def _fill_database(url: str) -> None:
    engine = open_database(url, FakeClock(T0))
    with engine.begin() as conn:
        conn.execute(update(meta).where(meta.c.key == CLIENT_ID_NAMESPACE_KEY).values(value=NAMESPACE))
        conn.execute(insert(meta), [{"key": "paused", "value": "true"}])
        conn.execute(insert(hedge_pairs), [
            _pair(1, "planned"),
            _pair(2, "opening"),
            _pair(3, "open", opened_at=_t(10), expires_at=_t(3610)),
            _pair(4, "closing", opened_at=_t(11), expires_at=_t(3611)),
            _pair(5, "closed", market="ETH", long_venue="hibachi", short_venue="backpack", quantity=D("0.412"),
                  opened_at=_t(12), expires_at=_t(3612), closed_at=_t(3700), close_reason="duration elapsed",
                  realized_pnl=D("-1.234567890123456789"), fees=D("0.8812"), funding=D("0.000000000000000001"),
                  volume=D("2000.12345678"), points=D("12345678901234567890.5")),
            _pair(6, "failed", close_reason="short leg rejected: insufficient margin"),
            _pair(7, "naked", market="SOL", quantity=D("7")),
            _pair(8, "rolling_back"),
        ])  # fmt: skip
        conn.execute(insert(positions), [
            {"id": 1, "pair_id": 3, "venue": "backpack", "symbol": "BTC_USDC_PERP", "side": "long",
             "quantity": D("0.0153"), "entry_price": D("65432.1"), "mark_price": D("65500.25"), "exit_price": None,
             "unrealized_pnl": D("1.04269500"), "realized_pnl": None, "fees": D("0.3271605"), "funding": D("-0.01"),
             "leverage_set": D("3"), "venue_position_id": None, "state": "open", "updated_at": _t(20)},
            {"id": 2, "pair_id": 3, "venue": "hibachi", "symbol": "BTC/USDT-P", "side": "short",
             "quantity": D("0.0153"), "entry_price": D("65440"), "mark_price": D("65500.3"), "exit_price": None,
             "unrealized_pnl": D("-0.92259"), "realized_pnl": None, "fees": D("0.2"), "funding": D("0.0125"),
             "leverage_set": None, "venue_position_id": "pos-77", "state": "open", "updated_at": _t(21)},
            {"id": 3, "pair_id": 5, "venue": "hibachi", "symbol": "ETH/USDT-P", "side": "long",
             "quantity": D("0.412"), "entry_price": D("2400"), "mark_price": None, "exit_price": D("2398.5"),
             "unrealized_pnl": None, "realized_pnl": D("-0.618"), "fees": D("0.44"), "funding": D("0"),
             "leverage_set": D("3"), "venue_position_id": None, "state": "closed", "updated_at": _t(3700)},
            {"id": 4, "pair_id": 2, "venue": "backpack", "symbol": "BTC_USDC_PERP", "side": "long",
             "quantity": D("0"), "entry_price": None, "mark_price": None, "exit_price": None,
             "unrealized_pnl": None, "realized_pnl": None, "fees": None, "funding": None,
             "leverage_set": None, "venue_position_id": None, "state": "pending", "updated_at": _t(2)},
        ])  # fmt: skip
        order = {
            "venue_order_id": None, "attempt": 1, "type": "market", "reduce_only": False, "price": None,
            "filled_quantity": D("0"), "avg_price": None, "fee": None, "error": None,
        }  # fmt: skip
        conn.execute(insert(orders), [
            {**order, "id": 1, "pair_id": 3, "position_id": 1, "venue": "backpack", "client_id": "3141592653",
             "venue_order_id": "114477", "purpose": "open", "side": "long", "quantity": D("0.0153"),
             "status": "filled", "filled_quantity": D("0.0153"), "avg_price": D("65432.1"), "fee": D("0.3271605"),
             "created_at": _t(5), "updated_at": _t(6)},
            {**order, "id": 2, "pair_id": 3, "position_id": 2, "venue": "hibachi", "client_id": "k3v9q2x-3-o-1-s",
             "venue_order_id": "0x5a", "purpose": "open", "side": "short", "quantity": D("0.0153"),
             "status": "partially_filled", "filled_quantity": D("0.01"), "avg_price": D("65440"), "fee": D("0.2"),
             "type": "limit", "price": D("65440.000000000000000001"), "created_at": _t(5), "updated_at": _t(7)},
            {**order, "id": 3, "pair_id": 4, "position_id": 1, "venue": "backpack", "client_id": "2718281828",
             "purpose": "close", "attempt": 2, "side": "short", "quantity": D("0.0153"), "reduce_only": True,
             "status": "in_flight", "created_at": _t(40), "updated_at": _t(40)},
            {**order, "id": 4, "pair_id": 6, "position_id": 4, "venue": "hibachi", "client_id": "k3v9q2x-6-o-1-s",
             "purpose": "open", "side": "short", "quantity": D("1.5"), "status": "cancelled",
             "error": "InsufficientMargin: 'margin' \"too low\"; retry later", "created_at": _t(50),
             "updated_at": _t(51)},
            {**order, "id": 5, "pair_id": 8, "position_id": 4, "venue": "backpack", "client_id": "1618033988",
             "purpose": "rollback", "side": "short", "quantity": D("0.0153"), "reduce_only": True,
             "status": "created", "created_at": _t(60), "updated_at": _t(60)},
        ])  # fmt: skip
        conn.execute(insert(fills), [
            {"id": 1, "order_id": 1, "venue": "backpack", "venue_fill_id": "t-1", "price": D("65432.1"),
             "quantity": D("0.01"), "fee": D("0.21"), "fee_asset": "USDC", "is_maker": False, "ts": _t(6)},
            {"id": 2, "order_id": 1, "venue": "backpack", "venue_fill_id": "t-2", "price": D("65432.1"),
             "quantity": D("0.0053"), "fee": D("0.1171605"), "fee_asset": "USDC", "is_maker": True, "ts": _t(6.5)},
            {"id": 3, "order_id": 2, "venue": "hibachi", "venue_fill_id": "h-9", "price": D("65440"),
             "quantity": D("0.01"), "fee": D("0.2"), "fee_asset": None, "is_maker": None, "ts": _t(7)},
        ])  # fmt: skip
        conn.execute(insert(events), [
            {"id": 1, "ts": _t(1), "level": "info", "kind": "pair_planned", "pair_id": 1, "message": "planned",
             "data": {"notional": "1000.00", "legs": ["backpack", "hibachi"]}},
            {"id": 2, "ts": _t(7), "level": "warning", "kind": "partial_fill", "pair_id": 3,
             "message": "short leg filled 0.01 of 0.0153", "data": {"filled": "0.01", "nested": {"ok": True}}},
            {"id": 3, "ts": _t(8), "level": "critical", "kind": "unknown_position", "pair_id": None,
             "message": "a position no pair owns: SOL 7 on backpack", "data": {}},
            {"id": 4, "ts": _t(9), "level": "info", "kind": "note", "pair_id": 7, "message": "ünïcödé ✓",
             "data": {"list": [1, 2.5, None, "x"]}},
        ])  # fmt: skip
        conn.execute(insert(snapshots), [
            {"id": 1, "ts": _t(30), "pair_id": 3, "long_mark": D("65500.25"), "short_mark": D("65500.3"),
             "long_upnl": D("1.04269500"), "short_upnl": D("-0.92259"), "long_collateral_ratio": D("0.33"),
             "short_collateral_ratio": D("0.3312"), "divergence": D("0.00000076")},
            {"id": 2, "ts": _t(31), "pair_id": 3, "long_mark": None, "short_mark": None, "long_upnl": None,
             "short_upnl": None, "long_collateral_ratio": None, "short_collateral_ratio": None, "divergence": None},
        ])  # fmt: skip
    engine.dispose()


def main() -> None:
    """Write v1.sql beside this script."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v1.db"
        _fill_database(f"sqlite:///{path}")
        conn = sqlite3.connect(path)
        lines = list(conn.iterdump())
        conn.close()
    (HERE / "v1.sql").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
