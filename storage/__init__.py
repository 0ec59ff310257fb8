"""Persistence: SQLAlchemy engine, schema and the repository every actor reads through."""
