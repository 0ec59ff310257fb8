"""Leases on accounts: which process trades which account, so that two never trade one account from one database.

A lease is a row of account_leases. It is taken when free, expired, or already ours, by one conditional UPDATE
(atomic on SQLite and on PostgreSQL alike); its holder renews it before it expires, and a lease left to expire
(its holder dead, or cut off from the database) can be taken by another. Every time is read from the database's
clock, never a host's, so two hosts with skewed clocks still agree on when a lease ends. The generation goes up
by one each time the lease changes holder: a holder that lost its lease cannot renew it, even after it comes free.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, case, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.accounts import check_account
from storage.schema import account_leases
from storage.types import UTCDateTime

_FREE_SINCE = datetime(1970, 1, 1, tzinfo=UTC)  # the times of a lease row no one has held yet
_HOLDER_MAX = 64
_HOST_MAX = 255

_L = account_leases.c
_NOW = bindparam("w_now", type_=UTCDateTime())  # typed: a bare parameter would store an aware time as it prints
_OURS = and_(_L.account == bindparam("w_account"), _L.holder == bindparam("w_holder"))
_TAKE = (
    update(account_leases)
    .where(_L.account == bindparam("w_account"), or_(_L.holder == bindparam("w_holder"), _L.expires_at <= _NOW))
    .values(
        # Before SET applies, `holder` is the previous holder: the generation moves on only when it changes.
        generation=case((_L.holder == bindparam("w_holder"), _L.generation), else_=_L.generation + 1),
        acquired_at=case((_L.holder == bindparam("w_holder"), _L.acquired_at), else_=_NOW),
        holder=bindparam("w_holder"),
    )
    .returning(_L.generation)
)
_RENEW = update(account_leases).where(_OURS, _L.generation == bindparam("w_generation"))


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease held: the account, who holds it, and the generation it was taken at."""

    account: str
    holder: str
    generation: int


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """A lease as stored, for a listing (`expired`: by the database's clock when it was read)."""

    account: str
    holder: str
    host: str
    pid: int
    generation: int
    expires_at: datetime
    expired: bool
    acquired_at: datetime
    renewed_at: datetime


def database_now(conn: Connection) -> datetime:
    """The database server's time now, in UTC (SQLite's: this host's clock, read by SQLite; milliseconds)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # clock_timestamp(), not now(): now() is the transaction's start, which a wait on a row lock leaves behind.
        found: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        return found.astimezone(UTC)
    if dialect == "sqlite":
        stamp: str = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
        return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    raise ValueError(f"leases need SQLite or PostgreSQL, not {dialect}")


def _span(lease_s: Decimal | float | int) -> timedelta:
    seconds = Decimal(str(lease_s))
    if not seconds > 0:
        raise ValueError(f"lease_s must be > 0, not {lease_s}")
    return timedelta(seconds=float(seconds))


def _insert_free(conn: Connection, account: str) -> None:
    """A free lease row for `account` unless there is one: another process inserting it at the same time is no
    error (ON CONFLICT DO NOTHING; on PostgreSQL the second insert waits for the first to commit)."""
    dialect_insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    free = {"holder": "", "host": "", "pid": 0, "generation": 0}
    times = {"acquired_at": _FREE_SINCE, "renewed_at": _FREE_SINCE, "expires_at": _FREE_SINCE}
    statement = dialect_insert(account_leases).on_conflict_do_nothing(index_elements=[_L.account])
    conn.execute(statement, {"account": account, **free, **times})


class LeaseBook:
    """The account leases of one database; safe to share between threads (each call is one transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def try_acquire(
        self, account: str, holder: str, *, host: str, pid: int, lease_s: Decimal | float | int
    ) -> Lease | None:
        """Take `account`'s lease for `lease_s` seconds if it is free, expired, or already `holder`'s (then it is
        renewed, host and pid updated); None while another holder's lease runs."""
        check_account(account)
        if not 0 < len(holder) <= _HOLDER_MAX or len(host) > _HOST_MAX:
            raise ValueError(f"a lease holder is 1 to {_HOLDER_MAX} characters and a host at most {_HOST_MAX}")
        span = _span(lease_s)
        with self.engine.begin() as conn:
            # The INSERT comes first: on SQLite it takes the write lock, so the clock is read after any wait for it.
            _insert_free(conn, account)
            now = database_now(conn)
            values = {"host": host, "pid": pid, "renewed_at": now, "expires_at": now + span}
            generation = conn.execute(
                _TAKE, {"w_account": account, "w_holder": holder, "w_now": now, **values}
            ).scalar_one_or_none()
        return None if generation is None else Lease(account, holder, int(generation))

    def renew(self, lease: Lease, lease_s: Decimal | float | int) -> bool:
        """Extend `lease` to `lease_s` seconds from now; False when it is no longer ours (another holder took it,
        since: its generation moved on). A lease that expired with no one taking it is still ours to renew."""
        span = _span(lease_s)
        with self.engine.begin() as conn:
            now = database_now(conn)
            renewed = conn.execute(_RENEW, {**_key(lease), "renewed_at": now, "expires_at": now + span})
            return renewed.rowcount == 1

    def release(self, lease: Lease) -> None:
        """Let `lease` expire now, so that another holder may take it at once (nothing if it is no longer ours).
        The row stays: its generation must keep counting."""
        with self.engine.begin() as conn:
            conn.execute(_RENEW, {**_key(lease), "expires_at": database_now(conn)})

    def holders(self) -> list[LeaseRow]:
        """Every lease ever taken, by account, each marked expired or not by the database's clock."""
        with self.engine.connect() as conn:
            now = database_now(conn)
            rows = conn.execute(select(account_leases).where(_L.holder != "").order_by(_L.account)).mappings().all()
        return [
            LeaseRow(
                account=r["account"],
                holder=r["holder"],
                host=r["host"],
                pid=r["pid"],
                generation=r["generation"],
                expires_at=r["expires_at"],
                expired=r["expires_at"] <= now,
                acquired_at=r["acquired_at"],
                renewed_at=r["renewed_at"],
            )
            for r in rows
        ]


def _key(lease: Lease) -> dict[str, Any]:
    return {"w_account": lease.account, "w_holder": lease.holder, "w_generation": lease.generation}
