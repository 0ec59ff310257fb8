"""Hibachi signing against the spec's five worked vectors (shared/specs/hibachi.md §2), byte for byte."""

from __future__ import annotations

import hashlib
from decimal import Decimal as D

import pytest
from coincurve import PublicKey
from hypothesis import given
from hypothesis import strategies as st

from core.domain import Side
from exchanges.hibachi.signing import (
    Contract,
    EcdsaSigner,
    HibachiKeyError,
    HmacSigner,
    cancel_all_payload,
    cancel_payload,
    make_signer,
    order_payload,
    quantity_is_exact,
    scaled_price,
)

HMAC_SECRET = "dGVzdC1obWFjLXNlY3JldC1mb3ItaGliYWNoaS0wMDE="
ECDSA_KEY = "0x1111111111111111111111111111111111111111111111111111111111111111"
PUBLIC = (
    "4f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"
    "385b6b1b8ead809ca67454d9683fcf2ba03456d6fe2c4abe2b07f0fbdbb2f1c1"
)
BTC = Contract(2, "BTC/USDT-P", 10, 6, D("0.1"), D("0.0000000001"), D("0.0000000001"), D(1), D("0.066667"))
ETH = Contract(1, "ETH/USDT-P", 9, 6, D("0.01"), D("0.000000001"), D("0.000000001"), D(1), D("0.066667"))


def _h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


VECTORS = [
    (
        "V1 limit bid BTC",
        order_payload(1714701600000000, BTC, D("0.001"), Side.LONG, D("65000.5"), D("0.00045")),
        "0006178313c38800 00000002 0000000000989680 00000001 00000006800346dc 000000000000afc8",
        "cbd36f58d293413c09a2a381e93b60f1093f1955c10d05d50bcbd3c340e0def3",
        "d9cf392e7354c1f9801770a4f9ee4fcda7b64e7c8fc02c725290b3db152ac73c"
        "4c91270d444a7bc5177c4fc5c79d8388fbb5480b1f6270e129b635a2d1de765e01",
    ),
    (
        "V2 market ask BTC",
        order_payload(1714701600000001, BTC, D("0.001"), Side.SHORT, None, D("0.00045")),
        "0006178313c38801 00000002 0000000000989680 00000000 000000000000afc8",
        "b291d9a11b307f5c442a8822836342ae9ff647a0f17cbbd23b07597ff1836115",
        "38fb82618afe0f7c80550a789618640daff6010b329401e460081c66aa1024de"
        "5d6709ea12b9b8e20df506d89a59f21eeb3d78d995eb74ec108f4c7835e46e6400",
    ),
    (
        "V3 limit ask ETH",
        order_payload(1714701600000002, ETH, D("0.25"), Side.SHORT, D("3500.12"), D("0.0005")),
        "0006178313c38802 00000001 000000000ee6b280 00000000 000000038007dd44 000000000000c350",
        "b7ae54ed15dabaa583c704e691e37ad6d2210c2670f61216020fa21a21c00ad9",
        "d07a78a666e0d2f3abff5806f6e454ac9201b3c2522635b28dd5309047575e5f"
        "4396743c702c7b0823eaf9801b162a07c351a18e6191e7857d0d918cd8fe386500",
    ),
    (
        "V4 cancel",
        cancel_payload(578721673790138368),
        "0808084bce14a800",
        "1bd7e5d4c606f8415307f464be04850ecc340afef16e14611231edc5af4e3611",
        "6e1b4d5adfeec6b198779bcd0f470dad23d5b0630917e01b5e7df0b72524973a"
        "5a732b27100da2ed65871b8df6ff813ce15b1be815e8f88963ef5647553e959f01",
    ),
    (
        "V5 cancel all",
        cancel_all_payload(1714701600000003),
        "0006178313c38803",
        "af5ba09c6a87f6b0d709bf4d28f44898fce9820d70ee660fb37e5c94ce1a7361",
        "857fda81f6638dbe62d21533763c739ec1415df7cb10c9118fb62485d93ea690"
        "6855e3a75bb3f568836b8188606dd090642d00edd4d2ccb5959b188c8e232c1201",
    ),
]


@pytest.mark.parametrize(("name", "payload", "expected", "hmac_hex", "ecdsa_hex"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vectors_byte_for_byte(name: str, payload: bytes, expected: str, hmac_hex: str, ecdsa_hex: str) -> None:
    assert payload == _h(expected)
    assert HmacSigner(HMAC_SECRET).sign(payload) == hmac_hex
    signature = EcdsaSigner(ECDSA_KEY).sign(payload)
    assert signature == ecdsa_hex
    assert len(signature) == 130 and signature[-2:] in ("00", "01")  # v is the recovery id, not 27/28


def test_market_payload_is_32_bytes_and_limit_is_40() -> None:
    assert len(VECTORS[1][1]) == 32
    assert len(VECTORS[0][1]) == 40


def test_ecdsa_signature_recovers_the_account_key() -> None:
    signer = EcdsaSigner(ECDSA_KEY)
    assert signer.public_key_hex == PUBLIC
    payload = VECTORS[0][1]
    recovered = PublicKey.from_signature_and_message(
        bytes.fromhex(signer.sign(payload)), hashlib.sha256(payload).digest(), hasher=None
    )
    assert recovered.format(compressed=False)[1:].hex() == PUBLIC


def test_price_scaling_truncates() -> None:
    # 65000.5 * 2^32 / 10^4 = 27917502172.36..., truncated toward zero
    assert scaled_price(D("65000.5"), BTC) == 27917502172


def test_hmac_secret_is_used_as_ascii_not_base64_decoded() -> None:
    import base64
    import hmac as hmac_lib

    decoded = base64.b64decode(HMAC_SECRET)
    payload = VECTORS[3][1]
    assert HmacSigner(HMAC_SECRET).sign(payload) != hmac_lib.new(decoded, payload, hashlib.sha256).hexdigest()


@given(st.integers(min_value=1, max_value=10**8), st.integers(min_value=0, max_value=12))
def test_quantity_exactness(units: int, places: int) -> None:
    quantity = D(units).scaleb(-places)
    assert quantity_is_exact(quantity, BTC) == ((units * 10**10) % 10**places == 0)


def test_key_type_is_explicit_and_keys_are_checked() -> None:
    assert isinstance(make_signer("hmac", hmac_secret=HMAC_SECRET), HmacSigner)
    assert isinstance(make_signer("ecdsa", private_key=ECDSA_KEY), EcdsaSigner)
    with pytest.raises(HibachiKeyError, match="needs hibachi.hmac_secret"):
        make_signer("hmac", private_key=ECDSA_KEY)
    with pytest.raises(HibachiKeyError, match="64 hex"):
        make_signer("ecdsa", private_key="0x1234")
    with pytest.raises(HibachiKeyError, match="not a valid"):
        make_signer("ecdsa", private_key="0x" + "0" * 64)  # zero is no secp256k1 key
    with pytest.raises(HibachiKeyError, match="hmac or ecdsa"):
        make_signer("auto", hmac_secret=HMAC_SECRET)
    with pytest.raises(ValueError, match="64-bit"):
        cancel_payload(2**64)
