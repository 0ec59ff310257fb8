"""The control client the CLI uses: one request, one reply, with both timeouts (libraries.md §2)."""

from __future__ import annotations

import json
from typing import Any

import pynng

from control.protocol import request


class ControlUnavailableError(Exception):
    """Nothing answers on the control address (the supervisor is not running), it timed out, or its reply
    is not a control reply."""


def call(address: str, cmd: str, args: dict[str, Any] | None = None, *, token: str | None = None,
         timeout_s: float = 10.0) -> dict[str, Any]:  # fmt: skip
    """Send one command; returns the reply object (`ok`, `data` or `error`)."""
    timeout_ms = int(timeout_s * 1000)
    try:
        with pynng.Req0(send_timeout=timeout_ms, recv_timeout=timeout_ms) as sock:
            sock.dial(address, block=True)
            sock.send(request(cmd, args, token))
            # recv_msg, not recv: pynng's recv() raises RuntimeError on an empty message
            raw = sock.recv_msg().bytes
    except pynng.ConnectionRefused:
        raise ControlUnavailableError(f"the supervisor is not running (nothing listens on {address})") from None
    except pynng.Timeout:
        raise ControlUnavailableError(f"no reply from {address} within {timeout_s:g}s") from None
    except pynng.NNGException as exc:
        raise ControlUnavailableError(f"{address}: {exc}") from None
    return _parse_reply(address, raw)


def _parse_reply(address: str, raw: bytes) -> dict[str, Any]:
    """The reply object, or ControlUnavailableError saying why it is not one (never its raw bytes)."""
    try:
        reply = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ControlUnavailableError(f"malformed reply from {address}: {len(raw)} bytes, not JSON") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ControlUnavailableError(f'malformed reply from {address}: not an object with "ok"')
    if reply["ok"] and "data" not in reply:
        raise ControlUnavailableError(f'malformed reply from {address}: "ok" without "data"')
    if not reply["ok"] and not isinstance(reply.get("error"), dict):
        raise ControlUnavailableError(f'malformed reply from {address}: no "error" object')
    return reply
