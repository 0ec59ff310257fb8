from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

import supervisor
from core.config import SECRET_MIN_LENGTH, ConfigError, HibachiKeyType, Mode, Settings, load_settings
from core.domain import Venue
from core.logs import REDACTED, RedactingFilter, configure_logging, secret_values

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-" + "0123456789abcdef" * 2  # 36 characters


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray ./config.toml


def _problems(**overrides: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(overrides=overrides)
    return info.value.lines


# ---- sources and precedence ------------------------------------------------------------------------------


def test_defaults_match_the_design() -> None:
    s = load_settings()
    assert s.mode is Mode.PAPER
    assert (s.trading.min_leverage, s.trading.max_leverage) == (Decimal("2.0"), Decimal("3.0"))
    assert (s.trading.min_duration_hours, s.trading.max_duration_hours) == (4, 8)
    assert s.trading.min_collateral_ratio == Decimal("1.5")
    assert s.trading.max_pnl_divergence == Decimal("0.05")
    assert s.monitor.interval_s == 60
    assert s.trading.direction_policy == "fixed"
    assert s.database_url == "sqlite:///data/perp-farmer.db"
    assert s.control_address == "ipc://data/control.ipc"


def test_toml_in_working_directory_overrides_defaults(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[trading]\nmin_leverage = 2.2\n\n[log]\nformat = "json"\n')
    s = load_settings()
    assert s.trading.min_leverage == Decimal("2.2")
    assert s.log.format == "json"
    assert s.trading.max_leverage == Decimal("3.0")


def test_explicit_config_file_replaces_the_default_one(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[trading]\nmin_leverage = 2.2\n")
    other = tmp_path / "other.toml"
    other.write_text("[trading]\nmax_leverage = 2.8\n")
    s = load_settings(other)
    assert s.trading.min_leverage == Decimal("2.0")
    assert s.trading.max_leverage == Decimal("2.8")


def test_environment_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text("[trading]\nmin_leverage = 2.2\nmax_leverage = 2.9\n")
    monkeypatch.setenv("APP__TRADING__MIN_LEVERAGE", "2.5")
    s = load_settings()
    assert s.trading.min_leverage == Decimal("2.5")
    assert s.trading.max_leverage == Decimal("2.9")


def test_command_line_overrides_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("APP__LOG__LEVEL", "ERROR")
    monkeypatch.setenv("APP__DATA_DIR", "/nonexistent/env-dir")
    args = supervisor.build_parser().parse_args(["--log-level", "debug", "--data-dir", str(tmp_path), "status"])
    s = load_settings(None, supervisor.overrides_from_args(args))
    assert s.log.level == "DEBUG"
    assert s.data_dir == tmp_path


def test_flags_are_accepted_after_the_subcommand_too(tmp_path: Path) -> None:
    args = supervisor.build_parser().parse_args(["--mode", "paper", "run", "--data-dir", str(tmp_path)])
    assert supervisor.overrides_from_args(args) == {"mode": "paper", "data_dir": tmp_path}


def test_decimal_settings_keep_exact_digits(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[trading]\nnotional_usd = 100.1\nmax_pnl_divergence = 0.07\n")
    s = load_settings()
    assert s.trading.notional_usd == Decimal("100.1")
    assert s.trading.max_pnl_divergence == Decimal("0.07")


def test_markets_from_toml(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[[trading.markets]]\nname = "SOL"\nsymbols = {backpack = "SOL_USDC_PERP", hibachi = "SOL/USDT-P"}\n'
    )
    s = load_settings()
    assert [(m.name, m.symbol(Venue.BACKPACK), m.symbol(Venue.HIBACHI)) for m in s.trading.markets] == [
        ("SOL", "SOL_USDC_PERP", "SOL/USDT-P")
    ]


def test_the_old_per_venue_keys_still_read(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[[trading.markets]]\nname = "SOL"\nbackpack_symbol = "SOL_USDC_PERP"\nhibachi_symbol = "SOL/USDT-P"\n'
        "[points]\nbackpack_per_usd = 0.5\nhibachi_per_usd = 2\n"
    )
    s = load_settings()
    assert s.trading.markets[0].symbols == {Venue.BACKPACK: "SOL_USDC_PERP", Venue.HIBACHI: "SOL/USDT-P"}
    assert s.points.per_usd == {Venue.BACKPACK: Decimal("0.5"), Venue.HIBACHI: Decimal(2)}
    assert next(iter(s.points.per_usd)) is Venue.BACKPACK  # the one object per venue name
    with pytest.raises(ConfigError) as exc:  # a misspelt old key is still an unknown one, not a new venue
        load_settings(overrides={"points": {"backpak_per_usd": 1}})
    assert exc.value.lines == ["points.backpak_per_usd: unknown setting"]


def test_points_per_side_replace_per_usd_for_their_side_only(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        "[points]\nbackpack_per_usd = 1\nhibachi_per_usd = 2\nmaker_per_usd = { hibachi = 5 }\n"
        "taker_per_usd = { backpack = 0.25 }\n"
    )
    points = load_settings().points
    assert points.maker_rates() == {Venue.BACKPACK: Decimal(1), Venue.HIBACHI: Decimal(5)}
    assert points.taker_rates() == {Venue.BACKPACK: Decimal("0.25"), Venue.HIBACHI: Decimal(2)}
    (tmp_path / "config.toml").unlink()
    plain = load_settings(overrides={"points": {"per_usd": {"backpack": "3"}}}).points
    assert plain.maker_rates() == plain.taker_rates() == {Venue.BACKPACK: Decimal(3)}  # per_usd is both
    assert hash(points) != hash(plain)


def test_venues_are_configured_and_every_market_names_a_symbol_on_each() -> None:
    s = load_settings(overrides={"trading": {"venues": ["hibachi", "backpack"]}})
    assert s.trading.venues == (Venue.HIBACHI, Venue.BACKPACK)
    assert Settings().trading.venues == (Venue.BACKPACK, Venue.HIBACHI)
    assert hash(Settings()) == hash(Settings())  # frozen settings stay hashable with per-venue mappings inside
    third = {"venues": ["backpack", "gamma"], "markets": [{"name": "BTC", "symbols": {"backpack": "B", "gamma": "G"}}]}
    assert load_settings(overrides={"trading": third}).trading.markets[0].symbol(Venue("gamma")) == "G"
    with pytest.raises(ConfigError) as exc:
        load_settings(overrides={"trading": {**third, "markets": [{"name": "BTC", "symbols": {"backpack": "B"}}]}})
    assert exc.value.lines == [
        "trading.markets: market 'BTC' has no symbol on gamma "
        "(add it to its symbols: every market trades on each of trading.venues)"
    ]
    for venues in (["backpack"], ["backpack", "backpack"], ["backpack", "hibachi", "gamma"]):
        with pytest.raises(ConfigError, match=r"trading.venues = \[.*\] must name two different venues"):
            load_settings(overrides={"trading": {"venues": venues}})
    with pytest.raises(ConfigError, match="not a venue name"):
        load_settings(overrides={"trading": {"venues": ["Backpack!", "hibachi"]}})


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_invalid_toml_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[trading\nmin_leverage = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(bad)


def test_unknown_key_in_toml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[trading]\nmin_levrage = 2.5\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.lines == ["trading.min_levrage: unknown setting"]


def test_unknown_environment_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP__TRADING__MAX_LEVRAGE", "2")
    with pytest.raises(ConfigError, match=r"trading\.max_levrage: unknown setting"):
        load_settings()


def test_wrong_type_names_key_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP__TRADING__MIN_LEVERAGE", "abc")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.lines[0].startswith("trading.min_leverage = 'abc': ")


# ---- validation rules ------------------------------------------------------------------------------------

RULES = [
    (
        {"trading": {"min_leverage": "4.0"}},
        "trading.min_leverage = 4.0 must be <= trading.max_leverage = 3.0",
    ),
    ({"trading": {"min_leverage": "0.5"}}, "trading.min_leverage = 0.5 must be >= 1"),
    ({"trading": {"max_leverage": "30"}}, "trading.max_leverage = 30 must be <= 25"),
    ({"trading": {"min_duration_hours": "0"}}, "trading.min_duration_hours = 0 must be > 0"),
    ({"backpack": {"requests_per_s": "0"}}, "backpack.requests_per_s = 0 must be > 0"),
    ({"hibachi": {"requests_per_s": "-1"}}, "hibachi.requests_per_s = -1 must be > 0"),
    ({"points": {"per_usd": {"backpack": "-1"}}}, "points.per_usd.backpack = -1 must be >= 0"),
    ({"points": {"maker_per_usd": {"hibachi": "-0.5"}}}, "points.maker_per_usd.hibachi = -0.5 must be >= 0"),
    ({"points": {"taker_per_usd": {"backpack": "-2"}}}, "points.taker_per_usd.backpack = -2 must be >= 0"),
    (
        {"trading": {"min_duration_hours": "9"}},
        "trading.min_duration_hours = 9 must be <= trading.max_duration_hours = 8",
    ),
    ({"trading": {"min_collateral_ratio": "1"}}, "trading.min_collateral_ratio = 1 must be > 1"),
    ({"trading": {"max_pnl_divergence": "0"}}, "trading.max_pnl_divergence = 0 must be > 0"),
    ({"trading": {"max_pnl_divergence": "1.5"}}, "trading.max_pnl_divergence = 1.5 must be < 1"),
    ({"trading": {"notional_usd": "-5"}}, "trading.notional_usd = -5 must be > 0"),
    ({"trading": {"max_concurrent_pairs": 0}}, "trading.max_concurrent_pairs = 0 must be >= 1"),
    ({"trading": {"cooldown_min_s": "-1"}}, "trading.cooldown_min_s = -1 must be >= 0"),
    (
        {"trading": {"cooldown_min_s": "400"}},
        "trading.cooldown_min_s = 400 must be <= trading.cooldown_max_s = 300",
    ),
    ({"trading": {"collateral_buffer": "0.9"}}, "trading.collateral_buffer = 0.9 must be >= 1"),
    ({"trading": {"markets": []}}, "trading.markets = [] must name at least one market"),
    (
        {"trading": {"markets": [{"name": "X", "backpack_symbol": "a", "hibachi_symbol": "b"}] * 2}},
        "trading.markets: market name 'X' appears more than once",
    ),
    ({"monitor": {"interval_s": "0"}}, "monitor.interval_s = 0 must be > 0"),
    ({"monitor": {"feed_stale_after_s": "-1"}}, "monitor.feed_stale_after_s = -1 must be > 0"),
    ({"backpack": {"rest_url": "ftp://x"}}, "backpack.rest_url = ftp://x must be a http or https URL"),
    ({"backpack": {"ws_url": "http://x"}}, "backpack.ws_url = http://x must be a ws or wss URL"),
    ({"hibachi": {"api_url": "nope"}}, "hibachi.api_url = nope must be a http or https URL"),
    ({"hibachi": {"data_api_url": "x"}}, "hibachi.data_api_url = x must be a http or https URL"),
    ({"hibachi": {"ws_market_url": "x"}}, "hibachi.ws_market_url = x must be a ws or wss URL"),
    ({"backpack": {"window_ms": 70000}}, "backpack.window_ms = 70000 must be between 1 and 60000"),
    ({"hibachi": {"key_type": "hmac"}}, "hibachi.key_type = hmac requires hibachi.hmac_secret"),
    ({"hibachi": {"key_type": "ecdsa"}}, "hibachi.key_type = ecdsa requires hibachi.private_key"),
    (
        {"hibachi": {"key_type": "ecdsa", "private_key": "0x1234"}},
        "hibachi.private_key = '**********' must be 64 hex digits",
    ),
    ({"hibachi": {"hmac_secret": "s3cr3t-value"}}, "hibachi.key_type must be set to hmac or ecdsa"),
    (
        {"mode": "live"},
        "mode = live requires backpack.api_key, backpack.api_secret, hibachi.api_key, hibachi.account_id, "
        "hibachi.key_type (missing)",
    ),
    ({"control": {"address": "udp://x"}}, "control.address = udp://x must start with ipc:// or tcp://"),
    (
        {"control": {"address": "tcp://10.0.0.5:9000", "token": "t" * 32}},
        "control.address = tcp://10.0.0.5:9000 is not loopback: it needs control.allow_remote = true",
    ),
    (
        {"control": {"address": "tcp://10.0.0.5:9000", "allow_remote": True}},
        "control.address = tcp://10.0.0.5:9000 needs control.token",
    ),
    (
        {"control": {"address": "tcp://127.0.0.1:9000"}},
        "control.address = tcp://127.0.0.1:9000 needs control.token",
    ),
    (
        {"control": {"address": "tcp://10.0.0.5:9000", "allow_remote": True, "token": "x"}},
        "control.token must be at least 32 characters",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), RULES, ids=[r[1][:50] for r in RULES])
def test_each_rule_is_enforced_with_a_message_naming_the_key(overrides: dict, expected: str) -> None:
    problems = _problems(**overrides)
    assert any(expected in p for p in problems), problems


def test_every_rule_reported_at_once() -> None:
    problems = _problems(trading={"min_leverage": "4", "notional_usd": "0"}, monitor={"interval_s": "0"})
    assert len(problems) == 3


def test_valid_non_default_settings_pass() -> None:
    s = load_settings(
        overrides={
            "mode": "live",
            "backpack": {"api_key": "k" * 44, "api_secret": "s" * 44},
            "hibachi": {
                "api_key": "k" * 32,
                "account_id": 7,
                "key_type": "ecdsa",
                "private_key": "0x" + "11" * 32,
            },
            "control": {"address": "tcp://10.0.0.5:9000", "allow_remote": True, "token": TOKEN},
        }
    )
    assert s.hibachi.key_type is HibachiKeyType.ECDSA
    assert s.control.address == "tcp://10.0.0.5:9000"
    loopback = load_settings(overrides={"control": {"address": "tcp://127.0.0.1:0", "token": TOKEN}})
    assert loopback.control.address == "tcp://127.0.0.1:0"
    assert load_settings(overrides={"control": {"address": "ipc:///tmp/x.ipc"}}).control.token is None


def test_tcp_token_error_says_how_to_make_one_and_never_echoes_the_token() -> None:
    for address in ("tcp://127.0.0.1:9000", "tcp://[::1]:9000", "tcp://localhost:9000", "tcp://0.0.0.0:9000"):
        short = "Zq9-" + "w" * 27  # 31 characters
        problems = _problems(control={"address": address, "allow_remote": True, "token": short})
        assert any("control.token must be at least 32 characters" in p for p in problems), problems
        assert "secrets.token_urlsafe(32)" in "\n".join(problems)
        assert not any(short in p or "Zq9" in p for p in problems), problems
        missing = _problems(control={"address": address, "allow_remote": True})
        assert any("needs control.token" in p and "token_urlsafe" in p for p in missing), missing


# ---- secrets ---------------------------------------------------------------------------------------------

SECRETS = {
    "backpack": {
        "api_key": "BPKEY-visible-nowhere-" + "k" * 24,
        "api_secret": "BPSECRET-visible-nowhere-" + "s" * 24,
    },
    "hibachi": {
        "api_key": "HBKEY-visible-nowhere",
        "key_type": "hmac",
        "hmac_secret": "HBHMAC-visible-nowhere-" + "h" * 16,
    },
    "control": {"token": "TOKEN-visible-nowhere-" + "t" * 16},
    "alerts": {
        "webhook_url": "https://hooks.example.invalid/T0/B0/WEBHOOK-visible-nowhere",
        "telegram_bot_token": "123456789:TG-visible-nowhere-" + "g" * 16,
        "telegram_chat_id": "-100200",
        "discord_webhook_url": "https://discord.example.invalid/api/webhooks/1/DISCORD-visible-nowhere",
    },
}


def _all_secret_strings() -> list[str]:
    return [v for section in SECRETS.values() for k, v in section.items() if k not in ("key_type", "telegram_chat_id")]


def test_secrets_never_in_repr_str_or_dump() -> None:
    s = load_settings(overrides=SECRETS)
    rendered = repr(s) + str(s) + s.model_dump_json() + repr(s.model_dump())
    for secret in _all_secret_strings():
        assert secret not in rendered
    assert s.backpack.api_secret is not None
    assert s.backpack.api_secret.get_secret_value() == SECRETS["backpack"]["api_secret"]


def test_secret_in_a_bad_value_is_not_echoed() -> None:
    problems = _problems(hibachi={"key_type": "ecdsa", "private_key": "0xnot-a-key-but-secret"})
    assert not any("not-a-key-but-secret" in p for p in problems)


def _secret_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_secret_keys(annotation, f"{prefix}{name}."))
        elif "SecretStr" in str(annotation):
            keys.append(f"{prefix}{name}")
    return keys


SECRET_KEYS = _secret_keys()


def test_the_secret_fields_are_the_ones_expected() -> None:
    # A new credential or URL that can carry one must be a SecretStr; this list makes adding one a decision.
    assert sorted(SECRET_KEYS) == [
        "alerts.discord_webhook_url",
        "alerts.telegram_bot_token",
        "alerts.webhook_url",
        "backpack.api_key",
        "backpack.api_secret",
        "control.token",
        "hibachi.api_key",
        "hibachi.hmac_secret",
        "hibachi.private_key",
    ]


def _nest(key: str, value: object) -> dict[str, dict[str, object]]:
    section, name = key.split(".")
    return {section: {name: value}}


# Values of every wrong shape; each problem line is checked for every rendering of the value.
BAD_SECRET_VALUES: list[tuple[object, tuple[str, ...]]] = [
    (987654321, ("987654321",)),
    (9876.54321, ("9876.54321", "9876")),
    (True, ("True", "true")),
    (["SECRETLISTVALUE"], ("SECRETLIST",)),
    ({"SECRETDICTKEY": "SECRETDICTVALUE"}, ("SECRETDICT",)),
    ("SHRTsv", ("SHRTsv",)),
    ("ftp://SECRETHOST/SECRETPATH-" + "x" * 40, ("SECRETHOST", "SECRETPATH")),
    ("0xZZ" + "SECRETHEX" * 8, ("SECRETHEX", "0xZZ")),
]


def _toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # JSON scalars and string lists are valid TOML


@pytest.mark.parametrize("source", ["toml", "flags"])
@pytest.mark.parametrize("key", SECRET_KEYS)
def test_no_config_error_ever_contains_a_secret_value(key: str, source: str, tmp_path: Path) -> None:
    section, name = key.split(".")
    for value, renderings in BAD_SECRET_VALUES:
        path = tmp_path / "bad.toml"
        path.write_text(f"[{section}]\n{name} = {_toml_value(value)}\n")
        try:
            load_settings(path) if source == "toml" else load_settings(overrides=_nest(key, value))
        except ConfigError as exc:
            problems = exc.lines
        else:
            # Only a long string can be accepted: a URL as an API key, a 40-character string as a token.
            assert isinstance(value, str) and len(value) > 40, (key, value)
            continue
        assert problems, (key, value)
        for line in problems:
            for shown in renderings:
                assert shown not in line, (key, value, line)


def test_a_section_of_the_wrong_type_is_not_echoed() -> None:
    for section in ("backpack", "hibachi", "control", "alerts"):
        problems = _problems(**{section: "SECTION-SECRET-VALUE"})
        assert problems and not any("SECTION-SECRET-VALUE" in p for p in problems), problems


def test_wrong_type_of_a_secret_still_names_the_key_and_rule() -> None:
    assert _problems(backpack={"api_secret": 12345}) == [
        "backpack.api_secret = '**********': Input should be a valid string"
    ]


_PARTNERS: dict[str, dict[str, dict[str, object]]] = {
    "hibachi.hmac_secret": {"hibachi": {"key_type": "hmac"}},
    "alerts.telegram_bot_token": {"alerts": {"telegram_chat_id": "7"}},
}


@pytest.mark.parametrize("key", sorted(SECRET_MIN_LENGTH))
def test_implausibly_short_secrets_are_refused(key: str) -> None:
    minimum = SECRET_MIN_LENGTH[key]
    assert minimum >= 16
    section, name = key.split(".")
    extra = _PARTNERS.get(key, {})

    def settings_with(value: str) -> dict[str, dict[str, object]]:
        merged = {k: dict(v) for k, v in extra.items()}
        merged.setdefault(section, {})[name] = value
        return merged

    short = "q" * (minimum - 1)
    problems = _problems(**settings_with(short))
    assert any(f"{key} must be at least {minimum} characters" in p for p in problems), problems
    assert not any(short in p for p in problems)
    assert _problems(**settings_with("q"))  # the one-character token of the review
    s = load_settings(overrides=settings_with("q" * minimum))
    assert "q" * minimum in secret_values(s)


def test_every_non_url_secret_has_a_minimum_length() -> None:
    urls = {"alerts.webhook_url", "alerts.discord_webhook_url", "hibachi.private_key"}  # checked by format
    assert set(SECRET_MIN_LENGTH) == set(SECRET_KEYS) - urls


def test_hibachi_private_key_format_is_checked_whatever_the_key_type() -> None:
    problems = _problems(hibachi={"key_type": "hmac", "hmac_secret": "h" * 44, "private_key": "0x12"})
    assert any("hibachi.private_key = '**********' must be 64 hex digits" in p for p in problems), problems


def test_webhook_urls_are_secret_and_checked_without_echo() -> None:
    s = load_settings(overrides={"alerts": {"webhook_url": "https://h.example.invalid/hook?token=HOOKSECRET"}})
    assert s.alerts.webhook_url is not None
    assert s.alerts.webhook_url.get_secret_value().endswith("HOOKSECRET")
    assert "HOOKSECRET" not in repr(s) + s.model_dump_json()
    for key in ("webhook_url", "discord_webhook_url"):
        problems = _problems(alerts={key: "ftp://h.example.invalid/HOOKSECRET"})
        assert any(f"alerts.{key} = '**********' must be a http or https URL" in p for p in problems), problems
        assert not any("HOOKSECRET" in p for p in problems)


def test_log_lines_have_secrets_scrubbed() -> None:
    s = load_settings(overrides=SECRETS)
    assert set(_all_secret_strings()) <= set(secret_values(s))
    stream = io.StringIO()
    handler = configure_logging(s, stream)
    try:
        logger = logging.getLogger("test.secrets")
        logger.warning("venue echoed %s back", SECRETS["backpack"]["api_secret"])
        try:
            raise RuntimeError(f"boom with {SECRETS['hibachi']['hmac_secret']} inside")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logging.getLogger().removeHandler(handler)
    out = stream.getvalue()
    assert REDACTED in out
    assert "visible-nowhere" not in out
    assert "RuntimeError" in out


def test_redacting_filter_replaces_longest_secret_first() -> None:
    f = RedactingFilter(["abcd", "abcdefgh"])
    assert f.scrub("x abcdefgh y") == f"x {REDACTED} y"


def test_json_log_format_is_one_object_per_line() -> None:
    s = load_settings(overrides={"log": {"format": "json"}})
    stream = io.StringIO()
    handler = configure_logging(s, stream)
    try:
        logging.getLogger("test.json").info("hello %s", "world", extra={"pair": 7, "venue": "backpack"})
    finally:
        logging.getLogger().removeHandler(handler)
    record = json.loads(stream.getvalue().strip())
    assert record["message"] == "hello world"
    assert record["pair"] == 7
    assert record["venue"] == "backpack"
    assert record["level"] == "info"


# ---- the command line, as a user runs it -----------------------------------------------------------------


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("APP__")}
    return subprocess.run(
        [sys.executable, str(ROOT / "supervisor.py"), *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = _run([], {"APP__TRADING__MIN_LEVERAGE": "5"}, tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "min_leverage" in lines[0]
    assert "Traceback" not in proc.stderr


def test_help_lists_subcommands(tmp_path: Path) -> None:
    proc = _run(["--help"], {}, tmp_path)
    assert proc.returncode == 0
    for name in ("run", "status", "pairs", "pair", "pause", "resume", "close", "close-all", "health"):
        assert f"    {name} " in proc.stdout or f"    {name}\n" in proc.stdout


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        ({"hibachi": {"nonce_window_s": 600}}, "hibachi.nonce_window_s = 600 must be <= 60"),
        ({"paper": {"live_max_age_s": 3600}}, "paper.live_max_age_s = 3600 must be <= 60"),
    ],
)
def test_windows_that_would_switch_a_safety_check_off_are_refused(overrides: dict[str, object], line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides=overrides)
    assert any(problem.startswith(line) for problem in caught.value.lines)
