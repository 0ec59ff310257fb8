"""Section 8b: signatures per second per venue, for the exact thing each venue signs on an order."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from decimal import Decimal

from bench.report import Figure
from core.domain import Side
from exchanges.backpack.signing import BackpackSigner, load_signing_key, public_key_b64
from exchanges.hibachi.signing import Contract, EcdsaSigner, HmacSigner, order_payload

# Test keys only (fixed bytes); they sign nothing anywhere but here.
_ED25519_SEED = base64.b64encode(bytes(range(32))).decode()
_SECP256K1_KEY = "0x" + "11" * 32
_CONTRACT = Contract(
    2, "BTC/USDT-P", 10, 6, Decimal("0.1"), Decimal("0.0000000001"), Decimal("0.0000000001"), Decimal(1), Decimal("0.1")
)


def _rate(sign: Callable[[int], object], seconds: float) -> tuple[float, int]:
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            sign(done)
            done += 1
    return done / elapsed, done


def run(seconds: float) -> list[Figure]:
    """Sign as fast as one thread can for `seconds` per scheme."""
    backpack = BackpackSigner(public_key_b64(load_signing_key(_ED25519_SEED)), _ED25519_SEED)
    body = {"symbol": "BTC_USDC_PERP", "side": "Bid", "orderType": "Market", "quantity": "0.001", "clientId": 1}
    hmac, ecdsa = HmacSigner("bench-secret"), EcdsaSigner(_SECP256K1_KEY)

    def hibachi_payload(nonce: int) -> bytes:
        return order_payload(
            1_700_000_000_000_000 + nonce, _CONTRACT, Decimal("0.001"), Side.LONG, None, Decimal("0.00045")
        )

    schemes = {
        "Backpack ED25519 (signing string + signature + headers)": lambda n: backpack.headers(
            "orderExecute", body, 1_700_000_000_000 + n
        ),
        "Hibachi HMAC-SHA256 (binary payload + signature)": lambda n: hmac.sign(hibachi_payload(n)),
        "Hibachi ECDSA secp256k1 (binary payload + signature)": lambda n: ecdsa.sign(hibachi_payload(n)),
    }
    figures = []
    for name, sign in schemes.items():
        rate, count = _rate(sign, seconds)
        figures.append(Figure.single("8 footprint", f"signing: {name}", rate, "signatures/s", count, "one thread"))
    return figures
