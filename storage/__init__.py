"""Persistence: SQLAlchemy engine and schema, the queries every actor reads through, and the writes only the
PersistenceWriter makes."""
