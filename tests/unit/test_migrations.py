"""Schema migrations (storage/migrations): a database made before Alembic is adopted without losing or changing a
row, a new one is made at head, a newer one is refused, and the revisions build exactly the tables the program
defines, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, insert, inspect, select, text
from sqlalchemy.engine import make_url

from core.clock import FakeClock
from reports import summary
from storage.db import SchemaVersionError, make_engine, open_database, open_database_readonly
from storage.migrations.runner import alembic_config, head, known_revisions, scripts
from storage.queries import Queries
from storage.schema import CLIENT_ID_NAMESPACE_KEY, SCHEMA_VERSION, hedge_pairs, metadata, orders, schema_version
from tests.postgres import postgres_server

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "v1.sql"
V2_FIXTURE = FIXTURE.with_name("v2.sql")  # made at revision 0002 by tests/data/make_v2_fixture.py
V1_TABLES = ["events", "fills", "hedge_pairs", "meta", "orders", "positions", "schema_version", "snapshots"]


def _load_fixture(path: Path, *, drop: tuple[str, ...] = (), fixture: Path = FIXTURE) -> str:
    conn = sqlite3.connect(path)
    conn.executescript(fixture.read_text())
    for table in drop:
        conn.execute(f"DROP TABLE {table}")
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def _raw_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table as SQLite stores it (Decimals as their text, times as written)."""
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {n: conn.execute(f"SELECT * FROM {n} ORDER BY rowid").fetchall() for n in names}
    finally:
        conn.close()


