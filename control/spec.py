"""What a control command is made of: its arguments (each with its check and its command-line spelling), its
handler, how a person reads its reply; and what a handler may use of the running engine (`Host`).

Light on imports on purpose: the command line builds its parser from the commands before it loads anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from core.limits import parse_limit

if TYPE_CHECKING:
    from actors.gate import GateMessage, TradingGate
    from actors.health import HealthTracker
    from actors.limitbook import LimitBook
    from actors.supervision import Supervisor
    from core.clock import Clock
    from core.config import Settings
    from core.domain import EventLevel
    from exchanges.paper import PaperVenues
    from storage.queries import Queries

MAX_ID = 2**63 - 1  # SQLite's INTEGER range: bigger ids cannot exist and overflow the driver
STATE_MAX_CHARS = 32
REASON_MAX_CHARS = 200
ACCOUNT_MAX_CHARS = 32
DEFAULT_ACCOUNT = "default"  # the account of an engine run without [[accounts]]
_ACCOUNT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


class CommandError(Exception):
    """A request that cannot be served; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Host(Protocol):
    """What command handlers use of the running engine (the engine itself is the host)."""

    settings: Settings
    clock: Clock
    repo: Queries
    gate: TradingGate
    limits: LimitBook
    supervisor: Supervisor
    health_tracker: HealthTracker
    paper: PaperVenues | None
    started_at: datetime | None

    @property
    def fatal(self) -> str | None:
        """Why the process must stop (the database cannot be written), or None."""

    def actor_status(self, name: str) -> dict[str, Any]:
        """An actor's GetStatus data; {} when it is down, {"unavailable": True} when it does not answer."""

    def ask_actor(self, name: str, message: Any, timeout: float) -> Any:
        """Ask an actor; CommandError `unavailable` while it is restarting."""

    def tell_coordinator(self, message: GateMessage, *, wait: bool = False) -> bool:
        """Send the coordinator (the gate's one writer) a change of the gate; False when no coordinator took it."""

    def persist_pause(self, reason: str | None) -> None:
        """Keep the operator's pause (None: no pause) across restarts; raises when it cannot be kept."""

    def record_event(self, level: EventLevel, kind: str, message: str, **data: Any) -> None:
        """Record an engine event through the writer (never raises)."""

    def alarm(self, reason: str) -> None:
        """End the maker phases running now: urgent work waits for the actors they hold."""


Validator = Callable[[Any], Any]
Handler = Callable[[Host, dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument: its name in a request, its check (which also normalises it), and how the command line
    takes it (`flag` is "--name", or a positional's name for a required argument)."""

    name: str
    check: Validator
    flag: str
    help: str
    required: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # further argparse keywords (type, choices, metavar)

    @property
    def dest(self) -> str:
        """Where argparse keeps the value."""
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True, slots=True)
class Command:
    """A control command, whole: adding one means adding one of these to the registry (control/commands.py)."""

    name: str
    help: str  # the command line's one-line help
    handler: Handler  # (host, validated args) -> the reply's data
    render: Callable[[Any], str]  # the data for a person (`--json` prints the data instead)
    args: tuple[Arg, ...] = ()
    slow: bool = False  # waits on actors, maybe for minutes: only a few run at once
    reserved: bool = False  # served even when every other slot is busy (a health check must always answer)
    failed: Callable[[Any], bool] | None = None  # whether this reply makes the command line exit 1


# ---- argument checks ----------------------------------------------------------------------------------------


def pair_id(value: Any) -> int:
    """A pair id: a positive integer, or a string of ASCII digits, below 2^63."""
    # digits only (no sign, spaces, exponent or non-ASCII digits), checked before int() can be costly
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= len(str(MAX_ID)):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise CommandError("bad_request", f'"id" must be a pair id: a positive integer below 2^63, got {_kind(value)}')
    return value


def state_name(value: Any) -> str:
    """A short printable name (whether it is a pair state is the handler's answer)."""
    if not isinstance(value, str) or not 0 < len(value) <= STATE_MAX_CHARS or not value.isprintable():
        raise CommandError("bad_request", f'"state" must be a pair state name of at most {STATE_MAX_CHARS} characters')
    return value


def reason_text(value: Any) -> str:
    """Short printable text."""
    if not isinstance(value, str) or len(value) > REASON_MAX_CHARS or not value.isprintable():
        raise CommandError("bad_request", f'"reason" must be text of at most {REASON_MAX_CHARS} printable characters')
    return value


def limit_name(value: Any) -> str:
    """A limit's name, exactly as configured."""
    if not isinstance(value, str):
        raise CommandError("bad_request", '"limit" must be the name of a limit')
    try:
        return parse_limit(value).value
    except ValueError as exc:
        raise CommandError("unknown_limit", str(exc)) from None


def account_name(value: Any) -> str:
    """An account's name as configured: 1-32 of a-z, 0-9 and _ (whether it exists is the server's answer)."""
    if not isinstance(value, str) or not 0 < len(value) <= ACCOUNT_MAX_CHARS or not set(value) <= _ACCOUNT_CHARS:
        raise CommandError("bad_request", f'"account" must be an account name: 1-{ACCOUNT_MAX_CHARS} of a-z, 0-9, _')
    return value


def check_account(asked: str, known: list[str]) -> None:
    """CommandError `unknown_account` unless `asked` is one of the accounts served here."""
    if asked not in known:
        raise CommandError("unknown_account", f"no account {asked!r} here; the accounts are: {', '.join(known)}")


def _kind(value: Any) -> str:
    """What a bad value was, without echoing it (it may be huge)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "an integer out of range"
    return f"a JSON {type(value).__name__}" if not isinstance(value, str) else "a string that is not digits"


def validate_args(command: Command, args: Mapping[str, Any]) -> dict[str, Any]:
    """The command's args, checked and normalised (ids as int); CommandError naming the first bad field."""
    known = {arg.name: arg for arg in command.args}
    for name in args:
        if name not in known:
            allowed = ", ".join(known) or "none"
            unknown = f"unknown argument {str(name)[:40]!r} for {command.name}; allowed: {allowed}"
            raise CommandError("bad_request", unknown)
    checked: dict[str, Any] = {}
    for arg in command.args:
        if arg.name in args:
            checked[arg.name] = arg.check(args[arg.name])
        elif arg.required:
            raise CommandError("bad_request", f'{command.name} needs "{arg.name}"')
    return checked
