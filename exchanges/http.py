"""The HTTP edge shared by venue clients: pacing, timeouts, GET-only retries with backoff, typed errors.

A venue supplies its error parser and, for signed calls, a function that builds fresh headers for every
attempt (a retried request must carry a fresh timestamp or nonce). A request goes in two halves, `prepare`
(paced, signed, encoded: everything but the wire) and `send`, so that an order can be made ready first and
fired later (arm-and-fire, core/gate.py). Every request is stamped (WireMark) into the lists `recording`
holds open on the calling thread. The User-Agent carries a per-process session tag (session_tag()).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import requests
from requests.utils import getproxies

from core.clock import Clock
from exchanges.base import WireMark
from exchanges.errors import MalformedResponse, RateLimited, VenueError, VenueUnavailable
from exchanges.held_writes import held_at, hold_writes_on, take_gate
from exchanges.ratelimit import RateLimiter

log = logging.getLogger(__name__)

ErrorParser = Callable[[int, str, str | None], VenueError]
HeaderSource = Callable[[], Mapping[str, str]]
# Our simulators stamp when a request reached them (time.monotonic_ns); real venues send no such header.
ARRIVAL_HEADER = "X-Sim-Received-Ns"
PRODUCT = "perp-farmer/0.1"
_SESSION_RE = re.compile(r"\(session ([0-9a-f]{8})\)")
# Drawn once per process (and again in a forked child): our simulators log it beside every order, so a test
# can tell which worker process sent what. Random, so it says nothing about the host or the account.
_session = [secrets.token_hex(4)]


def _redraw_session() -> None:
    _session[0] = secrets.token_hex(4)  # a forked child is another process: it gets a tag of its own


os.register_at_fork(after_in_child=_redraw_session)


def session_tag() -> str:
    """This process's session tag (8 hex digits), sent in the User-Agent of every client it makes."""
    return _session[0]


def user_agent() -> str:
    """The User-Agent our clients send: product and version, then this process's session tag."""
    return f"{PRODUCT} (session {session_tag()})"


def session_of(agent: str | None) -> str | None:
    """The session tag in a User-Agent we sent, or None for anyone else's."""
    found = _SESSION_RE.search(agent or "")
    return found.group(1) if found else None


def uses_environment_proxy() -> bool:
    """True when HTTP(S)_PROXY or ALL_PROXY is set: requests must then read the environment per request."""
    return any(scheme in getproxies() for scheme in ("http", "https", "all"))


def _arrival(headers: Mapping[str, str]) -> int | None:
    value = headers.get(ARRIVAL_HEADER)
    return int(value) if value is not None and value.isascii() and value.isdigit() else None


@dataclass(eq=False, slots=True)
class PreparedRequest:
    """One request paced, signed and prepared by the HTTP library, not yet on the wire; it can be sent once."""

    method: str
    path: str
    prepared: requests.PreparedRequest
    settings: dict[str, Any]
    sent: bool = False


