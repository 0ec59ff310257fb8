"""The control socket server: pynng Rep0 in its own thread of the supervisor process. Never crashes:
every request gets a reply, malformed or not."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pynng

from control.protocol import SOCKET_MAX_BYTES, CommandError, error, ok, parse_request

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], Any]


class ControlServer:
    """Serves `handler(cmd, args) -> data` on `address` (ipc:// files are made 0600)."""

    def __init__(self, address: str, handler: Handler, token: str | None = None, poll_ms: int = 200) -> None:
        self.address = address
        self._handler = handler
        self._token = token
        self._stop = threading.Event()
        # The size cap must be set before listen to apply (libraries.md §2).
        self._sock = pynng.Rep0(recv_max_size=SOCKET_MAX_BYTES, recv_timeout=poll_ms)
        self._sock.listen(address)
        if address.startswith("ipc://"):
            Path(address.removeprefix("ipc://")).chmod(0o600)
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self.served = 0

    def start(self) -> ControlServer:
        """Serve in a background thread."""
        self._thread.start()
        log.info("control socket listening on %s", self.address)
        return self

    def stop(self) -> None:
        """Stop serving and remove the socket."""
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def reply_to(self, raw: bytes) -> bytes:
        """The reply for one request (never raises)."""
        try:
            cmd, args = parse_request(raw, self._token)
            return ok(self._handler(cmd, args))
        except CommandError as exc:
            return error(exc.code, exc.message)
        except Exception as exc:
            log.exception("control command failed")
            return error("internal", f"{type(exc).__name__}: {exc}")

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw = self._sock.recv()
            except pynng.Timeout:
                continue
            except pynng.Closed:
                return
            reply = self.reply_to(raw)
            try:
                self._sock.send(reply)
                self.served += 1
            except pynng.NNGException as exc:
                log.warning("control reply not sent: %s", exc)
