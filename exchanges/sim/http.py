"""A small threaded HTTP server for the simulators: routing, injected latency/5xx/429, never-answer, and
requests held past the client's timeout before the venue carries them out."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from core.clock import Clock
from exchanges.http import ARRIVAL_HEADER
from exchanges.sim.faults import Faults, InjectedDelay, InjectedHttpError
from exchanges.sim.order_log import order_sender

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
    # Every value of each query parameter, in order (for repeatable ones such as Backpack's marketType).
    query_all: dict[str, list[str]] = field(default_factory=dict)

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


def _plain_not_found(_request: Request) -> Response:
    return Response(404, "Not Found")


class ArrivalClock:
    """A venue's own clock that, while a held request is carried out, reads the time that request arrived.

    A real venue stamps a request at its gateway and checks the signed window or nonce against that stamp,
    however late its matching engine then gets to it. Install it as the simulator's `clock` (the clock its
    window and nonce checks read) and as its server's `arrival_clock`; the SimEngine keeps the plain clock,
    so orders and fills carry the time they were really made.
    """

    def __init__(self, inner: Clock) -> None:
        self._inner = inner
        self._local = threading.local()

    def now(self) -> datetime:
        """The pinned arrival time in a thread carrying out a held request, else the inner clock's time."""
        pinned: datetime | None = getattr(self._local, "at", None)
        return pinned if pinned is not None else self._inner.now()

    def monotonic(self) -> float:
        """The inner clock's monotonic time."""
        return self._inner.monotonic()

    def sleep(self, seconds: float) -> None:
        """The inner clock's sleep."""
        self._inner.sleep(seconds)

    @contextmanager
    def pinned(self, at: datetime) -> Iterator[None]:
        """Read `at` as now in this thread until the block ends."""
        self._local.at = at
        try:
            yield
        finally:
            self._local.at = None


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
        not_found: Handler = _plain_not_found,
    ) -> None:
        self._routes = routes
        self._not_found = not_found  # the venue's own error body for a path or method it does not serve
        self._admin = admin
        self._faults = faults
        self._error_body = error_body
        self._hold_s = hold_s
        self._stopping = threading.Event()
        # Called after every request the venue handled (persistence hooks in here), before the reply leaves.
        self.after_request: Callable[[], None] | None = None
        # When set, a held request's window/nonce checks read its arrival time (see ArrivalClock).
        self.arrival_clock: ArrivalClock | None = None
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

    def wrap_route(self, method: str, path: str, wrapper: Callable[[Handler], Handler]) -> None:
        """Replace a route's handler by `wrapper(handler)` (tests observe what a venue answered)."""
        self._routes[(method, path)] = wrapper(self._routes[(method, path)])

    def dispatch(self, request: Request) -> Response | None:
        """Route one request through the faults; None means: answer nothing. Orders it places are logged as
        sent by its User-Agent ("http" when it has none)."""
        if request.path.startswith("/_sim"):
            return self._admin(request)
        with order_sender(request.headers.get("user-agent") or "http"):
            return self._dispatch(request)

    def _dispatch(self, request: Request) -> Response | None:
        latency = self._faults.take_latency()
        if latency:
            time.sleep(latency)  # simulated network delay (real time on purpose)
        injected = self._faults.take_http_error()
        if injected is not None:
            return self._error_body(injected)
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            return self._not_found(request)
        delay = self._faults.take_delay(request.method, request.path)
        if delay is not None:
            self._deliver_late(handler, request, delay)
            return None
        try:
            response = handler(request)
        except NeverAnswerError:
            self._after()
            self._hold_unanswered()
            return None
        self._after()
        return response

    def _deliver_late(self, handler: Handler, request: Request, delay: InjectedDelay) -> None:
        """Hold the request on the venue's clock, then carry it out; its reply is never sent (the client timed
        out). Its window/nonce are checked against the arrival time when an ArrivalClock is installed."""
        arrival = self._faults.clock.now()
        self._faults.clock.sleep(delay.seconds)
        if self._stopping.is_set():
            return
        pin: AbstractContextManager[None] = nullcontext()
        if self.arrival_clock is not None:
            pin = self.arrival_clock.pinned(arrival)
        with pin, suppress(NeverAnswerError):
            handler(request)
        self._faults.note_taken("delay")
        self._after()

    def _hold_unanswered(self) -> None:
        """Keep a never-answered connection open (the client sees a timeout, not a reset)."""
        self._stopping.wait(self._hold_s)

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
                length_text = self.headers.get("Content-Length") or "0"
                length = int(length_text) if length_text.isascii() and length_text.isdigit() else -1
                if length < 0 or length > MAX_BODY:
                    self._send(Response(413, "Payload Too Large"))
                    return
                pairs = parse_qsl(parts.query, keep_blank_values=True)
                query_all: dict[str, list[str]] = {}
                for key, value in pairs:
                    query_all.setdefault(key, []).append(value)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=dict(pairs),
                    query_all=query_all,
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
                if self.command != "HEAD":  # a HEAD reply carries the headers alone
                    self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = do_HEAD = do_OPTIONS = do_TRACE = _serve  # noqa: N815

        return _Handler
