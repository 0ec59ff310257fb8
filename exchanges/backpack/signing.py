"""Backpack request signing (spec §2): ED25519 over `instruction=...&k=v...&timestamp=T&window=W`.

Pure: (secret, instruction, params, timestamp, window) -> headers; checked against the spec's vectors.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

from nacl.signing import SigningKey

DEFAULT_WINDOW_MS = 5000
MAX_WINDOW_MS = 60000


class BackpackKeyError(ValueError):
    """The configured API key or secret cannot be used."""


def render_value(value: Any) -> str:
    """One parameter value as it is signed: booleans lower-case, numbers plain, strings verbatim."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(f"cannot sign a {type(value).__name__}: send decimals as strings")


def _sorted_pairs(params: Mapping[str, Any]) -> str:
    return "&".join(f"{key}={render_value(params[key])}" for key in sorted(params) if params[key] is not None)


def signing_string(
    instruction: str,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    timestamp_ms: int,
    window_ms: int = DEFAULT_WINDOW_MS,
) -> str:
    """The exact text Backpack verifies. A list of params is a batch: one instruction per element."""
    if params is None or isinstance(params, Mapping):
        body = _sorted_pairs(params or {})
        prefix = f"instruction={instruction}" + (f"&{body}" if body else "")
    else:
        prefix = "&".join(
            f"instruction={instruction}" + (f"&{pairs}" if (pairs := _sorted_pairs(item)) else "") for item in params
        )
    return f"{prefix}&timestamp={timestamp_ms}&window={window_ms}"


def load_signing_key(secret_b64: str) -> SigningKey:
    """The ED25519 key from a base64 secret: the 32-byte seed, or a 64-byte seed||public key."""
    try:
        raw = base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError):
        raise BackpackKeyError("backpack.api_secret is not valid base64") from None
    if len(raw) == 64:
        raw = raw[:32]
    if len(raw) != 32:
        raise BackpackKeyError(f"backpack.api_secret decodes to {len(raw)} bytes; expected 32 (or 64)")
    return SigningKey(raw)


def public_key_b64(key: SigningKey) -> str:
    """The base64 verifying key: Backpack's API key for this secret."""
    return base64.b64encode(bytes(key.verify_key)).decode()


class BackpackSigner:
    """Signs requests for one API key; refuses a key and secret that do not belong together."""

    def __init__(self, api_key: str, api_secret: str, window_ms: int = DEFAULT_WINDOW_MS) -> None:
        if not 1 <= window_ms <= MAX_WINDOW_MS:
            raise BackpackKeyError(f"window {window_ms} ms outside 1..{MAX_WINDOW_MS}")
        self._key = load_signing_key(api_secret)
        if public_key_b64(self._key) != api_key:
            raise BackpackKeyError("backpack.api_key is not the public key of backpack.api_secret")
        self.api_key = api_key
        self.window_ms = window_ms

    def sign(self, message: str) -> str:
        """Base64 ED25519 signature of `message`."""
        return base64.b64encode(self._key.sign(message.encode()).signature).decode()

    def headers(
        self,
        instruction: str,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
        timestamp_ms: int,
    ) -> dict[str, str]:
        """The four X- headers of a signed request."""
        message = signing_string(instruction, params, timestamp_ms, self.window_ms)
        return {
            "X-API-Key": self.api_key,
            "X-Signature": self.sign(message),
            "X-Timestamp": str(timestamp_ms),
            "X-Window": str(self.window_ms),
        }

    def __repr__(self) -> str:
        return f"BackpackSigner(api_key={self.api_key[:6]}..., window_ms={self.window_ms})"
