"""Schema migrations (Alembic): env.py, the revisions under versions/, and runner.py, which brings a database to
the newest revision when perp-farmer opens it."""
