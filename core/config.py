"""Configuration: one pydantic-settings model, loaded from defaults < TOML < environment < command line.

Errors come out as one line each that names the key, the value and the rule, e.g.
`trading.min_leverage = 4.0 must be <= trading.max_leverage = 3.0`. A secret's value is never shown.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from contextvars import ContextVar
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, cast, get_args, get_origin
from urllib.parse import urlparse, urlunparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from core.accounts import (
    ACCOUNT_ENV_PREFIX,
    DEFAULT_ACCOUNT,
    account_data,
    account_sections,
    check_accounts,
    fold_account_env,
)
from core.domain import Venue

ENV_PREFIX = "APP__"
DEFAULT_CONFIG_FILE = Path("config.toml")
# A sanity cap, not a venue limit: each venue's own maximum is checked against its markets at start.
MAX_LEVERAGE_CAP = Decimal(25)
# Shortest accepted value per secret. Every accepted secret is scrubbed from the logs whatever its length,
# so a 1-3 character "secret" would mangle every log line; real ones are far longer than these floors.
SECRET_MIN_LENGTH: dict[str, int] = {
    "backpack.api_key": 43,  # base64 of a 32-byte ED25519 public key: 44 characters, 43 unpadded (spec §2)
    "backpack.api_secret": 43,  # base64 of the 32-byte seed: 44 (88 for a 64-byte seed+public key)
    "hibachi.api_key": 16,  # format undocumented; the paper simulator issues 32 characters
    "hibachi.hmac_secret": 32,  # 44 characters in practice (spec §2)
    "control.token": 32,  # secrets.token_urlsafe(32) gives 43
    "alerts.telegram_bot_token": 32,  # "<bot id>:<35-character secret>"
}
# hibachi.private_key is checked by its format (64 hex digits); the webhook URLs as http(s) URLs, scrubbed whole.
GENERATE_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
HIDDEN = "'**********'"


class ConfigError(Exception):
    """The configuration cannot be used; `lines` holds one human-readable line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class Mode(StrEnum):
    """paper: the built-in venue simulators on loopback. live: the real venues, with real money."""

    PAPER = "paper"
    LIVE = "live"


class DirectionPolicy(StrEnum):
    """Which venue holds the long leg of a new pair."""

    FIXED = "fixed"  # long the first of trading.venues, short the second
    RANDOM = "random"
    FUNDING = "funding"  # each leg on the venue where its side receives funding


class HibachiKeyType(StrEnum):
    """Hibachi signs with HMAC (exchange-managed accounts) or ECDSA (trustless accounts); never guessed."""

    HMAC = "hmac"
    ECDSA = "ecdsa"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The venues whose settings once had a key each (`backpack_symbol`, `hibachi_per_usd`); any other `*_symbol`
# key stays unknown, so that a typo is still an error.
_OLD_KEY_VENUES = (Venue.BACKPACK, Venue.HIBACHI)


def _per_venue_keys(data: Any, suffix: str, into: str) -> Any:
    """Fold the old per-venue keys (`backpack<suffix> = x`) into the `into` mapping (`into = {backpack = x}`);
    a venue named in both keeps the mapping's value."""
    if not isinstance(data, dict):
        return data
    old = {v.value: data[f"{v}{suffix}"] for v in _OLD_KEY_VENUES if f"{v}{suffix}" in data}
    if not old:
        return data
    data = {k: v for k, v in data.items() if k not in {f"{name}{suffix}" for name in old}}
    merged = dict(old)
    given = data.get(into)
    if isinstance(given, dict):
        merged.update(given)
    elif given is not None:
        return {**data, into: given}  # not a mapping: its own type error names it
    data[into] = merged
    return data


class MarketConfig(_Section):
    """One market traded on every venue of trading.venues, under each venue's own symbol."""

    name: str = Field(description="our name for the market, e.g. BTC")
    symbols: dict[Venue, str] = Field(
        description='each venue\'s symbol, e.g. {backpack = "BTC_USDC_PERP", hibachi = "BTC/USDT-P"}'
    )

    @model_validator(mode="before")
    @classmethod
    def _old_symbol_keys(cls, data: Any) -> Any:
        """`backpack_symbol = ...` (the old form) is read as `symbols = {backpack = ...}`."""
        return _per_venue_keys(data, "_symbol", "symbols")

    def symbol(self, venue: Venue) -> str:
        """This market's symbol on `venue` (every venue of trading.venues has one: checked at load)."""
        return self.symbols[venue]

    def __hash__(self) -> int:  # frozen settings stay hashable with a mapping inside
        return hash((self.name, frozenset(self.symbols.items())))


def _default_markets() -> tuple[MarketConfig, ...]:
    return (
        MarketConfig(name="BTC", symbols={Venue.BACKPACK: "BTC_USDC_PERP", Venue.HIBACHI: "BTC/USDT-P"}),
        MarketConfig(name="ETH", symbols={Venue.BACKPACK: "ETH_USDC_PERP", Venue.HIBACHI: "ETH/USDT-P"}),
    )


class ExecutionStyle(StrEnum):
    """How a pair's legs are traded (README "Execution styles")."""

    TAKER = "taker"  # both legs market orders, at once
    MAKER_TAKER = "maker_taker"  # one leg post-only at the touch, each fill hedged at once by a taker order
    MAKER_MAKER = "maker_maker"  # both legs post-only; an imbalance past its bounds is hedged taker


