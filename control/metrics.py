"""The optional Prometheus endpoint: gauges refreshed from the engine, counters fed by the order path.

Off by default and on loopback by default (`[metrics]`); its own registry, so tests can run several.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from core.domain import PairState


class Metrics:
    """Every metric the farmer exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pairs = Gauge("perp_farmer_pairs", "Pairs by state", ["state"], registry=r)
        self.open_pairs = Gauge("perp_farmer_open_pairs", "Pairs holding positions (not closed or failed)", registry=r)
        self.equity = Gauge("perp_farmer_equity_usd", "Account equity per venue", ["venue"], registry=r)
        self.collateral_ratio = Gauge(
            "perp_farmer_collateral_ratio", "Equity / maintenance margin", ["venue"], registry=r
        )
        self.unrealized = Gauge("perp_farmer_unrealized_pnl_usd", "Unrealized PnL of all open legs", registry=r)
        self.feed_age = Gauge(
            "perp_farmer_feed_age_seconds", "Age of a feed's last message", ["venue", "symbol"], registry=r
        )
        self.order_latency = Histogram(
            "perp_farmer_order_seconds",
            "Place to settled outcome",
            ["venue"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.orders = Counter("perp_farmer_orders", "Orders by outcome", ["venue", "result"], registry=r)
        self.restarts = Gauge("perp_farmer_actor_restarts", "Restarts per actor", ["actor"], registry=r)
        self.alerts = Gauge("perp_farmer_events", "Stored events by level", ["level"], registry=r)
        self.port: int | None = None

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics on host:port (0: any free port); returns the port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = server.server_address[1]
        return self.port

    def observe_order(self, venue: str, result: str, seconds: float) -> None:
        """One order's outcome and how long it took."""
        self.orders.labels(venue, result).inc()
        self.order_latency.labels(venue).observe(seconds)

    def refresh(self, counts: dict[PairState, int], status: dict[str, Any], events: dict[str, int]) -> None:
        """Update the gauges from pair counts, the engine status and event counts."""
        for state in PairState:
            self.pairs.labels(state.value).set(counts.get(state, 0))
        self.open_pairs.set(sum(n for s, n in counts.items() if not s.is_terminal))
        for venue, ratio in status.get("collateral_ratio", {}).items():
            if ratio is not None:
                self.collateral_ratio.labels(venue).set(float(ratio))
        for venue, equity in status.get("equity", {}).items():
            self.equity.labels(venue).set(float(equity))
        self.unrealized.set(float(status.get("unrealized_pnl", 0)))
        for venue, feed in status.get("feeds", {}).items():
            for symbol, age in feed.get("ages_s", {}).items():
                if age is not None:
                    self.feed_age.labels(venue, symbol).set(age)
        for actor, info in status.get("actors", {}).items():
            self.restarts.labels(actor).set(info["restarts"])
        for level, count in events.items():
            self.alerts.labels(level).set(count)
