"""Requests whose bytes are held back at a LegGate and written by whichever leg's thread arrives last, so the legs
of an open leave back to back from one thread (core/gate.py says why).

The hold sits under requests and urllib3, in the connection class of the pools a RestTransport's session uses:
urllib3 builds the request as always, but a held connection keeps the bytes instead of writing them (after
connecting, so the write is all that is left), and writes them only when its thread asks for the reply. Any
request not marked by `held_at` goes straight to the wire, as urllib3 would send it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from core.gate import LegGate

_thread = threading.local()  # per thread: `gate`, the open's gate for its next order; `held`, a request held now


@contextmanager
def legs_together(gate: LegGate | None) -> Iterator[None]:
    """Within the block, the first write request this thread sends meets the other legs at `gate` (None: no
    gate). A gate the block never used is abandoned on leaving it, so no partner waits for this leg."""
    _thread.gate = gate
    try:
        yield
    finally:
        _thread.gate = None
        if gate is not None:
            gate.abandon()


def take_gate() -> LegGate | None:
    """The gate this thread's next write request meets (once: it is taken), or None."""
    gate: LegGate | None = getattr(_thread, "gate", None)
    _thread.gate = None
    return gate


@dataclass(eq=False)
class HeldRequest:
    """One request's bytes, held on its connection until the gate fires; when they left and what failed."""

    gate: LegGate
    connection: HTTPConnection | None = None
    chunks: list[bytes] = field(default_factory=list)
    sent_ns: int | None = None
    error: OSError | None = None

    def write(self) -> None:
        """Put the held bytes on the wire (from any thread); an error is kept for the leg's own thread."""
        self.sent_ns = time.monotonic_ns()
        try:
            if self.connection is None or self.connection.sock is None:
                raise ConnectionError("the held request has no open connection")
            self.connection.sock.sendall(b"".join(self.chunks))
        except OSError as exc:
            self.error = exc


@contextmanager
def held_at(gate: LegGate) -> Iterator[HeldRequest]:
    """Within the block, the request this thread sends over a held connection waits at `gate`."""
    held = HeldRequest(gate)
    _thread.held = held
    try:
        yield held
    finally:
        _thread.held = None


class _Holding:
    """The hold, mixed into urllib3's connection classes."""

    sock: Any

    def send(self, data: Any) -> None:
        held: HeldRequest | None = getattr(_thread, "held", None)
        if held is None or held.connection not in (None, self):
            super().send(data)  # type: ignore[misc]
            return
        if not isinstance(data, bytes | bytearray):  # a file body: sent now, it would pass the held headers
            raise TypeError(f"a held request carries bytes only, not {type(data).__name__}")
        if self.sock is None:
            self.connect()  # type: ignore[attr-defined]  # in the leg's own thread: only the write is left
        held.connection = self  # type: ignore[assignment]
        held.chunks.append(bytes(data))

    def getresponse(self) -> Any:
        held: HeldRequest | None = getattr(_thread, "held", None)
        if held is not None and held.connection is self:
            _thread.held = None
            held.gate.ready(held.write)
            if held.error is not None:
                raise held.error
        return super().getresponse()  # type: ignore[misc]


class HeldHTTPConnection(_Holding, HTTPConnection):
    """urllib3's HTTP connection, able to hold a request."""


class HeldHTTPSConnection(_Holding, HTTPSConnection):
    """urllib3's HTTPS connection, able to hold a request."""


class HeldHTTPConnectionPool(HTTPConnectionPool):
    """A pool of HeldHTTPConnection."""

    ConnectionCls = HeldHTTPConnection


class HeldHTTPSConnectionPool(HTTPSConnectionPool):
    """A pool of HeldHTTPSConnection."""

    ConnectionCls = HeldHTTPSConnection


def hold_writes_on(session: requests.Session) -> None:
    """Make the session's direct (not proxied) connections able to hold a request."""
    for adapter in session.adapters.values():
        if isinstance(adapter, requests.adapters.HTTPAdapter):
            adapter.poolmanager.pool_classes_by_scheme = {
                "http": HeldHTTPConnectionPool,
                "https": HeldHTTPSConnectionPool,
            }
