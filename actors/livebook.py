"""LiveBook: the pairs the Monitor watches, with their legs, orders and leg books, held in memory.

Loaded from the database when the Monitor starts or reconciles; then kept current by the writer, which tells the
book, for every message it commits, which pairs it changed (`committing`). A reading applies those changes first:
it re-reads only the pairs changed since the last reading, and applies a leg's new figures (the Monitor's marks)
as written. So a reading sees every change committed before it began, as a database read would: the writer holds
the book's commit lock from a message's first write until the change is told, and a reading takes the changes
under that lock.

One book per database engine (`book_of`): the writer and the readers of one process meet on it without wiring.
Without a writer in the process to feed it, every reading reads the whole book again.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from actors.board import StatusBoard
from actors.limitbook import RECENT_PAIRS
from actors.messages import (
    BeginOpen,
    CreatePair,
    RecordOrder,
    TransitionPair,
    UpdateOrder,
    UpdatePosition,
    WriteBatch,
)
from core.domain import ACTIVE_STATES, PairState
from core.ledger import LegBook, leg_book
from core.limits import DAY, HOUR
from storage.errors import NotFoundError
from storage.queries import Queries
from storage.records import KEEP, LegFigures, OrderRecord, PairRecord, PositionRecord

MAX_UNREAD_CHANGES = 100_000
LegsOrders = list[tuple[PositionRecord, list[OrderRecord]]]


@dataclass(frozen=True, slots=True)
class LiveLeg:
    """A leg, its orders, the leg's book from them, and what it holds (the book's, worked out once)."""

    leg: PositionRecord
    orders: tuple[OrderRecord, ...]
    book: LegBook
    held: Decimal


@dataclass(frozen=True, slots=True)
class LivePair:
    """A pair and its legs (long first)."""

    pair: PairRecord
    legs: tuple[LiveLeg, ...]


def live_pair(pair: PairRecord, legs: LegsOrders) -> LivePair:
    """A pair with its legs as read from the database."""
    books = [(leg, orders, leg_book(leg.side, orders)) for leg, orders in legs]
    return LivePair(pair, tuple(LiveLeg(leg, tuple(orders), book, book.held) for leg, orders, book in books))


def _kept(pair: PairRecord, now: datetime) -> bool:
    """Live, or finished lately enough to count in the limits' figures (the day's cost, the hour's opens)."""
    if not pair.state.is_terminal:
        return True
    return (pair.closed_at or now) >= now - DAY or pair.created_at >= now - HOUR


Change = tuple[str, int, LegFigures | None]  # ("pair", pair id) | ("order", order id) | ("leg", position id, figures)


def changes_of(message: Any, result: Any) -> list[Change]:
    """What a committed write message (with the writer's reply) changed of the pairs, their legs and orders."""
    if isinstance(message, WriteBatch):
        replies = result if isinstance(result, tuple) else (None,) * len(message.items)
        return [c for item, reply in zip(message.items, replies, strict=True) for c in changes_of(item, reply)]
    ident = getattr(result, "pair_id", getattr(result, "id", None))
    match message:
        case BeginOpen() | CreatePair() if ident is not None:
            return [("pair", ident, None)]
        case TransitionPair(pair_id=pair_id):
            return [("pair", pair_id, None)]
        case RecordOrder(order=order):
            return [("pair", order.pair_id, None)]
        case UpdateOrder() if ident is not None:
            return [("order", ident, None)]
        case UpdatePosition(position_id=position_id, figures=figures):
            return [("leg", position_id, figures)]
    return []


class Commit:
    """The writer's reply to the message being committed (`done`), for the book to read what it changed."""

    def __init__(self) -> None:
        self.result: Any = None

    def done(self, result: Any) -> Any:
        """Keep the reply and give it back."""
        self.result = result
        return result


