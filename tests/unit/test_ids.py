from __future__ import annotations

import re

import pytest

from core.domain import OrderPurpose, Side
from core.ids import (
    MAX_ATTEMPT,
    MAX_PAIR_ID,
    OrderKey,
    backpack_client_id,
    hibachi_client_id,
    parse_backpack_client_id,
    parse_hibachi_client_id,
)

KEYS = [
    OrderKey(1, Side.LONG, OrderPurpose.OPEN, 0),
    OrderKey(1, Side.SHORT, OrderPurpose.OPEN, 0),
    OrderKey(1, Side.LONG, OrderPurpose.CLOSE, 0),
    OrderKey(1, Side.LONG, OrderPurpose.CLOSE, 1),
    OrderKey(77, Side.SHORT, OrderPurpose.ROLLBACK, 3),
    OrderKey(MAX_PAIR_ID, Side.SHORT, OrderPurpose.REPAIR, MAX_ATTEMPT),
]


@pytest.mark.parametrize("key", KEYS)
def test_round_trip(key: OrderKey) -> None:
    bp = backpack_client_id(key)
    assert 0 <= bp < 2**32
    assert parse_backpack_client_id(bp) == key
    hb = hibachi_client_id(key)
    assert re.fullmatch(r"[A-Za-z0-9-]{1,32}", hb)
    assert parse_hibachi_client_id(hb) == key


def test_every_key_gets_a_distinct_id() -> None:
    assert len({backpack_client_id(k) for k in KEYS}) == len(KEYS)
    assert len({hibachi_client_id(k) for k in KEYS}) == len(KEYS)


def test_known_values() -> None:
    # pair 1, long, open, attempt 0: 1 << 10
    assert backpack_client_id(OrderKey(1, Side.LONG, OrderPurpose.OPEN, 0)) == 1024
    assert hibachi_client_id(OrderKey(12, Side.SHORT, OrderPurpose.CLOSE, 2)) == "pf-12-S-close-2"


def test_out_of_range_keys_and_foreign_ids() -> None:
    with pytest.raises(ValueError):
        OrderKey(0, Side.LONG, OrderPurpose.OPEN, 0)
    with pytest.raises(ValueError):
        OrderKey(MAX_PAIR_ID + 1, Side.LONG, OrderPurpose.OPEN, 0)
    with pytest.raises(ValueError):
        OrderKey(1, Side.LONG, OrderPurpose.OPEN, MAX_ATTEMPT + 1)
    with pytest.raises(ValueError):
        parse_backpack_client_id(2**32)
    with pytest.raises(ValueError):
        parse_hibachi_client_id("someone-else-7")
