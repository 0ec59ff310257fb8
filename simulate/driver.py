"""One style's simulated run: the real Runtime in paper mode on a FakeClock that only this driver moves.

Each step: advance fake time; tick both simulators (resting orders fill from the tape in simulated-time order);
run one turn of the engine's main loop (`Runtime.step`); then wait, in real time and capped, until the engine is
done with that instant: every actor has handled what the step sent it (a Ping queued behind it is answered),
no order is on the wire and no pair is unhedged (`Activity`), and every maker fill the simulators made has been
acted on (`Activity.handled_quantity`). So simulated time never passes while a hedge is on its way, as it would
not in a market where a hedge takes milliseconds. A turn that waits on fake time itself (a sleep on the clock:
a backoff, a readback) lets time go on.

Steps are short (0.25 s, the price walk's step) while anything moves, and long (30 s) while the engine rests
with nothing exposed and no order resting; both keep to one grid of fake time. Quotes are read over REST at the
step's instant (the simulators' real-time market streams are silenced; see Driver.start).

Run as `python -m simulate.driver --style taker --hours 24 --seed 1`: prints the figures as one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pykka

from actors.messages import Ping
from actors.runtime import Runtime
from core.activity import Activity
from core.clock import FakeClock
from core.config import ExecutionStyle, Settings, load_settings
from exchanges.base import OrderType
from exchanges.paper import PaperVenues
from exchanges.sim.engine import SimAccount, SimOrder
from simulate.figures import StyleFigures, measure
from simulate.params import IDLE_STEP_S, MONITOR_INTERVAL_S, REALISTIC_VOLATILITY, STEP_S, WAIT_CAP_S

log = logging.getLogger(__name__)

START = datetime(2026, 3, 1, tzinfo=UTC)  # every run starts here: same instant, same price path
POLL_S = 0.001  # real seconds between looks while waiting
SHUTDOWN_TICK_REAL_S, SHUTDOWN_TICK_FAKE_S = 0.01, 0.5  # how fake time moves while the runtime stops
LOST_EVENT_S = 0.3  # real seconds a fill may be on its way to a waiting maker phase before it counts as lost
# Actors that take ticks or their writes: a Ping answered by each means what the step sent them is handled.
BARRIER = ("coordinator", "closer", "monitor", "writer")


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` laid over it, nested dicts merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def simulation_settings(
    style: str,
    seed: int,
    data_dir: Path,
    *,
    volatility: Decimal = REALISTIC_VOLATILITY,
    config_file: Path | None = None,
    extra: dict[str, Any] | None = None,
) -> Settings:
    """The defaults (or `config_file`), in paper mode on simulated prices, with the style for opens and closes,
    everything kept in `data_dir`, and nothing reaching outside the process (no alerts, metrics, database URL);
    `extra` overrides the rest (tests shorten durations with it)."""
    if config_file is None:
        config_file = data_dir / "defaults.toml"  # empty: the defaults, not a ./config.toml lying around
        config_file.write_text("")
    forced: dict[str, Any] = {
        "mode": "paper",
        "data_dir": str(data_dir),
        "database": {"url": None},
        "paper": {"seed": seed, "prices": "simulated", "volatility": str(volatility)},
        "trading": {"execution": {"open": style, "close": style}},
        # No quote is taken from the market streams (Driver.run silences them): only fake-time instants count.
        "monitor": {"feed_stale_after_s": 1, "interval_s": MONITOR_INTERVAL_S},
        "metrics": {"enabled": False},
        "alerts": {"webhook_url": None, "telegram_bot_token": None, "discord_webhook_url": None},
        "control": {"address": None},
    }
    return load_settings(config_file, merge(forced, extra or {}))


class SimOrders:
    """Order listener of the simulators: the LIMIT orders resting now, and the cumulative filled quantity of every
    one filled as a maker (what tick() fills from the tape) until the engine has handled it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._filled: dict[tuple[str, str], Decimal] = {}
        self._resting: set[tuple[str, str]] = set()

    def listener(self, venue: str) -> Callable[[SimAccount, SimOrder], None]:
        """The listener for one venue's engine (called under that engine's lock)."""

        def on_order(account: SimAccount, order: SimOrder) -> None:
            if order.order_type is not OrderType.LIMIT:
                return
            key = (venue, order.id)
            with self._lock:
                if order.status.is_final:
                    self._resting.discard(key)
                else:
                    self._resting.add(key)
                last = account.fills[-1] if account.fills else None
                if order.filled and last is not None and last.order_id == order.id and last.is_maker:
                    self._filled[key] = max(self._filled.get(key, Decimal(0)), order.filled)

        return on_order

    def resting(self) -> bool:
        """Whether a LIMIT order rests on a simulator."""
        with self._lock:
            return bool(self._resting)

    def unhandled(self, activity: Activity) -> int:
        """How many maker fills the engine has not acted on yet (those it has are forgotten)."""
        with self._lock:
            for key, filled in list(self._filled.items()):
                if activity.handled_quantity(*key) >= filled:
                    del self._filled[key]
            return len(self._filled)


