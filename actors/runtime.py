"""The running product: venues (simulated in paper mode), actors under the supervisor, ticks.

`Runtime.start()` brings everything up in dependency order, `step()` is one turn of the main loop
(supervision + ticks), `shutdown()` stops in reverse order. `command()` serves the control socket: the commands
themselves live in control/commands.py, and use what this class offers them (`control.spec.Host`).
"""

from __future__ import annotations

import functools
import logging
import random
import sys
import threading
from datetime import datetime
from typing import Any

import pykka

from actors.base import DeathCallback, Directory
from actors.claims import Claims
from actors.closer import Closer
from actors.coordinator import HedgeCoordinator
from actors.desk import Desk
from actors.exchange import ExchangeActor, VenueFactory
from actors.gate import PAUSE, PAUSE_KEY, GateMessage, TradingGate
from actors.health import HealthTracker
from actors.heartbeat import StorageWatch
from actors.limitbook import LimitBook
from actors.messages import GetStatus, RecordEvent, SetTradingMode, TradingMode
from actors.monitor import Monitor
from actors.shutdown import attempt, close_on_exit
from actors.startup import STARTUP_BLOCK, StartupReconciler
from actors.supervision import ChildSpec, Supervisor, policy_from
from actors.ticks import Ticker
from actors.timing import Timings
from actors.writer import PersistenceWriter
from alerts.policy import Alert
from alerts.sinks import dispatcher_from
from control.commands import command
from control.metrics import Metrics
from control.spec import CommandError, validate_args
from core.clock import Clock, SystemClock
from core.config import Mode, Settings
from core.domain import EventLevel, Venue
from exchanges.paper import PaperVenues
from exchanges.registry import check_registered
from storage.checks import database_label
from storage.db import Checkpointer, is_sqlite_file, open_database
from storage.failure import is_storage_failure
from storage.queries import Queries

log = logging.getLogger(__name__)
SWITCH_INTERVAL_S = 0.001

__all__ = ["PAUSE_KEY", "Runtime"]  # PAUSE_KEY: where the operator's pause is kept (actors.gate)
METRICS_EVERY_S = 5.0
STATUS_TIMEOUT_S = 5.0
# An event the writer cannot take is logged at its own level: the log is its record then.
LOG_LEVELS = {EventLevel.INFO: logging.INFO, EventLevel.WARNING: logging.WARNING, EventLevel.CRITICAL: logging.CRITICAL}


