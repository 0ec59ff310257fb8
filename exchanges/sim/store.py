"""Simulator state on disk: accounts, positions, orders, fills, funding, id counters and prices, as JSON.

Paper mode saves after every change, before the reply leaves (atomic replace + fsync), so a `kill -9`
of the whole process never leaves a venue that forgot an order its client was told about.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from exchanges.sim.engine import SimAccount, SimEngine, SimFill, SimFunding, SimOrder, SimPosition
from exchanges.sim.price import PriceSource

FORMAT = 1


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _record(obj: Any) -> dict[str, Any]:
    return {f.name: _encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _decode(cls: type, data: dict[str, Any]) -> Any:
    """A dataclass from its JSON form, converting each field by its type hint (Decimal, datetime, enums)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        raw = data[f.name]
        hint = hints[f.name]
        kinds = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        kind = kinds[0]
        if raw is None:
            values[f.name] = None
        elif kind is Decimal:
            values[f.name] = Decimal(raw)
        elif kind is datetime:
            values[f.name] = datetime.fromisoformat(raw)
        elif isinstance(kind, type) and issubclass(kind, Enum):
            values[f.name] = kind(raw)
        else:
            values[f.name] = raw
    return cls(**values)


def _dump_account(acc: SimAccount) -> dict[str, Any]:
    return {
        "collateral": _encode(acc.collateral),
        "leverage_limit": _encode(acc.leverage_limit),
        "market_imr": _encode(acc.market_imr),
        "liquidations": acc.liquidations,
        "positions": {s: _record(p) for s, p in acc.positions.items()},
        "orders": [_record(o) for o in acc.orders.values()],
        "fills": [_record(f) for f in acc.fills],
        "funding": [_record(f) for f in acc.funding],
    }


def _dump_head(engine: SimEngine) -> dict[str, Any]:
    return {
        "version": engine.version,
        "next_order_id": engine.next_order_id,
        "next_trade_id": engine.next_trade_id,
        "next_funding": engine.next_funding,
    }


def dump_engine(engine: SimEngine) -> dict[str, Any]:
    """Everything about a simulated venue that must survive a restart."""
    with engine.lock:
        return {
            **_dump_head(engine),
            "accounts": {name: _dump_account(acc) for name, acc in engine.accounts.items()},
        }


def _account_json(acc: SimAccount) -> str:
    return json.dumps(_dump_account(acc))


def dump_engine_json(engine: SimEngine, encoded: dict[str, str]) -> tuple[str, int]:
    """What dump_engine gives, as JSON text, re-encoding only the accounts changed since the last call; and the
    version it holds. `encoded` keeps each account's text from call to call (one per engine, one saver).

    Why: a paper host of fifty accounts re-encoded every account's whole history on every save, and saves come
    after each changing request: a save grew with the history (1.7 MB after six minutes of the fleet bench) and
    held the simulators' interpreter for tens of ms each, until opens took a second."""
    with engine.lock:
        changed = engine.changed_accounts()
        for name, acc in engine.accounts.items():
            if changed is None or name in changed or name not in encoded:
                encoded[name] = _account_json(acc)
        engine.forget_changed_accounts()  # only once encoded: a failed call leaves them for the next
        head = _dump_head(engine)
        accounts = ", ".join(f"{json.dumps(name)}: {encoded[name]}" for name in engine.accounts)
    return f'{json.dumps(head)[:-1]}, "accounts": {{{accounts}}}}}', head["version"]


def load_engine(engine: SimEngine, data: dict[str, Any]) -> None:
    """Restore a venue's state in place (accounts are updated, not replaced: the wire layer holds them)."""
    with engine.lock:
        engine.next_order_id = int(data["next_order_id"])
        engine.next_trade_id = int(data["next_trade_id"])
        for symbol, due in data["next_funding"].items():
            if symbol in engine.markets:
                engine.schedule_funding(symbol, int(due))
        for name, saved in data["accounts"].items():
            acc: SimAccount = engine.open_account(name, Decimal(saved["collateral"]))
            acc.collateral = Decimal(saved["collateral"])
            acc.leverage_limit = Decimal(saved["leverage_limit"])
            acc.market_imr = {s: Decimal(r) for s, r in saved["market_imr"].items()}
            acc.liquidations = int(saved["liquidations"])
            acc.positions = {s: _decode(SimPosition, p) for s, p in saved["positions"].items()}
            orders = [_decode(SimOrder, o) for o in saved["orders"]]
            acc.orders = {o.id: o for o in orders}
            acc.fills = [_decode(SimFill, f) for f in saved["fills"]]
            acc.funding = [_decode(SimFunding, f) for f in saved["funding"]]
        engine.touch()  # every account replaced: a saver re-encodes them all
        engine.version = int(data["version"])
        engine.reindex()


def dump_prices(prices: PriceSource) -> dict[str, str]:
    """Current price per asset."""
    return {asset: format(prices.price(asset), "f") for asset in prices.assets()}


class SimStore:
    """One JSON file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none."""
        if not self.path.exists():
            return None
        data = json.loads(self.path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{self.path}: unknown simulator state format {data.get('format')!r}")
        return data

    def save(self, state: dict[str, Any]) -> None:
        """Write `state` so that a crash leaves either the old file or the new one, never a torn one."""
        self.save_parts({key: json.dumps(value) for key, value in state.items()})

    def save_parts(self, parts: dict[str, str]) -> None:
        """As save, from each top-level key's value already encoded as JSON text."""
        tmp = self.path.with_suffix(".tmp")
        body = ", ".join(f"{json.dumps(key)}: {text}" for key, text in {"format": str(FORMAT), **parts}.items())
        with tmp.open("w") as fh:
            fh.write(f"{{{body}}}")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
