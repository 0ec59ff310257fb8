"""Client order ids derived from (pair id, leg, purpose, attempt), in each venue's form.

A retry after a timeout reuses the id of the attempt it is retrying, so the venue recognises it; a new
attempt number is taken only once the earlier attempt is known dead (design §3, §3a).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.domain import OrderPurpose, Side, Venue

# Backpack: clientId is an unsigned 32-bit integer. Layout, high bits first:
#   pair id (22 bits, up to 4,194,303) | leg (1 bit) | purpose (2 bits) | attempt (7 bits, up to 127)
_PAIR_BITS, _LEG_BITS, _PURPOSE_BITS, _ATTEMPT_BITS = 22, 1, 2, 7
MAX_PAIR_ID = (1 << _PAIR_BITS) - 1
MAX_ATTEMPT = (1 << _ATTEMPT_BITS) - 1
_PURPOSE_CODES = {
    OrderPurpose.OPEN: 0,
    OrderPurpose.CLOSE: 1,
    OrderPurpose.ROLLBACK: 2,
    OrderPurpose.REPAIR: 3,
}
_PURPOSES_BY_CODE = {v: k for k, v in _PURPOSE_CODES.items()}
_SIDE_CODES = {Side.LONG: 0, Side.SHORT: 1}

# Hibachi: clientId is 1-32 characters of [A-Za-z0-9-].
_HIBACHI_RE = re.compile(r"^pf-(\d+)-([LS])-(open|close|rollback|repair)-(\d+)$")


@dataclass(frozen=True, slots=True)
class OrderKey:
    """What a client id encodes."""

    pair_id: int
    leg: Side
    purpose: OrderPurpose
    attempt: int

    def __post_init__(self) -> None:
        if not 1 <= self.pair_id <= MAX_PAIR_ID:
            raise ValueError(f"pair id {self.pair_id} outside 1..{MAX_PAIR_ID}")
        if not 0 <= self.attempt <= MAX_ATTEMPT:
            raise ValueError(f"attempt {self.attempt} outside 0..{MAX_ATTEMPT}")


def backpack_client_id(key: OrderKey) -> int:
    """The uint32 clientId Backpack accepts for this order."""
    value = key.pair_id
    value = (value << _LEG_BITS) | _SIDE_CODES[key.leg]
    value = (value << _PURPOSE_BITS) | _PURPOSE_CODES[key.purpose]
    return (value << _ATTEMPT_BITS) | key.attempt


def parse_backpack_client_id(client_id: int) -> OrderKey:
    """Inverse of backpack_client_id()."""
    if not 0 <= client_id < 1 << 32:
        raise ValueError(f"not a uint32: {client_id}")
    attempt = client_id & MAX_ATTEMPT
    client_id >>= _ATTEMPT_BITS
    purpose = _PURPOSES_BY_CODE[client_id & 0b11]
    client_id >>= _PURPOSE_BITS
    leg = Side.SHORT if client_id & 1 else Side.LONG
    return OrderKey(pair_id=client_id >> _LEG_BITS, leg=leg, purpose=purpose, attempt=attempt)


def hibachi_client_id(key: OrderKey) -> str:
    """The string clientId Hibachi accepts for this order (at most 32 characters of [A-Za-z0-9-])."""
    leg = "L" if key.leg is Side.LONG else "S"
    return f"pf-{key.pair_id}-{leg}-{key.purpose.value}-{key.attempt}"


def parse_hibachi_client_id(client_id: str) -> OrderKey:
    """Inverse of hibachi_client_id(); ValueError for ids this program did not make."""
    match = _HIBACHI_RE.match(client_id)
    if not match:
        raise ValueError(f"not a perp-farmer client id: {client_id!r}")
    pair_id, leg, purpose, attempt = match.groups()
    return OrderKey(
        pair_id=int(pair_id),
        leg=Side.LONG if leg == "L" else Side.SHORT,
        purpose=OrderPurpose(purpose),
        attempt=int(attempt),
    )


def client_id_for(venue: Venue, key: OrderKey) -> str:
    """The client id in `venue`'s form, as text (what the orders table and the venue clients carry)."""
    if venue is Venue.BACKPACK:
        return str(backpack_client_id(key))
    return hibachi_client_id(key)
