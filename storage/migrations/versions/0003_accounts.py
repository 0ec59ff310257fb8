"""Many accounts in one database: each pair and event names its account, and a lease table says which process
trades which account.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-18

Every row written before this revision belongs to the one account there was, "default" (the server default fills
them). meta.key widens to 100 characters: per-account keys carry the account's name (up to 32) after the key.
On SQLite hedge_pairs and events are copied into new tables (batch mode, recreate) so that their definition is
exactly what a new database gets; their rows, and the rows pointing at them, are kept. Types are spelled out, as
in 0001, so that this revision stays what it was when storage.types changes.
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _account() -> sa.Column[str]:
    return sa.Column("account", sa.String(32), nullable=False, server_default="default")


def upgrade() -> None:
    """Add the account columns (every existing row: "default"), its index on pairs, widen meta.key, and
    create account_leases."""
    # SQLite could ADD COLUMN in place, but would then keep a table definition unlike a new database's.
    recreate: Literal["always", "auto"] = "always" if op.get_bind().dialect.name == "sqlite" else "auto"
    with op.batch_alter_table("hedge_pairs", recreate=recreate) as batch:
        batch.add_column(_account())
        batch.create_index("ix_hedge_pairs_account_state", ["account", "state"])
    with op.batch_alter_table("events", recreate=recreate) as batch:
        batch.add_column(_account())
    with op.batch_alter_table("meta") as batch:
        batch.alter_column("key", type_=sa.String(100), existing_type=sa.String(64), existing_nullable=False)
    op.create_table(
        "account_leases",
        sa.Column("account", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("renewed_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    """Back to one account: drops the leases and the account columns (fails while a meta key is too long)."""
    op.drop_table("account_leases")
    with op.batch_alter_table("meta") as batch:
        batch.alter_column("key", type_=sa.String(64), existing_type=sa.String(100), existing_nullable=False)
    with op.batch_alter_table("events") as batch:
        batch.drop_column("account")
    with op.batch_alter_table("hedge_pairs") as batch:
        batch.drop_index("ix_hedge_pairs_account_state")
        batch.drop_column("account")
