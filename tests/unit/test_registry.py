"""The venue registry: the built-in venues, a venue added and removed, and what is refused."""

from __future__ import annotations

import pytest

from core.config import ConfigError
from core.domain import OrderPurpose, Side, Venue
from core.ids import OrderKey
from exchanges import registry
from exchanges.backpack.ids import BACKPACK_IDS
from exchanges.hibachi.ids import HIBACHI_IDS

NS = "k3x9a0q"
KEY = OrderKey(12, Side.SHORT, OrderPurpose.CLOSE, 2)


def test_the_built_in_venues_are_registered_with_their_id_forms() -> None:
    assert {Venue.BACKPACK, Venue.HIBACHI} <= set(registry.known())
    assert registry.spec_of(Venue.BACKPACK).client_ids is BACKPACK_IDS
    assert registry.spec_of(Venue.HIBACHI).client_ids is HIBACHI_IDS
    assert [s.venue for s in registry.check_registered([Venue.HIBACHI, Venue.BACKPACK])] == [
        Venue.HIBACHI,
        Venue.BACKPACK,
    ]
    assert registry.client_id_for(Venue.HIBACHI, KEY, NS) == f"pf{NS}-12-S-close-2"


def test_a_venue_registered_for_a_while_and_one_never_registered() -> None:
    epsilon = Venue("epsilon")
    spec = registry.VenueSpec(epsilon, "Epsilon", HIBACHI_IDS, registry.spec_of(Venue.HIBACHI).connect, print)  # type: ignore[arg-type]
    with registry.registered(spec):
        assert registry.spec_of(epsilon) is spec and epsilon in registry.known()
        assert registry.client_id_for(epsilon, KEY, NS) == f"pf{NS}-12-S-close-2"
    assert epsilon not in registry.known()
    with pytest.raises(ConfigError, match="venue 'epsilon' is not registered; known venues: backpack, hibachi"):
        registry.client_id_for(epsilon, KEY, NS)
    with pytest.raises(ConfigError) as exc:
        registry.check_registered([Venue.BACKPACK, epsilon])
    assert exc.value.lines == [
        "trading.venues: epsilon is not a registered venue (known: backpack, hibachi; a venue is added in "
        "exchanges/registry.py)"
    ]


def test_registering_over_a_built_in_venue_restores_it_afterwards() -> None:
    original = registry.spec_of(Venue.BACKPACK)
    stand_in = registry.VenueSpec(Venue.BACKPACK, "Stand-in", HIBACHI_IDS, original.connect, original.simulate)
    with registry.registered(stand_in):
        assert registry.spec_of(Venue.BACKPACK) is stand_in
    assert registry.spec_of(Venue.BACKPACK) is original
