"""Websocket side of the simulators: subscriptions per connection, publishing, and dropping connections."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

log = logging.getLogger(__name__)

# Given a connection's text frame, return the stream keys it subscribes to (+) / unsubscribes from (-),
# and an optional text reply.
OnMessage = Callable[[str], tuple[set[str], set[str], str | None]]


class SimWsServer:
    """Publishes text frames to the connections subscribed to a stream key."""

    def __init__(self, on_message: OnMessage, port: int = 0, path: str | None = None) -> None:
        self._on_message = on_message
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
        try:
            for message in conn:
                if not isinstance(message, str):
                    continue
                added, removed, reply = self._on_message(message)
                with self._lock:
                    self._subs[conn] |= added
                    self._subs[conn] -= removed
                    self.subscriptions_made += len(added)
                if reply is not None:
                    conn.send(reply)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._subs.pop(conn, None)

    def subscribers(self, key: str) -> int:
        """How many connections subscribe to `key`."""
        with self._lock:
            return sum(1 for keys in self._subs.values() if key in keys)

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
        with self._lock:
            conns = list(self._subs)
        for conn in conns:
            conn.close(1012, "simulator dropped the connection")
        if conns:
            with self._lock:
                self.drops_taken += 1
        return len(conns)
