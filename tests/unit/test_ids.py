from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from core.domain import OrderPurpose, Side, Venue
from core.ids import (
    CREATED_BEFORE_TOLERANCE,
    MAX_ATTEMPT,
    MAX_PAIR_ID,
    OrderKey,
    check_namespace,
    external_client_id,
    mint,
    new_namespace,
    predates_our_order,
)
from exchanges.backpack.ids import BACKPACK_IDS, backpack_client_id, parse_backpack_client_id
from exchanges.hibachi.ids import HIBACHI_IDS, HIBACHI_MAX_LENGTH, hibachi_client_id, parse_hibachi_client_id
from exchanges.registry import client_id_for

NS = "k3x9a0q"
OTHER = "k3x9a0r"

KEYS = [
    OrderKey(1, Side.LONG, OrderPurpose.OPEN, 0),
    OrderKey(1, Side.SHORT, OrderPurpose.OPEN, 0),
    OrderKey(1, Side.LONG, OrderPurpose.CLOSE, 0),
    OrderKey(1, Side.LONG, OrderPurpose.CLOSE, 1),
    OrderKey(77, Side.SHORT, OrderPurpose.ROLLBACK, 3),
    OrderKey(MAX_PAIR_ID, Side.SHORT, OrderPurpose.REPAIR, MAX_ATTEMPT),
    OrderKey(MAX_PAIR_ID, Side.SHORT, OrderPurpose.ROLLBACK, MAX_ATTEMPT),  # the longest Hibachi id
]


@pytest.mark.parametrize("namespace", [NS, "0000000", "zzzzzzz"])
@pytest.mark.parametrize("key", KEYS)
def test_round_trip(key: OrderKey, namespace: str) -> None:
    bp = backpack_client_id(key, namespace)
    assert 0 <= bp < 2**32
    assert parse_backpack_client_id(bp, namespace) == key
    hb = hibachi_client_id(key, namespace)
    assert re.fullmatch(r"[A-Za-z0-9-]{1,32}", hb)
    assert parse_hibachi_client_id(hb, namespace) == key
    for form in (BACKPACK_IDS, HIBACHI_IDS):
        assert form.parse(mint(form, key, namespace), namespace) == key


def test_every_key_gets_a_distinct_id() -> None:
    assert len({backpack_client_id(k, NS) for k in KEYS}) == len(KEYS)
    assert len({hibachi_client_id(k, NS) for k in KEYS}) == len(KEYS)


def test_two_databases_mint_different_ids_for_the_same_key() -> None:
    # The review's failure: a new database restarts at pair 1 and minted last week's ids again.
    for key in KEYS:
        for venue in (Venue.BACKPACK, Venue.HIBACHI):
            assert client_id_for(venue, key, NS) != client_id_for(venue, key, OTHER)


def test_the_longest_hibachi_id_fits_the_venue_limit() -> None:
    longest = hibachi_client_id(OrderKey(MAX_PAIR_ID, Side.SHORT, OrderPurpose.ROLLBACK, MAX_ATTEMPT), "zzzzzzz")
    assert len(longest) == HIBACHI_MAX_LENGTH


def test_known_values() -> None:
    # pair 1, long, open, attempt 0: 1 << 13, XOR a zero mask
    assert backpack_client_id(OrderKey(1, Side.LONG, OrderPurpose.OPEN, 0), "0000000") == 8192
    assert backpack_client_id(OrderKey(1, Side.LONG, OrderPurpose.OPEN, 0), "0000001") == 8193
    assert hibachi_client_id(OrderKey(12, Side.SHORT, OrderPurpose.CLOSE, 2), NS) == f"pf{NS}-12-S-close-2"
    assert client_id_for(Venue.BACKPACK, OrderKey(1, Side.LONG, OrderPurpose.OPEN, 0), "0000000") == "8192"
    key = OrderKey(12, Side.SHORT, OrderPurpose.CLOSE, 2)
    assert client_id_for(Venue.HIBACHI, key, NS) == f"pf{NS}-12-S-close-2"


def test_minting_checks_the_namespace_and_keeps_external_ids_apart() -> None:
    class Careless:
        def make(self, key: OrderKey, namespace: str) -> str:
            return f"ext-{key.pair_id}"

        def parse(self, client_id: str, namespace: str) -> OrderKey:
            raise ValueError(client_id)

    with pytest.raises(ValueError, match="external"):
        mint(Careless(), KEYS[0], NS)
    with pytest.raises(ValueError, match="namespace"):
        mint(BACKPACK_IDS, KEYS[0], "bad")
    with pytest.raises(ValueError):
        BACKPACK_IDS.parse("pf-1", NS)


def test_ids_of_another_database_or_from_before_namespaces_do_not_parse_as_ours() -> None:
    key = OrderKey(12, Side.SHORT, OrderPurpose.CLOSE, 2)
    with pytest.raises(ValueError, match="another database"):
        parse_hibachi_client_id(hibachi_client_id(key, OTHER), NS)
    with pytest.raises(ValueError):
        parse_hibachi_client_id("pf-12-S-close-2", NS)  # the namespace-less form of older databases
    assert parse_backpack_client_id(backpack_client_id(key, OTHER), NS) != key


def test_out_of_range_keys_and_foreign_ids() -> None:
    with pytest.raises(ValueError):
        OrderKey(0, Side.LONG, OrderPurpose.OPEN, 0)
    with pytest.raises(ValueError):
        OrderKey(MAX_PAIR_ID + 1, Side.LONG, OrderPurpose.OPEN, 0)
    with pytest.raises(ValueError):
        OrderKey(1, Side.LONG, OrderPurpose.OPEN, MAX_ATTEMPT + 1)
    with pytest.raises(ValueError):
        parse_backpack_client_id(2**32, NS)
    with pytest.raises(ValueError):
        parse_hibachi_client_id("someone-else-7", NS)


def test_attempts_last_a_long_refusal_of_closes() -> None:
    # The closer takes a new attempt per refused close, backing off up to 120 s: 127 lasted ~4 hours.
    assert MAX_ATTEMPT >= 1000


def test_namespaces_are_random_and_checked() -> None:
    drawn = {new_namespace() for _ in range(20)}
    assert len(drawn) == 20
    for namespace in drawn:
        assert check_namespace(namespace) == namespace
    for bad in ("", "abc", "ABCDEFG", "abcdefgh", "abc-def"):
        with pytest.raises(ValueError):
            check_namespace(bad)
        with pytest.raises(ValueError):
            hibachi_client_id(KEYS[0], bad)


def test_external_ids_keep_their_form() -> None:
    assert external_client_id(OrderKey(5, Side.SHORT, OrderPurpose.REPAIR, 2)) == "ext-5-s-repair-2"


NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_an_order_created_before_our_row_is_not_ours() -> None:
    assert predates_our_order(NOW - timedelta(days=7), NOW)
    assert predates_our_order(NOW - CREATED_BEFORE_TOLERANCE - timedelta(milliseconds=1), NOW)


def test_clock_offset_and_unknown_times_never_disown_an_order() -> None:
    assert not predates_our_order(NOW - CREATED_BEFORE_TOLERANCE, NOW)
    assert not predates_our_order(NOW - timedelta(seconds=1), NOW)  # Hibachi's whole seconds
    assert not predates_our_order(NOW + timedelta(seconds=3), NOW)
    assert not predates_our_order(None, NOW)
    assert not predates_our_order(NOW - timedelta(days=7), None)
