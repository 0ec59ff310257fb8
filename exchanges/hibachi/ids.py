"""Hibachi's client ids: `pf<namespace>-<pair>-<L|S>-<purpose>-<attempt>`, readable in the venue's UI."""

from __future__ import annotations

import re

from core.domain import OrderPurpose, Side
from core.ids import NAMESPACE_LENGTH, OrderKey, check_namespace

# clientId is 1-32 characters of [A-Za-z0-9-]. The longest (6-digit pair, "rollback", 4-digit attempt) is
# 2 + 7 + 1 + 6 + 3 + 8 + 1 + 4 = 32 characters. Two databases mint the same id only with the same namespace.
_HIBACHI_RE = re.compile(rf"^pf([0-9a-z]{{{NAMESPACE_LENGTH}}})-(\d+)-([LS])-(open|close|rollback|repair)-(\d+)$")
HIBACHI_MAX_LENGTH = 32


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


class HibachiIds:
    """Hibachi's ClientIdForm."""

    def make(self, key: OrderKey, namespace: str) -> str:
        """The clientId for `key`."""
        return hibachi_client_id(key, namespace)

    def parse(self, client_id: str, namespace: str) -> OrderKey:
        """The key a clientId encodes."""
        return parse_hibachi_client_id(client_id, namespace)


HIBACHI_IDS = HibachiIds()