class ExecutionConfig(_Section):
    """How opens and closes trade (`[trading.execution]`; `trading.execution = "maker_taker"` sets both)."""

    open: ExecutionStyle = ExecutionStyle.TAKER
    close: ExecutionStyle = ExecutionStyle.TAKER
    # The venue whose leg rests as a maker in maker_taker: a venue of trading.venues, or "auto" (the venue where
    # taker fee minus maker fee, plus the points a maker USD earns there over a taker USD, saves most).
    maker_venue: str = "auto"
    # The post-only order is moved when the touch has left its price by more than this many ticks.
    reprice_ticks: int = 2
    # After this long the rest of the quantity goes taker on both venues (the open or close always ends).
    maker_timeout_s: Decimal = Decimal(120)
    # The most USD one leg may hold beyond its hedge: maker orders are sized so that a full fill stays within.
    max_unhedged_usd: Decimal = Decimal(50)
    # maker_maker: one leg ahead of the other by more than this (USD), or for longer than `imbalance_age_s`,
    # gets the difference hedged taker on the lagging venue.
    imbalance_usd: Decimal = Decimal(50)
    imbalance_age_s: Decimal = Decimal(10)
    # This many post-only refusals in a row ("would immediately match") and the rest goes taker at once.
    max_post_only_rejects: int = 20
    # How often the touch is read for repricing while a maker order rests (fills wake the executor at once).
    poll_s: Decimal = Decimal(1)

    @model_validator(mode="before")
    @classmethod
    def _one_style(cls, data: Any) -> Any:
        """A bare style (`execution = "maker_taker"`) is that style for both opens and closes."""
        if isinstance(data, str):
            return {"open": data, "close": data}
        return data

    @property
    def makes(self) -> bool:
        """True when any phase rests maker orders."""
        return ExecutionStyle.TAKER not in (self.open, self.close) or self.open is not self.close


class TradingConfig(_Section):
    """What pairs to open, how big, how leveraged, for how long."""

    min_leverage: Decimal = Decimal("2.0")
    max_leverage: Decimal = Decimal("3.0")
    min_duration_hours: Decimal = Decimal(4)
    max_duration_hours: Decimal = Decimal(8)
    min_collateral_ratio: Decimal = Decimal("1.5")
    max_pnl_divergence: Decimal = Decimal("0.05")
    notional_usd: Decimal = Decimal(100)
    max_concurrent_pairs: int = 1
    cooldown_min_s: Decimal = Decimal(60)
    cooldown_max_s: Decimal = Decimal(300)
    collateral_buffer: Decimal = Decimal("1.25")
    direction_policy: DirectionPolicy = DirectionPolicy.FIXED
    # The two venues every pair spans (each must be registered in exchanges/registry.py); the fixed direction
    # policy longs the first.
    venues: tuple[Venue, ...] = (Venue.BACKPACK, Venue.HIBACHI)
    markets: tuple[MarketConfig, ...] = Field(default_factory=_default_markets)
    execution: ExecutionConfig = ExecutionConfig()


class MonitorConfig(_Section):
    """How often open pairs are checked, and when a price feed counts as stale."""

    interval_s: Decimal = Decimal(60)
    feed_stale_after_s: Decimal = Decimal(15)
    # A tick records marks and a snapshot for at most this many pairs, those recorded longest ago: above it each
    # pair's history is written every few ticks (its latest reading is always in `status`), so 1,000 pairs do
    # not cost 3,000 rows a tick.
    snapshot_pairs_per_tick: int = 100


class PointsConfig(_Section):
    """Points each venue awards per USD of traded volume, for the per-pair estimate (a venue not named: 0).
    `per_usd` is a venue's rate for every fill; `maker_per_usd`/`taker_per_usd` replace it for that side."""

    per_usd: dict[Venue, Decimal] = Field(
        default_factory=lambda: {Venue.BACKPACK: Decimal(0), Venue.HIBACHI: Decimal(0)}
    )
    maker_per_usd: dict[Venue, Decimal] = Field(default_factory=dict)
    taker_per_usd: dict[Venue, Decimal] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _old_per_venue_keys(cls, data: Any) -> Any:
        """`backpack_per_usd = ...` (the old form) is read as `per_usd = {backpack = ...}`."""
        return _per_venue_keys(data, "_per_usd", "per_usd")

    def maker_rates(self) -> dict[Venue, Decimal]:
        """Points per USD of maker volume, per venue: `maker_per_usd`, else `per_usd`."""
        return self.per_usd | self.maker_per_usd

    def taker_rates(self) -> dict[Venue, Decimal]:
        """Points per USD of taker volume (and of volume whose side is unknown), per venue."""
        return self.per_usd | self.taker_per_usd

    def __hash__(self) -> int:  # frozen settings stay hashable with a mapping inside
        items = (self.per_usd, self.maker_per_usd, self.taker_per_usd)
        return hash(tuple(frozenset(m.items()) for m in items))


class TimingsConfig(_Section):
    """Timings of the actors: tick, restart backoff, leg retry backoff, venue and shutdown timeouts (`[timings]`;
    `[engine]`, its old name, is still read)."""

    tick_s: Decimal = Decimal(1)
    max_restarts: int = 5
    restart_window_s: Decimal = Decimal(600)
    restart_backoff_min_s: Decimal = Decimal("0.5")
    restart_backoff_max_s: Decimal = Decimal(30)
    leg_retry_min_s: Decimal = Decimal(2)
    leg_retry_max_s: Decimal = Decimal(120)
    shutdown_timeout_s: Decimal = Decimal(8)
    venue_timeout_s: Decimal = Decimal(10)


class UnknownPositions(StrEnum):
    """What to do with a venue position no pair accounts for."""

    ALERT = "alert"  # critical event; nothing new opens while it exists
    CLOSE = "close"  # adopt it into a NAKED pair, which the closer flattens


class AlertsConfig(_Section):
    """Where warning and critical events are sent (each sink optional), and how often."""

    min_level: Literal["warning", "critical"] = "warning"
    dedup_window_s: Decimal = Decimal(600)
    max_per_minute: int = 10
    webhook_url: SecretStr | None = None  # a webhook URL usually carries its token
    telegram_bot_token: SecretStr | None = None
    telegram_chat_id: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    discord_webhook_url: SecretStr | None = None


