"""Websocket side of the simulators: subscriptions per connection, publishing, and dropping connections."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

log = logging.getLogger(__name__)


def ws_sender(conn: ServerConnection) -> str:
    """Who a connection's orders are logged as sent by: its handshake's User-Agent, else "ws"."""
    agent = conn.request.headers.get("User-Agent") if conn.request is not None else None
    return agent or "ws"


# Given a connection's text frame, return the stream keys it subscribes to (+) / unsubscribes from (-),
# and an optional text reply.
OnMessage = Callable[[str], tuple[set[str], set[str], str | None]]


class WsSession:
    """One connection as a frame handler sees it: change its subscriptions and send it frames directly."""

    def __init__(self, server: SimWsServer, conn: ServerConnection) -> None:
        self._server = server
        self._conn = conn

    @property
    def conn(self) -> ServerConnection:
        """The connection itself, for handlers that keep state of their own per connection."""
        return self._conn

    def subscribe(self, keys: Iterable[str]) -> None:
        """Add stream keys; frames published to them reach this connection from now on."""
        self._server._change(self._conn, set(keys), set())

    def unsubscribe(self, keys: Iterable[str]) -> None:
        """Remove stream keys."""
        self._server._change(self._conn, set(), set(keys))

    def held_keys(self) -> set[str]:
        """The stream keys this connection holds."""
        with self._server._lock:
            return set(self._server._subs.get(self._conn, ()))

    def send(self, frame: str) -> bool:
        """Send one frame to this connection alone; False when it is closed."""
        return self._server._send(self._conn, frame)


# The richer handler: it sees the connection, so it can subscribe and send a snapshot in one step.
OnFrame = Callable[[WsSession, str], None]


class SimWsServer:
    """Publishes text frames to the connections subscribed to a stream key."""

    def __init__(
        self,
        on_message: OnMessage | None = None,
        port: int = 0,
        path: str | None = None,
        *,
        on_frame: OnFrame | None = None,
        is_private: Callable[[str], bool] = lambda _key: False,
    ) -> None:
        if (on_message is None) == (on_frame is None):
            raise ValueError("give exactly one of on_message and on_frame")
        self._on_message = on_message
        self._on_frame = on_frame
        self._is_private = is_private
        self._path = path
        self._lock = threading.Lock()
        self._subs: dict[ServerConnection, set[str]] = {}
        self.sent = 0
        self.connections_accepted = 0
        self.subscriptions_made = 0  # grows on every subscribe: publishers resend a full snapshot then
        self.drops_taken = 0  # drop_all() calls that closed at least one connection (fault taken)
        self._server: Server = serve(self._handle, "127.0.0.1", port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-ws", daemon=True)

    @property
    def port(self) -> int:
        """The bound port."""
        return self._server.socket.getsockname()[1]

    def start(self) -> SimWsServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and stop serving."""
        self.drop_all()
        self._server.shutdown()

    def _handle(self, conn: ServerConnection) -> None:
        if self._path is not None and conn.request is not None and conn.request.path.split("?")[0] != self._path:
            conn.close(1008, "unknown path")
            return
        with self._lock:
            self._subs[conn] = set()
            self.connections_accepted += 1
        session = WsSession(self, conn)
        try:
            for message in conn:
                if not isinstance(message, str):
                    continue
                if self._on_frame is not None:
                    self._on_frame(session, message)
                    continue
                assert self._on_message is not None
                added, removed, reply = self._on_message(message)
                self._change(conn, added, removed)
                if reply is not None:
                    conn.send(reply)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._subs.pop(conn, None)

    def _change(self, conn: ServerConnection, added: set[str], removed: set[str]) -> None:
        with self._lock:
            if conn not in self._subs:
                return
            self._subs[conn] |= added
            self._subs[conn] -= removed
            self.subscriptions_made += len(added)

    def _send(self, conn: ServerConnection, frame: str) -> bool:
        try:
            conn.send(frame)
        except ConnectionClosed:
            return False
        with self._lock:
            self.sent += 1
        return True

    def subscribers(self, key: str) -> int:
        """How many connections subscribe to `key`."""
        with self._lock:
            return sum(1 for keys in self._subs.values() if key in keys)

    def subscribed_keys(self) -> set[str]:
        """Every key some connection subscribes to (publishers skip work nobody would receive)."""
        with self._lock:
            return set().union(*self._subs.values()) if self._subs else set()

    def publish(self, key: str, frame: str) -> int:
        """Send `frame` to every subscriber of `key`; returns how many got it."""
        with self._lock:
            targets = [c for c, keys in self._subs.items() if key in keys]
        delivered = 0
        for conn in targets:
            try:
                conn.send(frame)
                delivered += 1
            except ConnectionClosed:
                continue
        with self._lock:
            self.sent += delivered
        return delivered

    def drop_all(self) -> int:
        """Close every connection abruptly (fault injection); returns how many were dropped."""
        return self._drop(lambda _keys: True)

    def drop_private(self) -> int:
        """Close every connection holding a private stream key (fault injection); public-only ones stay."""
        return self._drop(lambda keys: any(self._is_private(k) for k in keys))

    def _drop(self, which: Callable[[set[str]], bool]) -> int:
        with self._lock:
            conns = [c for c, keys in self._subs.items() if which(keys)]
        for conn in conns:
            conn.close(1012, "simulator dropped the connection")
        if conns:
            with self._lock:
                self.drops_taken += 1
        return len(conns)
