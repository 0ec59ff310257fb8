"""Hibachi's wire shapes for the simulator: contracts, number and time formats, the error body, the signed
payloads (rebuilt with exact fractions, apart from the client's signer) and an account's credentials."""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from coincurve import PublicKey

from core.domain import Side
from exchanges.base import OrderStatus
from exchanges.sim.engine import SimAccount, SimMarket
from exchanges.sim.http import Response

MAKER_FEE = Decimal("0.00015")  # spec §6, DOCS and CCXT defaults
TAKER_FEE = Decimal("0.00045")
NONCE_WINDOW_S = 15.0  # spec §4
HOURLY = 3600  # spec §6 item 3: settlements seen in 2026 fall on the hour

_IMR, _MMR = Decimal("0.066667"), Decimal("0.046667")  # SDK fixtures: 15x
_HOURLY_RATE = Decimal("0.0000125")


@dataclass(frozen=True)
class SimContract:
    """A simulated future contract: the engine's market plus Hibachi's id and decimals."""

    market: SimMarket
    id: int
    underlying_decimals: int
    settlement_decimals: int = 6
    granularities: tuple[str, ...] = ()


DEFAULT_CONTRACTS = [
    SimContract(SimMarket("BTC/USDT-P", "BTC", Decimal("0.1"), Decimal("0.0000000001"), Decimal("0.0000000001"),
                          Decimal(1), _IMR, _MMR, HOURLY, _HOURLY_RATE), 2, 10, 6, ("0.1", "1", "10", "100")),
    SimContract(SimMarket("ETH/USDT-P", "ETH", Decimal("0.01"), Decimal("0.000000001"), Decimal("0.000000001"),
                          Decimal(1), _IMR, _MMR, HOURLY, _HOURLY_RATE), 1, 9, 6, ("0.01", "0.1", "1", "10")),
    SimContract(SimMarket("SOL/USDT-P", "SOL", Decimal("0.001"), Decimal("0.00000001"), Decimal("0.00000001"),
                          Decimal(1), _IMR, _MMR, HOURLY, _HOURLY_RATE, level_size=Decimal(500)), 3, 8, 6,
                ("0.001", "0.01", "0.1", "1")),
]  # fmt: skip

STATUS = {
    OrderStatus.NEW: "PLACED",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELLED: "CANCELLED",
    OrderStatus.REJECTED: "REJECTED",
}
SIDE = {Side.LONG: "BID", Side.SHORT: "ASK"}
SIDE_IN = {"BID": Side.LONG, "ASK": Side.SHORT}
FLAGS = {"POST_ONLY", "IOC", "REDUCE_ONLY"}
CLIENT_ID = re.compile(r"^[A-Za-z0-9-]{1,32}$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def s(value: Decimal) -> str:
    """A Decimal as a plain decimal string."""
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def usd(value: Decimal) -> str:
    """A USDT amount as the venue prints it: six decimals (settlementDecimals)."""
    return format(value.quantize(Decimal("0.000001")), "f")


def error(status: int, code: int, message: str) -> Response:
    """Hibachi's error body `{errorCode, message, status: "failed"}`."""
    return Response(status, {"errorCode": code, "message": message, "status": "failed"})


def us(ts: datetime) -> int:
    """Epoch microseconds."""
    return (ts - EPOCH) // timedelta(microseconds=1)


def expected_payload(
    nonce: int, contract: SimContract, quantity: Decimal, side: Side, price: Decimal | None, fee: Decimal
) -> bytes:
    """The bytes the venue verifies (written from the spec with exact fractions, apart from the client)."""

    def floor(value: Fraction) -> int:
        return value.numerator // value.denominator

    ud, sd = contract.underlying_decimals, contract.settlement_decimals
    out = struct.pack(">QI", nonce, contract.id) + struct.pack(">Q", floor(Fraction(quantity) * 10**ud))
    out += struct.pack(">I", 1 if side is Side.LONG else 0)
    if price is not None:
        out += struct.pack(">Q", floor(Fraction(price) * 2**32 * Fraction(10) ** (sd - ud)))
    return out + struct.pack(">Q", floor(Fraction(fee) * 10**8))


@dataclass
class SimCredentials:
    """One Hibachi account: id, API key, both kinds of signing key, and the nonces it has used."""

    account_id: int
    api_key: str
    hmac_secret: str
    private_key: str  # 0x + 64 hex
    public_key: bytes  # uncompressed, 65 bytes
    account: SimAccount
    nonces: dict[int, int] = field(default_factory=dict)  # nonce (µs) -> seen at (µs)

    def signature_ok(self, payload: bytes, signature: Any) -> bool:
        """HMAC (64 hex) or ECDSA r||s||v (130 hex, v in 0/1) by this account's keys."""
        if not isinstance(signature, str):
            return False
        try:
            raw = bytes.fromhex(signature)
        except ValueError:
            return False
        if len(raw) == 32:
            expected = hmac.new(self.hmac_secret.encode(), payload, hashlib.sha256).digest()
            return hmac.compare_digest(raw, expected)
        if len(raw) == 65 and raw[64] in (0, 1):
            try:
                recovered = PublicKey.from_signature_and_message(raw, hashlib.sha256(payload).digest(), hasher=None)
            except (ValueError, TypeError):
                return False
            return recovered.format(compressed=False) == self.public_key
        return False
