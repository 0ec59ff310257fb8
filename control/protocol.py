"""The control protocol: one JSON object per request and per reply (design §5).

Request `{"cmd": "status", "args": {...}, "token": "..."}`; reply `{"ok": true, "data": {...}}` or
`{"ok": false, "error": {"code": "...", "message": "..."}}`. Pure: bytes in, bytes out. The commands and their
arguments are the registry in control/commands.py.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from control.commands import command
from control.spec import CommandError, validate_args
from storage.records import jsonable

MAX_REQUEST_BYTES = 64 * 1024  # an application limit, answered with `too_large`
SOCKET_MAX_BYTES = 1 << 20  # beyond this nng drops the message unanswered
MAX_DEPTH = 8  # a request is two levels deep; anything much deeper is not one of ours


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
    found = command(cmd)
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise CommandError("bad_request", '"args" must be an object')
    return cmd, validate_args(found, args)


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
