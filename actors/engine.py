"""The running product: venues (simulated in paper mode), actors under the supervisor, ticks, commands.

`Engine.start()` brings everything up in dependency order, `step()` is one turn of the main loop
(supervision + ticks), `command()` serves the control socket, `shutdown()` stops in reverse order.
"""

from __future__ import annotations

import logging
import random
import threading
from datetime import datetime
from typing import Any

import pykka

from actors.base import DeathCallback, Directory
from actors.closer import Closer
from actors.coordinator import HedgeCoordinator
from actors.desk import Desk, Kept, LimitBook, TradingGate
from actors.exchange import ExchangeActor, VenueFactory
from actors.health import HEARTBEAT_EVERY_S, WRITE_FATAL_AGE_S, HealthTracker
from actors.messages import (
    CloseAll,
    ClosePair,
    CloseResult,
    GetStatus,
    Heartbeat,
    RecordEvent,
    Tick,
    TradingMode,
)
from actors.monitor import Monitor
from actors.startup import Reconciled, ReconcileFailed, StartupReconciliation
from actors.supervision import ChildSpec, Supervisor, policy_from
from actors.timing import Timings
from actors.writer import PersistenceWriter
from alerts.policy import Alert
from alerts.sinks import dispatcher_from
from control.metrics import Metrics
from control.protocol import CommandError
from core.clock import Clock, SystemClock
from core.config import Mode, Settings
from core.domain import ACTIVE_STATES, EventLevel, PairState, Venue
from core.limits import parse_limit
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.feed import backpack_feed
from exchanges.feed import PriceFeed
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.feed import hibachi_feed
from exchanges.hibachi.signing import make_signer
from exchanges.paper import PaperVenues
from storage.checks import database_label, describe_storage_error
from storage.db import Checkpointer, is_sqlite_file, open_database
from storage.failure import is_storage_failure
from storage.repository import NotFoundError, Repository

log = logging.getLogger(__name__)

TICKED = ("coordinator", "closer")
STARTUP_BLOCK = "startup"
RECONCILE_TIMEOUT_S = 300.0
RECONCILE_RETRY_S = 1.0
RECONCILE_RETRY_MAX_S = 30.0
PAUSE_KEY = "trading.pause"  # the operator's pause, kept in the database so that a restart keeps it
PAUSE = Kept(PAUSE_KEY)
METRICS_EVERY_S = 5.0
STATUS_TIMEOUT_S = 5.0


def _secret(value: Any) -> str | None:
    return None if value is None else value.get_secret_value()


