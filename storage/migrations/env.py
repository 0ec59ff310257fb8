"""Alembic's environment: runs on the connection the caller put in `config.attributes["connection"]` (there is
no alembic.ini and no URL here; storage/migrations/runner.py and the tests pass one in)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from storage.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise TypeError("storage/migrations runs on a connection given in Config.attributes['connection']")
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead, keeping its rows.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
