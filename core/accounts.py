"""The accounts of a fleet (`[[accounts]]`): their secrets from the environment by account name, the rules that
span accounts, and one account's single-account settings.

Venue-neutral: an account's venue sections are found by type (a section field of AccountConfig named like a
section of Settings), never by name, so that config.py alone spells out the venues.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

if TYPE_CHECKING:
    from core.config import AccountConfig, Settings

DEFAULT_ACCOUNT = "default"
# Lowercase so that it reads the same in TOML, in the database and in an environment variable's name; no "__",
# the environment's nesting delimiter, so that APP__ACCOUNTS__<NAME>__... splits one way only.
ACCOUNT_NAME = re.compile(r"[a-z0-9_]{1,32}")
# As the environment source keys its variables (lowercased: settings are case-insensitive).
ACCOUNT_ENV_PREFIX = "app__accounts__"


def venue_sections(account: BaseModel) -> list[str]:
    """The names of `account`'s venue sections (each also a section of Settings)."""
    return [
        name
        for name, field in type(account).model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    ]


def _given(section: BaseModel) -> dict[str, Any]:
    return {k: v for k, v in section.__dict__.items() if v is not None}


# ---------------------------------------------------------------------------------------------------------
# Secrets by account name from the environment


def _env_value(value: str) -> Any:
    # A list or a table comes as JSON, as pydantic-settings reads complex values (markets = ["BTC"]).
    if value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value  # its type error names the key
    return value


def fold_account_env(data: dict[str, Any], variables: Mapping[str, str | None]) -> tuple[dict[str, Any], list[str]]:
    """`data` (the TOML document) with each APP__ACCOUNTS__<NAME>__<KEY>... variable set in the account named
    NAME (case-insensitive), and one problem per variable naming no configured account (its value never shown)."""
    if not variables:
        return data, []
    given = data.get("accounts")
    accounts = [dict(a) if isinstance(a, dict) else a for a in given] if isinstance(given, list) else []
    by_name = {a["name"].lower(): a for a in accounts if isinstance(a, dict) and isinstance(a.get("name"), str)}
    problems: list[str] = []
    for var, value in sorted(variables.items()):
        if value is None:
            continue
        rest = var[len(ACCOUNT_ENV_PREFIX) :]
        # The longest name that prefixes it: "bob_2__..." is bob_2's, not bob's.
        name = max((n for n in by_name if rest.startswith(f"{n}__")), key=len, default=None)
        if name is None:
            known = ", ".join(by_name) or "none: the config has no [[accounts]]"
            problems.append(f"{var.upper()}: account {rest.split('__')[0]!r} is not in the config (accounts: {known})")
            continue
        *path, key = rest[len(name) + 2 :].split("__")
        node = by_name[name]
        for part in path:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[key] = _env_value(value)
    return ({**data, "accounts": accounts} if isinstance(given, list) or accounts else data), problems


# ---------------------------------------------------------------------------------------------------------
# Rules that span the accounts


def check_accounts(s: Settings, unique_keys: Iterable[str], problems: list[str]) -> None:
    """Names, one venue account per account (`unique_keys`, "section.field"), no credentials at top level,
    each account's markets and sizes."""
    _check_names(s, problems)
    if not s.accounts:
        return
    _check_unique(s.accounts, unique_keys, problems)
    for section in venue_sections(s.accounts[0]):
        for field in type(getattr(s.accounts[0], section)).model_fields:
            if getattr(getattr(s, section), field, None) is not None:
                problems.append(
                    f"{section}.{field} is set at top level, but with [[accounts]] each account has its own: "
                    f"put it under [accounts.{section}] of each account, or in "
                    f"APP__ACCOUNTS__<NAME>__{section.upper()}__{field.upper()}"
                )
    for a in s.accounts:
        _check_trading(s, a, problems)


