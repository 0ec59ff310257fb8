"""Client order ids derived from (namespace, pair id, leg, purpose, attempt), in each venue's form.

The forms themselves live with their venues (exchanges/<venue>/ids.py); this module holds what every form
shares: the key, the namespace, the one minting function, the age rule and the ids of external changes.

Every database draws a random namespace once (storage keeps it in its `meta` table) and folds it into every
id it mints: pair ids restart at 1 with a new database, but the venues keep the old one's orders, so without
it a lost reply's lookup could find last week's order under the same id (and a venue may refuse a reused id).

A retry after a timeout reuses the id of the attempt it is retrying, so the venue recognises it; a new
attempt number is taken only once the earlier attempt is known dead (design §3, §3a).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from core.domain import OrderPurpose, Side

# The widest key every form must encode: the pair id and attempt bounds of the tightest form (a 32-bit integer
# id: 19 bits of pair id, 10 of attempt; see exchanges/backpack/ids.py).
MAX_PAIR_ID = (1 << 19) - 1
MAX_ATTEMPT = (1 << 10) - 1

# Two databases' ids differ by their namespace: 7 characters of [0-9a-z], 1 in 36**7 (about 7.8e10) alike.
NAMESPACE_LENGTH = 7
_NAMESPACE_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_NAMESPACE_RE = re.compile(rf"^[0-9a-z]{{{NAMESPACE_LENGTH}}}$")

# A venue's order whose creation time is earlier than our order row's, by more than this, is not ours. Our
# row is written before the request leaves, so only clock differences can make our own order look older:
# a venue may report creation in whole seconds (up to 1 s early) and our clock may differ from the venue's
# (an NTP-synced host is within a second; signing windows tolerate 5-15 s), and a wall-clock step (the clients
# resync to the venue after one, but our row keeps the stepped time; a +60 s step was seen in review). Generous
# on purpose: too small would disown a real order of ours (an unbooked position), too large only narrows what
# the rule catches, and the namespace in every id (above) is the main guard against a lost database's orders.
CREATED_BEFORE_TOLERANCE = timedelta(minutes=5)
EXTERNAL_PREFIX = "ext-"


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


class ClientIdForm(Protocol):
    """A venue's form of client id: `make` turns a key into the text the venue accepts (this database's
    namespace folded in); `parse` inverts it, with ValueError for an id this database did not make."""

    def make(self, key: OrderKey, namespace: str) -> str:
        """The venue's client id for `key` in `namespace`, as text."""
        ...

    def parse(self, client_id: str, namespace: str) -> OrderKey:
        """The key `client_id` encodes; ValueError for ids of another database, program or form."""
        ...


def mint(form: ClientIdForm, key: OrderKey, namespace: str) -> str:
    """The client id in `form`, as text (what the orders table and the venue clients carry); the one place
    ids are made, so that every venue's ids carry a checked namespace and never take the external prefix."""
    client_id = form.make(key, check_namespace(namespace))
    if client_id.startswith(EXTERNAL_PREFIX):
        raise ValueError(f"client id form {form!r} made {client_id!r}, which reads as an external change")
    return client_id


def external_client_id(key: OrderKey) -> str:
    """The id of a change booked without an order of ours (liquidation, hand trade, adoption). It never
    reaches a venue, and `ext-` cannot collide with a venue's form (mint() refuses it): no namespace."""
    return f"{EXTERNAL_PREFIX}{key.pair_id}-{key.leg.value[0]}-{key.purpose.value}-{key.attempt}"


def predates_our_order(venue_created_at: datetime | None, our_created_at: datetime | None) -> bool:
    """True when the venue's order was created before our order row (beyond CREATED_BEFORE_TOLERANCE): an
    order of an earlier database under the same id, not ours. Unknown times never disown an order."""
    if venue_created_at is None or our_created_at is None:
        return False
    return venue_created_at < our_created_at - CREATED_BEFORE_TOLERANCE
