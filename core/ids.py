"""Client order ids derived from (namespace, pair id, leg, purpose, attempt), in each venue's form.

Every database draws a random namespace once (storage keeps it in its `meta` table) and folds it into every
id it mints: pair ids restart at 1 with a new database, but the venues keep the old one's orders, so without
it a lost reply's lookup could find last week's order under the same id (and Hibachi refuses a reused id).

A retry after a timeout reuses the id of the attempt it is retrying, so the venue recognises it; a new
attempt number is taken only once the earlier attempt is known dead (design §3, §3a).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.domain import OrderPurpose, Side, Venue

# Backpack: clientId is an unsigned 32-bit integer. Layout, high bits first:
#   pair id (19 bits, up to 524,287) | leg (1 bit) | purpose (2 bits) | attempt (10 bits, up to 1,023)
# and the whole value is XORed with the database's 32-bit mask. Attempts get the bits they need: the closer
# takes a new CLOSE attempt per refused try with backoff up to engine.leg_retry_max_s (120 s by default), so
# 1,023 attempts last a venue refusing closes for about 34 hours; pairs last hours, so 524,287 are decades.
# Collision odds: a database that used pair ids up to P mints ids below P * 2**13 before the XOR, so two
# databases share any id at all only when their masks XOR to below the next power of two above that:
# P / 2**19 to P / 2**18 (1,000 pairs: 0.2%). No 32-bit scheme does much better (N ids each: N*N / 2**32);
# that residue is what the age rule below (predates_our_order) is for.
_PAIR_BITS, _LEG_BITS, _PURPOSE_BITS, _ATTEMPT_BITS = 19, 1, 2, 10
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
_UINT32 = 1 << 32

# Hibachi: clientId is 1-32 characters of [A-Za-z0-9-]: `pf<namespace>-<pair>-<L|S>-<purpose>-<attempt>`.
# The longest (6-digit pair, "rollback", 4-digit attempt) is 2 + 7 + 1 + 6 + 3 + 8 + 1 + 4 = 32 characters.
# Two databases mint the same Hibachi id only with the same namespace: 1 in 36**7 (about 7.8e10).
NAMESPACE_LENGTH = 7
_NAMESPACE_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_NAMESPACE_RE = re.compile(rf"^[0-9a-z]{{{NAMESPACE_LENGTH}}}$")
_HIBACHI_RE = re.compile(rf"^pf([0-9a-z]{{{NAMESPACE_LENGTH}}})-(\d+)-([LS])-(open|close|rollback|repair)-(\d+)$")
HIBACHI_MAX_LENGTH = 32

# A venue's order whose creation time is earlier than our order row's, by more than this, is not ours. Our
# row is written before the request leaves, so only clock differences can make our own order look older:
# Hibachi reports creation in whole seconds (up to 1 s early) and our clock may differ from the venue's
# (an NTP-synced host is within a second; signing windows tolerate 5-15 s), and a wall-clock step (the clients
# resync to the venue after one, but our row keeps the stepped time; a +60 s step was seen in review). Generous
# on purpose: too small would disown a real order of ours (an unbooked position), too large only narrows what
# the rule catches, and the namespace in every id (above) is the main guard against a lost database's orders.
CREATED_BEFORE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class OrderKey:
    """What a client id encodes (besides the database's namespace)."""

    pair_id: int
    leg: Side
    purpose: OrderPurpose
    attempt: int

    def __post_init__(self) -> None:
        if not 1 <= self.pair_id <= MAX_PAIR_ID:
            raise ValueError(f"pair id {self.pair_id} outside 1..{MAX_PAIR_ID}")
        if not 0 <= self.attempt <= MAX_ATTEMPT:
            raise ValueError(f"attempt {self.attempt} outside 0..{MAX_ATTEMPT}")


def new_namespace() -> str:
    """A fresh random namespace for a new database (from the OS's CSPRNG: never a seeded generator, which
    would give two databases started the same way the same namespace)."""
    return "".join(secrets.choice(_NAMESPACE_ALPHABET) for _ in range(NAMESPACE_LENGTH))


def check_namespace(namespace: str) -> str:
    """`namespace` if it has the form new_namespace() makes; ValueError otherwise."""
    if not _NAMESPACE_RE.match(namespace):
        raise ValueError(f"not a client-id namespace: {namespace!r}")
    return namespace


def _backpack_mask(namespace: str) -> int:
    # 36**7 is about 18 * 2**32, so the remainder is as good as uniform over 32 bits.
    return int(check_namespace(namespace), 36) % _UINT32


def backpack_client_id(key: OrderKey, namespace: str) -> int:
    """The uint32 clientId Backpack accepts for this order."""
    value = key.pair_id
    value = (value << _LEG_BITS) | _SIDE_CODES[key.leg]
    value = (value << _PURPOSE_BITS) | _PURPOSE_CODES[key.purpose]
    return ((value << _ATTEMPT_BITS) | key.attempt) ^ _backpack_mask(namespace)


def parse_backpack_client_id(client_id: int, namespace: str) -> OrderKey:
    """Inverse of backpack_client_id(); ValueError for a value no key of this namespace maps to."""
    if not 0 <= client_id < _UINT32:
        raise ValueError(f"not a uint32: {client_id}")
    client_id ^= _backpack_mask(namespace)
    attempt = client_id & MAX_ATTEMPT
    client_id >>= _ATTEMPT_BITS
    purpose = _PURPOSES_BY_CODE[client_id & 0b11]
    client_id >>= _PURPOSE_BITS
    leg = Side.SHORT if client_id & 1 else Side.LONG
    return OrderKey(pair_id=client_id >> _LEG_BITS, leg=leg, purpose=purpose, attempt=attempt)


def hibachi_client_id(key: OrderKey, namespace: str) -> str:
    """The string clientId Hibachi accepts for this order (at most 32 characters of [A-Za-z0-9-])."""
    leg = "L" if key.leg is Side.LONG else "S"
    return f"pf{check_namespace(namespace)}-{key.pair_id}-{leg}-{key.purpose.value}-{key.attempt}"


def parse_hibachi_client_id(client_id: str, namespace: str) -> OrderKey:
    """Inverse of hibachi_client_id(); ValueError for ids this database did not make (another namespace,
    another program, or the namespace-less form made before namespaces existed)."""
    match = _HIBACHI_RE.match(client_id)
    if not match:
        raise ValueError(f"not a perp-farmer client id: {client_id!r}")
    found, pair_id, leg, purpose, attempt = match.groups()
    if found != check_namespace(namespace):
        raise ValueError(f"client id {client_id!r} belongs to another database")
    return OrderKey(
        pair_id=int(pair_id),
        leg=Side.LONG if leg == "L" else Side.SHORT,
        purpose=OrderPurpose(purpose),
        attempt=int(attempt),
    )


def client_id_for(venue: Venue, key: OrderKey, namespace: str) -> str:
    """The client id in `venue`'s form, as text (what the orders table and the venue clients carry)."""
    if venue is Venue.BACKPACK:
        return str(backpack_client_id(key, namespace))
    return hibachi_client_id(key, namespace)


def external_client_id(key: OrderKey) -> str:
    """The id of a change booked without an order of ours (liquidation, hand trade, adoption). It never
    reaches a venue, and `ext-` cannot collide with either venue's form, so it carries no namespace."""
    return f"ext-{key.pair_id}-{key.leg.value[0]}-{key.purpose.value}-{key.attempt}"


def predates_our_order(venue_created_at: datetime | None, our_created_at: datetime | None) -> bool:
    """True when the venue's order was created before our order row (beyond CREATED_BEFORE_TOLERANCE): an
    order of an earlier database under the same id, not ours. Unknown times never disown an order."""
    if venue_created_at is None or our_created_at is None:
        return False
    return venue_created_at < our_created_at - CREATED_BEFORE_TOLERANCE