class Driver:
    """Runs one Runtime through `hours` of fake time, measuring its true unhedged exposure every step."""

    def __init__(
        self,
        settings: Settings,
        seed: int,
        step_s: float = STEP_S,
        idle_step_s: float = IDLE_STEP_S,
        wait_cap_s: float = WAIT_CAP_S,
    ) -> None:
        self.settings = settings
        self.step_s = step_s
        # Long steps are a whole number of short ones, and both keep to their own grid from the start: a run whose
        # engine took a few short steps more somewhere (a readback that sleeps on the clock) is back on the same
        # instants at the next long step, so its later decisions see the same prices.
        self.idle_every = max(1, round(idle_step_s / step_s))
        self._at = 0  # short steps since the start
        self.wait_cap_s = wait_cap_s
        self.clock = FakeClock(START)
        self.runtime = Runtime(settings, self.clock, rng=random.Random(seed))  # noqa: S311 - draws, not secrets
        self.orders = SimOrders()
        self.steps = 0
        self.idle_steps = 0
        self.cap_hits = 0
        self.peak_unhedged = Decimal(0)
        self._pings: dict[str, pykka.Future[Any]] = {}
        self._idle = False

    # ---- the run ------------------------------------------------------------------------------------------

    def run(self, hours: float) -> dict[str, Any]:
        """Start, step through `hours`, stop; what the driver measured (figures.measure takes the rest)."""
        started = time.monotonic()
        paper = self.start()
        end = round(hours * 3600 / self.step_s)
        try:
            while self._at < end:
                target = (self._at // self.idle_every + 1) * self.idle_every if self._idle else self._at + 1
                target = min(target, end)
                self.step((target - self._at) * self.step_s)
                self._at = target
            marks = {asset: paper.prices.price(asset) for asset in paper.prices.assets()}
        finally:
            self._shut_down()
        return {
            "peak_unhedged_usd": self.peak_unhedged,
            "engine_peak_unhedged_usd": self.runtime.desk.activity.peak_unhedged_usd,
            "max_unhedged_usd": self.settings.trading.execution.max_unhedged_usd,
            "steps": self.steps,
            "idle_steps": self.idle_steps,
            "cap_hits": self.cap_hits,
            "final_marks": marks,
            "wall_s": round(time.monotonic() - started, 1),
        }

    def _shut_down(self) -> None:
        """Stop the runtime while fake time keeps moving: a maker phase cut short cancels its orders and levels its
        legs, which may wait on the clock (a lookup's pause, a retry's backoff, the rate limiter)."""
        with self.clock.ticking(SHUTDOWN_TICK_REAL_S, SHUTDOWN_TICK_FAKE_S):
            self.runtime.shutdown()

    def start(self) -> PaperVenues:
        """Start the runtime and its simulators, silenced and listened to."""
        self.runtime.start()
        paper = self.runtime.paper
        assert paper is not None  # paper mode: the simulators run in this process
        # The simulators' state file is rewritten whole after every change: nothing here restarts, so skip it.
        paper.store = None
        for venue in paper.venues:
            sim = paper.sim(venue)
            sim.engine.order_listeners.append(self.orders.listener(venue.value))
            # The market streams publish on real time, from a thread of their own: at accelerated time a frame
            # read from one fake instant arrives in another, so quotes would depend on thread timing. Without
            # them every quote is read over REST at the instant the engine asks (the feed is stale by its age,
            # as the monitor notes once); orders' private events still stream.
            sim.publish_once = _publish_nothing
        return paper

    def step(self, seconds: float) -> None:
        """One step of `seconds` fake seconds (see the module docstring); the next one is long when this one
        left the engine at rest with nothing exposed and nothing resting."""
        paper = self.runtime.paper
        assert paper is not None
        self.idle_steps += self._idle
        self.clock.advance(seconds)
        for venue in paper.venues:
            paper.sim(venue).engine.tick()  # takes the engine's lock
        self._sample()  # maker fills not hedged yet count: they are exposure until the hedge fills
        self.runtime.step()
        if self.runtime.fatal is not None:
            raise RuntimeError(f"the engine stopped: {self.runtime.fatal}")
        rested = self._settle()
        exposed = self._sample()
        self._idle = rested and not exposed and not self.orders.resting()
        self.steps += 1

    # ---- waiting for the engine ------------------------------------------------------------------------------

    def _ping(self) -> None:
        """Queue a Ping behind whatever each barrier actor was sent (one at a time, like the ticks)."""
        for name in BARRIER:
            previous = self._pings.get(name)
            if previous is not None and not _done(previous):
                continue
            ref = self.runtime.supervisor.ref(name)
            if ref is None:
                self._pings.pop(name, None)
                continue
            try:
                self._pings[name] = ref.ask(Ping(), block=False)
            except pykka.ActorDeadError:
                self._pings.pop(name, None)

    def _waits_on_fake_time(self) -> bool:
        """Whether a thread sleeps on the fake clock with its deadline ahead: work that needs time to pass."""
        return bool(self.clock.asleep()) and not self.clock.sleepers_due()

    def _settle(self) -> bool:
        """Wait (real time, capped) until the engine is done with this instant (True), or waits on fake time or
        hit the cap (False)."""
        self._ping()
        activity = self.runtime.desk.activity
        started = time.monotonic()
        deadline = started + self.wait_cap_s
        calm = 0
        while True:
            quiet = not activity.busy() and not self.orders.unhandled(activity)
            if quiet and all(_done(f) for f in self._pings.values()):
                return True
            # Twice in a row: a thread just woken has had time to leave the clock.
            # Time must move when the engine waits on it: a thread asleep on the fake clock (a backoff, the rate
            # limiter, which a phase's fill may be queued behind), or a maker phase waiting for a fill or a deadline
            # (it holds its actor, whose Ping waits with it).
            # A fill the phases have not heard while they wait, past LOST_EVENT_S real, was lost with a stream
            # that reconnected (at accelerated time they do): the phase reads it over REST once time moves.
            asleep = self._waits_on_fake_time() and (quiet or not activity.phases_waiting())
            waiting = activity.phases_waiting() and (quiet or time.monotonic() - started > LOST_EVENT_S)
            calm = calm + 1 if asleep or waiting else 0
            if calm >= 2:
                return False
            if time.monotonic() > deadline:
                self.cap_hits += 1
                log.warning(
                    "step %d: the engine was not done after %.1f s real; time moves on", self.steps, self.wait_cap_s
                )
                return False
            pending = next((f for f in self._pings.values() if not _done(f)), None)
            if activity.busy():
                activity.wait_quiet(POLL_S)
            elif pending is not None:
                _wait(pending, POLL_S)
            else:
                time.sleep(POLL_S / 4)  # a maker fill not handled yet: Activity has no wait for that

    def _sample(self) -> bool:
        """Measure the true unhedged exposure: per asset, |signed quantity summed over both venues| x price;
        whether any is left. Every asset's price is read, every step: the walk then takes every step of its own
        (a long gap between reads is taken as one scaled step), the same path whatever the style."""
        paper = self.runtime.paper
        assert paper is not None
        held = {asset: Decimal(0) for asset in paper.prices.assets()}
        for venue in paper.venues:
            engine = paper.sim(venue).engine
            with engine.lock:
                for account in engine.accounts.values():
                    for symbol, pos in account.positions.items():
                        if pos.quantity:
                            asset = engine.markets[symbol].asset
                            held[asset] = held.get(asset, Decimal(0)) + pos.quantity
        for asset, quantity in held.items():
            usd = abs(quantity) * paper.prices.price(asset)
            self.peak_unhedged = max(self.peak_unhedged, usd)
        return any(held.values())


def _publish_nothing() -> int:
    return 0


def _done(future: pykka.Future[Any]) -> bool:
    try:
        future.get(timeout=0)
    except pykka.Timeout:
        return False
    except Exception:  # noqa: BLE001 - a dead actor's ping is done too: nothing more comes from it
        return True
    return True


def _wait(future: pykka.Future[Any], timeout_s: float) -> None:
    with contextlib.suppress(Exception):  # only waiting here; _done says how it ended
        future.get(timeout=timeout_s)


def simulate_style(
    style: str,
    hours: float,
    seed: int,
    data_dir: Path,
    *,
    volatility: Decimal = REALISTIC_VOLATILITY,
    config_file: Path | None = None,
    extra: dict[str, Any] | None = None,
    step_s: float = STEP_S,
    idle_step_s: float = IDLE_STEP_S,
) -> StyleFigures:
    """Run one style for `hours` in `data_dir` (which keeps its database and simulate.log) and measure it."""
    settings = simulation_settings(style, seed, data_dir, volatility=volatility, config_file=config_file, extra=extra)
    driver = Driver(settings, seed, step_s=step_s, idle_step_s=idle_step_s)
    measured = driver.run(hours)
    return measure(driver.runtime.repo, settings.trading.venues, style, measured)


def main(argv: list[str] | None = None) -> int:
    """Child entry point: one style, its figures as one JSON line on stdout; the log goes to a file."""
    parser = argparse.ArgumentParser(description="one simulated style; prints its figures as JSON")
    parser.add_argument("--style", choices=[s.value for s in ExecutionStyle], required=True)
    parser.add_argument("--hours", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--volatility", type=Decimal, default=REALISTIC_VOLATILITY)
    parser.add_argument("--step", type=float, default=STEP_S, help="fake seconds per step while anything moves")
    parser.add_argument("--idle-step", type=float, default=IDLE_STEP_S, help="fake seconds per step at rest")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="where the run keeps its files (default: temporary)")
    parser.add_argument("--settings-json", default="{}", help="settings overrides as JSON (tests)")
    args = parser.parse_args(argv)
    data_dir = args.dir or Path(tempfile.mkdtemp(prefix=f"pf-sim-{args.style}-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=data_dir / "simulate.log", level=logging.INFO, force=True)
    try:
        figures = simulate_style(
            args.style,
            args.hours,
            args.seed,
            data_dir,
            volatility=args.volatility,
            config_file=args.config,
            extra=json.loads(args.settings_json),
            step_s=args.step,
            idle_step_s=args.idle_step,
        )
    finally:
        if args.dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(figures.as_json()), flush=True)  # noqa: T201 - the child's one line, for its parent
    return 0


if __name__ == "__main__":
    sys.exit(main())
