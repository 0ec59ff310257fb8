"""`[[accounts]]`: one configuration for a fleet of accounts, each worker's settings derived from it."""

from __future__ import annotations

import io
import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from core.config import HIDDEN, ConfigError, HibachiKeyType, Mode, Settings, load_settings
from core.domain import Venue
from core.logs import REDACTED, configure_logging, secret_values

BP_KEY_A = "A" * 43 + "="
BP_SECRET_A = "a" * 43 + "="
BP_KEY_B = "B" * 43 + "="
BP_SECRET_B = "b" * 43 + "="
HB_KEY_A = "hibachi-key-alice-0123456789"
HB_HMAC_A = "h" * 44
HB_KEY_B = "hibachi-key-bob-0123456789ab"
HB_HMAC_B = "H" * 44

ALICE = f"""
[[accounts]]
name = "alice"
markets = ["BTC"]
notional_usd = 50
max_concurrent_pairs = 2
[accounts.backpack]
api_key = "{BP_KEY_A}"
api_secret = "{BP_SECRET_A}"
[accounts.hibachi]
api_key = "{HB_KEY_A}"
account_id = 11
key_type = "hmac"
hmac_secret = "{HB_HMAC_A}"
"""
BOB = f"""
[[accounts]]
name = "bob"
[accounts.backpack]
api_key = "{BP_KEY_B}"
api_secret = "{BP_SECRET_B}"
[accounts.hibachi]
api_key = "{HB_KEY_B}"
account_id = 22
key_type = "hmac"
hmac_secret = "{HB_HMAC_B}"
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray ./config.toml


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return load_settings(path)


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return info.value.lines


# ---- no accounts: today's configuration ------------------------------------------------------------------


def test_without_accounts_there_is_one_default_account() -> None:
    s = load_settings()
    assert (s.accounts, s.fleet, s.account, s.account_names()) == ((), False, "default", ["default"])
    assert s.for_account("default") == s
    with pytest.raises(ConfigError, match="'alice' is not configured"):
        s.for_account("alice")


def test_a_single_live_account_keeps_its_top_level_keys_and_errors(tmp_path: Path) -> None:
    lines = _problems(tmp_path, 'mode = "live"\n')
    assert lines == [
        "mode = live requires backpack.api_key, backpack.api_secret, hibachi.api_key, hibachi.account_id, "
        "hibachi.key_type (missing)"
    ]


# ---- accounts from the file, inheriting the top level ----------------------------------------------------


def test_accounts_inherit_what_they_leave_out(tmp_path: Path) -> None:
    s = _load(tmp_path, '[backpack]\nrest_url = "https://bp.example"\n[trading]\nnotional_usd = 80\n' + ALICE + BOB)
    assert s.fleet and s.account_names() == ["alice", "bob"]
    alice, bob = s.for_account("alice"), s.for_account("bob")
    assert [m.name for m in alice.trading.markets] == ["BTC"]
    assert (alice.trading.notional_usd, alice.trading.max_concurrent_pairs) == (Decimal(50), 2)
    assert [m.name for m in bob.trading.markets] == ["BTC", "ETH"]
    assert (bob.trading.notional_usd, bob.trading.max_concurrent_pairs) == (Decimal(80), 1)
    for worker in (alice, bob):
        assert worker.backpack.rest_url == "https://bp.example"
        assert worker.hibachi.key_type is HibachiKeyType.HMAC
    assert alice.backpack.api_key == SecretStr(BP_KEY_A) and bob.backpack.api_key == SecretStr(BP_KEY_B)
    assert (alice.hibachi.account_id, bob.hibachi.account_id) == (11, 22)


def test_for_account_gives_a_plain_single_account_config(tmp_path: Path) -> None:
    s = _load(tmp_path, "[workers]\nlease_s = 24\nmax_accounts = 2\n" + ALICE + BOB)
    alice = s.for_account("alice")
    assert isinstance(alice, Settings)
    assert (alice.account, alice.accounts, alice.fleet) == ("alice", (), False)
    assert alice.workers == s.workers and alice.workers.lease_s == 24
    assert (alice.database_url, alice.limits, alice.paper.external) == (s.database_url, s.limits, False)
    assert isinstance(alice.backpack.api_secret, SecretStr) and isinstance(alice.hibachi.hmac_secret, SecretStr)
    assert BP_SECRET_A not in repr(alice) + alice.model_dump_json()
    with pytest.raises(ConfigError, match="'carol' is not configured"):
        s.for_account("carol")


def test_for_account_mode_follows_the_account_else_the_top_level(tmp_path: Path) -> None:
    paper_bob = BOB.replace('name = "bob"', 'name = "bob"\npaper = true')
    s = _load(tmp_path, 'mode = "live"\n' + ALICE + paper_bob)
    assert s.for_account("alice").mode is Mode.LIVE and s.for_account("bob").mode is Mode.PAPER
    assert (s.account_is_paper("alice"), s.account_is_paper("bob")) == (False, True)
    live_alice = ALICE.replace('name = "alice"', 'name = "alice"\npaper = false')
    s = _load(tmp_path, live_alice + BOB)
    assert s.for_account("alice").mode is Mode.LIVE and s.for_account("bob").mode is Mode.PAPER


def test_for_account_venues_override_the_sections_and_make_paper_external(tmp_path: Path) -> None:
    s = _load(tmp_path, ALICE + BOB)
    venues = {
        "backpack": {"rest_url": "http://127.0.0.1:4001", "ws_url": "ws://127.0.0.1:4002", "api_key": BP_KEY_B},
        "hibachi": {"api_url": "http://127.0.0.1:4003", "account_id": 99},
    }
    alice = s.for_account("alice", venues)
    assert alice.paper.external is True
    assert (alice.backpack.rest_url, alice.backpack.ws_url) == ("http://127.0.0.1:4001", "ws://127.0.0.1:4002")
    assert alice.backpack.api_key == SecretStr(BP_KEY_B) and isinstance(alice.backpack.api_key, SecretStr)
    assert alice.backpack.api_secret == SecretStr(BP_SECRET_A)  # not overridden: the account's own
    assert (alice.hibachi.api_url, alice.hibachi.account_id) == ("http://127.0.0.1:4003", 99)
    assert s.for_account("alice").paper.external is False


def test_for_account_validates_its_result(tmp_path: Path) -> None:
    s = _load(tmp_path, ALICE)
    with pytest.raises(ConfigError) as info:
        s.for_account("alice", {"backpack": {"rest_url": "not a url"}})
    assert info.value.lines == ["account alice: backpack.rest_url = not a url must be a http or https URL with a host"]


def test_for_account_reads_neither_the_environment_nor_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _load(tmp_path, ALICE)
    (tmp_path / "config.toml").write_text("[trading]\nmax_concurrent_pairs = 7\n")
    monkeypatch.setenv("APP__TRADING__COOLDOWN_MIN_S", "3")
    monkeypatch.setenv("APP__ACCOUNTS__CAROL__BACKPACK__API_KEY", BP_KEY_B)
    alice = s.for_account("alice")
    assert (alice.trading.cooldown_min_s, alice.trading.max_concurrent_pairs) == (Decimal(60), 2)


# ---- secrets by account name from the environment ---------------------------------------------------------


def test_account_secrets_come_from_the_environment_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP__ACCOUNTS__ALICE__BACKPACK__API_KEY", BP_KEY_A)
    monkeypatch.setenv("APP__ACCOUNTS__ALICE__BACKPACK__API_SECRET", BP_SECRET_A)
    monkeypatch.setenv("APP__ACCOUNTS__BOB_2__HIBACHI__HMAC_SECRET", HB_HMAC_B)  # not bob's: bob_2's
    monkeypatch.setenv("APP__ACCOUNTS__BOB_2__HIBACHI__KEY_TYPE", "hmac")
    monkeypatch.setenv("app__accounts__Bob__hibachi__account_id", "5")  # any case
    monkeypatch.setenv("APP__ACCOUNTS__BOB__NOTIONAL_USD", "40")
    monkeypatch.setenv("APP__ACCOUNTS__BOB__MARKETS", '["ETH"]')
    monkeypatch.setenv("APP__TRADING__COOLDOWN_MIN_S", "5")  # the other variables are still read
    text = '[[accounts]]\nname = "alice"\n[[accounts]]\nname = "bob"\nnotional_usd = 90\n'
    s = _load(tmp_path, text + '[[accounts]]\nname = "bob_2"\n')
    alice, bob, bob_2 = s.accounts
    assert (alice.backpack.api_key, alice.backpack.api_secret) == (SecretStr(BP_KEY_A), SecretStr(BP_SECRET_A))
    assert (bob.hibachi.account_id, bob.hibachi.hmac_secret, bob.notional_usd) == (5, None, Decimal(40))
    assert bob.markets == ("ETH",)
    assert bob_2.hibachi.hmac_secret == SecretStr(HB_HMAC_B)
    assert s.trading.cooldown_min_s == 5
    assert s.for_account("alice").backpack.api_key == SecretStr(BP_KEY_A)


def test_account_variables_apply_to_an_accounts_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP__ACCOUNTS", '[{"name": "alice"}]')
    monkeypatch.setenv("APP__ACCOUNTS__ALICE__BACKPACK__API_KEY", BP_KEY_A)
    assert load_settings().accounts[0].backpack.api_key == SecretStr(BP_KEY_A)


def test_a_variable_for_an_unknown_account_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP__ACCOUNTS__CAROL__BACKPACK__API_KEY", BP_KEY_B)
    lines = _problems(tmp_path, ALICE + "[trading]\nnotional_usd = 0\n")
    assert lines[0] == "APP__ACCOUNTS__CAROL__BACKPACK__API_KEY: account 'carol' is not in the config (accounts: alice)"
    assert "trading.notional_usd = 0 must be > 0" in lines  # reported together with the file's problems
    assert all(BP_KEY_B not in line for line in lines)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.lines == [
        "APP__ACCOUNTS__CAROL__BACKPACK__API_KEY: account 'carol' is not in the config "
        "(accounts: none: the config has no [[accounts]])"
    ]


# ---- rules -----------------------------------------------------------------------------------------------


def test_two_accounts_may_not_share_a_venue_account(tmp_path: Path) -> None:
    same_bp = BOB.replace(BP_KEY_B, BP_KEY_A)
    lines = _problems(tmp_path, ALICE + same_bp)
    assert lines == ["accounts alice and bob have the same backpack.api_key (each account needs its own venue account)"]
    same_hb = BOB.replace(HB_KEY_B, HB_KEY_A).replace("account_id = 22", "account_id = 11")
    lines = _problems(tmp_path, ALICE + same_hb)
    assert lines == [
        "accounts alice and bob have the same hibachi.api_key (each account needs its own venue account)",
        "accounts alice and bob have the same hibachi.account_id (each account needs its own venue account)",
    ]
    assert all(HB_KEY_A not in line and BP_KEY_A not in line for line in lines)


def test_credentials_at_top_level_go_under_the_accounts(tmp_path: Path) -> None:
    top = f'[backpack]\napi_key = "{BP_KEY_A}"\nrest_url = "https://bp.example"\n[hibachi]\nkey_type = "hmac"\n'
    lines = _problems(tmp_path, top + BOB)
    assert lines == [
        "backpack.api_key is set at top level, but with [[accounts]] each account has its own: put it under "
        "[accounts.backpack] of each account, or in APP__ACCOUNTS__<NAME>__BACKPACK__API_KEY",
        "hibachi.key_type is set at top level, but with [[accounts]] each account has its own: put it under "
        "[accounts.hibachi] of each account, or in APP__ACCOUNTS__<NAME>__HIBACHI__KEY_TYPE",
    ]
    assert _load(tmp_path, '[backpack]\nrest_url = "https://bp.example"\n' + BOB).backpack.rest_url


def test_account_markets_and_sizes_follow_the_top_level_rules(tmp_path: Path) -> None:
    carol = '[[accounts]]\nname = "carol"\nmarkets = ["BTC", "SOL", "BTC"]\nnotional_usd = 600\n'
    dave = '[[accounts]]\nname = "dave"\nmarkets = []\nnotional_usd = 0\nmax_concurrent_pairs = 0\n'
    assert _problems(tmp_path, carol + dave) == [
        "accounts.carol.markets: 'SOL' is not one of trading.markets (BTC, ETH)",
        "accounts.carol.markets: 'BTC' appears more than once",
        "limits.max_notional_usd = 500 must be >= accounts.carol.notional_usd = 600 (no pair could ever open)",
        "accounts.dave.markets = [] must name at least one market (or be left out: all)",
        "accounts.dave.notional_usd = 0 must be > 0",
        "accounts.dave.max_concurrent_pairs = 0 must be >= 1",
    ]


def test_account_names_are_lowercase_and_unique(tmp_path: Path) -> None:
    names = '[[accounts]]\nname = "Alice"\n[[accounts]]\nname = "a__b"\n[[accounts]]\nname = "x"\n' * 1
    lines = _problems(tmp_path, 'account = "no way"\n' + names + '[[accounts]]\nname = "x"\n')
    assert lines == [
        "account = 'no way' must be 1-32 characters of a-z, 0-9 and _ (no __)",
        "accounts: name = 'Alice' must be 1-32 characters of a-z, 0-9 and _ (no __)",
        "accounts: name = 'a__b' must be 1-32 characters of a-z, 0-9 and _ (no __)",
        "accounts: name 'x' appears more than once",
    ]


def test_a_live_account_needs_its_credentials(tmp_path: Path) -> None:
    bare = '[[accounts]]\nname = "carol"\n[accounts.hibachi]\nkey_type = "hmac"\n'
    paper = '[[accounts]]\nname = "dave"\npaper = true\n'
    lines = _problems(tmp_path, 'mode = "live"\n' + ALICE + bare + paper)
    assert lines == [
        "accounts.carol: hibachi.key_type = hmac requires hibachi.hmac_secret",
        "accounts.carol: mode = live requires backpack.api_key, backpack.api_secret, hibachi.api_key, "
        "hibachi.account_id (missing)",
    ]
    live = '[[accounts]]\nname = "erin"\npaper = false\n'
    assert _problems(tmp_path, live) == [
        "accounts.erin: mode = live requires backpack.api_key, backpack.api_secret, hibachi.api_key, "
        "hibachi.account_id, hibachi.key_type (missing)"
    ]


def test_account_keys_follow_the_key_rules(tmp_path: Path) -> None:
    short = ALICE.replace(BP_SECRET_A, "short").replace('key_type = "hmac"', 'key_type = "ecdsa"')
    lines = _problems(tmp_path, short)
    assert lines == [
        "accounts.alice: hibachi.key_type = ecdsa requires hibachi.private_key",
        "accounts.alice: backpack.api_secret must be at least 43 characters (no real one is shorter)",
    ]


def test_an_account_value_of_the_wrong_type_stays_hidden(tmp_path: Path) -> None:
    lines = _problems(tmp_path, '[[accounts]]\nname = "alice"\n[accounts.backpack]\napi_key = 1234567\n')
    assert lines == [f"accounts.0.backpack.api_key = {HIDDEN}: Input should be a valid string"]
    lines = _problems(tmp_path, 'accounts = "s3cr3t"\n')
    assert lines == [f"accounts = {HIDDEN}: Input should be a valid tuple"]
    assert _problems(tmp_path, '[trading]\nmarkets = "BTC"\n') == [
        "trading.markets = 'BTC': Input should be a valid tuple"  # no secret in a market: shown as before
    ]


def test_worker_settings_are_checked(tmp_path: Path) -> None:
    text = "[workers]\nheartbeat_interval_s = 5\nheartbeat_timeout_s = 5\nlease_s = 0\nmax_accounts = -1\n"
    assert _problems(tmp_path, text + ALICE + BOB) == [
        "workers.heartbeat_timeout_s = 5 must be > workers.heartbeat_interval_s = 5",
        "workers.lease_s = 0 must be > 0",
        "workers.heartbeat_timeout_s = 5 must be < workers.lease_s / 2 = 0 (a worker cut off from its supervisor"
        " stops before its lease expires)",
        "workers.max_accounts = -1 must be >= 0",
    ]
    # More accounts than one host may run is a fleet's normal case: the other hosts lease the rest.
    assert _load(tmp_path, "[workers]\nmax_accounts = 1\n" + ALICE + BOB).account_names() == ["alice", "bob"]


# ---- logs ------------------------------------------------------------------------------------------------


def test_every_accounts_secrets_are_scrubbed_from_the_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP__ACCOUNTS__BOB__HIBACHI__PRIVATE_KEY", "0x" + "ab" * 32)
    s = _load(tmp_path, ALICE + BOB)
    found = set(secret_values(s))
    assert {BP_KEY_A, BP_SECRET_A, HB_KEY_A, HB_HMAC_A, BP_KEY_B, BP_SECRET_B, HB_KEY_B, HB_HMAC_B} <= found
    assert "0x" + "ab" * 32 in found
    stream = io.StringIO()
    handler = configure_logging(s, stream)
    try:
        logging.getLogger("test").warning("keys %s %s", BP_SECRET_A, HB_HMAC_B)
    finally:
        logging.getLogger().removeHandler(handler)
    assert BP_SECRET_A not in stream.getvalue() and HB_HMAC_B not in stream.getvalue()
    assert stream.getvalue().count(REDACTED) == 2


@pytest.mark.parametrize("form", ["text", "json"])
def test_a_workers_lines_say_its_account(tmp_path: Path, form: str) -> None:
    alice = _load(tmp_path, f'[log]\nformat = "{form}"\n' + ALICE + BOB).for_account("alice")
    lines = []
    for worker in (True, False):
        stream = io.StringIO()
        handler = configure_logging(alice, stream, worker=worker)
        try:
            logging.getLogger("test").warning("hello")
        finally:
            logging.getLogger().removeHandler(handler)
        lines.append(stream.getvalue())
    labelled, plain = lines
    if form == "json":
        assert json.loads(labelled)["account"] == "alice" and "account" not in json.loads(plain)
    else:
        assert "[alice] test: hello" in labelled and "[alice]" not in plain


def test_venue_values_stay_venues(tmp_path: Path) -> None:
    s = _load(tmp_path, ALICE)
    assert s.for_account("alice").trading.venues == (Venue.BACKPACK, Venue.HIBACHI)
