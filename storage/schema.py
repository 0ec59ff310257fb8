"""Tables (design §4): hedge_pairs, positions, orders, fills, events, snapshots, schema_version, meta, and
account_leases.

`fills` is a table of its own (the design folds fills into orders): the product promises every fill
is kept, and one order can fill in several pieces at several prices.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from storage.types import DecimalText, UTCDateTime

SCHEMA_VERSION = 3

# The account of a database with no [[accounts]]: every row written before accounts existed is its.
DEFAULT_ACCOUNT = "default"

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", UTCDateTime, nullable=False),
)

# Small settings that belong to this database: its client-id namespace (core/ids.py), persisted flags.
# The namespace is drawn once, when the schema is made (storage/db.py), and never changed.
CLIENT_ID_NAMESPACE_KEY = "client_id_namespace"
meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),  # room for an account's name after the key (storage.accounts)
    Column("value", Text, nullable=False),
)

hedge_pairs = Table(
    "hedge_pairs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("market", String(32), nullable=False),
    Column("long_venue", String(16), nullable=False),
    Column("short_venue", String(16), nullable=False),
    Column("leverage", DecimalText, nullable=False),
    Column("notional", DecimalText, nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("duration_s", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("opened_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("close_reason", Text),
    Column("realized_pnl", DecimalText),
    Column("fees", DecimalText),
    Column("funding", DecimalText),
    Column("volume", DecimalText),
    Column("points", DecimalText),
    # The account the pair trades for (one database can hold a fleet's); rows from before accounts are "default".
    Column("account", String(32), nullable=False, server_default=DEFAULT_ACCOUNT),
    Index("ix_hedge_pairs_state", "state"),
    Index("ix_hedge_pairs_account_state", "account", "state"),
)

positions = Table(
    "positions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pair_id", Integer, ForeignKey("hedge_pairs.id"), nullable=False),
    Column("venue", String(16), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("entry_price", DecimalText),
    Column("mark_price", DecimalText),
    Column("exit_price", DecimalText),
    Column("unrealized_pnl", DecimalText),
    Column("realized_pnl", DecimalText),
    Column("fees", DecimalText),
    Column("funding", DecimalText),
    Column("leverage_set", DecimalText),
    Column("venue_position_id", String(64)),
    Column("state", String(16), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("pair_id", "venue", name="uq_positions_pair_venue"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pair_id", Integer, ForeignKey("hedge_pairs.id"), nullable=False),
    Column("position_id", Integer, ForeignKey("positions.id"), nullable=False),
    Column("venue", String(16), nullable=False),
    Column("client_id", String(40), nullable=False),
    Column("venue_order_id", String(64)),
    Column("purpose", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("side", String(8), nullable=False),
    Column("type", String(16), nullable=False),
    Column("reduce_only", Boolean, nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("price", DecimalText),
    Column("status", String(16), nullable=False),
    Column("filled_quantity", DecimalText, nullable=False),
    Column("avg_price", DecimalText),
    Column("fee", DecimalText),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("error", Text),
    # The venue's form of the id is what is unique there; two venues may not share a namespace.
    UniqueConstraint("venue", "client_id", name="uq_orders_venue_client_id"),
    Index("ix_orders_pair", "pair_id"),
)

fills = Table(
    "fills",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False),
    Column("venue", String(16), nullable=False),
    Column("venue_fill_id", String(64), nullable=False),
    Column("price", DecimalText, nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("fee", DecimalText, nullable=False),
    Column("fee_asset", String(16)),
    Column("is_maker", Boolean),
    Column("ts", UTCDateTime, nullable=False),
    # A fill id is unique within its order only: Backpack's trade ids are a sequence per symbol (spec §5).
    UniqueConstraint("venue", "order_id", "venue_fill_id", name="uq_fills_order_fill"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UTCDateTime, nullable=False),
    Column("level", String(8), nullable=False),
    Column("kind", String(48), nullable=False),
    Column("pair_id", Integer, ForeignKey("hedge_pairs.id")),
    Column("message", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Column("account", String(32), nullable=False, server_default=DEFAULT_ACCOUNT),  # the engine that wrote it
    Index("ix_events_pair", "pair_id"),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UTCDateTime, nullable=False),
    Column("pair_id", Integer, ForeignKey("hedge_pairs.id"), nullable=False),
    Column("long_mark", DecimalText),
    Column("short_mark", DecimalText),
    Column("long_upnl", DecimalText),
    Column("short_upnl", DecimalText),
    Column("long_collateral_ratio", DecimalText),
    Column("short_collateral_ratio", DecimalText),
    Column("divergence", DecimalText),
    Index("ix_snapshots_pair_ts", "pair_id", "ts"),
)

# Which process trades which account (storage/leases.py). Times are the database's clock, naive UTC.
account_leases = Table(
    "account_leases",
    metadata,
    Column("account", String(32), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("generation", Integer, nullable=False),  # + 1 each time the lease changes holder
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("renewed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