class MetricsConfig(_Section):
    """The optional Prometheus endpoint."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9464


class CanaryConfig(_Section):
    """`run --canary`: one minimum-size pair, held this long, then closed and its costs reported."""

    hold_s: Decimal = Decimal(60)


class ReconcileConfig(_Section):
    """Start-up and continuous reconciliation of the database with the venues."""

    unknown_positions: UnknownPositions = UnknownPositions.ALERT


class PaperConfig(_Section):
    """The built-in venue simulators of paper mode, and where their prices come from."""

    seed: int = 0
    collateral_usd: Decimal = Decimal(10000)
    # The simulated walk's standard deviation per 0.25 s step (a fraction): 0.0002 is ~12%/day, far above a
    # real market; `supervisor.py simulate` uses ~3%/day (0.00005).
    volatility: Decimal = Decimal("0.0002")
    # simulated: one seeded random walk for both venues. live: each paper venue follows its real venue's
    # public book, mark and funding (read only: no keys, nothing is ever sent to the venues).
    prices: Literal["simulated", "live"] = "simulated"
    live_backpack_rest_url: str = "https://api.backpack.exchange"
    live_backpack_ws_url: str = "wss://ws.backpack.exchange"
    live_hibachi_data_url: str = "https://data-api.hibachi.xyz"
    live_hibachi_ws_url: str = "wss://data-api.hibachi.xyz/ws/market"
    # A paper order is refused when its market's live touch is older than this (never filled at an old price).
    live_max_age_s: Decimal = Decimal(10)
    # The simulators run elsewhere (the fleet's paper host) and the venue sections already point at them: no
    # simulator is started, the venues are connected to as live ones.
    external: bool = False
    # A fleet's paper host runs in this directory (default: the data dir). A host already serving there is used
    # as it is, so two supervisors on one machine can trade the same paper venues (as two hosts share real ones).
    host_dir: Path | None = None
    # How often each simulator publishes its prices on the websocket feeds. A fleet of many paper accounts on a
    # small machine spends most of its CPU on these frames: publish less often there (the feeds stay fresh well
    # within monitor.feed_stale_after_s).
    publish_interval_s: Decimal = Decimal("0.05")


def _check_paper(p: PaperConfig, problems: list[str]) -> None:
    _rule_gt(problems, "paper.publish_interval_s", p.publish_interval_s, 0)
    _rule_gt(problems, "paper.collateral_usd", p.collateral_usd, 0)
    _rule_gt(problems, "paper.volatility", p.volatility, 0)
    if p.volatility >= Decimal("0.01"):
        problems.append(f"paper.volatility = {_fmt(p.volatility)} must be < 0.01 (a fraction per 0.25 s step)")
    _rule_gt(problems, "paper.live_max_age_s", p.live_max_age_s, 0)
    # Beyond a minute a "live" touch is no longer live: paper fills would follow a market long gone.
    if p.live_max_age_s > 60:
        problems.append(f"paper.live_max_age_s = {_fmt(p.live_max_age_s)} must be <= 60 (older is no live price)")
    _check_url(problems, "paper.live_backpack_rest_url", p.live_backpack_rest_url, ("http", "https"))
    _check_url(problems, "paper.live_backpack_ws_url", p.live_backpack_ws_url, ("ws", "wss"))
    _check_url(problems, "paper.live_hibachi_data_url", p.live_hibachi_data_url, ("http", "https"))
    _check_url(problems, "paper.live_hibachi_ws_url", p.live_hibachi_ws_url, ("ws", "wss"))


class LimitsConfig(_Section):
    """Risk limits, each safe for a first live run: a trip alerts, blocks opening until `resume --limit NAME`,
    and some close pairs (see core/limits.py)."""

    max_notional_usd: Decimal = Decimal(500)  # per venue, over every open leg: no open beyond it
    max_daily_cost_usd: Decimal = Decimal(50)  # fees + funding + realized PnL over a rolling 24 h
    max_drawdown_usd: Decimal = Decimal(100)  # equity on both venues below its high-water mark: close all
    min_collateral_ratio_close: Decimal = Decimal("1.2")  # below it the pair on the weakest venue closes
    max_naked_seconds: Decimal = Decimal(300)  # a NAKED leg older than this is closed at market
    max_opens_per_hour: int = 12  # a runaway guard


class DatabaseConfig(_Section):
    """Where every pair, order, fill and event is kept."""

    url: str | None = None  # None: sqlite:///<data_dir>/perp-farmer.db


class BackpackConfig(_Section):
    """Backpack: the ED25519 key pair and the endpoints."""

    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    rest_url: str = "https://api.backpack.exchange"
    ws_url: str = "wss://ws.backpack.exchange"
    window_ms: int = 5000
    # Spec §4: no numeric limit is published (only 429); ours is to stay at about 10 requests per second.
    requests_per_s: Decimal = Decimal(10)
    # The private order stream (spec §5). Unset: ws_url, the socket Backpack serves it on; "": none (REST only).
    account_ws_url: str | None = None
    # How long a placed order waits for its fills on that stream before reading them over REST.
    stream_wait_s: Decimal = Decimal("0.5")

    def account_stream_url(self) -> str | None:
        """The private stream's URL, or None when it is turned off."""
        return self.ws_url if self.account_ws_url is None else self.account_ws_url or None


