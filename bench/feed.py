"""Section 5: websocket quotes one ExchangeActor absorbs while the Monitor keeps ticking, and how old a
quote is when it becomes visible through the ExchangeActor (the path the Monitor reads it by)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

from actors.messages import FeedState, GetFeedState, GetQuote, OpenNow, PairOpened, QuoteReply, Tick
from bench.flood import SYMBOL
from bench.report import BenchError, Figure
from bench.venues import ROOT, SimProcesses, live_settings, scratch_dir, start_engine

MONITOR_EVERY_S = 0.1


class _MonitorTicker(threading.Thread):
    """Ticks the Monitor every MONITOR_EVERY_S, as the engine loop would, and times each tick."""

    def __init__(self, monitor: Any, clock: Any) -> None:
        super().__init__(name="bench-monitor-ticks", daemon=True)
        self.monitor, self.clock = monitor, clock
        self.stop = threading.Event()
        self.durations_ms: list[float] = []

    def run(self) -> None:
        while not self.stop.wait(MONITOR_EVERY_S):
            started = time.perf_counter()
            self.monitor.ask(Tick(self.clock.now()), timeout=30)
            self.durations_ms.append((time.perf_counter() - started) * 1000)


class _QuoteProbe(threading.Thread):
    """Asks the ExchangeActor for the quote in a loop; each new quote's age is its lag from the sender."""

    def __init__(self, exchange: Any) -> None:
        super().__init__(name="bench-quote-probe", daemon=True)
        self.exchange = exchange
        self.stop = threading.Event()
        self.lags_us: list[float] = []

    def run(self) -> None:
        last = None
        while not self.stop.is_set():
            reply: QuoteReply = self.exchange.ask(GetQuote(SYMBOL), timeout=10)
            seen_us = time.time_ns() / 1000
            ts = reply.quote.ts
            if ts is not None and ts != last:
                last = ts
                self.lags_us.append(seen_us - ts.timestamp() * 1_000_000)
            time.sleep(0.0002)


def _messages(exchange: Any) -> int:
    state: FeedState = exchange.ask(GetFeedState(), timeout=10)
    return state.messages


def run(sims: SimProcesses, seconds: float, paced_rate: int) -> list[Figure]:
    """A paced flood for the lag, then an unthrottled one for the rate absorbed."""
    flood = subprocess.Popen(
        [sys.executable, "-m", "bench.flood"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    # Locals, not flood's attributes: the narrowing then holds inside flood_for too.
    to_flood, from_flood = flood.stdin, flood.stdout
    assert to_flood is not None and from_flood is not None  # both were asked for as PIPE
    if hasattr(os, "sched_setaffinity"):  # the sender is a venue too: it runs where the simulators run
        os.sched_setaffinity(flood.pid, os.sched_getaffinity(sims.procs[0].pid))
    url = json.loads(from_flood.readline())["ws"]
    sims.set_latency(0)
    only_btc = {"markets": [{"name": "BTC", "backpack_symbol": SYMBOL, "hibachi_symbol": "BTC/USDT-P"}]}
    engine = start_engine(live_settings(sims, scratch_dir(), {"backpack": {"ws_url": url}, "trading": only_btc}))
    try:
        exchange, monitor = engine.supervisor.ref("exchange.backpack"), engine.supervisor.ref("monitor")
        deadline = time.monotonic() + 10
        while _messages(exchange) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        coordinator = engine.supervisor.ref("coordinator")
        if coordinator is None:
            raise BenchError("the coordinator is down")
        opened = coordinator.ask(OpenNow("BTC"), timeout=60)
        if not isinstance(opened, PairOpened):
            raise BenchError(f"the feed bench needs an open pair for the Monitor to read: {opened}")

        def flood_for(rate: int) -> dict[str, float]:
            to_flood.write(f"flood {rate} {seconds}\n")
            to_flood.flush()
            return json.loads(from_flood.readline())

        ticker, probe = _MonitorTicker(monitor, engine.clock), _QuoteProbe(exchange)
        ticker.start()
        probe.start()
        flood_for(paced_rate)
        probe.stop.set()
        probe.join()
        paced_ticks = list(ticker.durations_ms)

        before, started = _messages(exchange), time.monotonic()
        sent = flood_for(0)
        target, last, drained_at = before + int(sent["sent"]), -1, time.monotonic()
        while (count := _messages(exchange)) < target and count != last:  # let the receiver drain its buffer
            last, drained_at = count, time.monotonic()
            time.sleep(0.05)
        absorbed = (_messages(exchange) - before) / max(drained_at - started, sent["seconds"])
        ticker.stop.set()
        ticker.join()
        flood_ticks = ticker.durations_ms[len(paced_ticks) :]
    finally:
        to_flood.close()
        flood.wait(10)
        engine.shutdown()
    late = sum(1 for d in flood_ticks if d > MONITOR_EVERY_S * 1000)
    return [
        Figure.single(
            "5 feed",
            "quotes absorbed by one ExchangeActor (sender unthrottled)",
            absorbed,
            "quotes/s",
            int(sent["sent"]),
            f"Monitor ticking every {MONITOR_EVERY_S * 1000:.0f} ms meanwhile",
        ),
        Figure.spread(
            "5 feed",
            "Monitor tick during the unthrottled flood",
            flood_ticks,
            "ms",
            f"{late} of {len(flood_ticks)} ticks longer than the interval",
        ),
        Figure.spread(
            "5 feed",
            f"quote sent -> visible through the ExchangeActor ({paced_rate}/s)",
            [x / 1000 for x in probe.lags_us],
            "ms",
            "wall clock, same machine",
        ),
        Figure.spread(
            "5 feed", f"Monitor tick at {paced_rate} quotes/s", paced_ticks, "ms", "reads both venues over REST too"
        ),
    ]
