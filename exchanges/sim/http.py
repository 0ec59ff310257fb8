"""A small threaded HTTP server for the simulators: routing, injected latency/5xx/429, never-answer."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from exchanges.http import ARRIVAL_HEADER
from exchanges.sim.faults import Faults, InjectedHttpError

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Request:
    """One HTTP request as a handler sees it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (ValueError if it is not)."""
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    """What a handler answers."""

    status: int
    body: Any = None  # JSON-able object, or str for text/plain
    headers: dict[str, str] = field(default_factory=dict)


class NeverAnswerError(Exception):
    """Raised by a handler that did its work but must leave the client without a reply."""


Handler = Callable[[Request], Response]
ErrorBody = Callable[[InjectedHttpError], Response]


class SimHttpServer:
    """Serves `routes` on 127.0.0.1:port in threads; `/_sim/` paths go to `admin` and skip faults."""

    def __init__(
        self,
        routes: dict[tuple[str, str], Handler],
        admin: Handler,
        faults: Faults,
        error_body: ErrorBody,
        port: int = 0,
        hold_s: float = 60.0,
    ) -> None:
        self._routes = routes
        self._admin = admin
        self._faults = faults
        self._error_body = error_body
        self._hold_s = hold_s
        self._stopping = threading.Event()
        # Called after every request the venue handled (persistence hooks in here), before the reply leaves.
        self.after_request: Callable[[], None] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-http", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port."""
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimHttpServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release held (never-answered) connections."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def dispatch(self, request: Request) -> Response | None:
        """Route one request through the faults; None means: answer nothing."""
        if request.path.startswith("/_sim"):
            return self._admin(request)
        if self._faults.latency_s:
            time.sleep(self._faults.latency_s)  # simulated network delay (real time on purpose)
        injected = self._faults.take_http_error()
        if injected is not None:
            return self._error_body(injected)
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            return Response(404, "Not Found")
        try:
            response = handler(request)
        except NeverAnswerError:
            self._after()
            self._stopping.wait(self._hold_s)
            return None
        self._after()
        return response

    def _after(self) -> None:
        if self.after_request is not None:
            self.after_request()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("sim http: " + format, *args)

            def _serve(self) -> None:
                self._received_ns = time.monotonic_ns()  # read by benchmarks through ARRIVAL_HEADER
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._send(Response(413, "Payload Too Large"))
                    return
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                try:
                    response = server.dispatch(request)
                except Exception:
                    log.exception("simulator handler failed on %s %s", request.method, request.path)
                    response = Response(500, {"error": "simulator bug"})
                if response is None:
                    self.close_connection = True
                    return
                self._send(response)

            def _send(self, response: Response) -> None:
                if isinstance(response.body, str):
                    payload, ctype = response.body.encode(), "text/plain; charset=utf-8"
                elif response.body is None:
                    payload, ctype = b"", "application/json; charset=utf-8"
                else:
                    payload, ctype = json.dumps(response.body).encode(), "application/json; charset=utf-8"
                self.send_response(response.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header(ARRIVAL_HEADER, str(self._received_ns))
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve  # noqa: N815

        return _Handler
