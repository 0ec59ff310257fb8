"""Hibachi request signing (spec §2): binary payloads signed with HMAC-SHA256 or ECDSA secp256k1.

Pure: (contract, nonce, order fields) -> bytes -> hex signature; checked byte for byte against the
spec's five vectors. Which signer to use is configuration (`hibachi.key_type`), never guessed from the key
(spec §7 item 8: the SDK, CCXT and GO each guess differently).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Protocol

from coincurve import PrivateKey

from core.domain import Side


class HibachiKeyError(ValueError):
    """The configured Hibachi signing key cannot be used."""


@dataclass(frozen=True, slots=True)
class Contract:
    """What signing and rounding need from one exchange-info future contract."""

    id: int
    symbol: str
    underlying_decimals: int
    settlement_decimals: int
    tick_size: Decimal
    step_size: Decimal
    min_order_size: Decimal
    min_notional: Decimal
    initial_margin_rate: Decimal
    maintenance_margin_rate: Decimal | None = None


_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1


def _truncate(value: Decimal) -> int:
    """Exact decimal value truncated toward zero (enough precision for 2^32 x 10^18 magnitudes)."""
    with localcontext() as ctx:
        ctx.prec = 80
        return int(value.to_integral_value(rounding=ROUND_DOWN))


def _u64(value: int, name: str) -> bytes:
    if not 0 <= value <= _U64_MAX:
        raise ValueError(f"{name} {value} does not fit an unsigned 64-bit field")
    return struct.pack(">Q", value)


def _u32(value: int, name: str) -> bytes:
    if not 0 <= value <= _U32_MAX:
        raise ValueError(f"{name} {value} does not fit an unsigned 32-bit field")
    return struct.pack(">I", value)


def scaled_quantity(quantity: Decimal, contract: Contract) -> int:
    """quantity x 10^underlyingDecimals, truncated."""
    with localcontext() as ctx:
        ctx.prec = 80
        return _truncate(quantity.scaleb(contract.underlying_decimals))


def scaled_price(price: Decimal, contract: Contract) -> int:
    """price x 2^32 x 10^(settlementDecimals - underlyingDecimals), truncated."""
    with localcontext() as ctx:
        ctx.prec = 80
        return _truncate((price * 2**32).scaleb(contract.settlement_decimals - contract.underlying_decimals))


def scaled_fee(max_fees_percent: Decimal) -> int:
    """maxFeesPercent (a fraction) x 10^8, truncated."""
    with localcontext() as ctx:
        ctx.prec = 80
        return _truncate(max_fees_percent.scaleb(8))


def quantity_is_exact(quantity: Decimal, contract: Contract) -> bool:
    """True when the signed integer describes exactly the quantity sent as text (spec §6)."""
    with localcontext() as ctx:
        ctx.prec = 80
        return quantity.scaleb(contract.underlying_decimals) == scaled_quantity(quantity, contract)


def order_payload(
    nonce: int,
    contract: Contract,
    quantity: Decimal,
    side: Side,
    price: Decimal | None,
    max_fees_percent: Decimal,
) -> bytes:
    """The place/modify payload: nonce|contractId|quantity|side|[price]|maxFees (32 bytes market, 40 limit)."""
    parts = [
        _u64(nonce, "nonce"),
        _u32(contract.id, "contractId"),
        _u64(scaled_quantity(quantity, contract), "quantity"),
        _u32(1 if side is Side.LONG else 0, "side"),  # 1 = BID (buy), 0 = ASK (sell)
    ]
    if price is not None:
        parts.append(_u64(scaled_price(price, contract), "price"))
    parts.append(_u64(scaled_fee(max_fees_percent), "maxFeesPercent"))
    return b"".join(parts)


def cancel_payload(order_id_or_nonce: int) -> bytes:
    """Cancel one order: its 8-byte orderId (or the nonce it was placed with). Never its decimal text."""
    return _u64(order_id_or_nonce, "orderId")


def cancel_all_payload(nonce: int) -> bytes:
    """Cancel all: the 8-byte fresh nonce that is also sent in the body."""
    return _u64(nonce, "nonce")


class Signer(Protocol):
    """Turns a payload into the hex `signature` field."""

    def sign(self, payload: bytes) -> str:
        """Lower-case hex signature of `payload`."""
        ...


class HmacSigner:
    """Exchange-managed accounts: hex(HMAC-SHA256(secret's ASCII bytes, payload)); the secret is not decoded."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise HibachiKeyError("hibachi.hmac_secret is empty")
        self._key = secret.encode("ascii", errors="strict")

    def sign(self, payload: bytes) -> str:
        """64 hex characters."""
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()


def load_private_key(text: str) -> PrivateKey:
    """A secp256k1 key from 64 hex digits, with or without 0x."""
    raw = text.strip().removeprefix("0x").removeprefix("0X")
    if len(raw) != 64:
        raise HibachiKeyError("hibachi.private_key must be 64 hex digits (optionally 0x-prefixed)")
    try:
        return PrivateKey(bytes.fromhex(raw))
    except ValueError:
        raise HibachiKeyError("hibachi.private_key is not a valid secp256k1 key") from None


class EcdsaSigner:
    """Trustless accounts: secp256k1 over plain SHA-256(payload), r||s||v hex with v = recovery id 0/1."""

    def __init__(self, private_key: str) -> None:
        self._key = load_private_key(private_key)

    @property
    def public_key_hex(self) -> str:
        """Uncompressed public key without the 04 prefix (128 hex characters), as Hibachi shows it."""
        return self._key.public_key.format(compressed=False)[1:].hex()

    def sign(self, payload: bytes) -> str:
        """130 hex characters; RFC 6979 nonces and low-s come from libsecp256k1."""
        digest = hashlib.sha256(payload).digest()
        return self._key.sign_recoverable(digest, hasher=None).hex()


def make_signer(key_type: str, *, hmac_secret: str | None = None, private_key: str | None = None) -> Signer:
    """The signer the configuration names; HibachiKeyError when its key is missing."""
    if key_type == "hmac":
        if not hmac_secret:
            raise HibachiKeyError("hibachi.key_type = hmac needs hibachi.hmac_secret")
        return HmacSigner(hmac_secret)
    if key_type == "ecdsa":
        if not private_key:
            raise HibachiKeyError("hibachi.key_type = ecdsa needs hibachi.private_key")
        return EcdsaSigner(private_key)
    raise HibachiKeyError(f"hibachi.key_type must be hmac or ecdsa, got {key_type!r}")
