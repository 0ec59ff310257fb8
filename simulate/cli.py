"""`supervisor.py simulate`: each style in a child process of its own (`python -m simulate.driver`, at most two at
once: one core each), then one row per style, or one JSON object keyed by style, and optionally a plot."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.config import ExecutionStyle
from simulate.params import IDLE_STEP_S, REALISTIC_VOLATILITY, STEP_S

ROOT = Path(__file__).resolve().parents[1]
STYLES = tuple(s.value for s in ExecutionStyle)
PARALLEL = 2  # children at once: the machine this is sized for has two cores
CENTS = Decimal("0.01")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """The `simulate` subcommand and its flags."""
    p = sub.add_parser(
        "simulate", parents=[common], help="run the engine on the simulators at accelerated time, per execution style"
    )
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    p.add_argument("--execution", choices=[*STYLES, "all"], default="all", help="the style to run, or all of them")
    p.add_argument("--seed", type=int, default=1, help="seed of the prices, the tape and the engine's draws")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by style")
    p.add_argument("--plot", metavar="FILE.png", help="draw cumulative cost against cumulative volume per style")
    p.add_argument(
        "--volatility",
        type=Decimal,
        default=REALISTIC_VOLATILITY,
        help=f"price walk deviation per 0.25 s step (default {REALISTIC_VOLATILITY}, ~3%%/day)",
    )
    p.add_argument("--step", type=float, default=STEP_S, help=argparse.SUPPRESS)
    p.add_argument("--idle-step", type=float, default=IDLE_STEP_S, help=argparse.SUPPRESS)
    p.add_argument("--settings-json", default="{}", help=argparse.SUPPRESS)  # tests: settings overrides


def _child(style: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, "-m", "simulate.driver", "--style", style, "--hours", str(args.hours)]
    command += ["--seed", str(args.seed), "--volatility", str(args.volatility), "--step", str(args.step)]
    command += ["--idle-step", str(args.idle_step), "--settings-json", args.settings_json]
    if getattr(args, "config", None) is not None:
        command += ["--config", str(args.config)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"simulate: the {style} run failed (exit {done.returncode}):\n{tail}")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def run_styles(styles: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Each style's figures (as the child printed them), in `styles` order."""
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        results = list(pool.map(lambda style: _child(style, args), styles))
    return dict(zip(styles, results, strict=True))


def _money(value: str | None) -> str | None:
    return None if value is None else str(Decimal(value).quantize(CENTS))


def _pair(a: str | None, b: str | None) -> str | None:
    return None if a is None and b is None else f"{a or '-'}/{b or '-'}"


def as_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per style (amounts to the cent, delays in ms)."""
    from control.render import table  # noqa: PLC0415

    body = [
        (
            style,
            f["pairs"],
            _money(f["maker_volume"]),
            _money(f["taker_volume"]),
            _money(f["fees"]),
            _money(f["funding"]),
            _money(f["spread"]),
            _money(f["cost"]),
            f["cost_per_1m"],
            f["points_per_usd_cost"],
            _pair(f["hedge_filled_p50_ms"], f["hedge_filled_p99_ms"]),
            _pair(f["hedge_wire_p50_ms"], f["hedge_wire_p99_ms"]),
            _money(f["unhedged_usd_s"]),
            _money(f["peak_unhedged_usd"]),
            f["naked_ever"],
        )
        for style, f in results.items()
    ]
    heads = ["style", "pairs", "maker vol", "taker vol", "fees", "funding", "spread", "cost", "cost/1M"]
    heads += ["pts/USD cost", "hedge ms p50/p99", "wire ms p50/p99", "unhedged USD*s", "peak unhedged", "NAKED"]
    return table(body, heads)


def notes(results: dict[str, dict[str, Any]]) -> list[str]:
    """The lines under the table: how each run went, warnings, and whether the price path was the same."""
    lines = []
    for style, f in results.items():
        lines.append(
            f"{style}: {f['closed']} closed, {f['open_at_end']} open at the end; {f['steps']} steps "
            f"({f['idle_steps']} at rest), {f['cap_hits']} capped waits; engine's peak unhedged "
            f"{_money(f['engine_peak_unhedged_usd'])} USD; {f['wall_s']} s"
        )
    lines.extend(f"WARNING: {w}" for f in results.values() for w in f["warnings"])
    marks = {json.dumps(f["final_marks"], sort_keys=True) for f in results.values()}
    if len(marks) > 1:
        lines.append("WARNING: the styles ended on different prices: their price paths differ")
    return lines


def plot(results: dict[str, dict[str, Any]], path: str) -> None:
    """Cumulative cost against cumulative volume, a line per style, as a PNG (needs the `plot` extra)."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(9, 6))
    for style, f in results.items():
        points = [(0.0, 0.0)] + [(float(v), float(c)) for v, c in f["curve"]]  # plotting only: floats are fine
        axes.plot([v for v, _ in points], [c for _, c in points], marker="o", markersize=3, label=style)
    axes.set_xlabel("cumulative volume (USD)")
    axes.set_ylabel("cumulative cost: fees - funding + spread (USD)")
    axes.legend()
    axes.grid(True, alpha=0.3)
    figure.suptitle("perp-farmer simulate: cost against volume per execution style")
    figure.savefig(path)
    plt.close(figure)


def _say(text: str, *, error: bool = False) -> None:
    print(text, file=sys.stderr if error else sys.stdout)


def simulate(args: argparse.Namespace) -> int:
    """Run the styles asked for and print them; the exit status."""
    styles = list(STYLES) if args.execution == "all" else [args.execution]
    try:
        results = run_styles(styles, args)
    except RuntimeError as exc:
        _say(str(exc), error=True)
        return 1
    if args.json:
        _say(json.dumps(results, indent=2))
        for line in notes(results):
            if line.startswith("WARNING"):
                _say(line, error=True)
    else:
        _say(as_table(results))
        _say("\n" + "\n".join(notes(results)))
    if args.plot:
        try:
            plot(results, args.plot)
        except ImportError:
            _say("simulate: --plot needs matplotlib: pip install 'perp-farmer[plot]'", error=True)
            return 1
    return 0
