"""Schema migrations (Alembic): env.py, the revisions under versions/, and runner.py, which brings a database to
the newest revision when perp-farmer opens it."""

import logging

# Alembic logs its set-up at INFO on every start, much of it while being imported ("setup plugin ...", "Context
# impl SQLiteImpl."), so this runs before any of it is: noise in the operator's log. runner.py logs an upgrade.
logging.getLogger("alembic").setLevel(logging.WARNING)
