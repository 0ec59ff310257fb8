"""Who sent each order a simulator saw: the sender (the client's User-Agent) beside the account and client id,
in the order the matching engine took them, so a test can prove two worker processes never traded one account
at the same time.

The server sets the sender around each request it carries out (order_sender); the engine reads it when an
order reaches it (OrderLog.record). Orders placed in-process, not over the wire, have the sender None.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exchanges.http import session_of

# A context variable, not a global: every request is carried out in a thread (and context) of its own.
_sender: ContextVar[str | None] = ContextVar("sim_order_sender", default=None)
KEEP = 100_000  # entries kept; older ones are dropped (a paper host may run for weeks)


@contextmanager
def order_sender(sender: str | None) -> Iterator[None]:
    """Orders placed within the block, in this thread, are logged as sent by `sender`."""
    token = _sender.set(sender)
    try:
        yield
    finally:
        _sender.reset(token)


def current_sender() -> str | None:
    """The sender order_sender set here, or None (an order placed in-process)."""
    return _sender.get()


@dataclass(frozen=True, slots=True)
class OrderLogEntry:
    """One order the matching engine saw: accepted (order_id set) or refused (refused says why)."""

    seq: int
    at: datetime  # the engine's clock
    account: str
    client_id: str | None
    order_id: str | None
    symbol: str
    side: str
    refused: str | None
    sender: str | None

    def to_json(self) -> dict[str, Any]:
        """The entry as the admin endpoint serves it; `session` is the sender's session tag, if it is ours."""
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "account": self.account,
            "client_id": self.client_id,
            "order_id": self.order_id,
            "symbol": self.symbol,
            "side": self.side,
            "refused": self.refused,
            "sender": self.sender,
            "session": session_of(self.sender),
        }


class OrderLog:
    """The engine's order log, numbered from 1; callers hold the engine lock."""

    def __init__(self, keep: int = KEEP) -> None:
        self._entries: deque[OrderLogEntry] = deque(maxlen=keep)
        self.next_seq = 1

    def record(
        self, at: datetime, account: str, client_id: str | None, order_id: str | None, symbol: str, side: str,
        refused: str | None = None,
    ) -> OrderLogEntry:  # fmt: skip
        """Append one order, sent by the current sender."""
        entry = OrderLogEntry(self.next_seq, at, account, client_id, order_id, symbol, side, refused, current_sender())
        self.next_seq += 1
        self._entries.append(entry)
        return entry

    def since(self, seq: int = 0, account: str | None = None) -> list[OrderLogEntry]:
        """The entries numbered above `seq` still kept, oldest first, of `account` alone if given."""
        return [e for e in self._entries if e.seq > seq and (account is None or e.account == account)]

    def __len__(self) -> int:
        return len(self._entries)


def interleavings(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Accounts on which one sender's orders resumed after another's began (A, B, A): the senders' order
    intervals overlap. `entries` are to_json() dicts, of one venue or several merged (ordered by `at`)."""
    ordered = sorted(entries, key=lambda e: (datetime.fromisoformat(e["at"]), e["seq"]))
    finished: dict[str, set[Any]] = {}  # account -> senders whose run of orders has ended
    current: dict[str, Any] = {}
    problems: list[str] = []
    for entry in ordered:
        account, sender = entry["account"], entry["sender"]
        if account in current and current[account] != sender:
            finished.setdefault(account, set()).add(current[account])
            if sender in finished[account]:
                problems.append(f"{account}: {sender!r} sent order seq {entry['seq']} after another sender's")
        current[account] = sender
    return problems