class Runtime:
    """Owns the database, the venues, the actors and their supervisor."""

    def __init__(self, settings: Settings, clock: Clock | None = None, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.venues = check_registered(settings.trading.venues)  # ConfigError for a venue nobody registered
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()  # noqa: S311 - draws of leverage and duration, not secrets
        self.db = open_database(settings.database_url, self.clock, manual_checkpoints=True)
        self._db_label = database_label(settings.database_url)
        self.checkpointer = Checkpointer(self.db) if is_sqlite_file(self.db) else None
        self.repo = Queries(self.db, account=settings.account)
        _ = self.repo.client_id_namespace  # open_database drew it: read now, before any actor mints an id
        self.directory = Directory()
        # Read by anyone, written by the coordinator alone (tell_coordinator). Nothing opens until every
        # unfinished pair is settled against the venues (issue 6): the start-up block is there from the start.
        self.gate = TradingGate({STARTUP_BLOCK: "start-up reconciliation has not finished"})
        self.paper: PaperVenues | None = None
        self.alerts = dispatcher_from(settings)
        self.metrics: Metrics | None = Metrics() if settings.metrics.enabled else None
        self.timings = Timings(self.metrics)  # orders' and opens' timings, order metrics
        self.desk = Desk(self.directory, self.repo, self.clock, settings, Claims(), self.timings)
        self.limits = LimitBook(settings.limits, self.desk.write, self.tell_coordinator)
        self._next_metrics = 0.0
        self.supervisor = Supervisor(
            self.clock, self.directory, on_restart=self._on_restart, on_give_up=self._on_give_up
        )
        self.started_at: datetime | None = None
        self.health_tracker = HealthTracker()
        writer = functools.partial(self.supervisor.ref, "writer")  # the writer of the moment, across restarts
        self._storage = StorageWatch(
            self.clock, self.health_tracker, self.tell_coordinator, writer, self._alert, self._db_label
        )
        self._startup = StartupReconciler(
            self.supervisor.ref,
            self.gate,
            self.tell_coordinator,
            self.health_tracker,
            self._storage_failed,
            self.record_event,
        )
        self._ticks = Ticker(self.clock, self.supervisor, settings, self._storage_failed, self.record_event)

    # ---- wiring -----------------------------------------------------------------------------------------

    def _symbols(self, venue: Venue) -> list[str]:
        return [m.symbol(venue) for m in self.settings.trading.markets]

    def _venue_factories(self) -> dict[Venue, VenueFactory]:
        """Each traded venue's client and feed factory: the real venue, or its paper simulator."""
        return {
            spec.venue: spec.connect(
                self.settings,
                self.clock,
                self._symbols(spec.venue),
                None if self.paper is None else self.paper.sim(spec.venue),
            )
            for spec in self.venues
        }

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
                on(
                    PersistenceWriter,
                    "writer",
                    db=self.db,
                    notify=notify,
                    on_storage_failure=self._storage_failed,
                    alarm=self.desk.activity.alarm,
                    account=self.settings.account,
                ),
                policy(),
            ),
            *(ChildSpec(f"exchange.{spec.venue}", exchange(spec.venue), policy()) for spec in self.venues),
            ChildSpec("monitor", on(Monitor, "monitor", desk=desk, gate=self.gate, limits=self.limits), policy()),
            ChildSpec("closer", on(Closer, "closer", desk=desk), policy()),
            ChildSpec(
                "coordinator",
                on(HedgeCoordinator, "coordinator", desk=desk, gate=self.gate, rng=self.rng, limits=self.limits),
                policy(),
            ),
        ]

    # ---- lifecycle --------------------------------------------------------------------------------------

    def start(self, *, paused_reason: str | None = None, keep_pause: bool = True) -> Runtime:
        """Start the simulators (paper mode) and every actor, in dependency order; `paused_reason` starts
        with opening paused (as `run --paused` does; kept across restarts unless `keep_pause` is False). A
        pause kept from an earlier run is restored by the coordinator as it starts."""
        self.started_at = self.clock.now()
        # A thread woken by a fill waits for the interpreter lock while another runs Python (a monitor tick, a
        # burst of feed frames): up to the switch interval, 5 ms by default, per hand-over on the hedge's path
        # (hedger, venue actor). 1 ms keeps a hedge's way to the wire short at a small cost in throughput.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.health_tracker.started(self.clock.monotonic())
        self.limits.restore(self.repo)  # a tripped limit keeps opening blocked until `resume --limit NAME`
        if self.checkpointer is not None:
            self.checkpointer.start()
        if self.alerts is not None:
            self.alerts.start()
        if self.metrics is not None:
            port = self.metrics.serve(self.settings.metrics.host, self.settings.metrics.port)
            log.info("metrics on http://%s:%d/metrics", self.settings.metrics.host, port)
        # paper.external: the simulators run in the paper host and the venue sections point at them (getattr
        # until the field is in core.config everywhere).
        if self.settings.mode is Mode.PAPER and not self.settings.paper.external:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.paper = PaperVenues.start(
                self.clock,
                seed=self.settings.paper.seed,
                collateral=self.settings.paper.collateral_usd,
                state_dir=self.settings.data_dir,
                paper=self.settings.paper,
                venues=self.settings.trading.venues,
            )
            where = ", ".join(f"{s.title} simulator at {self.paper.venues[s.venue].url}" for s in self.venues)
            log.info("paper mode: %s", where)
        for spec in self._specs():
            self.supervisor.start_child(spec)
        self.record_event(EventLevel.INFO, "engine_started", f"perp-farmer started in {self.settings.mode} mode")
        if paused_reason is not None:
            if keep_pause:
                self.persist_pause(paused_reason)
            self.tell_coordinator(SetTradingMode(TradingMode.PAUSED, paused_reason, kept=keep_pause), wait=True)
        if self.gate.paused:
            log.warning("opening is paused (%s); `resume` allows it again", self.gate.reason)
        return self

    def reconcile(self) -> bool:
        """One whole reconciliation attempt, waiting for it (the bench's way; the main loop polls instead).
        Returns whether it completed and lifted the start-up block."""
        return self._startup.run_once(self.clock)

    @property
    def fatal(self) -> str | None:
        """Why the process must stop now (the database cannot be written), or None."""
        return self._storage.fatal

    def step(self) -> None:
        """One turn of the main loop: supervise, prove the database writable, reconcile until done, then send
        the ticks that are due."""
        now = self.clock.monotonic()
        self.health_tracker.stepped(now)
        self.supervisor.poll()
        self._storage.check(now)
        if not self._startup.poll(now):  # never waits: the loop keeps turning while venues answer
            return
        self._ticks.send_due(now)
        if self.metrics is not None and now >= self._next_metrics:
            self._next_metrics = now + METRICS_EVERY_S
            self.refresh_metrics()

    def refresh_metrics(self) -> None:
        """Update the Prometheus gauges from the database, the monitor and the supervisor."""
        if self.metrics is None:
            return
        monitor = self.actor_status("monitor")
        status = {**monitor, "actors": self.supervisor.status()}
        self.metrics.refresh(self.repo.count_pairs_by_state(), status, self.repo.count_events_by_level())

    def _storage_failed(self, exc: BaseException) -> None:
        """The database cannot be written: the process stops (see StorageWatch.failed)."""
        self._storage.failed(exc)

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
        self.desk.activity.stopping.set()
        self.tell_coordinator(SetTradingMode(TradingMode.PAUSED, "shutting down"))
        closer = functools.partial(self.supervisor.ref, "closer")
        clean = True
        if close_positions:
            clean &= attempt("closing every pair", lambda: close_on_exit(closer, self.clock, timeout))
        if self.fatal is None:
            stopping = functools.partial(self.record_event, EventLevel.INFO, "engine_stopping", "perp-farmer stopping")
            clean &= attempt("recording the stop", stopping)
        busy: list[str] = []
        clean &= attempt("stopping the actors", lambda: busy.extend(self.supervisor.stop_all(timeout)))
        clean &= not busy
        if self.alerts is not None:
            clean &= attempt("delivering alerts", self.alerts.stop)
        if self.paper is not None:
            clean &= attempt("stopping the paper venues", self.paper.stop)
        if self.checkpointer is not None:
            clean &= attempt("the final WAL checkpoint", self.checkpointer.stop)
        clean &= attempt("closing the database", self.db.dispose)
        return clean

    def alarm(self, reason: str) -> None:
        """End the maker phases running now (core/activity.py): urgent work waits for the actors they hold."""
        self.desk.activity.alarm(reason)

    def record_event(self, level: EventLevel, kind: str, message: str, **data: Any) -> None:
        """Record an engine event through the writer, the only one that writes; never raises. Without the
        writer the event is logged at its level instead (a failing database is noticed by the heartbeat)."""
        writer = self.supervisor.ref("writer")
        why = "the writer is down"
        if writer is not None:
            try:
                writer.ask(RecordEvent(level, kind, message, None, data), timeout=5)
            except Exception as exc:  # noqa: BLE001 - the log line is the record then
                why = f"the writer did not take it: {type(exc).__name__}"
            else:
                return
        log.log(LOG_LEVELS[level], "event %s not recorded (%s): %s", kind, why, message)

    def _alert(self, alert: Alert) -> None:
        if self.alerts is not None:  # the dispatcher of the moment: it is optional, and replaceable
            self.alerts.submit(alert)

    def _on_restart(self, name: str, restarts: int, error: str) -> None:
        self.record_event(
            EventLevel.WARNING,
            "actor_restarted",
            f"actor {name} restarted (restart {restarts}) after: {error}",
            actor=name,
            restarts=restarts,
        )

    def _on_give_up(self, name: str, error: str) -> None:
        self.tell_coordinator(SetTradingMode(TradingMode.PAUSED, f"actor {name} keeps failing"))
        self.record_event(
            EventLevel.CRITICAL,
            "actor_given_up",
            f"actor {name} keeps failing ({error}); opening paused, not restarted again",
            actor=name,
        )

    # ---- what the control commands use (control.spec.Host) ---------------------------------------------------

    def command(self, cmd: str, args: dict[str, Any]) -> Any:
        """Serve one control command (control/commands.py) with its args checked; CommandError for a bad one."""
        found = command(cmd)
        return found.handler(self, validate_args(found, args))

    def actor_status(self, name: str) -> dict[str, Any]:
        """An actor's GetStatus data: {} when it is down, {"unavailable": True} when it does not answer."""
        ref = self.supervisor.ref(name)
        if ref is None:
            return {}
        try:
            return ref.ask(GetStatus(), block=True, timeout=STATUS_TIMEOUT_S).data
        except Exception:  # noqa: BLE001 - busy or down: the status says so
            return {"unavailable": True}

    def ask_actor(self, name: str, message: Any, timeout: float) -> Any:
        """Ask an actor and wait for its answer; CommandError `unavailable` while it is restarting."""
        ref = self.supervisor.ref(name)
        if ref is None:
            raise CommandError("unavailable", f"the {name} is restarting; try again")
        return ref.ask(message, timeout=timeout)

    def tell_coordinator(self, message: GateMessage, *, wait: bool = False) -> bool:
        """Send the coordinator, the gate's one writer, a change of it: told, or asked (`wait`) where the caller
        must know it applied. False when no coordinator takes it (down, restarting, or not answering in time):
        the message is lost then, and the next generation brings the gate in line with what is kept (the
        operator's pause, the limits' trips; the start-up block's lifting is sent again until it holds)."""
        ref = self.supervisor.ref("coordinator")
        if ref is None:
            return False
        try:
            if wait:
                ref.ask(message, timeout=STATUS_TIMEOUT_S)
            else:
                ref.tell(message)
        except Exception as exc:  # noqa: BLE001 - dead or busy: what is kept outside the gate makes it good
            log.warning("the coordinator did not take %r: %r", message, exc)
            return False
        return True

    def persist_pause(self, reason: str | None) -> None:
        """Keep the pause in the database; a pause that cannot be kept is refused, not half done."""
        value = None if reason is None else {"reason": reason, "since": self.clock.now().isoformat()}
        self.ask_actor("writer", PAUSE.store(value), STATUS_TIMEOUT_S)
