"""A fill id is unique within its order, not within its venue.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Backpack's trade ids are a sequence per symbol (spec §5): a fill on ETH may carry the id of an earlier fill on BTC,
and the old key (venue, venue_fill_id) made the second one look stored already, so it was dropped from the ledger.
Rows are kept as they are: under the old key no two rows can collide under the new one.
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Key fills by venue, order and fill id (SQLite copies the table: batch mode)."""
    with op.batch_alter_table("fills") as batch:
        batch.drop_constraint("uq_fills_venue_fill_id", type_="unique")
        batch.create_unique_constraint("uq_fills_order_fill", ["venue", "order_id", "venue_fill_id"])


def downgrade() -> None:
    """Back to venue and fill id (fails where two orders share a fill id)."""
    with op.batch_alter_table("fills") as batch:
        batch.drop_constraint("uq_fills_order_fill", type_="unique")
        batch.create_unique_constraint("uq_fills_venue_fill_id", ["venue", "venue_fill_id"])
