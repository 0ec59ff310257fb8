"""The chaos run: the whole engine on paper venues at accelerated (fake) time, under a seeded random schedule
of every fault the simulators offer, with invariants checked all along.

`run_chaos(seed, real_seconds)` returns a Summary; any broken invariant raises ChaosFailure naming the seed.
Reproduce a run with `CHAOS_SEED=<seed> CHAOS_SECONDS=<s> python -m pytest tests/system/test_chaos.py -s`.
"""

from __future__ import annotations

import faulthandler
import logging
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.engine import Engine
from core.clock import FakeClock
from core.config import load_settings
from core.domain import ACTIVE_STATES, PairState, Venue
from core.ledger import is_unresolved, leg_book
from exchanges.sim.admin import apply_fault
from exchanges.sim.engine import SimEngine

SPEED = 150.0  # fake seconds per real second
REPAIR_DEADLINE_S = 900.0  # fake seconds a pair may stay NAKED
ASSETS = ("BTC", "ETH", "SOL")


class ChaosFailure(AssertionError):
    """An invariant broke; the message carries the seed."""


@dataclass
class Summary:
    """What a chaos run did and checked."""

    seed: int
    real_seconds: float = 0.0
    fake_seconds: float = 0.0
    lifecycles: int = 0
    pairs_by_state: dict[str, int] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    restarts: int = 0

    def render(self) -> str:
        """The printed summary."""
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        checks = ", ".join(f"{k} {v}" for k, v in sorted(self.checks.items()))
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.pairs_by_state.items()))
        return (
            f"chaos seed {self.seed}: {self.real_seconds:.0f} s real = {self.fake_seconds / 3600:.1f} h simulated; "
            f"{self.lifecycles} pair lifecycles finished ({states}); actor restarts {self.restarts}\n"
            f"  faults injected: {faults}\n  invariant checks passed: {checks}"
        )