class RestTransport:
    """One venue's requests.Session behind a rate limiter; only calls marked `retry` are ever repeated."""

    def __init__(
        self,
        venue: str,
        clock: Clock,
        parse_error: ErrorParser,
        *,
        connect_timeout_s: float = 3.05,
        read_timeout_s: float = 10.0,
        requests_per_s: float = 10.0,
        get_retries: int = 3,
        backoff_s: float = 0.25,
    ) -> None:
        self.venue = venue
        self._clock = clock
        self._parse_error = parse_error
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._limiter = RateLimiter(clock, requests_per_s, burst=max(1, int(requests_per_s)))
        self._get_retries = get_retries
        self._backoff_s = backoff_s
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": user_agent(), "Accept": "application/json"})
        # With trust_env, requests re-reads proxy variables and ~/.netrc on every request (about 0.35 ms, on
        # the path between deciding and the order leaving); read them only when a proxy is configured.
        self.session.trust_env = uses_environment_proxy()
        hold_writes_on(self.session)  # an open's order can wait at its gate, its bytes ready (core/gate.py)
        # Per thread: the mark lists `recording` holds open (a client may be used from more than one thread).
        self._recording = threading.local()

    @contextmanager
    def recording(self, marks: list[WireMark]) -> Iterator[list[WireMark]]:
        """Within the block, every request this thread sends appends its WireMark to `marks` (and to the lists
        of enclosing blocks)."""
        stack: list[list[WireMark]] = self._recording.__dict__.setdefault("stack", [])
        stack.append(marks)
        try:
            yield marks
        finally:
            stack.pop()

    def prepare(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        data: str | None = None,
        headers: HeaderSource | None = None,
    ) -> PreparedRequest:
        """Everything before the wire: wait for the rate limiter, build the headers (signing), encode, and
        let the HTTP library prepare the request."""
        self._limiter.acquire()
        sent_headers = dict(headers()) if headers is not None else {}
        if data is not None:
            sent_headers.setdefault("Content-Type", "application/json")
        path = url.split("?", 1)[0]
        try:
            request = requests.Request(method, url, params=params or None, data=data, headers=sent_headers)
            prepared = self.session.prepare_request(request)
            assert prepared.url is not None  # preparing sets the URL or raises; the stubs type it optional
            settings = self.session.merge_environment_settings(prepared.url, {}, None, None, None)
        except requests.RequestException as exc:  # an unusable URL or proxy setting: nothing was sent
            raise VenueUnavailable(self.venue, f"{method} {path}: {type(exc).__name__}") from None
        return PreparedRequest(method, path, prepared, settings)

    def send(self, request: PreparedRequest) -> tuple[int, Any]:
        """Put a prepared request on the wire (once) and read its reply: (status, JSON, text or None), or the
        venue's typed error (VenueUnavailable when no reply was read)."""
        if request.sent:
            raise RuntimeError(f"{self.venue} {request.method} {request.path}: a prepared request is sent once")
        request.sent = True
        method, path = request.method, request.path
        gate = take_gate() if method != "GET" else None
        if gate is not None and request.settings.get("proxies"):
            gate.ready()  # a proxied request cannot be held: it waits for the other legs and goes itself
            gate = None
        held = nullcontext(None) if gate is None else held_at(gate)
        sent_ns = time.monotonic_ns()  # real time, not the injected clock: this measures the wire itself
        try:
            with held as holding:
                try:
                    resp = self.session.send(
                        request.prepared, timeout=self._timeout, allow_redirects=True, **request.settings
                    )
                finally:
                    if holding is not None:  # a held request's time is when its bytes were written
                        sent_ns = holding.sent_ns or sent_ns
                        holding.gate.abandon()  # failed before the gate: the other legs go without it
        except requests.RequestException as exc:
            self._mark(method, path, sent_ns, None)
            raise VenueUnavailable(self.venue, f"{method} {path}: {type(exc).__name__}") from None
        self._mark(method, path, sent_ns, resp)
        if resp.status_code < 400:
            return resp.status_code, self._decode(resp, path)
        error = self._parse_error(resp.status_code, resp.text, resp.headers.get("Retry-After"))
        if isinstance(error, RateLimited):
            self._limiter.penalize(error.retry_after if error.retry_after is not None else self._backoff_s)
        raise error

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        data: str | None = None,
        headers: HeaderSource | None = None,
        retry: bool = False,
    ) -> tuple[int, Any]:
        """Prepare and send one request (retrying transient failures if `retry`, each attempt prepared
        afresh); returns (status, JSON, text or None)."""
        attempts = 1 + (self._get_retries if retry else 0)
        for attempt in range(attempts):
            prepared = self.prepare(method, url, params=params, data=data, headers=headers)
            try:
                return self.send(prepared)
            except MalformedResponse:  # the venue answered, unreadably: asking again would not help
                raise
            except (VenueUnavailable, RateLimited) as error:
                if not retry or attempt == attempts - 1:
                    raise
                delay = self._backoff_s * 2**attempt
                log.info("%s %s %s failed (%s); retry %d in %.2fs", self.venue, method, prepared.path, error,
                         attempt + 1, delay)  # fmt: skip
                self._clock.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _mark(self, method: str, path: str, sent_ns: int, resp: requests.Response | None) -> None:
        stack: list[list[WireMark]] | None = getattr(self._recording, "stack", None)
        if stack:
            arrival = _arrival(resp.headers) if resp is not None else None
            mark = WireMark(method, path, sent_ns, time.monotonic_ns(), arrival)
            for marks in stack:
                marks.append(mark)

    def _decode(self, resp: requests.Response, path: str) -> Any:
        if not resp.content:
            return None
        if "json" not in resp.headers.get("Content-Type", "application/json"):
            return resp.text
        try:
            return resp.json()
        except ValueError:
            raise MalformedResponse(self.venue, f"{path}: reply is not JSON") from None

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()
