"""Backpack signing against the spec's vectors (shared/specs/backpack.md §2), byte for byte."""

from __future__ import annotations

import pytest

from exchanges.backpack.signing import (
    BackpackKeyError,
    BackpackSigner,
    load_signing_key,
    public_key_b64,
    signing_string,
)

SECRET = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
SECRET_64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQGKiOPddAnxlf1S2y08ul1yymcJvx2UEhvzdIgBtA9vXA=="
API_KEY = "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
T = 1700000000000

V1 = {
    "symbol": "SOL_USDC_PERP", "side": "Bid", "orderType": "Limit", "price": "150.25", "quantity": "0.50",
    "postOnly": True, "clientId": 42,
}  # fmt: skip
V2 = {"symbol": "BTC_USDC_PERP", "side": "Ask", "orderType": "Market", "quantity": "0.001", "reduceOnly": True}

VECTORS = [
    (
        "orderExecute", V1, T,
        "instruction=orderExecute&clientId=42&orderType=Limit&postOnly=true&price=150.25&quantity=0.50&side=Bid"
        "&symbol=SOL_USDC_PERP&timestamp=1700000000000&window=5000",
        "gPBk/tWoSY8Njk6X8XLqIXvBeJwWxKq36XoPoA0xARDQxvKa8sId+7Cxt6qHguHsLg3yyg4kZ9fLRAxH6w//BQ==",
    ),
    (
        "orderExecute", V2, T,
        "instruction=orderExecute&orderType=Market&quantity=0.001&reduceOnly=true&side=Ask&symbol=BTC_USDC_PERP"
        "&timestamp=1700000000000&window=5000",
        "osxUbs8TmiNzMEKcJickIb/ADNjpHvF+5G3TiIzQglh+9aBm4MmCLJtYO0LqYlFlVIjDujn3T2n4OrT4K3Z3Aw==",
    ),
    (
        "positionQuery", None, T,
        "instruction=positionQuery&timestamp=1700000000000&window=5000",
        "/W2Y3SZF6tC459iVPvtGznJ2HHIDy366cuqHCeH1A8SHgqZPjag8vwmPOoVIaFyXakoKDUUIDIWQ8X+JfG3IAg==",
    ),
    (
        "accountUpdate", {"leverageLimit": "3"}, T,
        "instruction=accountUpdate&leverageLimit=3&timestamp=1700000000000&window=5000",
        "Qh3wfIEFactSj+uiqIX3guj8PT6Fl1aOys79/qUpFKBcp+rvb4VHnr8NrLCRkbKRmJjJWdQzOQewTJsuXxU9CQ==",
    ),
    (
        "subscribe", None, T,
        "instruction=subscribe&timestamp=1700000000000&window=5000",
        "pRObOWlU70asmsHXDgJZfmR4mj2pYuWLErtxNvPIt6dy0Z3R52pak6qGELEXiMnrq03YmNjVSPH0TjJyTo6VAw==",
    ),
    (
        "orderExecute", [V1, V2], T,
        "instruction=orderExecute&clientId=42&orderType=Limit&postOnly=true&price=150.25&quantity=0.50&side=Bid"
        "&symbol=SOL_USDC_PERP&instruction=orderExecute&orderType=Market&quantity=0.001&reduceOnly=true&side=Ask"
        "&symbol=BTC_USDC_PERP&timestamp=1700000000000&window=5000",
        "6DH3rkOCmVO1kdWCcvpS9fxaf5FvePA9jfSNZ+Yqq2PxfQyZxZuvpuHD93ePIpT6oN9wGigJH7jh5Shb95RRCg==",
    ),
    (
        "orderCancel", {"orderId": "28", "symbol": "BTC_USDT"}, 1614550000000,
        "instruction=orderCancel&orderId=28&symbol=BTC_USDT&timestamp=1614550000000&window=5000",
        "5JNvIFup6BvOx0ITxfxtEn5ac317vAI78vza6AWOyTvrzDTlVnO/T0dQazXuJmS4WJbLnm17ydL4EwqW5+6aBA==",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("instruction", "params", "ts", "message", "signature"), VECTORS, ids=[f"V{i + 1}" for i in range(7)]
)
def test_spec_vectors(instruction: str, params: object, ts: int, message: str, signature: str) -> None:
    assert signing_string(instruction, params, ts) == message  # type: ignore[arg-type]
    signer = BackpackSigner(API_KEY, SECRET)
    assert signer.sign(message) == signature
    headers = signer.headers(instruction, params, ts)  # type: ignore[arg-type]
    assert headers == {"X-API-Key": API_KEY, "X-Signature": signature, "X-Timestamp": str(ts), "X-Window": "5000"}


def test_keys() -> None:
    assert public_key_b64(load_signing_key(SECRET)) == API_KEY
    assert public_key_b64(load_signing_key(SECRET_64)) == API_KEY  # 64-byte seed||pub form accepted
    assert BackpackSigner(API_KEY, SECRET_64).sign("x") == BackpackSigner(API_KEY, SECRET).sign("x")


@pytest.mark.parametrize(
    ("key", "secret", "match"),
    [
        (API_KEY, "not base64!!", "not valid base64"),
        (API_KEY, "AQID", "decodes to 3 bytes"),
        ("someone-elses-key", SECRET, "is not the public key"),
    ],
)
def test_bad_keys_are_refused(key: str, secret: str, match: str) -> None:
    with pytest.raises(BackpackKeyError, match=match):
        BackpackSigner(key, secret)


def test_values_render_as_backpack_expects() -> None:
    assert (
        signing_string("x", {"b": False, "a": 7, "c": None}, 1, 2) == "instruction=x&a=7&b=false&timestamp=1&window=2"
    )
    with pytest.raises(TypeError):
        signing_string("x", {"q": 0.1}, 1)
    assert "secret" not in repr(BackpackSigner(API_KEY, SECRET)).lower()
