"""Every configured secret is scrubbed from every part of a log record that is output, in both formats."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.config import Settings, load_settings
from core.logs import REDACTED, RedactingFilter, configure_logging, secret_values

BP_SECRET = "BPsecret+/=" + "b" * 33  # base64 characters, which JSON leaves as they are
TOKEN = 'ctl"token\\with-quote-' + "t" * 16  # characters JSON escapes: only a structural scrub catches them
HOOK_PATH = "/services/T000/B000/HOOKtoken-0123456789"
OVERRIDES = {
    "backpack": {"api_key": "BPkey" + "k" * 40, "api_secret": BP_SECRET},
    "control": {"token": TOKEN},
    "alerts": {"webhook_url": f"https://hooks.example.invalid{HOOK_PATH}"},
}
FRAGMENTS = ("BPsecret", "BPkey", "ctl", "HOOKtoken")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _settings(fmt: str) -> Settings:
    return load_settings(overrides={**OVERRIDES, "log": {"format": fmt}})


@pytest.fixture
def output(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = configure_logging(_settings(request.param), stream)
    try:
        yield logging.getLogger(f"test.scrub.{request.param}"), stream
    finally:
        logging.getLogger().removeHandler(handler)


def _log_everything(logger: logging.Logger) -> None:
    """One record with a secret in its message, args, exception, stack and every kind of extra field."""
    nested = {"request": {"headers": {"X-API-Key": OVERRIDES["backpack"]["api_key"]}, "list": [TOKEN, (BP_SECRET,)]}}
    try:
        raise RuntimeError(f"venue said: bad signature for {BP_SECRET}")
    except RuntimeError:
        logger.exception(
            "sent %s with %r to %s",
            OVERRIDES["backpack"]["api_key"],
            {"token": TOKEN},
            "https://hooks.example.invalid" + HOOK_PATH,
            extra={
                "fields": {**nested, "amount": Decimal("1.5"), BP_SECRET: "as a key"},
                "venue": f"backpack {BP_SECRET}",
                "pair": [1, TOKEN],
                "actor": {"nested": TOKEN},
            },
            stack_info=True,
        )
    logger.warning("url only: %s", HOOK_PATH)  # a requests error shows the path without the host


@pytest.mark.parametrize("output", ["json", "text"], indirect=True)
def test_no_secret_in_any_part_of_a_record(output: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = output
    _log_everything(logger)
    out = stream.getvalue()
    for fragment in FRAGMENTS:
        assert fragment not in out, fragment
    assert REDACTED in out
    assert "RuntimeError" in out and "url only" in out


@pytest.mark.parametrize("output", ["json"], indirect=True)
def test_json_keeps_its_shape_and_the_non_secret_values(output: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = output
    _log_everything(logger)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{"))
    assert first["venue"] == f"backpack {REDACTED}"
    assert first["pair"] == [1, REDACTED]
    assert first["fields"]["amount"] == "1.5"
    assert first["fields"]["request"]["headers"]["X-API-Key"] == REDACTED
    assert first["fields"]["request"]["list"] == [REDACTED, [REDACTED]]
    assert first["fields"][REDACTED] == "as a key"
    assert "RuntimeError" in first["exception"]
    assert second["message"] == f"url only: {REDACTED}"


def test_every_accepted_secret_is_scrubbed_whatever_its_length() -> None:
    f = RedactingFilter(["abc", "x"])
    assert f.scrub("1 abc 2 x 3") == f"1 {REDACTED} 2 {REDACTED} 3"


def test_secret_values_cover_every_secret_field_and_a_webhook_path() -> None:
    values = secret_values(_settings("text"))
    assert set(values) >= {BP_SECRET, TOKEN, OVERRIDES["backpack"]["api_key"], HOOK_PATH}
    assert f"https://hooks.example.invalid{HOOK_PATH}" in values


def test_a_short_webhook_path_is_not_scrubbed_alone() -> None:
    # "/hook" alone would mangle ordinary lines; the whole URL still is a secret.
    settings = load_settings(overrides={"alerts": {"webhook_url": "http://127.0.0.1:8080/hook"}})
    assert secret_values(settings) == ["http://127.0.0.1:8080/hook"]
