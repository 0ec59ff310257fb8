"""`supervisor.py simulate` through the real path: child processes running the real engine on the simulators at
fake time, half an hour with short pairs. Maker styles: until the maker executor lands they open nothing
(their rows are printed and must stay unhedged-free); the taker style opens and closes pairs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STYLES = ("taker", "maker_taker", "maker_maker")
SHORT = json.dumps(
    {"trading": {"min_duration_hours": "0.05", "max_duration_hours": "0.1", "cooldown_min_s": 10, "cooldown_max_s": 30}}
)
KEYS = {
    "pairs", "maker_volume", "taker_volume", "fees", "funding", "spread", "cost", "cost_per_1m", "points_per_usd_cost",
    "hedge_filled_p50_ms", "hedge_filled_p99_ms", "hedge_wire_p50_ms", "hedge_wire_p99_ms", "unhedged_usd_s",
    "peak_unhedged_usd", "naked_ever", "naked_at_end", "cap_hits", "final_marks", "curve",
}  # fmt: skip


def simulate(*flags: str) -> str:
    """Run the command; its stdout."""
    command = [sys.executable, "supervisor.py", "simulate", "--hours", "0.5", "--seed", "3", "--settings-json", SHORT]
    done = subprocess.run([*command, *flags], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    png = tmp_path_factory.mktemp("simulate") / "cost.png"
    return json.loads(simulate("--execution", "all", "--json", "--plot", str(png))), png


def test_json_has_every_style_and_figure(everything: tuple[dict[str, Any], Path]) -> None:
    results, _ = everything
    assert list(results) == list(STYLES)
    for figures in results.values():
        assert figures.keys() >= KEYS
        assert isinstance(figures["fees"], str)  # Decimals as strings


def test_taker_opens_and_closes_pairs(everything: tuple[dict[str, Any], Path]) -> None:
    taker = everything[0]["taker"]
    assert taker["pairs"] >= 2
    assert taker["closed"] >= 1
    assert float(taker["taker_volume"]) > 0
    assert float(taker["fees"]) > 0
    assert taker["curve"][-1][0] == taker["volume"]


def test_nothing_went_naked_or_unhedged(everything: tuple[dict[str, Any], Path]) -> None:
    for style, figures in everything[0].items():
        shown = {k: figures[k] for k in ("naked_ever", "naked_at_end", "cap_hits", "warnings", "peak_unhedged_usd")}
        assert figures["naked_ever"] == 0, (style, shown)
        assert figures["naked_at_end"] == 0, (style, shown)
        assert figures["cap_hits"] == 0, (style, shown)
        assert figures["warnings"] == [], (style, shown)


def test_every_style_sees_the_same_prices(everything: tuple[dict[str, Any], Path]) -> None:
    marks = [figures["final_marks"] for figures in everything[0].values()]
    assert marks[0].keys() == {"BTC", "ETH", "SOL"}
    assert all(m == marks[0] for m in marks)
    # The walk moved (the price path is not merely the start prices, which every style would share anyway).
    assert marks[0]["BTC"] != "65000"


def test_plot_is_a_png(everything: tuple[dict[str, Any], Path]) -> None:
    png = everything[1]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_seed_gives_the_same_figures(everything: tuple[dict[str, Any], Path]) -> None:
    again = json.loads(simulate("--execution", "taker", "--json"))["taker"]
    first = dict(everything[0]["taker"])
    for run in (first, again):
        for key in ("wall_s", "steps", "idle_steps"):  # the driver's pace (which instants were at rest), not figures
            run.pop(key)
    differs = {k: (first[k], again.get(k)) for k in first if first[k] != again.get(k)}
    assert again == first, differs


def test_table_prints_one_row_per_style() -> None:
    out = simulate("--execution", "all").splitlines()
    head = out[0].split()
    assert head[:2] == ["style", "pairs"]
    assert "NAKED" in head
    rows = [line.split()[0] for line in out[2:5]]
    assert rows == list(STYLES)
    assert not any(line.startswith("WARNING") for line in out)