class HibachiConfig(_Section):
    """Hibachi: API key, account id, and exactly one signing key whose type is stated."""

    api_key: SecretStr | None = None
    account_id: int | None = None
    key_type: HibachiKeyType | None = None
    hmac_secret: SecretStr | None = None
    private_key: SecretStr | None = None
    api_url: str = "https://api.hibachi.xyz"
    data_api_url: str = "https://data-api.hibachi.xyz"
    ws_market_url: str = "wss://data-api.hibachi.xyz/ws/market"
    # Spec §4 says nonces must lie within ±15 s of server time; configurable in case the venue changes it.
    nonce_window_s: Decimal = Decimal(15)
    # Spec §4: no numeric limit is published; CCXT paces one call per 100 ms, so do we by default.
    requests_per_s: Decimal = Decimal(10)
    # The account stream (spec §5; the client adds ?accountId=). Unset: on api_url's host, wss, /ws/account
    # (wss://api.hibachi.xyz/ws/account for the live venue); "": none (REST only).
    account_ws_url: str | None = None
    # How long an accepted order waits for its outcome on that stream before reading it back over REST.
    stream_wait_s: Decimal = Decimal("0.5")

    def account_stream_url(self) -> str | None:
        """The account stream's URL, or None when it is turned off."""
        if self.account_ws_url is not None:
            return self.account_ws_url or None
        parsed = urlparse(self.api_url)
        scheme = "ws" if parsed.scheme == "http" else "wss"
        return urlunparse((scheme, parsed.netloc, "/ws/account", "", "", ""))


class AccountBackpackConfig(_Section):
    """An account's Backpack key pair (`[accounts.backpack]`); the endpoints come from the top-level [backpack]."""

    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None


class AccountHibachiConfig(_Section):
    """An account's Hibachi key, account id and signing key (`[accounts.hibachi]`); the rest from [hibachi]."""

    api_key: SecretStr | None = None
    account_id: int | None = None
    key_type: HibachiKeyType | None = None
    hmac_secret: SecretStr | None = None
    private_key: SecretStr | None = None


# Two accounts sharing one of these would be one venue account traded by two workers.
ACCOUNT_UNIQUE_KEYS = ("backpack.api_key", "hibachi.api_key", "hibachi.account_id")


class AccountConfig(_Section):
    """One account of a fleet (`[[accounts]]`): its name, its venue credentials, and what it trades, each unset
    value taken from the top level."""

    name: str
    # None: the top-level mode decides; true: paper whatever the mode; false: live whatever the mode.
    paper: bool | None = None
    backpack: AccountBackpackConfig = AccountBackpackConfig()
    hibachi: AccountHibachiConfig = AccountHibachiConfig()
    markets: tuple[str, ...] | None = None  # names among trading.markets; None: all of them
    notional_usd: Decimal | None = None
    max_concurrent_pairs: int | None = None


class WorkersConfig(_Section):
    """The fleet supervisor's worker processes (one per account): heartbeats, restarts, leases, stopping."""

    heartbeat_interval_s: Decimal = Decimal(1)
    heartbeat_timeout_s: Decimal = Decimal(10)
    start_timeout_s: Decimal = Decimal(60)  # a new worker's first answer: imports, database, venues' first reads
    max_restarts: int = 5
    restart_window_s: Decimal = Decimal(600)
    restart_backoff_min_s: Decimal = Decimal(1)
    restart_backoff_max_s: Decimal = Decimal(60)
    lease_s: Decimal = Decimal(30)
    max_accounts: int = 0  # 0: no limit
    stop_timeout_s: Decimal = Decimal(20)
    # Workers on the batch scheduling class (core/sched.py): a worker woken by a price or a reply never preempts
    # another one between the two writes of an open's legs.
    batch_scheduling: bool = True


class ControlConfig(_Section):
    """The nng control socket the CLI talks to."""

    address: str | None = None  # None: ipc://<data_dir>/control.ipc
    allow_remote: bool = False
    token: SecretStr | None = None


class LogConfig(_Section):
    """Log verbosity and shape."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    format: Literal["text", "json"] = "text"


# The TOML document of the current load; a ContextVar so that concurrent loads (tests) do not mix.
_toml_data: ContextVar[dict[str, Any]] = ContextVar("_toml_data", default={})  # noqa: B039
# Where load_settings collects the problems of the account variables (None: raised at once).
_env_problems: ContextVar[list[str] | None] = ContextVar("_env_problems", default=None)
# Set while Settings.for_account validates its own data: neither the environment nor a file is read then.
_sources_off: ContextVar[bool] = ContextVar("_sources_off", default=False)


def _report(problems: list[str]) -> None:
    """Collect the account variables' problems for load_settings, or raise them when no load collects."""
    if problems:
        collected = _env_problems.get()
        if collected is None:
            raise ConfigError(problems)
        collected.extend(problems)


