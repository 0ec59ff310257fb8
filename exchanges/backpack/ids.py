"""Backpack's client ids: an unsigned 32-bit integer per order, with the database's namespace folded in."""

from __future__ import annotations

from core.domain import OrderPurpose, Side
from core.ids import MAX_ATTEMPT, MAX_PAIR_ID, OrderKey, check_namespace

# clientId is an unsigned 32-bit integer. Layout, high bits first:
#   pair id (19 bits, up to 524,287) | leg (1 bit) | purpose (2 bits) | attempt (10 bits, up to 1,023)
# and the whole value is XORed with the database's 32-bit mask. Attempts get the bits they need: the closer
# takes a new CLOSE attempt per refused try with backoff up to timings.leg_retry_max_s (120 s by default), so
# 1,023 attempts last a venue refusing closes for about 34 hours; pairs last hours, so 524,287 are decades.
# Collision odds: a database that used pair ids up to P mints ids below P * 2**13 before the XOR, so two
# databases share any id at all only when their masks XOR to below the next power of two above that:
# P / 2**19 to P / 2**18 (1,000 pairs: 0.2%). No 32-bit scheme does much better (N ids each: N*N / 2**32);
# that residue is what the age rule (core.ids.predates_our_order) is for.
_PAIR_BITS, _LEG_BITS, _PURPOSE_BITS, _ATTEMPT_BITS = 19, 1, 2, 10
# core.ids bounds every key by this form, the tightest one.
assert (1 << _PAIR_BITS) - 1 == MAX_PAIR_ID and (1 << _ATTEMPT_BITS) - 1 == MAX_ATTEMPT
_PURPOSE_CODES = {
    OrderPurpose.OPEN: 0,
    OrderPurpose.CLOSE: 1,
    OrderPurpose.ROLLBACK: 2,
    OrderPurpose.REPAIR: 3,
}
_PURPOSES_BY_CODE = {v: k for k, v in _PURPOSE_CODES.items()}
_SIDE_CODES = {Side.LONG: 0, Side.SHORT: 1}
_UINT32 = 1 << 32


def _mask(namespace: str) -> int:
    # 36**7 is about 18 * 2**32, so the remainder is as good as uniform over 32 bits.
    return int(check_namespace(namespace), 36) % _UINT32


def backpack_client_id(key: OrderKey, namespace: str) -> int:
    """The uint32 clientId Backpack accepts for this order."""
    value = key.pair_id
    value = (value << _LEG_BITS) | _SIDE_CODES[key.leg]
    value = (value << _PURPOSE_BITS) | _PURPOSE_CODES[key.purpose]
    return ((value << _ATTEMPT_BITS) | key.attempt) ^ _mask(namespace)


def parse_backpack_client_id(client_id: int, namespace: str) -> OrderKey:
    """Inverse of backpack_client_id(); ValueError for a value no key of this namespace maps to."""
    if not 0 <= client_id < _UINT32:
        raise ValueError(f"not a uint32: {client_id}")
    client_id ^= _mask(namespace)
    attempt = client_id & MAX_ATTEMPT
    client_id >>= _ATTEMPT_BITS
    purpose = _PURPOSES_BY_CODE[client_id & 0b11]
    client_id >>= _PURPOSE_BITS
    leg = Side.SHORT if client_id & 1 else Side.LONG
    return OrderKey(pair_id=client_id >> _LEG_BITS, leg=leg, purpose=purpose, attempt=attempt)


class BackpackIds:
    """Backpack's ClientIdForm: the integer as decimal text (how the orders table and the client carry it)."""

    def make(self, key: OrderKey, namespace: str) -> str:
        """The clientId for `key`, as text."""
        return str(backpack_client_id(key, namespace))

    def parse(self, client_id: str, namespace: str) -> OrderKey:
        """The key a clientId (as text) encodes; ValueError for text that is no uint32."""
        if not (client_id.isascii() and client_id.isdigit()):
            raise ValueError(f"not a Backpack client id: {client_id!r}")
        return parse_backpack_client_id(int(client_id), namespace)


BACKPACK_IDS = BackpackIds()
