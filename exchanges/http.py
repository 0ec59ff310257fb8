"""The HTTP edge shared by venue clients: pacing, timeouts, GET-only retries with backoff, typed errors.

A venue supplies its error parser and, for signed calls, a function that builds fresh headers for every
attempt (a retried request must carry a fresh timestamp or nonce).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.utils import getproxies

from core.clock import Clock
from core.gate import LegGate
from exchanges.errors import MalformedResponse, RateLimited, VenueError, VenueUnavailable
from exchanges.ratelimit import RateLimiter

log = logging.getLogger(__name__)

ErrorParser = Callable[[int, str, str | None], VenueError]
HeaderSource = Callable[[], Mapping[str, str]]
# Our simulators stamp when a request reached them (time.monotonic_ns); real venues send no such header.
ARRIVAL_HEADER = "X-Sim-Received-Ns"


@dataclass(frozen=True, slots=True)
class WireMark:
    """One request on the wire, in real time (time.monotonic_ns, system-wide on Linux): handed to the HTTP
    library, reply read; and, from a loopback simulator only, when the venue received it."""

    method: str
    path: str
    sent_ns: int
    answered_ns: int
    venue_received_ns: int | None = None


def uses_environment_proxy() -> bool:
    """True when HTTP(S)_PROXY or ALL_PROXY is set: requests must then read the environment per request."""
    return any(scheme in getproxies() for scheme in ("http", "https", "all"))


def _arrival(headers: Mapping[str, str]) -> int | None:
    value = headers.get(ARRIVAL_HEADER)
    return int(value) if value is not None and value.isascii() and value.isdigit() else None


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
        self.session.headers.update({"User-Agent": "perp-farmer/0.1", "Accept": "application/json"})
        # With trust_env, requests re-reads proxy variables and ~/.netrc on every request (about 0.35 ms, on
        # the path between deciding and the order leaving); read them only when a proxy is configured.
        self.session.trust_env = uses_environment_proxy()
        # Called with every request's WireMark (the venue's actor times its orders with it).
        self.tap: Callable[[WireMark], None] | None = None
        # The next write request waits here, built and signed, for the other leg of an open (one use).
        self.gate: LegGate | None = None

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
        """Send one request (retrying transient failures if `retry`); returns (status, JSON, text or None)."""
        attempts = 1 + (self._get_retries if retry else 0)
        path = url.split("?", 1)[0]
        for attempt in range(attempts):
            self._limiter.acquire()
            sent_headers = dict(headers()) if headers is not None else {}
            if data is not None:
                sent_headers.setdefault("Content-Type", "application/json")
            gate, self.gate = (self.gate, None) if method != "GET" else (None, self.gate)
            sent_ns = 0
            try:
                # Session.request() in two halves: everything that can be done before the gate is.
                request = requests.Request(method, url, params=params or None, data=data, headers=sent_headers)
                prepared = self.session.prepare_request(request)
                settings = self.session.merge_environment_settings(prepared.url, {}, None, None, None)
                if gate is not None:
                    gate.ready()
                # Real time, not the injected clock: this measures the wire itself.
                sent_ns = time.monotonic_ns()
                resp = self.session.send(prepared, timeout=self._timeout, allow_redirects=True, **settings)
            except requests.RequestException as exc:
                sent_ns = sent_ns or time.monotonic_ns()
                self._mark(method, path, sent_ns, None)
                error: VenueError = VenueUnavailable(self.venue, f"{method} {path}: {type(exc).__name__}")
            else:
                self._mark(method, path, sent_ns, resp)
                if resp.status_code < 400:
                    return resp.status_code, self._decode(resp, path)
                error = self._parse_error(resp.status_code, resp.text, resp.headers.get("Retry-After"))
                if isinstance(error, RateLimited):
                    self._limiter.penalize(error.retry_after if error.retry_after is not None else self._backoff_s)
            if not retry or not isinstance(error, VenueUnavailable | RateLimited) or attempt == attempts - 1:
                raise error
            delay = self._backoff_s * 2**attempt
            log.info("%s %s %s failed (%s); retry %d in %.2fs", self.venue, method, path, error, attempt + 1, delay)
            self._clock.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _mark(self, method: str, path: str, sent_ns: int, resp: requests.Response | None) -> None:
        tap = self.tap
        if tap is not None:
            arrival = _arrival(resp.headers) if resp is not None else None
            tap(WireMark(method, path, sent_ns, time.monotonic_ns(), arrival))

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