class Engine:
    """Owns the database, the venues, the actors and their supervisor."""

    def __init__(self, settings: Settings, clock: Clock | None = None, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()  # noqa: S311 - draws of leverage and duration, not secrets
        self.db = open_database(settings.database_url, self.clock, manual_checkpoints=True)
        self._db_label = database_label(settings.database_url)
        self.checkpointer = Checkpointer(self.db) if is_sqlite_file(self.db) else None
        self.repo = Repository(self.db, self.clock)
        _ = self.repo.client_id_namespace  # drawn and stored now, before any actor mints an id
        self.directory = Directory()
        self.gate = TradingGate()
        self.desk = Desk(self.directory, self.repo, self.clock, settings)
        self.limits = LimitBook(settings.limits, self.gate, self.desk.write)
        self.paper: PaperVenues | None = None
        self.alerts = dispatcher_from(settings)
        self.metrics: Metrics | None = Metrics() if settings.metrics.enabled else None
        self.timings = Timings(self.metrics)  # orders' and opens' timings, order metrics
        self.desk.timings = self.timings
        self._next_metrics = 0.0
        self.supervisor = Supervisor(
            self.clock, self.directory, on_restart=self._on_restart, on_give_up=self._on_give_up
        )
        self.started_at: datetime | None = None
        self._tick_futures: dict[str, pykka.Future[Any]] = {}
        self._next_tick = 0.0
        self._next_monitor = 0.0
        self._reconcile_at = 0.0
        self._lock = threading.Lock()
        self.health_tracker = HealthTracker()
        self._startup = StartupReconciliation(self.supervisor.ref, RECONCILE_TIMEOUT_S)
        self._heartbeat: pykka.Future[Any] | None = None
        self._next_heartbeat = 0.0
        self._fatal: str | None = None
        self._fatal_lock = threading.Lock()

    # ---- wiring -----------------------------------------------------------------------------------------

    def _symbols(self, venue: Venue) -> list[str]:
        markets = self.settings.trading.markets
        return [m.backpack_symbol if venue is Venue.BACKPACK else m.hibachi_symbol for m in markets]

    def _venue_factories(self) -> dict[Venue, VenueFactory]:
        s, clock = self.settings, self.clock
        b, h = s.backpack, s.hibachi
        bp_url, bp_ws, bp_key, bp_secret = b.rest_url, b.ws_url, _secret(b.api_key), _secret(b.api_secret)
        hb_api, hb_data, hb_ws = h.api_url, h.data_api_url, h.ws_market_url
        hb_key, hb_account = _secret(h.api_key), h.account_id
        hb_signer_args: tuple[str, str | None, str | None] | None = None
        if h.key_type is not None:
            hb_signer_args = (h.key_type.value, _secret(h.hmac_secret), _secret(h.private_key))
        if self.paper is not None:
            bsim, hsim = self.paper.backpack, self.paper.hibachi
            bp_url, bp_ws, bp_key, bp_secret = bsim.rest_url, bsim.ws_url, bsim.api_key, bsim.api_secret
            hb_api, hb_data, hb_ws = hsim.api_url, hsim.data_api_url, hsim.ws_market_url
            hb_key, hb_account = hsim.paper.api_key, hsim.paper.account_id
            hb_signer_args = ("hmac", hsim.paper.hmac_secret, None)
        stale = float(s.monitor.feed_stale_after_s)
        timeout = float(s.timings.venue_timeout_s)

        def backpack() -> tuple[BackpackClient, PriceFeed]:
            client = BackpackClient(
                bp_url,
                bp_key,
                bp_secret,
                window_ms=b.window_ms,
                clock=clock,
                read_timeout_s=timeout,
                requests_per_s=float(b.requests_per_s),
            )
            return client, backpack_feed(bp_ws, self._symbols(Venue.BACKPACK), clock, reconnect_max_s=min(30, stale))

        def hibachi() -> tuple[HibachiClient, PriceFeed]:
            signer = None
            if hb_signer_args is not None:
                kind, secret, key = hb_signer_args
                signer = make_signer(kind, hmac_secret=secret, private_key=key)
            client = HibachiClient(
                hb_api,
                hb_data,
                hb_key,
                hb_account,
                signer,
                clock=clock,
                nonce_window_s=float(h.nonce_window_s),
                read_timeout_s=timeout,
                requests_per_s=float(h.requests_per_s),
            )
            return client, hibachi_feed(hb_ws, self._symbols(Venue.HIBACHI), clock, reconnect_max_s=min(30, stale))

        return {Venue.BACKPACK: backpack, Venue.HIBACHI: hibachi}  # type: ignore[dict-item]

    def _specs(self) -> list[ChildSpec]:
        e = self.settings.timings
        clock, desk = self.clock, self.desk

        def policy() -> Any:
            return policy_from(e.max_restarts, e.restart_window_s, e.restart_backoff_min_s, e.restart_backoff_max_s)

        stale = float(self.settings.monitor.feed_stale_after_s)
        factories = self._venue_factories()
        notify = self.alerts.submit if self.alerts is not None else None

        def exchange(venue: Venue) -> Any:
            def start(generation: int, on_death: DeathCallback) -> pykka.ActorRef[Any]:
                return ExchangeActor.start(
                    f"exchange.{venue.value}",
                    generation,
                    clock,
                    on_death,
                    venue=venue,
                    factory=factories[venue],
                    stale_after_s=stale,
                    timings=self.timings,
                )

            return start

        def on(cls: Any, name: str, **kw: Any) -> Any:
            def start(generation: int, on_death: DeathCallback) -> pykka.ActorRef[Any]:
                self.desk.claims.release_owner(name)  # a dead generation's claims go with it
                return cls.start(name, generation, clock, on_death, **kw)

            return start

        return [
            ChildSpec(
                "writer",
                on(PersistenceWriter, "writer", repo=self.repo, notify=notify, on_storage_failure=self._storage_failed),
                policy(),
            ),
            ChildSpec("exchange.backpack", exchange(Venue.BACKPACK), policy()),
            ChildSpec("exchange.hibachi", exchange(Venue.HIBACHI), policy()),
            ChildSpec("monitor", on(Monitor, "monitor", desk=desk, gate=self.gate, limits=self.limits), policy()),
            ChildSpec("closer", on(Closer, "closer", desk=desk), policy()),
            ChildSpec(
                "coordinator",
                on(HedgeCoordinator, "coordinator", desk=desk, gate=self.gate, rng=self.rng, limits=self.limits),
                policy(),
            ),
        ]

    # ---- lifecycle --------------------------------------------------------------------------------------

    def start(self, *, paused_reason: str | None = None) -> Engine:
        """Start the simulators (paper mode) and every actor, in dependency order; `paused_reason` starts
        with opening paused (as `run --paused` does), and a pause kept from an earlier run is restored."""
        self.started_at = self.clock.now()
        self.health_tracker.started(self.clock.monotonic())
        self._restore_pause(paused_reason)
        self.limits.restore(self.repo)  # a tripped limit keeps opening blocked until `resume --limit NAME`
        if self.checkpointer is not None:
            self.checkpointer.start()
        if self.alerts is not None:
            self.alerts.start()
        if self.metrics is not None:
            port = self.metrics.serve(self.settings.metrics.host, self.settings.metrics.port)
            log.info("metrics on http://%s:%d/metrics", self.settings.metrics.host, port)
        if self.settings.mode is Mode.PAPER:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.paper = PaperVenues.start(
                self.clock,
                seed=self.settings.paper.seed,
                collateral=self.settings.paper.collateral_usd,
                state_dir=self.settings.data_dir,
                paper=self.settings.paper,
            )
            log.info(
                "paper mode: Backpack simulator at %s, Hibachi simulator at %s",
                self.paper.backpack.rest_url,
                self.paper.hibachi.api_url,
            )
        # Nothing opens until every unfinished pair is settled against the venues (issue 6).
        self.gate.block(STARTUP_BLOCK, "start-up reconciliation has not finished")
        for spec in self._specs():
            self.supervisor.start_child(spec)
        self._event(EventLevel.INFO, "engine_started", f"perp-farmer started in {self.settings.mode} mode")
        if paused_reason is not None:
            self._persist_pause(paused_reason)
        return self

    def _restore_pause(self, paused_reason: str | None) -> None:
        """Pause before any actor runs when asked to, or when the last run ended paused."""
        reason = paused_reason
        if reason is None:
            kept = PAUSE.load(self.repo)
            if kept is not None:
                reason = str(kept.get("reason") or "paused before the last stop")
        if reason is not None:
            self.gate.set(TradingMode.PAUSED, reason)
            log.warning("opening is paused (%s); `resume` allows it again", reason)

    def reconcile(self) -> bool:
        """One whole reconciliation attempt, waiting for it (the bench's way; the main loop polls instead).
        Returns whether it completed and lifted the start-up block."""
        attempt = StartupReconciliation(self.supervisor.ref, RECONCILE_TIMEOUT_S)
        outcome = attempt.poll(self.clock.monotonic())
        while outcome is None:
            self.clock.sleep(0.01)
            outcome = attempt.poll(self.clock.monotonic())
        return self._reconciled(outcome)

    def _reconciled(self, outcome: Reconciled | ReconcileFailed) -> bool:
        """Act on an attempt's outcome: lift the start-up block when both steps were complete."""
        if isinstance(outcome, ReconcileFailed):
            exc = outcome.error
            if is_storage_failure(exc):
                self._storage_failed(exc)
                return False
            failures = self.health_tracker.reconcile_failed(repr(exc))
            # The first failures are expected (a venue still starting); a run of them is a condition to fix.
            level = logging.WARNING if failures < self.health_tracker.reconcile_failures_unhealthy else logging.ERROR
            log.log(level, "start-up reconciliation failed (%d in a row): %r; retrying", failures, exc)
            return False
        pairs, positions = outcome.pairs, outcome.positions
        if not (pairs.complete and positions.complete):
            self.health_tracker.reconcile_failed("an order's outcome or a venue position is not settled yet")
            return False
        self.health_tracker.reconciled()
        self.gate.unblock(STARTUP_BLOCK)
        unknown = (
            f"; venue positions nobody accounts for: {'; '.join(positions.decisions)}" if positions.decisions else ""
        )
        self._event(
            EventLevel.WARNING if unknown else EventLevel.INFO,
            "reconciled",
            f"start-up reconciliation done: {len(pairs.decisions)} unfinished pair(s) settled{unknown}",
        )
        return True

    @property
    def fatal(self) -> str | None:
        """Why the process must stop now (the database cannot be written), or None."""
        with self._fatal_lock:
            return self._fatal

    def step(self) -> None:
        """One turn of the main loop: supervise, prove the database writable, reconcile until done, then send
        the ticks that are due."""
        now = self.clock.monotonic()
        self.health_tracker.stepped(now)
        self.supervisor.poll()
        self._check_heartbeat(now)
        if STARTUP_BLOCK in self.gate.blocks:
            if now < self._reconcile_at:
                return
            outcome = self._startup.poll(now)  # never waits: the loop keeps turning while venues answer
            if outcome is None:
                return
            if not self._reconciled(outcome):
                failures = max(1, self.health_tracker.reconcile_failures)
                self._reconcile_at = now + min(RECONCILE_RETRY_MAX_S, RECONCILE_RETRY_S * 2 ** (failures - 1))
                return
        if now >= self._next_tick:
            self._next_tick = now + float(self.settings.timings.tick_s)
            for name in TICKED:
                self._tick(name)
        if now >= self._next_monitor:
            self._next_monitor = now + float(self.settings.monitor.interval_s)
            self._tick("monitor")
        if self.metrics is not None and now >= self._next_metrics:
            self._next_metrics = now + METRICS_EVERY_S
            self.refresh_metrics()

    def refresh_metrics(self) -> None:
        """Update the Prometheus gauges from the database, the monitor and the supervisor."""
        if self.metrics is None:
            return
        monitor = self._actor_status("monitor")
        status = {**monitor, "actors": self.supervisor.status()}
        self.metrics.refresh(self.repo.count_pairs_by_state(), status, self.repo.count_events_by_level())

    def _check_heartbeat(self, now: float) -> None:
        """Every HEARTBEAT_EVERY_S, have the writer commit a small row: the proof `health` needs that the
        database still takes writes, and how a full disk is noticed even when nothing else is written."""
        if self._heartbeat is not None:
            try:
                self._heartbeat.get(timeout=0)
            except pykka.Timeout:
                return
            except Exception as exc:  # noqa: BLE001 - the writer is down or the write failed
                self.health_tracker.write_failed(type(exc).__name__)
                # A passing condition (a lock held past the busy timeout) gets a minute before it counts as failed.
                if is_storage_failure(exc) or self.health_tracker.write_age(now) > WRITE_FATAL_AGE_S:
                    self._storage_failed(exc)
            else:
                self.health_tracker.wrote(now)
            self._heartbeat = None
        if now < self._next_heartbeat:
            return
        writer = self.supervisor.ref("writer")
        if writer is None:
            return
        self._next_heartbeat = now + HEARTBEAT_EVERY_S
        try:
            self._heartbeat = writer.ask(Heartbeat(self.clock.now()), block=False)
        except pykka.ActorDeadError:
            self._heartbeat = None

    def _storage_failed(self, exc: BaseException) -> None:
        """The database refused a write for a reason that will not pass by itself (full disk, read-only,
        I/O error, corruption): alert a person without the database, stop opening, and make the process exit
        non-zero so that the container is restarted and the start-up check names the problem."""
        with self._fatal_lock:
            if self._fatal is not None:
                return
            self._fatal = f"the database cannot be written: {describe_storage_error(exc, self._db_label)}"
            reason = self._fatal
        self.health_tracker.write_failed(reason)
        self.gate.set(TradingMode.PAUSED, "the database cannot be written")
        log.critical("%s; stopping so that the process is restarted", reason)
        if self.alerts is not None:
            self.alerts.submit(Alert(self.clock.now(), EventLevel.CRITICAL, "storage_failed", reason))

    def _tick(self, name: str) -> None:
        """Send a Tick unless the previous one is still being handled; a tick that raised is a bug: restart."""
        previous = self._tick_futures.get(name)
        if previous is not None:
            try:
                previous.get(timeout=0)
            except pykka.Timeout:
                return  # still busy: never pile ticks up
            except pykka.ActorDeadError:
                pass
            except Exception as exc:
                if is_storage_failure(exc):
                    self._storage_failed(exc)
                log.exception("%s tick failed; restarting it", name)
                self._event(EventLevel.WARNING, "tick_failed", f"{name} tick raised {exc!r}; restarting it", actor=name)
                self.supervisor.restart_now(name, f"tick raised {exc!r}")
                self._tick_futures.pop(name, None)
                return
        ref = self.supervisor.ref(name)
        if ref is None:
            return
        try:
            self._tick_futures[name] = ref.ask(Tick(self.clock.now()), block=False)
        except pykka.ActorDeadError:
            self._tick_futures.pop(name, None)

    def run(self, stop: threading.Event, poll_s: float = 0.1) -> str | None:
        """Run the main loop until `stop` is set or the engine cannot go on; returns why not (or None)."""
        while not stop.wait(poll_s):
            try:
                self.step()
            except Exception as exc:
                if not is_storage_failure(exc):
                    raise
                self._storage_failed(exc)
            if self.fatal is not None:
                return self.fatal
        return None

    def shutdown(self, close_positions: bool = False) -> bool:
        """Stop opening, let in-flight orders finish, optionally close everything, stop in reverse order.
        Every step runs even when an earlier one failed; returns whether all of them succeeded."""
        timeout = float(self.settings.timings.shutdown_timeout_s)
        self.gate.set(TradingMode.PAUSED, "shutting down")
        clean = True
        if close_positions:
            clean &= self._shutdown_step("closing every pair", lambda: self._close_on_exit(timeout))
        if self.fatal is None:
            clean &= self._shutdown_step(
                "recording the stop", lambda: self._event(EventLevel.INFO, "engine_stopping", "perp-farmer stopping")
            )
        busy: list[str] = []
        clean &= self._shutdown_step("stopping the actors", lambda: busy.extend(self.supervisor.stop_all(timeout)))
        clean &= not busy
        if self.alerts is not None:
            clean &= self._shutdown_step("delivering alerts", self.alerts.stop)
        if self.paper is not None:
            clean &= self._shutdown_step("stopping the paper venues", self.paper.stop)
        if self.checkpointer is not None:
            clean &= self._shutdown_step("the final WAL checkpoint", self.checkpointer.stop)
        clean &= self._shutdown_step("closing the database", self.db.dispose)
        return clean

    @staticmethod
    def _shutdown_step(what: str, step: Any) -> bool:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - one failed step must not skip the ones after it
            log.error("shutdown: %s failed: %s", what, f"{type(exc).__name__}: {exc}".splitlines()[0])  # noqa: TRY400
            return False
        return True

    def _close_on_exit(self, timeout: float) -> None:
        """Close every pair, retrying until `timeout`; raises naming the pairs still open then."""
        deadline = self.clock.monotonic() + timeout
        left: list[int] = []
        while True:
            closer = self.supervisor.ref("closer")
            if closer is None:
                raise RuntimeError("the closer is down")
            remaining = max(0.1, deadline - self.clock.monotonic())
            result: CloseResult = closer.ask(CloseAll("shutdown with --close-on-exit"), timeout=remaining)
            left = sorted(pid for pid, state in result.states.items() if state is not PairState.CLOSED)
            if not left or self.clock.monotonic() >= deadline:
                break
            self.clock.sleep(min(1.0, max(0.0, deadline - self.clock.monotonic())))
        if left:
            raise RuntimeError(f"pairs still open: {', '.join(map(str, left))}")

    def _event(self, level: EventLevel, kind: str, message: str, **data: Any) -> None:
        """Record an engine event through the writer; never raises (a failing store is handled elsewhere)."""
        writer = self.supervisor.ref("writer")
        if writer is not None:
            try:
                writer.ask(RecordEvent(level, kind, message, None, data), timeout=5)
            except Exception as exc:  # noqa: BLE001 - the event goes straight to the database then
                log.warning("writer did not take event %s: %r", kind, exc)
            else:
                return
        try:
            self.repo.add_event(level, kind, message, None, data)
        except Exception as exc:  # noqa: BLE001 - the log line is the record of last resort
            log.error("event %s not stored (%s): %s", kind, type(exc).__name__, message)  # noqa: TRY400
            if is_storage_failure(exc):
                self._storage_failed(exc)

    def _on_restart(self, name: str, restarts: int, error: str) -> None:
        self._event(
            EventLevel.WARNING,
            "actor_restarted",
            f"actor {name} restarted (restart {restarts}) after: {error}",
            actor=name,
            restarts=restarts,
        )

    def _on_give_up(self, name: str, error: str) -> None:
        self.gate.set(TradingMode.PAUSED, f"actor {name} keeps failing")
        self._event(
            EventLevel.CRITICAL,
            "actor_given_up",
            f"actor {name} keeps failing ({error}); opening paused, not restarted again",
            actor=name,
        )

    # ---- control commands -------------------------------------------------------------------------------

    def command(self, cmd: str, args: dict[str, Any]) -> Any:
        """Serve one control command; CommandError for a bad argument."""
        handlers = {
            "status": self.status,
            "health": self.health,
            "pairs": lambda: self.pairs(args.get("state")),
            "pair": lambda: self.pair(_pair_id(args)),
            "pause": lambda: self.pause(str(args.get("reason") or "paused by operator")),
            "resume": lambda: self.resume(args.get("limit")),
            "close": lambda: self.close(_pair_id(args)),
            "close-all": self.close_all,
        }
        return handlers[cmd]()

    def _actor_status(self, name: str) -> dict[str, Any]:
        ref = self.supervisor.ref(name)
        if ref is None:
            return {}
        try:
            return ref.ask(GetStatus(), timeout=STATUS_TIMEOUT_S).data
        except Exception:  # noqa: BLE001 - busy or down: the status says so
            return {"unavailable": True}

    def status(self) -> dict[str, Any]:
        """Mode, uptime, actors and restarts, feeds, collateral, pairs by state, recent alerts."""
        now = self.clock.now()
        monitor = self._actor_status("monitor")
        counts = self.repo.count_pairs_by_state()
        alerts = [e for e in self.repo.list_events(limit=200) if e.level is not EventLevel.INFO][:10]
        return {
            "mode": self.settings.mode.value,
            "paper_prices": self.paper.price_status() if self.paper is not None else None,
            "uptime_s": int((now - self.started_at).total_seconds()) if self.started_at else 0,
            "trading": {"mode": self.gate.mode.value, "reason": self.gate.reason, "blocks": self.gate.blocks},
            "limits": self.limits.rows(),
            "actors": self.supervisor.status(),
            "feeds": monitor.get("feeds", {}),
            "collateral_ratio": monitor.get("collateral_ratio", {}),
            "equity": monitor.get("equity", {}),
            "unrealized_pnl": monitor.get("unrealized_pnl"),
            "monitor_ticks": monitor.get("ticks", 0),
            "pairs": {state.value: counts.get(state, 0) for state in PairState},
            "open_pairs": [self._pair_row(p) for p in self.repo.list_pairs(ACTIVE_STATES)],
            "alerts": [
                {"ts": e.ts, "level": e.level.value, "kind": e.kind, "pair_id": e.pair_id, "message": e.message}
                for e in alerts
            ],
            "coordinator": self._actor_status("coordinator"),
            "closer": self._actor_status("closer"),
        }

    def health(self) -> dict[str, Any]:
        """Healthy when the main loop turns, the database took a write lately and answers a read,
        reconciliation is not failing again and again, and every actor is alive."""
        problems = self.health_tracker.problems(self.clock.monotonic())
        try:
            self.repo.count_pairs_by_state()
            database = True
        except Exception as exc:  # noqa: BLE001
            database = False
            problems.append(f"the database does not answer a read: {type(exc).__name__}")
        actors = self.supervisor.status()
        problems += [f"actor {name} is down" for name, a in actors.items() if not a["alive"] or a["given_up"]]
        if self.fatal is not None:
            problems.append(self.fatal)
        return {
            "healthy": not problems,
            "database": database and self.fatal is None,
            "actors": {name: a["alive"] and not a["given_up"] for name, a in actors.items()},
            "problems": problems,
        }

    @staticmethod
    def _pair_row(p: Any) -> dict[str, Any]:
        return {
            "id": p.id,
            "market": p.market,
            "state": p.state.value,
            "long": p.long_venue.value,
            "short": p.short_venue.value,
            "quantity": p.quantity,
            "leverage": p.leverage,
            "notional": p.notional,
            "opened_at": p.opened_at,
            "expires_at": p.expires_at,
            "closed_at": p.closed_at,
            "realized_pnl": p.realized_pnl,
            "fees": p.fees,
            "volume": p.volume,
            "points": p.points,
            "close_reason": p.close_reason,
        }

    def pairs(self, state: str | None) -> list[dict[str, Any]]:
        """Pairs, newest first, optionally in one state."""
        states = None
        if state is not None:
            try:
                states = [PairState(state)]
            except ValueError:
                raise CommandError("bad_request", f"unknown state {state!r}; one of {', '.join(PairState)}") from None
        return [self._pair_row(p) for p in self.repo.list_pairs(states, limit=200)]

    def pair(self, pair_id: int) -> dict[str, Any]:
        """One pair with its legs, orders and events."""
        try:
            p = self.repo.get_pair(pair_id)
        except NotFoundError:
            raise CommandError("not_found", f"no pair {pair_id}") from None
        legs = [
            {
                "venue": x.venue.value,
                "symbol": x.symbol,
                "side": x.side.value,
                "quantity": x.quantity,
                "entry_price": x.entry_price,
                "exit_price": x.exit_price,
                "mark_price": x.mark_price,
                "unrealized_pnl": x.unrealized_pnl,
                "realized_pnl": x.realized_pnl,
                "fees": x.fees,
                "leverage_set": x.leverage_set,
                "state": x.state,
            }
            for x in self.repo.positions_for_pair(pair_id)
        ]
        orders = [
            {
                "venue": o.venue.value,
                "client_id": o.client_id,
                "purpose": o.purpose.value,
                "side": o.side.value,
                "quantity": o.quantity,
                "status": o.status,
                "filled": o.filled_quantity,
                "avg_price": o.avg_price,
                "fee": o.fee,
                "error": o.error,
            }
            for o in self.repo.orders_for_pair(pair_id)
        ]
        events = [
            {"ts": e.ts, "level": e.level.value, "kind": e.kind, "message": e.message}
            for e in reversed(self.repo.list_events(pair_id, limit=100))
        ]
        return {"pair": self._pair_row(p), "legs": legs, "orders": orders, "events": events}

    def _ask(self, name: str, message: Any, timeout: float) -> Any:
        ref = self.supervisor.ref(name)
        if ref is None:
            raise CommandError("unavailable", f"the {name} is restarting; try again")
        return ref.ask(message, timeout=timeout)

    def pause(self, reason: str) -> dict[str, Any]:
        """Stop opening new pairs, at once (an open already on the wire finishes) and across restarts."""
        # The gate is shared and thread-safe: setting it here does not wait behind an open the coordinator is
        # busy with, and the coordinator reads it before every decision to open.
        changed = self.gate.set(TradingMode.PAUSED, reason)
        self._persist_pause(reason)
        if changed:
            self._event(EventLevel.WARNING, "trading_paused", f"opening paused: {reason}")
        return {"trading": TradingMode.PAUSED.value, "reason": reason}

    def resume(self, limit: str | None = None) -> dict[str, Any]:
        """Allow opening again; with `limit`, clear that tripped limit instead (and only it: a trip is never
        cleared by a plain resume, nor the pause by a cleared trip)."""
        if limit is not None:
            return self._clear_limit(limit)
        self._persist_pause(None)
        if self.gate.set(TradingMode.NORMAL, "resumed by operator"):
            self._event(EventLevel.INFO, "trading_normal", "opening resumed by operator")
        reply: dict[str, Any] = {"trading": TradingMode.NORMAL.value}
        tripped = self._tripped_limits()
        if tripped:
            reply["still_tripped"] = tripped  # opening stays blocked until each is cleared by name
        return reply

    def _tripped_limits(self) -> list[str]:
        return [row["name"] for row in self.limits.rows() if row["tripped"]]

    def _clear_limit(self, name: str) -> dict[str, Any]:
        try:
            limit = parse_limit(name)
        except ValueError as exc:
            raise CommandError("unknown_limit", str(exc)) from None
        cleared = self.limits.clear(limit)
        return {"limit": limit.value, "cleared": cleared is not None, "still_tripped": self._tripped_limits()}

    def _persist_pause(self, reason: str | None) -> None:
        """Keep the pause in the database; a pause that cannot be kept is refused, not half done."""
        value = None if reason is None else {"reason": reason, "since": self.clock.now().isoformat()}
        self._ask("writer", PAUSE.store(value), STATUS_TIMEOUT_S)

    def close(self, pair_id: int) -> dict[str, Any]:
        """Close one pair now."""
        try:
            pair = self.repo.get_pair(pair_id)
        except NotFoundError:
            raise CommandError("not_found", f"no pair {pair_id}") from None
        if pair.state not in (PairState.OPEN, PairState.CLOSING, PairState.NAKED):
            raise CommandError("bad_state", f"pair {pair_id} is {pair.state}: nothing to close")
        result: CloseResult = self._ask("closer", ClosePair(pair_id, "closed by operator"), 120)
        return {"states": {str(k): v.value for k, v in result.states.items()}}

    def close_all(self) -> dict[str, Any]:
        """Close every open pair now."""
        result: CloseResult = self._ask("closer", CloseAll("close-all by operator"), 300)
        return {"states": {str(k): v.value for k, v in result.states.items()}}


def _pair_id(args: dict[str, Any]) -> int:
    value = args.get("id")
    text = str(value)
    if isinstance(value, bool) or not isinstance(value, int | str) or not (text.isascii() and text.isdigit()):
        raise CommandError("bad_request", 'this command needs "id": a pair id')
    return int(value)
