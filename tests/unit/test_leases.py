"""Account leases (storage/leases.py) on SQLite and on a real PostgreSQL: taken when free, refused while another
holder's runs, taken once expired (by the database's clock), lost for good once another holder took them."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from core.clock import FakeClock
from storage.db import open_database
from storage.leases import Lease, LeaseBook, database_now
from tests.helpers import wait_until
from tests.postgres import postgres_server

SHORT_S = 0.3  # a lease meant to run out during the test
LONG_S = 60  # a lease that must not
_names = itertools.count()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'leases.db'}"
    else:
        server = request.getfixturevalue("postgres_url")
        name = f"leases{next(_names)}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
    db = open_database(url, FakeClock())  # the engine's clock is fake: leases must not read it
    yield db
    db.dispose()


def _take(book: LeaseBook, holder: str, lease_s: float = LONG_S, account: str = "alpha") -> Lease | None:
    return book.try_acquire(account, holder, host=f"host-{holder}", pid=100, lease_s=lease_s)


def _expired(book: LeaseBook, account: str = "alpha") -> bool:
    return next(r.expired for r in book.holders() if r.account == account)


def test_a_free_lease_is_taken_and_another_holder_is_refused_while_it_runs(engine: Engine) -> None:
    book = LeaseBook(engine)
    first = _take(book, "a")
    assert first == Lease("alpha", "a", 1)
    assert _take(book, "b") is None
    assert _take(book, "a") == first  # already ours: taken again (renewed), same generation
    assert _take(book, "b", account="beta") == Lease("beta", "b", 1)  # leases are per account


def test_an_expired_lease_goes_to_the_next_holder_and_the_old_one_cannot_renew(engine: Engine) -> None:
    book = LeaseBook(engine)
    old = _take(book, "a", SHORT_S)
    assert old is not None
    assert _take(book, "b") is None
    wait_until(lambda: _expired(book), timeout_s=5, what="the short lease to expire on the database's clock")
    new = _take(book, "b")
    assert new == Lease("alpha", "b", old.generation + 1)  # a new holder: the generation moves on
    assert book.renew(old, LONG_S) is False
    assert book.renew(new, LONG_S) is True
    assert _take(book, "a") is None


def test_a_holder_that_lost_its_lease_cannot_renew_it_even_after_it_comes_back_free(engine: Engine) -> None:
    book = LeaseBook(engine)
    old = _take(book, "a", SHORT_S)
    assert old is not None
    wait_until(lambda: _expired(book), timeout_s=5, what="the short lease to expire")
    taken = _take(book, "b")
    assert taken is not None
    book.release(taken)
    assert book.renew(old, LONG_S) is False  # b held it in between: a's generation is gone
    again = _take(book, "a")
    assert again is not None and again.generation == old.generation + 2


def test_renewing_extends_the_lease_on_the_database_clock(engine: Engine) -> None:
    book = LeaseBook(engine)
    lease = _take(book, "a", SHORT_S)
    assert lease is not None
    before = next(r for r in book.holders() if r.account == "alpha")
    assert book.renew(lease, LONG_S) is True
    after = next(r for r in book.holders() if r.account == "alpha")
    assert after.expires_at > before.expires_at and after.renewed_at >= before.renewed_at
    assert after.acquired_at == before.acquired_at and after.generation == lease.generation
    with engine.connect() as conn:
        now = database_now(conn)
    assert after.expires_at - now > (after.expires_at - after.renewed_at) / 2  # LONG_S from a moment ago
    assert not after.expired


def test_a_released_lease_is_free_at_once(engine: Engine) -> None:
    book = LeaseBook(engine)
    lease = _take(book, "a")
    assert lease is not None
    book.release(lease)
    assert _expired(book)
    assert book.renew(lease, LONG_S) is True  # released, but no one took it: still a's to renew
    assert _take(book, "b") is None
    book.release(lease)
    assert _take(book, "b") == Lease("alpha", "b", lease.generation + 1)
    book.release(lease)  # no longer a's: nothing happens
    assert not _expired(book)


def test_holders_lists_every_lease_with_its_holder_and_whether_it_expired(engine: Engine) -> None:
    book = LeaseBook(engine)
    assert book.holders() == []
    assert _take(book, "a", SHORT_S, account="alpha") is not None
    assert _take(book, "b", LONG_S, account="beta") is not None
    assert _take(book, "c", account="alpha") is None  # a refused take leaves no trace
    wait_until(lambda: _expired(book, "alpha"), timeout_s=5, what="alpha's lease to expire")
    rows = book.holders()
    assert [(r.account, r.holder, r.host, r.pid, r.generation) for r in rows] == [
        ("alpha", "a", "host-a", 100, 1),
        ("beta", "b", "host-b", 100, 1),
    ]
    assert [r.expired for r in rows] == [True, False]
    assert all(r.expires_at.tzinfo is not None for r in rows)


def _race(engine: Engine, account: str, holders: int) -> list[Lease | None]:
    """`holders` threads, each with a LeaseBook of its own, try to take `account`'s lease at the same moment."""
    start = threading.Barrier(holders)
    won: list[Lease | None] = []
    errors: list[BaseException] = []

    def race(holder: str) -> None:
        book = LeaseBook(engine)
        start.wait()
        try:
            won.append(book.try_acquire(account, holder, host="h", pid=1, lease_s=LONG_S))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(f"h{i}",)) for i in range(holders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(won) == holders
    return won


def test_holders_racing_for_one_lease_one_wins(engine: Engine) -> None:
    for round_ in range(5):
        account = f"race{round_}"
        won = _race(engine, account, 4)
        winners = [w for w in won if w is not None]
        assert len(winners) == 1, won
        assert winners[0].generation == 1
        holder = next(r for r in LeaseBook(engine).holders() if r.account == account)
        assert holder.holder == winners[0].holder


def test_a_bad_account_holder_or_lease_span_is_refused(engine: Engine) -> None:
    book = LeaseBook(engine)
    for account, holder, lease_s in (("Alpha", "a", 1), ("alpha", "", 1), ("alpha", "x" * 65, 1), ("alpha", "a", 0)):
        with pytest.raises(ValueError):
            book.try_acquire(account, holder, host="h", pid=1, lease_s=lease_s)
    assert book.holders() == []