class _EnvSource(EnvSettingsSource):
    """The environment, less the account variables by name (APP__ACCOUNTS__<NAME>__...): `accounts` is a list,
    which the default source cannot index by name; they are folded into the accounts by name instead."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        every = self.env_vars
        self.account_vars = {k: v for k, v in every.items() if k.lower().startswith(ACCOUNT_ENV_PREFIX)}
        self.env_vars = {k: v for k, v in every.items() if k not in self.account_vars}
        # APP__ACCOUNTS (a JSON list) replaces the file's accounts: the variables by name then apply to it.
        self.gives_accounts = f"{ENV_PREFIX.lower()}accounts" in {k.lower() for k in self.env_vars}

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        if self.gives_accounts:
            data, problems = fold_account_env(data, self.account_vars)
            _report(problems)
        return data


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], env: _EnvSource | None = None) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data = _toml_data.get()
        if self._env is not None and not self._env.gives_accounts:
            data, problems = fold_account_env(data, self._env.account_vars)
            _report(problems)
        return data


class Settings(BaseSettings):
    """The whole configuration of one perp-farmer process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True, case_sensitive=False
    )

    mode: Mode = Mode.PAPER
    data_dir: Path = Path("data")
    database: DatabaseConfig = DatabaseConfig()
    trading: TradingConfig = TradingConfig()
    monitor: MonitorConfig = MonitorConfig()
    points: PointsConfig = PointsConfig()
    canary: CanaryConfig = CanaryConfig()
    timings: TimingsConfig = TimingsConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    alerts: AlertsConfig = AlertsConfig()
    metrics: MetricsConfig = MetricsConfig()
    paper: PaperConfig = PaperConfig()
    limits: LimitsConfig = LimitsConfig()
    backpack: BackpackConfig = BackpackConfig()
    hibachi: HibachiConfig = HibachiConfig()
    control: ControlConfig = ControlConfig()
    log: LogConfig = LogConfig()
    workers: WorkersConfig = WorkersConfig()
    # The accounts of a fleet; none: one engine trades the top-level credentials as account "default".
    accounts: tuple[AccountConfig, ...] = ()
    # The account this engine process trades (its pairs in the database); the fleet supervisor sets it per worker.
    account: str = DEFAULT_ACCOUNT

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest first: command-line flags (init kwargs), environment, TOML file; defaults last."""
        if _sources_off.get():
            return (init_settings,)
        env = _EnvSource(settings_cls)
        return (init_settings, env, _TomlSource(settings_cls, env))

    @model_validator(mode="before")
    @classmethod
    def _renamed_sections(cls, data: Any) -> Any:
        """Accept `[engine]`, the old name of `[timings]`, so that an existing config keeps working."""
        if isinstance(data, dict) and "engine" in data:
            data = dict(data)
            old = data.pop("engine")
            if "timings" not in data:
                data["timings"] = old
        return data

    @model_validator(mode="after")
    def _check_rules(self) -> Settings:
        problems = check_rules(self)
        if problems:
            raise PydanticCustomError("config_rule", "{rules}", {"rules": "\n".join(problems)})
        return self

    @property
    def database_url(self) -> str:
        """The configured database URL, or SQLite in the data directory."""
        return self.database.url or f"sqlite:///{self.data_dir / 'perp-farmer.db'}"

    @property
    def control_address(self) -> str:
        """The configured control address, or an ipc socket in the data directory."""
        return self.control.address or f"ipc://{self.data_dir / 'control.ipc'}"

    @property
    def fleet(self) -> bool:
        """True when `[[accounts]]` is configured: a fleet supervisor runs one worker per account."""
        return bool(self.accounts)

    def account_names(self) -> list[str]:
        """The configured accounts' names in order, or ["default"] when there are none."""
        return [a.name for a in self.accounts] or [DEFAULT_ACCOUNT]

    def account_is_paper(self, name: str) -> bool:
        """Whether account `name` trades on paper: its own `paper`, else the top-level mode."""
        account = self._account(name)
        return self.mode is Mode.PAPER if account is None or account.paper is None else account.paper

    def for_account(self, name: str, venues: dict[str, dict[str, Any]] | None = None) -> Settings:
        """A validated single-account Settings for the worker of account `name`: its credentials in the venue
        sections, its markets and sizes, its mode; `venues` (venue -> fields) overrides the venue sections
        further and sets paper.external. Raises ConfigError (unknown name, or a rule the result breaks)."""
        account = self._account(name)
        data = account_data(self, account, venues)
        data["account"] = name
        data["mode"] = Mode.PAPER if self.account_is_paper(name) else Mode.LIVE
        token = _sources_off.set(True)
        try:
            return Settings(**data)
        except ValidationError as exc:
            raise ConfigError([f"account {name}: {line}" for line in _format_validation_error(exc)]) from None
        finally:
            _sources_off.reset(token)

    def _account(self, name: str) -> AccountConfig | None:
        """Account `name`'s section (None: "default" of a config without accounts); ConfigError if unknown."""
        if name not in self.account_names():
            raise ConfigError([f"account {name!r} is not configured (accounts: {', '.join(self.account_names())})"])
        return next((a for a in self.accounts if a.name == name), None)


# ---------------------------------------------------------------------------------------------------------
# Cross-field rules. Each returns messages that name the key, its value and the rule.


def _fmt(value: object) -> str:
    if isinstance(value, SecretStr):
        return HIDDEN
    if isinstance(value, StrEnum):
        return str(value)
    return str(value)


def _rule_le(problems: list[str], a_key: str, a: Decimal, b_key: str, b: Decimal) -> None:
    if a > b:
        problems.append(f"{a_key} = {_fmt(a)} must be <= {b_key} = {_fmt(b)}")


def _rule_gt(problems: list[str], key: str, value: Decimal | int, bound: Decimal | int) -> None:
    if value <= bound:
        problems.append(f"{key} = {_fmt(value)} must be > {bound}")


def _rule_ge(problems: list[str], key: str, value: Decimal | int, bound: Decimal | int) -> None:
    if value < bound:
        problems.append(f"{key} = {_fmt(value)} must be >= {bound}")


def _check_trading(t: TradingConfig, problems: list[str]) -> None:
    _rule_ge(problems, "trading.min_leverage", t.min_leverage, 1)
    _rule_le(problems, "trading.min_leverage", t.min_leverage, "trading.max_leverage", t.max_leverage)
    if t.max_leverage > MAX_LEVERAGE_CAP:
        problems.append(
            f"trading.max_leverage = {t.max_leverage} must be <= {MAX_LEVERAGE_CAP} (sanity cap for a hedge)"
        )
    _rule_gt(problems, "trading.min_duration_hours", t.min_duration_hours, 0)
    _rule_le(
        problems,
        "trading.min_duration_hours",
        t.min_duration_hours,
        "trading.max_duration_hours",
        t.max_duration_hours,
    )
    _rule_gt(problems, "trading.min_collateral_ratio", t.min_collateral_ratio, 1)
    _rule_gt(problems, "trading.max_pnl_divergence", t.max_pnl_divergence, 0)
    if t.max_pnl_divergence >= 1:
        problems.append(f"trading.max_pnl_divergence = {t.max_pnl_divergence} must be < 1 (a fraction)")
    _rule_gt(problems, "trading.notional_usd", t.notional_usd, 0)
    _rule_ge(problems, "trading.max_concurrent_pairs", t.max_concurrent_pairs, 1)
    _rule_ge(problems, "trading.cooldown_min_s", t.cooldown_min_s, 0)
    _rule_le(problems, "trading.cooldown_min_s", t.cooldown_min_s, "trading.cooldown_max_s", t.cooldown_max_s)
    _rule_ge(problems, "trading.collateral_buffer", t.collateral_buffer, 1)
    if len(t.venues) != 2 or t.venues[0] is t.venues[1]:
        shown = ", ".join(t.venues)
        problems.append(f"trading.venues = [{shown}] must name two different venues (a pair's two legs)")
    if not t.markets:
        problems.append("trading.markets = [] must name at least one market")
    for m in t.markets:
        missing = [v for v in t.venues if v not in m.symbols]
        if missing:
            problems.append(
                f"trading.markets: market {m.name!r} has no symbol on {', '.join(missing)} "
                f"(add it to its symbols: every market trades on each of trading.venues)"
            )
    names = [m.name for m in t.markets]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"trading.markets: market name {name!r} appears more than once")
    _check_execution(t, problems)


