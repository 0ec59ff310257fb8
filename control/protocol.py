"""The control protocol: one JSON object per request and per reply (design §5).

Request `{"cmd": "status", "args": {...}, "token": "..."}`; reply `{"ok": true, "data": {...}}` or
`{"ok": false, "error": {"code": "...", "message": "..."}}`. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from core.limits import parse_limit
from storage.records import jsonable

MAX_REQUEST_BYTES = 64 * 1024  # an application limit, answered with `too_large`
SOCKET_MAX_BYTES = 1 << 20  # beyond this nng drops the message unanswered
COMMANDS = ("status", "pairs", "pair", "pause", "resume", "close", "close-all", "health")
SLOW_COMMANDS = frozenset({"pause", "resume", "close", "close-all"})  # they wait on actors, up to minutes
MAX_DEPTH = 8  # a request is two levels deep; anything much deeper is not one of ours
MAX_ID = 2**63 - 1  # SQLite's INTEGER range: bigger ids cannot exist and overflow the driver
STATE_MAX_CHARS = 32
REASON_MAX_CHARS = 200


class CommandError(Exception):
    """A request that cannot be served; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_request(raw: bytes, token: str | None = None) -> tuple[str, dict[str, Any]]:
    """(command, validated args) from a request, or CommandError naming what is wrong."""
    obj = _decode(raw)
    if token is not None:
        given = obj.get("token")
        # surrogatepass: a lone surrogate in a JSON string must be a wrong token, not an encoding error
        if not isinstance(given, str) or not hmac.compare_digest(
            given.encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass")
        ):
            raise CommandError("unauthorized", "missing or wrong token")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise CommandError("bad_request", 'request needs "cmd" (a string)')
    if cmd not in COMMANDS:
        raise CommandError("unknown_command", f"unknown command {cmd[:40]!r}; known: {', '.join(COMMANDS)}")
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise CommandError("bad_request", '"args" must be an object')
    return cmd, validate_args(cmd, args)


def _decode(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_REQUEST_BYTES:
        raise CommandError("too_large", f"request of {len(raw)} bytes exceeds {MAX_REQUEST_BYTES}")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # ValueError also covers integer literals past Python's digit limit
        raise CommandError("bad_json", "request is not a JSON object") from None
    if not isinstance(obj, dict):
        raise CommandError("bad_json", "request is not a JSON object")
    if _depth(obj) > MAX_DEPTH:
        raise CommandError("bad_json", f"request is nested deeper than {MAX_DEPTH} levels")
    return obj


def _depth(value: Any) -> int:
    """Nesting depth of decoded JSON, without recursion (it may be near the interpreter's limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _pair_id(value: Any) -> int:
    # digits only (no sign, spaces, exponent or non-ASCII digits), checked before int() can be costly
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= len(str(MAX_ID)):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise CommandError("bad_request", f'"id" must be a pair id: a positive integer below 2^63, got {_kind(value)}')
    return value


def _state(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= STATE_MAX_CHARS or not value.isprintable():
        raise CommandError("bad_request", f'"state" must be a pair state name of at most {STATE_MAX_CHARS} characters')
    return value


def _reason(value: Any) -> str:
    if not isinstance(value, str) or len(value) > REASON_MAX_CHARS or not value.isprintable():
        raise CommandError("bad_request", f'"reason" must be text of at most {REASON_MAX_CHARS} printable characters')
    return value


def _limit(value: Any) -> str:
    if not isinstance(value, str):
        raise CommandError("bad_request", '"limit" must be the name of a limit')
    try:
        return parse_limit(value).value
    except ValueError as exc:
        raise CommandError("unknown_limit", str(exc)) from None


def _kind(value: Any) -> str:
    """What a bad value was, without echoing it (it may be huge)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "an integer out of range"
    return f"a JSON {type(value).__name__}" if not isinstance(value, str) else "a string that is not digits"


Validator = Callable[[Any], Any]
# Per command: each argument's validator and whether it is required.
ARGS: dict[str, dict[str, tuple[Validator, bool]]] = {
    "status": {},
    "health": {},
    "pairs": {"state": (_state, False)},
    "pair": {"id": (_pair_id, True)},
    "pause": {"reason": (_reason, False)},
    "resume": {"limit": (_limit, False)},
    "close": {"id": (_pair_id, True)},
    "close-all": {},
}


def validate_args(cmd: str, args: dict[str, Any]) -> dict[str, Any]:
    """The command's args, checked and normalised (ids as int); CommandError naming the first bad field."""
    spec = ARGS[cmd]
    for name in args:
        if name not in spec:
            allowed = ", ".join(spec) or "none"
            raise CommandError("bad_request", f"unknown argument {str(name)[:40]!r} for {cmd}; allowed: {allowed}")
    checked: dict[str, Any] = {}
    for name, (check, required) in spec.items():
        if name in args:
            checked[name] = check(args[name])
        elif required:
            raise CommandError("bad_request", f'{cmd} needs "{name}"')
    return checked


def ok(data: Any) -> bytes:
    """A success reply."""
    return json.dumps({"ok": True, "data": jsonable(data)}).encode()


def error(code: str, message: str) -> bytes:
    """An error reply."""
    return json.dumps({"ok": False, "error": {"code": code, "message": message}}).encode()


def request(cmd: str, args: dict[str, Any] | None = None, token: str | None = None) -> bytes:
    """A request as bytes (for clients)."""
    body: dict[str, Any] = {"cmd": cmd, "args": args or {}}
    if token is not None:
        body["token"] = token
    return json.dumps(body).encode()
