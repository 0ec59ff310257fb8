"""A third venue added through the registry alone runs a pair in paper mode, with no change anywhere else."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest

import supervisor
from core.config import ConfigError, load_settings
from core.domain import OrderPurpose, PairState, Side, Venue
from exchanges.backpack import venue as backpack
from exchanges.backpack.sim import BackpackSim
from exchanges.registry import PaperStart, PaperVenue, VenueSpec, check_registered, client_id_for, registered
from tests.system.conftest import Running

Factory = Callable[..., Running]
GAMMA = Venue("gamma")
SYMBOL = "BTC_USDC_PERP"


def _simulate(start: PaperStart) -> PaperVenue:
    # A venue of its own (own servers, own account) that happens to speak Backpack's API.
    return PaperVenue(BackpackSim(start.prices, start.clock, seed=start.seed + 1, collateral=start.collateral))


@pytest.fixture
def gamma() -> Iterator[VenueSpec]:
    """`gamma` registered for the test (requested before engine_factory: it outlives the engine)."""
    spec = VenueSpec(GAMMA, "Gamma", backpack.SPEC.client_ids, backpack.connect, _simulate)
    with registered(spec):
        yield spec


def test_a_pair_spans_a_venue_added_through_the_registry(gamma: VenueSpec, engine_factory: Factory) -> None:
    run = engine_factory(
        {
            "trading": {
                "venues": ["backpack", "gamma"],
                "markets": [{"name": "BTC", "symbols": {"backpack": SYMBOL, "gamma": SYMBOL}}],
                "cooldown_min_s": 600,  # one pair only: the books are flat once it closes
                "cooldown_max_s": 600,
            },
            "points": {"per_usd": {"gamma": 1}},
        }
    )
    closed = run.wait_pair(PairState.CLOSED, timeout_s=30, what="a pair opened and closed across gamma")
    engine = run.runtime
    assert engine.paper is not None
    sims = {v: engine.paper.sim(v) for v in (Venue.BACKPACK, GAMMA)}
    assert sims[GAMMA] is not sims[Venue.BACKPACK]
    legs = run.repo.positions_for_pair(closed.id)
    assert sorted((leg.venue, leg.side) for leg in legs) == [(Venue.BACKPACK, Side.LONG), (GAMMA, Side.SHORT)]
    orders = run.repo.orders_for_pair(closed.id)
    assert sorted((o.venue, o.purpose, o.status) for o in orders) == sorted(
        (v, p, "filled") for v in (Venue.BACKPACK, GAMMA) for p in (OrderPurpose.OPEN, OrderPurpose.CLOSE)
    )
    # Each order reached its own venue's simulator, and only that one.
    for venue, sim in sims.items():
        filled_there = {(f.order_id, f.client_id) for f in sim.account().fills}
        for o in orders:
            assert ((o.venue_order_id, o.client_id) in filled_there) is (o.venue is venue)
    # Flat on both venues, and the books agree: gamma's volume earned its points, backpack's none.
    assert all(p.quantity == 0 for sim in sims.values() for p in sim.account().positions.values())
    assert all(leg.state == "closed" for leg in legs)
    pair = run.repo.get_pair(closed.id)
    gamma_volume = sum(o.filled_quantity * o.avg_price for o in orders if o.venue is GAMMA)  # type: ignore[operator]
    assert pair.points == gamma_volume > 0
    namespace = run.repo.client_id_namespace
    opened = next(o for o in orders if o.venue is GAMMA and o.purpose is OrderPurpose.OPEN)
    assert gamma.client_ids.parse(opened.client_id, namespace).leg is Side.SHORT
    assert client_id_for(GAMMA, gamma.client_ids.parse(opened.client_id, namespace), namespace) == opened.client_id


def test_a_configured_venue_nobody_registered_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(
        None,
        {
            "trading": {
                "venues": ["backpack", "delta"],
                "markets": [{"name": "BTC", "symbols": {"backpack": SYMBOL, "delta": "X"}}],
            }
        },
    )
    with pytest.raises(ConfigError) as exc:
        check_registered(settings.trading.venues)
    assert exc.value.lines == [
        "trading.venues: delta is not a registered venue (known: backpack, hibachi; a venue is added in "
        "exchanges/registry.py)"
    ]
    assert D(0) == settings.points.per_usd.get(Venue("delta"), D(0))
    # `run` says so in one line and stops before it touches the data directory.
    quiet = settings.model_copy(update={"data_dir": tmp_path / "never"})
    assert supervisor.run(quiet) == supervisor.EXIT_CONFIG
    assert capsys.readouterr().err.startswith("config error: trading.venues: delta is not a registered venue")
    assert not quiet.data_dir.exists()