def _check_execution(t: TradingConfig, problems: list[str]) -> None:
    e = t.execution
    if e.maker_venue != "auto" and e.maker_venue not in t.venues:
        shown = ", ".join(t.venues)
        problems.append(
            f'trading.execution.maker_venue = {e.maker_venue!r} must be "auto" or one of trading.venues ({shown})'
        )
    _rule_ge(problems, "trading.execution.reprice_ticks", e.reprice_ticks, 0)
    _rule_gt(problems, "trading.execution.maker_timeout_s", e.maker_timeout_s, 0)
    _rule_gt(problems, "trading.execution.max_unhedged_usd", e.max_unhedged_usd, 0)
    _rule_gt(problems, "trading.execution.imbalance_usd", e.imbalance_usd, 0)
    _rule_ge(problems, "trading.execution.imbalance_age_s", e.imbalance_age_s, 0)
    _rule_ge(problems, "trading.execution.max_post_only_rejects", e.max_post_only_rejects, 1)
    _rule_gt(problems, "trading.execution.poll_s", e.poll_s, 0)
    if e.imbalance_usd > e.max_unhedged_usd:
        problems.append(
            f"trading.execution.imbalance_usd = {_fmt(e.imbalance_usd)} must be <= trading.execution.max_unhedged_usd"
            f" = {_fmt(e.max_unhedged_usd)} (an imbalance is unhedged exposure)"
        )


def _check_url(problems: list[str], key: str, url: str | SecretStr, schemes: tuple[str, ...]) -> None:
    try:
        parsed = urlparse(url.get_secret_value() if isinstance(url, SecretStr) else url)
        ok = parsed.scheme in schemes and bool(parsed.hostname)
    except ValueError:  # e.g. an unbalanced "[" in the host
        ok = False
    if not ok:
        problems.append(f"{key} = {_fmt(url)} must be a {' or '.join(schemes)} URL with a host")


def _check_secret_lengths(sections: dict[str, BaseModel], problems: list[str]) -> None:
    for key, minimum in SECRET_MIN_LENGTH.items():
        section, name = key.split(".")
        if section not in sections:
            continue
        value = getattr(sections[section], name)
        if value is not None and len(value.get_secret_value()) < minimum:
            how = f"; make one with: {GENERATE_COMMAND}" if key == "control.token" else ""
            problems.append(f"{key} must be at least {minimum} characters (no real one is shorter){how}")


def _check_venues(s: Settings, problems: list[str]) -> None:
    b, h = s.backpack, s.hibachi
    _check_url(problems, "backpack.rest_url", b.rest_url, ("http", "https"))
    _check_url(problems, "backpack.ws_url", b.ws_url, ("ws", "wss"))
    _check_url(problems, "hibachi.api_url", h.api_url, ("http", "https"))
    _check_url(problems, "hibachi.data_api_url", h.data_api_url, ("http", "https"))
    _check_url(problems, "hibachi.ws_market_url", h.ws_market_url, ("ws", "wss"))
    for key, url in (("backpack.account_ws_url", b.account_ws_url), ("hibachi.account_ws_url", h.account_ws_url)):
        if url:
            _check_url(problems, key, url, ("ws", "wss"))
    for key, wait in (("backpack.stream_wait_s", b.stream_wait_s), ("hibachi.stream_wait_s", h.stream_wait_s)):
        if not 0 <= wait <= 60:
            problems.append(f"{key} = {wait} must be between 0 and 60 seconds")
    if not 1 <= b.window_ms <= 60000:
        problems.append(f"backpack.window_ms = {b.window_ms} must be between 1 and 60000 (venue maximum)")
    # A fleet's top level holds no keys (its own rule says so): each account's are checked with the account.
    if not s.fleet:
        _check_keys(b, h, s.mode is Mode.LIVE, s.trading.venues, problems)


def _check_keys(
    b: BackpackConfig, h: HibachiConfig, live: bool, venues: tuple[Venue, ...], problems: list[str]
) -> None:
    """The venue credentials of one account: complete when it trades live, consistent whatever the mode."""
    if h.key_type is HibachiKeyType.HMAC and h.hmac_secret is None:
        problems.append("hibachi.key_type = hmac requires hibachi.hmac_secret")
    if h.key_type is HibachiKeyType.ECDSA and h.private_key is None:
        problems.append("hibachi.key_type = ecdsa requires hibachi.private_key")
    # Checked whatever the key type, so that every accepted private key is long enough to scrub from logs.
    if h.private_key is not None and not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", h.private_key.get_secret_value()):
        problems.append(f"hibachi.private_key = {HIDDEN} must be 64 hex digits (optionally 0x-prefixed)")
    if h.key_type is None and (h.hmac_secret is not None or h.private_key is not None):
        problems.append("hibachi.key_type must be set to hmac or ecdsa when a Hibachi signing key is given")
    if live:
        # Only the venues traded on need keys.
        required = {
            Venue.BACKPACK: (("backpack.api_key", b.api_key), ("backpack.api_secret", b.api_secret)),
            Venue.HIBACHI: (
                ("hibachi.api_key", h.api_key),
                ("hibachi.account_id", h.account_id),
                ("hibachi.key_type", h.key_type),
            ),
        }
        missing = [key for v in venues for key, value in required.get(v, ()) if value is None]
        if missing:
            problems.append(f"mode = live requires {', '.join(missing)} (missing)")