def _name_problem(key: str, name: str) -> str | None:
    if ACCOUNT_NAME.fullmatch(name) and "__" not in name:
        return None
    return f"{key} = {name!r} must be 1-32 characters of a-z, 0-9 and _ (no __)"


def _check_names(s: Settings, problems: list[str]) -> None:
    found = [_name_problem("account", s.account)] + [_name_problem("accounts: name", a.name) for a in s.accounts]
    problems.extend(p for p in found if p is not None)
    names = [a.name for a in s.accounts]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"accounts: name {name!r} appears more than once")


def _check_trading(s: Settings, a: AccountConfig, problems: list[str]) -> None:
    """An account's markets and sizes, by the rules of the top-level ones."""
    where = f"accounts.{a.name}"
    known = [m.name for m in s.trading.markets]
    if a.markets is not None:
        if not a.markets:
            problems.append(f"{where}.markets = [] must name at least one market (or be left out: all)")
        for m in a.markets:
            if m not in known:
                problems.append(f"{where}.markets: {m!r} is not one of trading.markets ({', '.join(known)})")
        for m in sorted({m for m in a.markets if a.markets.count(m) > 1}):
            problems.append(f"{where}.markets: {m!r} appears more than once")
    if a.notional_usd is not None:
        if a.notional_usd <= 0:
            problems.append(f"{where}.notional_usd = {a.notional_usd} must be > 0")
        if s.limits.max_notional_usd < a.notional_usd:
            problems.append(
                f"limits.max_notional_usd = {s.limits.max_notional_usd} must be >= {where}.notional_usd = "
                f"{a.notional_usd} (no pair could ever open)"
            )
    if a.max_concurrent_pairs is not None and a.max_concurrent_pairs < 1:
        problems.append(f"{where}.max_concurrent_pairs = {a.max_concurrent_pairs} must be >= 1")


def _check_unique(accounts: Iterable[AccountConfig], unique_keys: Iterable[str], problems: list[str]) -> None:
    for key in unique_keys:
        section, field = key.split(".")
        owner: dict[object, str] = {}
        for a in accounts:
            value = getattr(getattr(a, section), field)
            if value is None:
                continue
            seen = value.get_secret_value() if isinstance(value, SecretStr) else value
            if seen in owner:
                # Two workers on one venue account would trade, and reconcile, each other's positions.
                problems.append(
                    f"accounts {owner[seen]} and {a.name} have the same {key} (each account needs its own "
                    f"venue account)"
                )
            else:
                owner[seen] = a.name


def account_sections(s: Settings, account: AccountConfig) -> dict[str, BaseModel]:
    """The top-level venue sections with `account`'s credentials in them, by section name."""
    return {
        name: getattr(s, name).model_copy(update=_given(getattr(account, name))) for name in venue_sections(account)
    }


# ---------------------------------------------------------------------------------------------------------
# One account's settings


def account_data(
    s: Settings, account: AccountConfig | None, venues: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, Any]:
    """The fields of `s` for a single-account Settings of `account` (None: the top level's own), `venues`
    overriding venue sections further (with `paper.external` then set)."""
    data = s.model_dump()  # python mode: SecretStr, Decimal and enums stay as they are
    data["accounts"] = ()
    if account is not None:
        data["account"] = account.name
        for name in venue_sections(account):
            data[name] = {**data[name], **_given(getattr(account, name))}
        trading = data["trading"]
        if account.markets is not None:
            trading["markets"] = [m for m in trading["markets"] if m["name"] in account.markets]
        if account.notional_usd is not None:
            trading["notional_usd"] = account.notional_usd
        if account.max_concurrent_pairs is not None:
            trading["max_concurrent_pairs"] = account.max_concurrent_pairs
    if venues is not None:
        for venue, fields in venues.items():
            here = data.get(str(venue))
            data[str(venue)] = {**(here if isinstance(here, dict) else {}), **fields}
        data["paper"] = {**data["paper"], "external": True}
    return data
