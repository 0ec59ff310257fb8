"""The control client the CLI uses: one request, one reply, with both timeouts (libraries.md §2)."""

from __future__ import annotations

import json
from typing import Any

import pynng

from control.protocol import request


class ControlUnavailableError(Exception):
    """Nothing answers on the control address (the supervisor is not running) or it timed out."""


def call(address: str, cmd: str, args: dict[str, Any] | None = None, *, token: str | None = None,
         timeout_s: float = 10.0) -> dict[str, Any]:  # fmt: skip
    """Send one command; returns the reply object (`ok`, `data` or `error`)."""
    timeout_ms = int(timeout_s * 1000)
    try:
        with pynng.Req0(send_timeout=timeout_ms, recv_timeout=timeout_ms) as sock:
            sock.dial(address, block=True)
            sock.send(request(cmd, args, token))
            raw = sock.recv()
    except pynng.ConnectionRefused:
        raise ControlUnavailableError(f"the supervisor is not running (nothing listens on {address})") from None
    except pynng.Timeout:
        raise ControlUnavailableError(f"no reply from {address} within {timeout_s:.0f}s") from None
    except pynng.NNGException as exc:
        raise ControlUnavailableError(f"{address}: {exc}") from None
    reply = json.loads(raw)
    if not isinstance(reply, dict):
        raise ControlUnavailableError("malformed reply")
    return reply