def _check_control(c: ControlConfig, problems: list[str]) -> None:
    if c.address is None:
        return
    if c.address.startswith("ipc://"):
        return
    if not c.address.startswith("tcp://"):
        problems.append(f"control.address = {c.address} must start with ipc:// or tcp://")
        return
    try:
        host = urlparse(c.address).hostname or ""
    except ValueError:
        host = ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not c.allow_remote:
        problems.append(f"control.address = {c.address} is not loopback: it needs control.allow_remote = true")
    # Loopback too: any local user can connect to a TCP port, unlike the 0600 ipc socket file.
    if c.token is None:
        problems.append(
            f"control.address = {c.address} needs control.token (a tcp:// control address, loopback included, "
            f"is reachable by every local user), at least {SECRET_MIN_LENGTH['control.token']} characters; "
            f"make one with: {GENERATE_COMMAND}"
        )


def _check_limits(s: Settings, problems: list[str]) -> None:
    lim = s.limits
    for key in ("max_notional_usd", "max_daily_cost_usd", "max_drawdown_usd", "max_naked_seconds"):
        _rule_gt(problems, f"limits.{key}", getattr(lim, key), 0)
    _rule_ge(problems, "limits.max_opens_per_hour", lim.max_opens_per_hour, 1)
    _rule_gt(problems, "limits.min_collateral_ratio_close", lim.min_collateral_ratio_close, 1)
    # The critical alert comes first, the close after it; a notional cap below one pair would never open.
    _rule_le(problems, "limits.min_collateral_ratio_close", lim.min_collateral_ratio_close,
             "trading.min_collateral_ratio", s.trading.min_collateral_ratio)  # fmt: skip
    if lim.max_notional_usd < s.trading.notional_usd:
        problems.append(
            f"limits.max_notional_usd = {lim.max_notional_usd} must be >= trading.notional_usd = "
            f"{s.trading.notional_usd} (no pair could ever open)"
        )


def _check_monitor(m: MonitorConfig, problems: list[str]) -> None:
    _rule_gt(problems, "monitor.snapshot_pairs_per_tick", m.snapshot_pairs_per_tick, 0)


def _check_workers(w: WorkersConfig, problems: list[str]) -> None:
    _rule_gt(problems, "workers.heartbeat_interval_s", w.heartbeat_interval_s, 0)
    # A timeout within one interval would call a worker silent between two beats.
    if w.heartbeat_timeout_s <= w.heartbeat_interval_s:
        problems.append(
            f"workers.heartbeat_timeout_s = {_fmt(w.heartbeat_timeout_s)} must be > workers.heartbeat_interval_s"
            f" = {_fmt(w.heartbeat_interval_s)}"
        )
    _rule_gt(problems, "workers.start_timeout_s", w.start_timeout_s, 0)
    _rule_ge(problems, "workers.max_restarts", w.max_restarts, 0)
    _rule_gt(problems, "workers.restart_window_s", w.restart_window_s, 0)
    _rule_gt(problems, "workers.restart_backoff_min_s", w.restart_backoff_min_s, 0)
    _rule_le(problems, "workers.restart_backoff_min_s", w.restart_backoff_min_s, "workers.restart_backoff_max_s",
             w.restart_backoff_max_s)  # fmt: skip
    _rule_gt(problems, "workers.lease_s", w.lease_s, 0)
    # A worker whose supervisor went silent must have stopped (heartbeat_timeout_s), and one that cannot renew
    # must have stopped (lease_s / 2), before its lease can expire and another host take the account.
    if w.heartbeat_timeout_s >= w.lease_s / 2:
        problems.append(
            f"workers.heartbeat_timeout_s = {_fmt(w.heartbeat_timeout_s)} must be < workers.lease_s / 2"
            f" = {_fmt(w.lease_s / 2)} (a worker cut off from its supervisor stops before its lease expires)"
        )
    _rule_ge(problems, "workers.max_accounts", w.max_accounts, 0)
    _rule_gt(problems, "workers.stop_timeout_s", w.stop_timeout_s, 0)


def _check_accounts(s: Settings, problems: list[str]) -> None:
    check_accounts(s, ACCOUNT_UNIQUE_KEYS, problems)
    for a in s.accounts:
        # The account's keys with the top level's endpoints: the same rules, and messages, as a single account's.
        sections = account_sections(s, a)
        found: list[str] = []
        b, h = cast(BackpackConfig, sections["backpack"]), cast(HibachiConfig, sections["hibachi"])
        _check_keys(b, h, not s.account_is_paper(a.name), s.trading.venues, found)
        _check_secret_lengths(sections, found)
        problems.extend(f"accounts.{a.name}: {line}" for line in found)


