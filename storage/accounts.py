"""Accounts in one database: the names, and the meta keys each account keeps apart (a pause, a tripped limit)."""

from __future__ import annotations

import re

from storage.schema import CLIENT_ID_NAMESPACE_KEY, DEFAULT_ACCOUNT

__all__ = ["DEFAULT_ACCOUNT", "check_account", "meta_key"]

_NAME = re.compile(r"[a-z0-9_]{1,32}")
# Keys that belong to the database, not to an account: client ids are minted from one namespace per database (pair
# ids are global, so the ids of every account's orders stay unique).
DATABASE_KEYS = frozenset({CLIENT_ID_NAMESPACE_KEY})


def check_account(name: str) -> str:
    """`name` if it can name an account (lowercase [a-z0-9_], 1 to 32 characters); ValueError otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"account name {name!r} must be 1 to 32 of a-z, 0-9 and _")
    return name


def meta_key(key: str, account: str) -> str:
    """Where `account` keeps `key` in the meta table: `key` itself for "default" (a database made before accounts
    keeps its flags) and for the database's own keys, `key@account` for any other account."""
    if account == DEFAULT_ACCOUNT or key in DATABASE_KEYS:
        return key
    return f"{key}@{check_account(account)}"
