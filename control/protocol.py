"""The control protocol: one JSON object per request and per reply (design §5).

Request `{"cmd": "status", "args": {...}, "token": "..."}`; reply `{"ok": true, "data": {...}}` or
`{"ok": false, "error": {"code": "...", "message": "..."}}`. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from storage.repository import jsonable

MAX_REQUEST_BYTES = 64 * 1024  # an application limit, answered with `too_large`
SOCKET_MAX_BYTES = 1 << 20  # beyond this nng drops the message unanswered
COMMANDS = ("status", "pairs", "pair", "pause", "resume", "close", "close-all", "health")


class CommandError(Exception):
    """A request that cannot be served; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_request(raw: bytes, token: str | None = None) -> tuple[str, dict[str, Any]]:
    """(command, args) from a request, or CommandError naming what is wrong."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise CommandError("too_large", f"request of {len(raw)} bytes exceeds {MAX_REQUEST_BYTES}")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CommandError("bad_json", "request is not a JSON object") from None
    if not isinstance(obj, dict):
        raise CommandError("bad_json", "request is not a JSON object")
    if token is not None:
        given = obj.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
            raise CommandError("unauthorized", "missing or wrong token")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise CommandError("bad_request", 'request needs "cmd" (a string)')
    if cmd not in COMMANDS:
        raise CommandError("unknown_command", f"unknown command {cmd[:40]!r}; known: {', '.join(COMMANDS)}")
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise CommandError("bad_request", '"args" must be an object')
    return cmd, args


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