def check_rules(s: Settings) -> list[str]:
    """Every cross-field rule the types alone do not enforce; one message per broken rule."""
    problems: list[str] = []
    _check_trading(s.trading, problems)
    m = s.monitor
    _rule_gt(problems, "monitor.interval_s", m.interval_s, 0)
    _rule_gt(problems, "monitor.feed_stale_after_s", m.feed_stale_after_s, 0)
    for name in ("per_usd", "maker_per_usd", "taker_per_usd"):
        for venue, rate in getattr(s.points, name).items():
            _rule_ge(problems, f"points.{name}.{venue}", rate, 0)
    _rule_gt(problems, "canary.hold_s", s.canary.hold_s, 0)
    e = s.timings
    _rule_gt(problems, "timings.tick_s", e.tick_s, 0)
    _rule_ge(problems, "timings.max_restarts", e.max_restarts, 0)
    _rule_gt(problems, "timings.restart_window_s", e.restart_window_s, 0)
    _rule_gt(problems, "timings.restart_backoff_min_s", e.restart_backoff_min_s, 0)
    _rule_le(problems, "timings.restart_backoff_min_s", e.restart_backoff_min_s, "timings.restart_backoff_max_s",
             e.restart_backoff_max_s)  # fmt: skip
    _rule_gt(problems, "timings.leg_retry_min_s", e.leg_retry_min_s, 0)
    _rule_le(problems, "timings.leg_retry_min_s", e.leg_retry_min_s, "timings.leg_retry_max_s", e.leg_retry_max_s)
    _rule_gt(problems, "timings.shutdown_timeout_s", e.shutdown_timeout_s, 0)
    _rule_gt(problems, "timings.venue_timeout_s", e.venue_timeout_s, 0)
    _check_paper(s.paper, problems)
    _rule_gt(problems, "hibachi.nonce_window_s", s.hibachi.nonce_window_s, 0)
    # The venue enforces its own window (15 s in the spec); a larger value here would only make the lost-reply
    # wait and the pre-flight clock check trust a margin the venue does not give.
    if s.hibachi.nonce_window_s > 60:
        problems.append(
            f"hibachi.nonce_window_s = {_fmt(s.hibachi.nonce_window_s)} must be <= 60 (the venue's own window is 15 s)"
        )
    _rule_gt(problems, "backpack.requests_per_s", s.backpack.requests_per_s, 0)
    _rule_gt(problems, "hibachi.requests_per_s", s.hibachi.requests_per_s, 0)
    a = s.alerts
    _rule_ge(problems, "alerts.dedup_window_s", a.dedup_window_s, 0)
    _rule_ge(problems, "alerts.max_per_minute", a.max_per_minute, 1)
    if a.webhook_url is not None:
        _check_url(problems, "alerts.webhook_url", a.webhook_url, ("http", "https"))
    if a.discord_webhook_url is not None:
        _check_url(problems, "alerts.discord_webhook_url", a.discord_webhook_url, ("http", "https"))
    _check_url(problems, "alerts.telegram_api_url", a.telegram_api_url, ("http", "https"))
    if (a.telegram_bot_token is None) != (a.telegram_chat_id is None):
        problems.append("alerts.telegram_bot_token and alerts.telegram_chat_id must be set together")
    if not 0 <= s.metrics.port < 65536:
        problems.append(f"metrics.port = {s.metrics.port} must be between 0 (any free port) and 65535")
    if s.metrics.enabled and s.metrics.host not in ("127.0.0.1", "::1", "localhost") and not s.control.allow_remote:
        problems.append(f"metrics.host = {s.metrics.host} is not loopback: it needs control.allow_remote = true")
    _check_limits(s, problems)
    _check_venues(s, problems)
    _check_control(s.control, problems)
    _check_secret_lengths({name: getattr(s, name) for name in {k.split(".")[0] for k in SECRET_MIN_LENGTH}}, problems)
    _check_workers(s.workers, problems)
    _check_monitor(s.monitor, problems)
    _check_accounts(s, problems)
    return problems


# ---------------------------------------------------------------------------------------------------------
# Loading


def _has_secrets(model: type[BaseModel]) -> bool:
    """Whether `model` or a section within it has a secret field."""
    return any(
        "SecretStr" in str(f.annotation)
        or (isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel) and _has_secrets(f.annotation))
        for f in model.model_fields.values()
    )


def _may_hold_a_secret(loc: tuple[int | str, ...]) -> bool:
    """Whether the value at `loc` is, contains or may be a secret: anything but a known non-secret field."""
    model: type[BaseModel] = Settings
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return True  # unknown key, or an error on a whole section: its value is not ours to judge
        annotation = field.annotation
        if "SecretStr" in str(annotation):
            return True
        items = get_args(annotation)
        if get_origin(annotation) is tuple and items and isinstance(items[0], type) and issubclass(items[0], BaseModel):
            # A list of sections ([[accounts]]): the next part is the item's index.
            if not parts or not isinstance(parts[0], int):
                return _has_secrets(items[0])  # the whole list
            parts.pop(0)
            annotation = items[0]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return True  # a whole section, which may hold its secrets


def _format_validation_error(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        if err["type"] == "config_rule":
            lines.extend(err["ctx"]["rules"].split("\n"))
            continue
        key = ".".join(str(p) for p in err["loc"]) or "config"
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown setting")
        elif err["type"] == "missing":
            lines.append(f"{key}: required")
        else:
            shown = HIDDEN if _may_hold_a_secret(tuple(err["loc"])) else repr(value)
            # pydantic's message names the expected type, never the input; the input is only shown when known safe.
            lines.append(f"{key} = {shown}: {err['msg']}")
    return lines


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document at `path`, or ConfigError naming the file and what is wrong with it."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"config file {path} does not exist"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"config file {path} is not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"config file {path} cannot be read: {exc.strerror}"]) from None


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the Settings: defaults < TOML (`config_file`, or ./config.toml if present) < env < overrides.

    `overrides` are the command-line flags, as nested dicts (`{"log": {"level": "DEBUG"}}`).
    Raises ConfigError with one line per problem.
    """
    if config_file is not None:
        toml = read_toml(config_file)
    elif DEFAULT_CONFIG_FILE.is_file():
        toml = read_toml(DEFAULT_CONFIG_FILE)
    else:
        toml = {}
    token = _toml_data.set(toml)
    env_problems: list[str] = []
    env_token = _env_problems.set(env_problems)
    try:
        settings = Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(env_problems + _format_validation_error(exc)) from None
    finally:
        _env_problems.reset(env_token)
        _toml_data.reset(token)
    if env_problems:
        raise ConfigError(env_problems)
    return settings