class _Errors(logging.Handler):
    """Collects log records that show an unhandled exception."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Traceback" in record.getMessage():
            self.records.append(record)


def _settings(data_dir: Path) -> Any:
    return load_settings(
        None,
        {
            "data_dir": str(data_dir),
            "trading": {
                "min_duration_hours": "0.005",
                "max_duration_hours": "0.015",
                "cooldown_min_s": 1,
                "cooldown_max_s": 10,
                "max_concurrent_pairs": 3,
                "direction_policy": "random",
                "markets": [
                    {"name": "BTC", "backpack_symbol": "BTC_USDC_PERP", "hibachi_symbol": "BTC/USDT-P"},
                    {"name": "ETH", "backpack_symbol": "ETH_USDC_PERP", "hibachi_symbol": "ETH/USDT-P"},
                    {"name": "SOL", "backpack_symbol": "SOL_USDC_PERP", "hibachi_symbol": "SOL/USDT-P"},
                ],
            },
            "monitor": {"interval_s": 20, "feed_stale_after_s": 45},
            "engine": {
                "tick_s": 1,
                "leg_retry_min_s": 2,
                "leg_retry_max_s": 60,
                "venue_timeout_s": "0.5",
                "restart_backoff_min_s": "0.1",
                "restart_backoff_max_s": 1,
                "max_restarts": 50,
            },
        },
    )


class _Chaos:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
        self.dir = Path(tempfile.mkdtemp(prefix="pf-chaos-", dir="/tmp"))
        self.summary = Summary(seed)
        self.engine = Engine(_settings(self.dir), self.clock, rng=random.Random(seed + 1))
        self.stop = threading.Event()
        self.naked_since: dict[int, datetime] = {}
        self._checked_orders: dict[Venue, int] = {}
        self._client_ids: dict[Venue, set[str]] = {Venue.BACKPACK: set(), Venue.HIBACHI: set()}
        self.frozen: dict[str, float] = {}
        self.maintenance_until: float | None = None

    def fail(self, message: str) -> None:
        raise ChaosFailure(f"chaos seed {self.seed}: {message}  (reproduce: CHAOS_SEED={self.seed})")

    def _drive_time(self) -> None:
        step = 0.005
        while not self.stop.wait(step):
            self.clock.advance(step * SPEED)

    def _sims(self) -> dict[Venue, Any]:
        paper = self.engine.paper
        assert paper is not None
        return {Venue.BACKPACK: paper.backpack, Venue.HIBACHI: paper.hibachi}

    # ---- faults -----------------------------------------------------------------------------------------

    def inject(self) -> None:
        venue = self.rng.choice([Venue.BACKPACK, Venue.HIBACHI])
        sim = self._sims()[venue]
        engine: SimEngine = sim.engine
        kind = self.rng.choice(
            [
                "reject",
                "reject_close",
                "http_5xx",
                "http_429",
                "latency",
                "blackhole",
                "partial_fill",
                "drop_ws",
                "freeze",
                "jump",
                "maintenance",
                "clear",
            ]
        )
        code: Any = 4 if venue is Venue.HIBACHI else "INVALID_ORDER"
        spec: dict[str, Any]
        match kind:
            case "reject":
                spec = {"kind": "reject", "code": code, "message": "chaos", "count": self.rng.randint(1, 2)}
            case "reject_close":
                spec = {
                    "kind": "reject",
                    "code": code,
                    "message": "chaos",
                    "count": self.rng.randint(1, 3),
                    "reduce_only": True,
                }
            case "http_5xx":
                spec = {
                    "kind": "http_error",
                    "status": self.rng.choice([500, 502, 503]),
                    "count": self.rng.randint(1, 3),
                }
            case "http_429":
                spec = {"kind": "http_error", "status": 429, "retry_after": 0.05, "count": 1}
            case "latency":
                spec = {"kind": "latency", "seconds": self.rng.choice([0, 0.01, 0.02])}
            case "blackhole":
                spec = {"kind": "blackhole", "count": 1}
            case "partial_fill":
                spec = {"kind": "partial_fill", "fraction": str(self.rng.choice(["0.3", "0.5", "0.8"])), "count": 1}
            case "drop_ws":
                spec = {"kind": "drop_ws"}
            case "freeze":
                asset = self.rng.choice(ASSETS)
                self.frozen[asset] = time.monotonic() + self.rng.uniform(0.5, 2)
                spec = {"kind": "freeze", "asset": asset, "on": True}
            case "maintenance":  # Hibachi's exchange-info status: no order may be sent there meanwhile
                hibachi = self._sims()[Venue.HIBACHI]
                hibachi.status = "SCHEDULED_MAINTENANCE"
                self.maintenance_until = time.monotonic() + self.rng.uniform(0.2, 1)
                self.summary.faults[kind] += 1
                return
            case "jump":
                spec = {"kind": "jump", "asset": self.rng.choice(ASSETS), "pct": str(self.rng.choice([-3, -1, 1, 3]))}
            case _:
                spec = {"kind": "clear"}
        apply_fault(engine, sim.ws, spec)
        self.summary.faults[kind] += 1
        if self.maintenance_until is not None and time.monotonic() > self.maintenance_until:
            self._sims()[Venue.HIBACHI].status = "NORMAL"
            self.maintenance_until = None
        for asset, until in list(self.frozen.items()):
            if time.monotonic() > until:
                for s in self._sims().values():
                    s.prices.freeze(asset, False)
                del self.frozen[asset]

    # ---- invariants -------------------------------------------------------------------------------------

    def check(self, final: bool = False) -> None:
        repo = self.engine.repo
        now = self.clock.now()
        sims = self._sims()
        # 1. No venue order without a database row (rows are written before sending). Checked for the orders
        # that appeared since the last check, so the checker's cost does not grow with the run.
        for venue, sim in sims.items():
            with sim.engine.lock:
                orders = list(sim.account().orders.values())
            fresh = orders[self._checked_orders.get(venue, 0) :]
            self._checked_orders[venue] = len(orders)
            for order in fresh:
                if order.client_id is None:
                    continue
                if order.client_id in self._client_ids[venue]:
                    self.fail(f"{venue} received client id {order.client_id} twice")
                self._client_ids[venue].add(order.client_id)
                try:
                    repo.get_order(venue, order.client_id)
                except LookupError:
                    self.fail(f"{venue} has order {order.client_id} with no database row")
        self.summary.checks["orders_have_rows"] += 1
        # 2. No naked leg older than the repair deadline.
        for pair in repo.list_pairs([PairState.NAKED]):
            since = self.naked_since.setdefault(pair.id, now)
            if (now - since).total_seconds() > REPAIR_DEADLINE_S:
                self.fail(f"pair {pair.id} has been NAKED since {since} ({now - since} simulated)")
        self.naked_since = {
            k: v for k, v in self.naked_since.items() if k in {p.id for p in repo.list_pairs([PairState.NAKED])}
        }
        self.summary.checks["naked_within_deadline"] += 1
        # 3. Database positions equal venue positions whenever quiet.
        self._check_positions_when_quiet(final)

    def _quiet_expected(self) -> dict[tuple[Venue, str], Decimal] | None:
        repo = self.engine.repo
        if self.engine.desk.claims.claimed():
            return None
        expected: dict[tuple[Venue, str], Decimal] = {}
        for pair in repo.list_pairs(ACTIVE_STATES):
            if pair.state is not PairState.OPEN:
                return None
            for leg in repo.positions_for_pair(pair.id):
                orders = repo.orders_for_position(leg.id)
                if any(is_unresolved(o) for o in orders):
                    return None
                key = (leg.venue, leg.symbol)
                expected[key] = expected.get(key, Decimal(0)) + leg.side.sign * leg_book(leg.side, orders).held
        return expected

    def _unquiet(self) -> str:
        """What keeps the book busy: pairs not OPEN, claims, and unresolved orders."""
        repo = self.engine.repo
        parts = [f"claimed {sorted(self.engine.desk.claims.claimed())}"]
        for pair in repo.list_pairs(ACTIVE_STATES):
            pending = [f"{o.venue}:{o.client_id}:{o.status}" for o in repo.orders_for_pair(pair.id) if is_unresolved(o)]
            if pair.state is not PairState.OPEN or pending:
                parts.append(f"pair {pair.id} {pair.state.value} unresolved {pending}")
        return "; ".join(parts)

    def _venue_positions(self) -> tuple[dict[tuple[Venue, str], Decimal], int]:
        out: dict[tuple[Venue, str], Decimal] = {}
        version = 0
        for venue, sim in self._sims().items():
            with sim.engine.lock:
                version += sim.engine.version
                for symbol, pos in sim.account().positions.items():
                    if pos.quantity:
                        out[(venue, symbol)] = pos.quantity
        return out, version

    def _check_positions_when_quiet(self, final: bool) -> None:
        before, v1 = self._venue_positions()
        expected = self._quiet_expected()
        after, v2 = self._venue_positions()
        if expected is None or v1 != v2 or before != after or self._quiet_expected() != expected:
            if final:
                stacks = Path(tempfile.gettempdir()) / f"chaos-{self.seed}-threads.txt"
                with stacks.open("w") as fh:  # where whatever holds the book is stuck
                    faulthandler.dump_traceback(file=fh, all_threads=True)
                self.fail(f"the book never became quiet at the end: {self._unquiet()}; thread stacks in {stacks}")
            return
        expected = {k: v for k, v in expected.items() if v}
        if expected != after:
            self.fail(f"database positions {expected} differ from venue positions {after}")
        self.summary.checks["positions_agree_when_quiet"] += 1

    # ---- the run ----------------------------------------------------------------------------------------

    def run(self, real_seconds: float) -> Summary:
        errors = _Errors()
        logging.getLogger().addHandler(errors)
        self.engine.start()
        driver = threading.Thread(target=self._drive_time, name="chaos-time", daemon=True)
        loop = threading.Thread(target=self.engine.run, args=(self.stop, 0.01), name="chaos-main", daemon=True)
        driver.start()
        loop.start()
        started = time.monotonic()
        fake_start = self.clock.now()
        try:
            next_fault = started
            while time.monotonic() - started < real_seconds:
                if time.monotonic() >= next_fault:
                    self.inject()
                    next_fault = time.monotonic() + self.rng.uniform(0.1, 0.6)
                self.check()
                time.sleep(0.05)
            self._settle()
        finally:
            self.stop.set()
            loop.join(30)
            self.summary.real_seconds = time.monotonic() - started
            self.summary.fake_seconds = (self.clock.now() - fake_start).total_seconds()
            status = self.engine.supervisor.status()
            self.summary.restarts = sum(a["restarts"] for a in status.values())
            counts = self.engine.repo.count_pairs_by_state()
            self.summary.pairs_by_state = {s.value: n for s, n in counts.items()}
            self.summary.lifecycles = counts.get(PairState.CLOSED, 0) + counts.get(PairState.FAILED, 0)
            dead = [name for name, a in status.items() if not a["alive"]]
            # Nobody trades by hand here: any reported mismatch is a false alarm or a lost position.
            mismatches = [
                e.message for e in self.engine.repo.list_events(limit=100000) if e.kind == "position_mismatch"
            ]
            try:
                self.engine.shutdown()
            finally:
                self.stop.set()
                logging.getLogger().removeHandler(errors)
                shutil.rmtree(self.dir, ignore_errors=True)
        if dead:
            self.fail(f"actors not alive at the end: {dead}")
        if mismatches:
            self.fail(f"{len(mismatches)} position mismatch(es) reported, first: {mismatches[0]}")
        self.summary.checks["no_position_mismatch"] += 1
        self.summary.checks["actors_alive_at_end"] += 1
        if errors.records:
            first = errors.records[0]
            self.fail(f"{len(errors.records)} unhandled exception(s) logged, first: {first.name}: {first.getMessage()}")
        self.summary.checks["no_unhandled_exceptions"] += 1
        return self.summary

    def _settle(self) -> None:
        """Stop the faults and let the book come to rest; then the final checks must hold."""
        for sim in self._sims().values():
            apply_fault(sim.engine, sim.ws, {"kind": "clear"})
        self.frozen.clear()
        self._sims()[Venue.HIBACHI].status = "NORMAL"
        self.engine.command("pause", {"reason": "chaos run ending"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check()
            expected = self._quiet_expected()
            if expected is not None:
                self.check(final=True)
                return
            time.sleep(0.05)
        self.check(final=True)


def run_chaos(seed: int, real_seconds: float) -> Summary:
    """One chaos run; raises ChaosFailure (with the seed) if an invariant breaks."""
    return _Chaos(seed).run(real_seconds)
