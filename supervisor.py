"""perp-farmer entry point: `python supervisor.py [COMMAND]`; COMMAND is `run` or a control command.

`run` (the default) starts the engine; the other subcommands are clients of the running engine's
control socket.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from control.commands import COMMANDS
from core.config import ConfigError, Settings, load_settings
from core.logs import Scrubber, configure_logging, secret_values
from simulate.cli import add_parser as simulate_parser

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

log = logging.getLogger("supervisor")


def _common_flags() -> argparse.ArgumentParser:
    # SUPPRESS keeps a flag given before the subcommand from being reset by the subparser's default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML file (default ./config.toml)")
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help="database and socket directory")
    common.add_argument("--mode", choices=["paper", "live"], default=argparse.SUPPRESS, help="paper or live")
    common.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        type=str.upper,
        default=argparse.SUPPRESS,
        help="log verbosity",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The command line: global flags, then an optional subcommand (default `run`)."""
    common = _common_flags()
    parser = argparse.ArgumentParser(
        prog="supervisor.py",
        description="Farm perp-DEX points with hedged long/short pairs (paper mode by default).",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", parents=[common], help="run the engine (the default)")
    run.add_argument("--close-on-exit", action="store_true", help="close every open pair on shutdown")
    run.add_argument(
        "--paused", action="store_true", help="start with opening paused (kept until `resume`, across restarts)"
    )
    run.add_argument("--skip-check", action="store_true", help="live mode: start without the pre-flight check")
    run.add_argument(
        "--canary", action="store_true", help="open one minimum-size pair, close it after canary.hold_s, report, exit"
    )
    check = sub.add_parser("check", parents=[common], help="read-only pre-flight check of the venues and database")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    report = sub.add_parser("report", parents=[common], help="volume, fees, funding, PnL and points per pair")
    report.add_argument("--since", type=_date, help="only pairs created since (YYYY-MM-DD or ISO time, UTC)")
    report.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output format")
    report.add_argument("--account", help="only this account's pairs (default: every account)")
    report.add_argument("--plot", metavar="FILE.png", help="also draw cumulative volume, PnL and fees")
    simulate_parser(sub, common)
    for spec in COMMANDS.values():
        cmd = sub.add_parser(spec.name, parents=[common], help=spec.help)
        cmd.add_argument("--json", action="store_true", help="print the reply's data object as JSON")
        for arg in spec.args:
            cmd.add_argument(arg.flag, help=arg.help, **arg.options)
    return parser


def _date(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line flags as the highest-precedence configuration source."""
    overrides: dict[str, Any] = {}
    if "data_dir" in args:
        overrides["data_dir"] = args.data_dir
    if "mode" in args:
        overrides["mode"] = args.mode
    if "log_level" in args:
        overrides["log"] = {"level": args.log_level}
    return overrides


def load_or_exit(args: argparse.Namespace) -> Settings:
    """Settings from every source; on a bad configuration print its lines and exit with status 2."""
    try:
        return load_settings(getattr(args, "config", None), overrides_from_args(args))
    except ConfigError as exc:
        for line in exc.lines:
            print(f"config error: {line}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def run(
    settings: Settings,
    close_on_exit: bool = False,
    paused: bool | str = False,
    canary: bool = False,
    config: Path | None = None,
) -> int:
    """Run the engine until SIGINT/SIGTERM (exit 0) or until it cannot go on (exit 1); serve the control
    socket meanwhile."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError  # noqa: PLC0415 - keep the CLI commands fast

    from exchanges.registry import check_registered  # noqa: PLC0415
    from storage.checks import DatabaseProblem, check_database  # noqa: PLC0415
    from storage.lock import DatabaseLock, InstanceLock, InstanceLockedError  # noqa: PLC0415

    try:
        check_registered(settings.trading.venues)  # config cannot know which venues exist: the registry does
    except ConfigError as exc:
        for line in exc.lines:
            print(f"config error: {line}", file=sys.stderr)
        return EXIT_CONFIG
    if not settings.data_dir.exists():
        settings.data_dir.mkdir(parents=True)
        settings.data_dir.chmod(0o700)  # the database and the control socket live here
    try:
        lock = InstanceLock(settings.data_dir).acquire()
    except InstanceLockedError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        db_lock = DatabaseLock(settings.database_url, fleet=settings.fleet).acquire()
    except (InstanceLockedError, SQLAlchemyError) as exc:
        lock.release()
        if isinstance(exc, InstanceLockedError):
            reason = str(exc)
        else:  # only a driver's error carries the driver's own (shorter) message
            reason = f"cannot reach the database: {exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc}"
        print(f"run: {reason}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILURE
    try:
        check_database(settings.database_url)  # a damaged or unwritable store stops here, in one clear line
        if settings.fleet:
            from fleet.run import run_fleet  # noqa: PLC0415

            code = run_fleet(settings, config)
        else:
            code = _canary(settings) if canary else _serve(settings, close_on_exit, paused)
    except DatabaseProblem as exc:
        print(f"run: {exc}", file=sys.stderr)
        code = EXIT_FAILURE
    finally:
        db_lock.release()
        lock.release()
    _exit_if_threads_linger(code)
    return code


def _serve(settings: Settings, close_on_exit: bool, paused: bool | str) -> int:
    """The engine and the control socket, from start to a clean stop; the exit status."""
    import pykka.debug  # noqa: PLC0415 - keep `--help`, config errors and the CLI commands fast
    import pynng  # noqa: PLC0415

    from actors.runtime import Runtime  # noqa: PLC0415
    from control.server import ControlServer  # noqa: PLC0415

    engine = Runtime(settings)
    token = settings.control.token.get_secret_value() if settings.control.token else None
    try:
        server = ControlServer(settings.control_address, engine.command, token)
    except pynng.AddressInUse:
        print(f"another supervisor is already running on {settings.control_address}", file=sys.stderr)
        engine.db.dispose()
        return EXIT_FAILURE
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info(
            "signal %s: stopping (open pairs %s)",
            signal.Signals(signum).name,
            "will be closed" if close_on_exit else "stay open",
        )
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGUSR1, pykka.debug.log_thread_tracebacks)
    log.info(
        "perp-farmer %s mode, data dir %s, database %s, markets %s",
        settings.mode,
        settings.data_dir,
        engine.db.url.render_as_string(hide_password=True),
        ", ".join(m.name for m in settings.trading.markets),
    )
    fatal: str | None = None
    try:
        reason = paused if isinstance(paused, str) else "started with --paused"  # a str: why the pre-check paused
        engine.start(paused_reason=reason if paused else None)
        server.start()
        fatal = engine.run(stop)
    finally:
        server.stop()
        clean = engine.shutdown(close_positions=close_on_exit)
    if fatal is not None:
        log.critical("stopped: %s", fatal)
        return EXIT_FAILURE
    if close_on_exit and not clean:
        # Asked to leave nothing open, and something did not close: an operator must look before walking away.
        log.critical("stopped, but closing on exit did not finish: check `pairs` and the venues")
        return EXIT_FAILURE
    log.info("stopped")
    return EXIT_OK


def _scrubbed_print(scrubber: Scrubber, text: str, file: TextIO | None = None) -> None:
    """`print` through the log scrubber: the check, the pre-check and the canary print venue error text, which
    can echo a request and with it a configured secret, and their output is read (and pasted) like the log."""
    print(scrubber.scrub(text), file=file or sys.stdout)


def check(settings: Settings, as_json: bool) -> int:
    """The read-only pre-flight check: one line per check (or one JSON object); exit 1 when one failed."""
    from live import preflight  # noqa: PLC0415 - keep the other commands fast

    scrubber = Scrubber(secret_values(settings))
    results = preflight.run_checks(settings)
    _scrubbed_print(scrubber, preflight.as_json(results, scrubber) if as_json else preflight.as_lines(results))
    return preflight.exit_status(results)


def _precheck(settings: Settings, canary: bool) -> tuple[int, str | None]:
    """Live mode runs the check before anything starts: (exit status, reason to start paused or None). A failure
    stops `run` before any order is sent, unless the database holds live pairs: then the engine starts with
    opening paused, because a supervisor that refused to run would leave those pairs unwatched."""
    from live import preflight  # noqa: PLC0415
    from live.probe import count_live_pairs  # noqa: PLC0415

    results = preflight.run_checks(settings)
    failed = [r for r in results if r.status.value == "fail"]
    if not failed:
        log.info("pre-flight check passed (%d checks)", len(results))
        return EXIT_OK, None
    live_pairs = 0 if canary else count_live_pairs(settings)
    scrubber = Scrubber(secret_values(settings))
    for r in failed:
        _scrubbed_print(scrubber, f"run: pre-flight check {r.name} failed: {r.message}", file=sys.stderr)
    if live_pairs == 0:
        print("run: not started (see `supervisor.py check`; `run --skip-check` starts anyway)", file=sys.stderr)
        return EXIT_FAILURE, None
    names = ", ".join(r.name for r in failed)
    log.critical("pre-flight check failed (%s) with %d live pair(s): starting with opening paused", names, live_pairs)
    return EXIT_OK, f"pre-flight check failed ({names}); fix it, then `resume`"


def _canary(settings: Settings) -> int:
    """`run --canary`: one minimum-size pair through the engine, closed after canary.hold_s, costs reported."""
    from live.canary import run_canary  # noqa: PLC0415

    report = run_canary(settings)
    _scrubbed_print(Scrubber(secret_values(settings)), report.render())
    return EXIT_OK if report.ok else EXIT_FAILURE


def _exit_if_threads_linger(code: int) -> None:
    """An actor still inside a venue call keeps a non-daemon thread alive, and with it a process that trades
    nothing and that a container would never restart: end the process once shutdown has done its part."""
    lingering = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if lingering:
        log.error("threads still running after shutdown (%s); exiting without them", ", ".join(lingering))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def report(settings: Settings, args: argparse.Namespace) -> int:
    """Print the report from the database, opened read-only (the supervisor may be running, or not)."""
    from reports import summary  # noqa: PLC0415
    from storage.checks import DatabaseProblem  # noqa: PLC0415
    from storage.db import SchemaVersionError  # noqa: PLC0415

    if settings.database.url is None and not (settings.data_dir / "perp-farmer.db").exists():
        print(f"report: no database in {settings.data_dir}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        rows = summary.load(settings.database_url, args.since, settings.trading.venues, account=args.account)
    except (DatabaseProblem, SchemaVersionError, ValueError) as exc:  # ValueError: not an account's name
        print(f"report: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    render = {"table": summary.as_table, "json": summary.as_json, "csv": summary.as_csv}[args.format]
    print(render(rows))
    if args.plot:
        try:
            summary.plot(rows, args.plot)
        except ImportError:
            print("report: --plot needs matplotlib: pip install 'perp-farmer[plot]'", file=sys.stderr)
            return EXIT_FAILURE
    return EXIT_OK


def control(settings: Settings, args: argparse.Namespace) -> int:
    """A CLI subcommand: one request to the running supervisor, rendered for a person (or --json)."""
    from control.client import ControlUnavailableError, call  # noqa: PLC0415

    command = args.command
    spec = COMMANDS[command]
    request: dict[str, Any] = {}
    for arg in spec.args:
        value = getattr(args, arg.dest, None)
        if value is not None and (arg.required or value):  # an empty optional flag is the same as none
            request[arg.name] = value
    token = settings.control.token.get_secret_value() if settings.control.token else None
    try:
        reply = call(settings.control_address, command, request, token=token)
    except ControlUnavailableError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if not reply.get("ok"):
        err = reply.get("error", {})
        print(f"{command}: {err.get('message', 'failed')} ({err.get('code', '?')})", file=sys.stderr)
        return EXIT_FAILURE
    data = reply["data"]
    print(json.dumps(data, indent=2) if args.json else spec.render(data))
    if spec.failed is not None and spec.failed(data):
        return EXIT_FAILURE
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen subcommand; returns the exit status."""
    args = build_parser().parse_args(argv)
    settings = load_or_exit(args)
    configure_logging(settings)
    command = args.command or "run"
    if command == "run":
        canary, paused = getattr(args, "canary", False), getattr(args, "paused", False)
        if settings.mode == "live" and not settings.fleet and not getattr(args, "skip_check", False):
            code, pause = _precheck(settings, canary)
            if code != EXIT_OK:
                return code
            paused = pause or paused
        close_on_exit = getattr(args, "close_on_exit", False)
        if settings.fleet and (canary or close_on_exit or paused):
            # Each worker is its own engine: these act on one engine's life, and a fleet has one per account.
            print("run: --canary, --close-on-exit and --paused are single-engine options; in a fleet use "
                  "`close-all` / `pause` (with --account NAME for one account)", file=sys.stderr)  # fmt: skip
            return EXIT_CONFIG
        config = getattr(args, "config", None)
        if config is None and Path("config.toml").exists():
            config = Path("config.toml")
        config = config.resolve() if config is not None else None  # the workers read the same file
        return run(settings, close_on_exit=close_on_exit, paused=paused, canary=canary, config=config)
    if command == "check":
        return check(settings, args.json)
    if command == "report":
        return report(settings, args)
    if command == "simulate":
        from simulate.cli import simulate  # noqa: PLC0415 - keep the other commands fast

        return simulate(args)
    return control(settings, args)


if __name__ == "__main__":
    sys.exit(main())
