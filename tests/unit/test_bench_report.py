"""The bench's two outputs of one set of figures: the table for people, JSON for scripts (`--json`)."""

from __future__ import annotations

import json

from bench.report import Figure, render, render_json
from bench.run import _parser


def test_json_carries_every_figure_unrounded_with_the_runs_conditions() -> None:
    figures = [
        Figure.spread("6 monitor tick", "1,000 open pairs", [459.1234, 472.9, 401.0], "ms", "0.44 ms per pair"),
        Figure.single("8 footprint", "peak RSS", 121.0, "MiB"),
    ]
    header = ["perp-farmer benchmarks", "machine: 2 cores"]
    data = json.loads(render_json(figures, header))
    assert data["conditions"] == header
    assert data["figures"][0] == {
        "section": "6 monitor tick",
        "name": "1,000 open pairs",
        "p50": 459.1234,  # the table prints 459
        "p99": 472.9,
        "unit": "ms",
        "samples": 3,
        "note": "0.44 ms per pair",
    }
    assert data["figures"][1]["p99"] is None and data["figures"][1]["p50"] == 121.0
    assert " 459 " in render(figures, header)  # the table, rounded, from the same figures


def test_json_is_asked_for_on_the_command_line() -> None:
    assert _parser().parse_args(["--json", "--only", "monitor"]).json
    assert not _parser().parse_args([]).json