def _with_accounts(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """`rows` (raw, from before revision 0003) as 0003 leaves them: pairs and events of account "default" (their
    new last column), and an empty lease table."""
    out = {name: list(found) for name, found in rows.items()}
    for name in ("hedge_pairs", "events"):
        out[name] = [(*row, "default") for row in out[name]]
    return {**out, "account_leases": []}


def _typed_rows(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table the program defines that the database has, read through the program's column
    types (Decimal, UTC datetime); only the columns the database has (an older revision lacks some)."""
    found = inspect(conn)
    out: dict[str, list[dict[str, Any]]] = {}
    for t in metadata.sorted_tables:
        if not found.has_table(t.name):
            continue
        present = {c["name"] for c in found.get_columns(t.name)}
        query = select(*[c for c in t.c if c.name in present]).order_by(*t.primary_key.columns)
        out[t.name] = [dict(r._mapping) for r in conn.execute(query)]
    return out


def _diff(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata))


def _alembic_versions(conn: Connection) -> list[str]:
    return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


# ---- the revisions ------------------------------------------------------------------------------------------


def test_the_revisions_form_one_line_and_schema_version_counts_them() -> None:
    assert scripts().get_heads() == [head()]
    assert [s.revision for s in scripts().walk_revisions()][-1] == "0001"  # the first revision is the base
    # SCHEMA_VERSION is the fence releases made before Alembic read: a new revision must raise it by one.
    assert len(known_revisions()) == SCHEMA_VERSION


# ---- a database made before Alembic (tests/data/v1.sql, made by tests/data/make_v1_fixture.py) --------------


def test_the_fixture_is_what_the_first_schema_made() -> None:
    sql = FIXTURE.read_text()
    assert "alembic_version" not in sql
    assert 'INSERT INTO "schema_version" VALUES(1,' in sql


def test_a_database_made_before_alembic_keeps_every_row_exactly(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    url = _load_fixture(path)
    before = _raw_rows(path)
    assert sorted(before) == V1_TABLES and all(before[t] for t in V1_TABLES)  # a row in every table
    engine = open_database(url, FakeClock())
    engine.dispose()
    after = _raw_rows(path)
    assert sorted(after) == sorted([*V1_TABLES, "alembic_version", "account_leases"])
    assert after.pop("alembic_version") == [(head(),)]
    fence = after.pop("schema_version")  # the fence older releases read moves on with each later revision
    assert fence[0] == before.pop("schema_version")[0] and [v for v, _ in fence] == [1, SCHEMA_VERSION]
    assert after == _with_accounts(before)  # every row of every table, byte for byte: Decimals keep their text
    engine = open_database(url, FakeClock())  # and a second start changes nothing either
    with engine.connect() as conn:
        assert _diff(conn) == []  # the adopted database is what the program defines
        pair = conn.execute(select(hedge_pairs).where(hedge_pairs.c.id == 5)).one()
        order = conn.execute(select(orders).where(orders.c.id == 2)).one()
    engine.dispose()
    assert _raw_rows(path) == {**_with_accounts(before), "alembic_version": [(head(),)], "schema_version": fence}
    assert pair.realized_pnl == D("-1.234567890123456789") and str(pair.realized_pnl) == "-1.234567890123456789"
    assert str(pair.points) == "12345678901234567890.5" and str(pair.funding) == "1E-18"
    assert str(order.price) == "65440.000000000000000001"


def test_a_database_made_before_client_id_namespaces_gains_the_meta_table(tmp_path: Path) -> None:
    path = tmp_path / "v0.db"
    url = _load_fixture(path, drop=("meta",))
    before = _raw_rows(path)
    open_database(url, FakeClock()).dispose()
    after = _raw_rows(path)
    assert [key for key, _ in after.pop("meta")] == [CLIENT_ID_NAMESPACE_KEY]  # made by 0001, then drawn
    after.pop("alembic_version")
    assert after.pop("schema_version")[0] == before.pop("schema_version")[0]
    assert after == _with_accounts(before)


def test_report_reads_a_database_made_before_alembic_without_changing_it(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    url = _load_fixture(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rows = summary.load(url)
    assert [r.pair for r in rows] == ["1", "2", "3", "4", "5", "6", "7", "8", "total"]
    assert [r.pair for r in summary.load(url, account="default")] == [r.pair for r in rows]  # all "default"'s
    assert [r.pair for r in summary.load(url, account="alpha")] == ["total"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert "alembic_version" not in _raw_rows(path)


# ---- a database made at revision 0002, before accounts (tests/data/v2.sql) ----------------------------------------


def test_the_v2_fixture_is_what_revision_0002_made() -> None:
    sql = V2_FIXTURE.read_text()
    assert "INSERT INTO \"alembic_version\" VALUES('0002');" in sql
    assert 'INSERT INTO "schema_version" VALUES(2,' in sql
    assert "account" not in sql


def test_a_v2_database_gains_accounts_and_keeps_every_row_exactly(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    url = _load_fixture(path, fixture=V2_FIXTURE)
    before = _raw_rows(path)
    assert sorted(before) == sorted([*V1_TABLES, "alembic_version"]) and all(before.values())  # rows everywhere
    open_database(url, FakeClock()).dispose()
    after = _raw_rows(path)
    assert after.pop("alembic_version") == [(head(),)]
    assert [v for v, _ in after.pop("schema_version")] == [2, SCHEMA_VERSION]
    before.pop("alembic_version"), before.pop("schema_version")
    assert after == _with_accounts(before)  # every row, byte for byte; pairs and events are "default"'s
    engine = open_database(url, FakeClock())
    with engine.connect() as conn:
        assert _diff(conn) == []  # the account index too
        assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []
    mine, everyone, other = Queries(engine), Queries(engine, account=None), Queries(engine, account="other")
    assert [p.id for p in mine.list_pairs()] == [8, 7, 6, 5, 4, 3, 2, 1] == [p.id for p in everyone.list_pairs()]
    assert {p.account for p in everyone.list_pairs()} == {"default"}
    assert other.list_pairs() == [] and other.count_pairs_by_state() == {}
    assert mine.get_meta("trading.pause") == '{"reason": "maintenance", "by": "operator"}'  # the flag stands
    assert other.get_meta("trading.pause") is None
    engine.dispose()


def test_postgresql_a_v2_database_gains_accounts_and_keeps_every_row(postgres_url: str, tmp_path: Path) -> None:
    url = _new_pg_database(postgres_url, "v2")
    engine = make_engine(url)
    with engine.begin() as conn:  # revision 0002, as the code before accounts made it
        command.upgrade(alembic_config(conn), "0002")
    before = _rows_copied_in(engine, _load_fixture(tmp_path / "v2.db", fixture=V2_FIXTURE))
    assert all(before.values())
    engine = open_database(url, FakeClock())
    with engine.connect() as conn:
        after = _typed_rows(conn)
        assert [r["version"] for r in after.pop("schema_version")] == [2, SCHEMA_VERSION]
        assert after.pop("account_leases") == []
        for name in ("hedge_pairs", "events"):
            assert [r.pop("account") for r in after[name]] == ["default"] * len(after[name])
        assert after == {k: v for k, v in before.items() if k != "schema_version"}
        assert _alembic_versions(conn) == [head()]
        assert _diff(conn) == []
    assert Queries(engine).get_meta("limits.high_water") == '{"equity": "10250.75"}'
    engine.dispose()


# ---- new, newer and unknown databases -------------------------------------------------------------------------


def test_a_new_database_is_made_at_head_like_replaying_every_revision(tmp_path: Path) -> None:
    fast = tmp_path / "fast.db"
    engine = open_database(f"sqlite:///{fast}", FakeClock())
    with engine.connect() as conn:
        assert _alembic_versions(conn) == [head()]
        assert list(conn.execute(select(schema_version.c.version)).scalars()) == [SCHEMA_VERSION]
        assert _diff(conn) == []
    engine.dispose()
    replayed = tmp_path / "replayed.db"
    engine = make_engine(f"sqlite:///{replayed}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    engine.dispose()

    def ddl(path: Path) -> list[str]:
        conn = sqlite3.connect(path)
        # A table a revision copied (batch mode) is renamed into place, and SQLite keeps its name quoted then.
        found = sorted(
            re.sub(r'^CREATE TABLE "(\w+)"', r"CREATE TABLE \1", r[0])
            for r in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
        )
        conn.close()
        return found

    assert ddl(fast) == ddl(replayed)


def _set_revision(url: str, revision: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def test_a_database_at_an_unknown_revision_is_refused_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    open_database(url, FakeClock()).dispose()
    _set_revision(url, "9f3e")
    for opener in (lambda: open_database(url, FakeClock()), lambda: open_database_readonly(url)):
        with pytest.raises(SchemaVersionError) as caught:
            opener()
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"database schema revision 9f3e is newer than this program's {head()}")


def test_a_database_with_a_newer_fence_but_no_alembic_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    url = _load_fixture(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (?, '2026-12-01 00:00:00.000000')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    before = _raw_rows(path)
    with pytest.raises(SchemaVersionError, match="newer"):
        open_database(url, FakeClock())
    assert _raw_rows(path) == before


# ---- PostgreSQL ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def _new_pg_database(server: str, name: str) -> str:
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def _rows_copied_in(engine: Any, fixture_url: str) -> Any:
    """Copy a SQLite fixture's rows into `engine`'s database (then disposed); its rows, checked equal to the
    fixture's: PostgreSQL's NUMERIC holds the same Decimals the SQLite text did."""
    fixture = make_engine(fixture_url)
    _copy_fixture_rows(fixture, engine)
    with fixture.connect() as conn:
        fixture_rows = _typed_rows(conn)
    fixture.dispose()
    with engine.connect() as conn:
        copied = _typed_rows(conn)
    engine.dispose()
    assert copied == fixture_rows
    return copied


def _copy_fixture_rows(source: Engine, target: Engine) -> None:
    """Every row of `source` into `target` (both at the same revision), through the program's column types."""
    with source.connect() as src, target.begin() as dst:
        for name, rows in _typed_rows(src).items():
            if rows:
                dst.execute(insert(metadata.tables[name]), rows)


def test_postgresql_a_database_made_before_alembic_keeps_every_row(postgres_url: str, tmp_path: Path) -> None:
    url = _new_pg_database(postgres_url, "v1")
    engine = make_engine(url)
    with engine.begin() as conn:  # the first schema as today's code made it: revision 0001, no alembic record
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
    before = _rows_copied_in(engine, _load_fixture(tmp_path / "v1.db"))
    engine = open_database(url, FakeClock())
    with engine.connect() as conn:
        after = _typed_rows(conn)
        assert [r["version"] for r in after.pop("schema_version")] == [1, SCHEMA_VERSION]
        assert after.pop("account_leases") == []
        for name in ("hedge_pairs", "events"):
            assert {r.pop("account") for r in after[name]} == {"default"}
        assert after == {k: v for k, v in before.items() if k != "schema_version"}
        assert _alembic_versions(conn) == [head()]
        assert _diff(conn) == []
    engine.dispose()


def test_postgresql_the_models_match_the_migrations(postgres_url: str) -> None:
    replayed = make_engine(_new_pg_database(postgres_url, "replayed"))
    with replayed.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    with replayed.connect() as conn:
        assert _diff(conn) == []
    replayed.dispose()
    fresh = open_database(_new_pg_database(postgres_url, "fresh"), FakeClock())
    with fresh.connect() as conn:
        assert _diff(conn) == []
        assert _alembic_versions(conn) == [head()]
        assert list(conn.execute(select(schema_version.c.version)).scalars()) == [SCHEMA_VERSION]
    fresh.dispose()
    _set_revision(fresh.url.render_as_string(hide_password=False), "9f3e")
    with pytest.raises(SchemaVersionError, match="newer"):
        open_database(fresh.url.render_as_string(hide_password=False), FakeClock())


# ---- a later revision (a throwaway one, in a copy of the scripts) ---------------------------------------------

SECOND_REVISION = '''
"""Throwaway: widen hedge_pairs.market (SQLite must copy the table: a parent other tables' rows point at)."""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "HEAD"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("hedge_pairs", recreate="always") as batch:
        batch.alter_column("market", type_=sa.String(48))
    op.add_column("meta", sa.Column("note", sa.Text))


def downgrade():
    pass
'''


def _with_second_revision(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The runner sees a copy of storage/migrations with one more revision, and the fence raised by one."""
    from storage.migrations import runner

    location = tmp_path / "migrations"
    shutil.copytree(Path(runner.__file__).parent, location, ignore=shutil.ignore_patterns("__pycache__"))
    (location / "versions" / "9999_throwaway.py").write_text(source.replace('"HEAD"', repr(head())))
    monkeypatch.setattr(runner, "SCRIPT_LOCATION", str(location))
    monkeypatch.setattr(runner, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    runner.scripts.cache_clear()
    runner.known_revisions.cache_clear()
    yield
    runner.scripts.cache_clear()
    runner.known_revisions.cache_clear()


@pytest.fixture
def two_revisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from _with_second_revision(SECOND_REVISION, tmp_path, monkeypatch)


@pytest.fixture
def a_failing_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    failing = SECOND_REVISION.replace(
        '    op.add_column("meta", sa.Column("note", sa.Text))', '    raise RuntimeError("half-way")'
    )
    yield from _with_second_revision(failing, tmp_path, monkeypatch)


def test_a_database_made_before_alembic_is_upgraded_through_a_later_revision(
    tmp_path: Path, two_revisions: None
) -> None:
    path = tmp_path / "v1.db"
    url = _load_fixture(path)
    before = _raw_rows(path)
    open_database(url, FakeClock()).dispose()
    after = _raw_rows(path)
    assert after.pop("alembic_version") == [("9999",)]
    assert [v for v, _ in after.pop("schema_version")] == [1, SCHEMA_VERSION + 1]  # the fence moved on
    assert after.pop("meta") == [(*row, None) for row in before.pop("meta")]  # the new column, empty
    before.pop("schema_version")
    # hedge_pairs was copied into a new table: its rows, and the rows pointing at it, kept
    assert after == _with_accounts(before)
    conn = sqlite3.connect(path)
    assert "VARCHAR(48)" in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'hedge_pairs'").fetchone()[0]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_a_revision_that_fails_half_way_leaves_the_database_as_it_was(tmp_path: Path, a_failing_revision: None) -> None:
    path = tmp_path / "v1.db"
    url = _load_fixture(path)
    before = _raw_rows(path)
    with pytest.raises(RuntimeError, match="half-way"):
        open_database(url, FakeClock())
    assert _raw_rows(path) == before  # no alembic_version, hedge_pairs not copied: one transaction, rolled back
    conn = sqlite3.connect(path)
    assert "VARCHAR(32)" in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'hedge_pairs'").fetchone()[0]
    conn.close()