class LiveBook:
    """The live pairs (and those finished lately) of one database, by pair id; thread-safe."""

    def __init__(self) -> None:
        self._commit = threading.Lock()  # the writer's, from a message's first write until its change is told
        self._sync = threading.Lock()  # one reading applies changes at a time, in commit order
        self._lock = threading.Lock()  # the data below
        self._fed = False
        self._reload = True
        self._changes: list[Change] = []
        self._pairs: dict[int, LivePair] = {}
        self._leg_pair: dict[int, int] = {}
        self._order_pair: dict[int, int] = {}
        self._finished: dict[PairState, int] = {}  # CLOSED and FAILED pairs (the live ones are all held)
        self._max_id = 0
        self._live: list[LivePair] | None = None
        self.loaded = False
        self.version = 0  # counts the readings that changed a pair, its orders or its legs' holdings
        self.board = StatusBoard()

    # ---- the writer's side -------------------------------------------------------------------------------------

    def attach(self) -> None:
        """A writer feeds this book from now on."""
        self._fed = True

    @contextmanager
    def committing(self, message: Any) -> Iterator[Commit]:
        """Around one write message: a reading waits for it; once it is done, what it changed is told. A message
        that failed may have committed part of itself: the next reading reads everything again."""
        commit = Commit()
        with self._commit:
            try:
                yield commit
            except BaseException:
                self._reload = True
                raise
            self._changes.extend(changes_of(message, commit.result))
            if len(self._changes) > MAX_UNREAD_CHANGES:  # nobody reads (no Monitor): read everything when one does
                self._changes, self._reload = [], True

    # ---- the readers' side -------------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Read everything again at the next reading (a start, a reconciliation)."""
        with self._commit:
            self._reload = True

    def sync(self, repo: Queries, now: datetime, *, wait: bool = True) -> bool:
        """Apply what committed since the last reading (re-reading only the pairs it changed), or read everything
        when the book is new, invalidated or not fed. Without `wait`, False at once when a reading or a commit is
        under way (the book is left as it was)."""
        if not self._sync.acquire(blocking=wait):
            return False
        try:
            if not self._commit.acquire(blocking=wait):
                return False
            try:
                changes, self._changes = self._changes, []
                reload, self._reload = self._reload or not self._fed, False
            finally:
                self._commit.release()
            if reload:
                self._load(repo, now)
            else:
                self._apply(repo, changes, now)
            return True
        finally:
            self._sync.release()

    def live(self) -> list[LivePair]:
        """The pairs not yet CLOSED or FAILED, newest first (as of the last reading)."""
        return self.versioned()[1]

    def versioned(self) -> tuple[int, list[LivePair]]:
        """The live pairs (as `live`) with the book's version: the same version, the same pairs, orders and
        holdings (a leg's figures, such as its mark, may differ)."""
        with self._lock:
            if self._live is None:
                self._live = sorted(
                    (p for p in self._pairs.values() if p.pair.state in ACTIVE_STATES),
                    key=lambda p: p.pair.id,
                    reverse=True,
                )
            return self.version, self._live

    def kept(self) -> list[LivePair]:
        """Every pair held: the live ones and those finished in the last day or opened in the last hour."""
        with self._lock:
            return list(self._pairs.values())

    def counts(self) -> dict[PairState, int]:
        """How many pairs are in each state (all of the database's, not only those held)."""
        counts = dict.fromkeys(ACTIVE_STATES, 0)
        for held in self.live():
            counts[held.pair.state] += 1
        with self._lock:
            return counts | self._finished

    # ---- keeping it ---------------------------------------------------------------------------------------------

    def _load(self, repo: Queries, now: datetime) -> None:
        pairs = {p.id: p for p in repo.list_pairs(limit=RECENT_PAIRS)}
        pairs.update((p.id, p) for p in repo.list_active_pairs())
        kept = [p for p in pairs.values() if _kept(p, now)]
        books = repo.legs_with_orders(p.id for p in kept)
        counts = repo.count_pairs_by_state()
        self.board.load_alerts(repo.list_events(limit=200))
        with self._lock:
            self._pairs, self._leg_pair, self._order_pair = {}, {}, {}
            for pair in kept:
                self._index(live_pair(pair, books.get(pair.id, [])))
            self._finished = {state: n for state, n in counts.items() if state.is_terminal}
            self._max_id = max(pairs, default=0)
            self._live = None
            self.version += 1
            self.loaded = True

    def _apply(self, repo: Queries, changes: list[Change], now: datetime) -> None:
        if not changes:
            return
        with self._lock:
            dirty = {i for kind, i, _ in changes if kind == "pair"}
            dirty |= {self._order_pair[i] for kind, i, _ in changes if kind == "order" and i in self._order_pair}
        fresh: dict[int, PairRecord | None] = {}
        for pair_id in sorted(dirty):
            try:
                fresh[pair_id] = repo.get_pair(pair_id)
            except NotFoundError:
                fresh[pair_id] = None  # never committed
        books = repo.legs_with_orders(i for i, p in fresh.items() if p is not None and _kept(p, now))
        with self._lock:
            for pair_id, pair in fresh.items():
                self._replace(pair_id, pair, books.get(pair_id, []), now)
            for kind, position_id, figures in changes:
                pair_id = self._leg_pair.get(position_id, 0)
                # A pair just re-read holds these figures already (committed before the reading).
                if kind == "leg" and figures is not None and pair_id and pair_id not in fresh:
                    self._update_leg(pair_id, position_id, figures)
            self._prune(now)
            self._live = None
            if fresh:
                self.version += 1

    def _replace(self, pair_id: int, pair: PairRecord | None, legs: LegsOrders, now: datetime) -> None:
        old = self._pairs.get(pair_id)
        if old is not None:
            self._unindex(old)
        if pair is None:
            return
        # A pair that finishes now is counted once; one not held and not new finished long ago: it never moves.
        finishing = (old is not None and not old.pair.state.is_terminal) or (old is None and pair_id > self._max_id)
        if pair.state.is_terminal and finishing:
            self._finished[pair.state] = self._finished.get(pair.state, 0) + 1
        self._max_id = max(self._max_id, pair_id)
        if _kept(pair, now):
            self._index(live_pair(pair, legs))

    def _update_leg(self, pair_id: int, position_id: int, figures: LegFigures) -> None:
        held = self._pairs[pair_id]
        values = {f.name: getattr(figures, f.name) for f in fields(figures) if getattr(figures, f.name) is not KEEP}
        legs = tuple(replace(x, leg=replace(x.leg, **values)) if x.leg.id == position_id else x for x in held.legs)
        self._pairs[pair_id] = replace(held, legs=legs)

    def _index(self, held: LivePair) -> None:
        self._pairs[held.pair.id] = held
        for x in held.legs:
            self._leg_pair[x.leg.id] = held.pair.id
            for order in x.orders:
                self._order_pair[order.id] = held.pair.id

    def _unindex(self, held: LivePair) -> None:
        self._pairs.pop(held.pair.id, None)
        for x in held.legs:
            self._leg_pair.pop(x.leg.id, None)
            for order in x.orders:
                self._order_pair.pop(order.id, None)

    def _prune(self, now: datetime) -> None:
        for held in [p for p in self._pairs.values() if not _kept(p.pair, now)]:
            self._unindex(held)


_BOOKS: weakref.WeakKeyDictionary[Engine, LiveBook] = weakref.WeakKeyDictionary()
_BOOKS_LOCK = threading.Lock()


def book_of(engine: Engine) -> LiveBook:
    """The one book of the database `engine` opens, in this process."""
    with _BOOKS_LOCK:
        book = _BOOKS.get(engine)
        if book is None:
            book = _BOOKS[engine] = LiveBook()
        return book
