"""The first schema: the tables perp-farmer made before it used Alembic (schema_version 1).

Revision ID: 0001
Revises:
Create Date: 2026-12-01

It creates only the tables that are missing, so that it also adopts a database made before Alembic (which has
them all, or all but `meta` if it predates client-id namespaces): such a database keeps every row and is then
recorded at this revision. Types are spelled out rather than imported from storage.types so that this revision
stays what it was when storage.types changes: DecimalText is VARCHAR(64) on SQLite and NUMERIC(38, 18)
elsewhere, UTCDateTime a plain DATETIME holding naive UTC.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _decimal() -> sa.Numeric[Decimal]:
    return sa.Numeric(38, 18).with_variant(sa.String(64), "sqlite")


def _time() -> sa.DateTime:
    return sa.DateTime()


def first_schema() -> sa.MetaData:
    """The tables of schema_version 1, as storage/schema.py defined them then."""
    md = sa.MetaData()
    sa.Table(
        "schema_version", md,
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("applied_at", _time(), nullable=False),
    )  # fmt: skip
    sa.Table(
        "meta", md,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )  # fmt: skip
    sa.Table(
        "hedge_pairs", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("market", sa.String(32), nullable=False),
        sa.Column("long_venue", sa.String(16), nullable=False),
        sa.Column("short_venue", sa.String(16), nullable=False),
        sa.Column("leverage", _decimal(), nullable=False),
        sa.Column("notional", _decimal(), nullable=False),
        sa.Column("quantity", _decimal(), nullable=False),
        sa.Column("duration_s", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("opened_at", _time()),
        sa.Column("expires_at", _time()),
        sa.Column("closed_at", _time()),
        sa.Column("close_reason", sa.Text),
        sa.Column("realized_pnl", _decimal()),
        sa.Column("fees", _decimal()),
        sa.Column("funding", _decimal()),
        sa.Column("volume", _decimal()),
        sa.Column("points", _decimal()),
        sa.Index("ix_hedge_pairs_state", "state"),
    )  # fmt: skip
    sa.Table(
        "positions", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pair_id", sa.Integer, sa.ForeignKey("hedge_pairs.id"), nullable=False),
        sa.Column("venue", sa.String(16), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("quantity", _decimal(), nullable=False),
        sa.Column("entry_price", _decimal()),
        sa.Column("mark_price", _decimal()),
        sa.Column("exit_price", _decimal()),
        sa.Column("unrealized_pnl", _decimal()),
        sa.Column("realized_pnl", _decimal()),
        sa.Column("fees", _decimal()),
        sa.Column("funding", _decimal()),
        sa.Column("leverage_set", _decimal()),
        sa.Column("venue_position_id", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.UniqueConstraint("pair_id", "venue", name="uq_positions_pair_venue"),
    )  # fmt: skip
    sa.Table(
        "orders", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pair_id", sa.Integer, sa.ForeignKey("hedge_pairs.id"), nullable=False),
        sa.Column("position_id", sa.Integer, sa.ForeignKey("positions.id"), nullable=False),
        sa.Column("venue", sa.String(16), nullable=False),
        sa.Column("client_id", sa.String(40), nullable=False),
        sa.Column("venue_order_id", sa.String(64)),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("reduce_only", sa.Boolean, nullable=False),
        sa.Column("quantity", _decimal(), nullable=False),
        sa.Column("price", _decimal()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filled_quantity", _decimal(), nullable=False),
        sa.Column("avg_price", _decimal()),
        sa.Column("fee", _decimal()),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("venue", "client_id", name="uq_orders_venue_client_id"),
        sa.Index("ix_orders_pair", "pair_id"),
    )  # fmt: skip
    sa.Table(
        "fills", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("venue", sa.String(16), nullable=False),
        sa.Column("venue_fill_id", sa.String(64), nullable=False),
        sa.Column("price", _decimal(), nullable=False),
        sa.Column("quantity", _decimal(), nullable=False),
        sa.Column("fee", _decimal(), nullable=False),
        sa.Column("fee_asset", sa.String(16)),
        sa.Column("is_maker", sa.Boolean),
        sa.Column("ts", _time(), nullable=False),
        sa.UniqueConstraint("venue", "venue_fill_id", name="uq_fills_venue_fill_id"),
    )  # fmt: skip
    sa.Table(
        "events", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", _time(), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("pair_id", sa.Integer, sa.ForeignKey("hedge_pairs.id")),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Index("ix_events_pair", "pair_id"),
    )  # fmt: skip
    sa.Table(
        "snapshots", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", _time(), nullable=False),
        sa.Column("pair_id", sa.Integer, sa.ForeignKey("hedge_pairs.id"), nullable=False),
        sa.Column("long_mark", _decimal()),
        sa.Column("short_mark", _decimal()),
        sa.Column("long_upnl", _decimal()),
        sa.Column("short_upnl", _decimal()),
        sa.Column("long_collateral_ratio", _decimal()),
        sa.Column("short_collateral_ratio", _decimal()),
        sa.Column("divergence", _decimal()),
        sa.Index("ix_snapshots_pair_ts", "pair_id", "ts"),
    )  # fmt: skip
    return md


def upgrade() -> None:
    """Create the first schema's tables that the database lacks; existing tables and their rows are untouched."""
    first_schema().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    """Drop every table (and so every row): only for throwaway databases."""
    first_schema().drop_all(op.get_bind())
