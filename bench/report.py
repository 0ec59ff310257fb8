"""Figures and the printed table: every number with its unit and its sample count."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    if not values:
        raise ValueError("percentile of an empty sample")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


class BenchError(Exception):
    """The engine did not do what a benchmark needs (a bug, not a slow figure)."""


@dataclass(frozen=True)
class Figure:
    """One row: a p50/p99 pair (p99 None for a single value), its unit and how many samples made it."""

    section: str
    name: str
    p50: float
    p99: float | None
    unit: str
    samples: int
    note: str = ""

    @classmethod
    def spread(cls, section: str, name: str, values: Sequence[float], unit: str, note: str = "") -> Figure:
        """p50 and p99 of `values`."""
        return cls(section, name, percentile(values, 50), percentile(values, 99), unit, len(values), note)

    @classmethod
    def single(cls, section: str, name: str, value: float, unit: str, samples: int = 1, note: str = "") -> Figure:
        """One measured value."""
        return cls(section, name, value, None, unit, samples, note)


def _num(value: float | None) -> str:
    if value is None:
        return ""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if magnitude >= 1 else f"{value:.3f}"


def render(figures: Sequence[Figure], header: Sequence[str]) -> str:
    """The table, one block per section, preceded by the run's conditions."""
    rows = [("", "figure", "p50 / value", "p99", "unit", "n", "note")]
    section = None
    for f in figures:
        label = f.section if f.section != section else ""
        section = f.section
        rows.append((label, f.name, _num(f.p50), _num(f.p99), f.unit, str(f.samples), f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = list(header)
    lines.append("")
    for i, r in enumerate(rows):
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]), r[3].rjust(widths[3]),
                 r[4].ljust(widths[4]), r[5].rjust(widths[5]), r[6]]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths[:6]) + "  ----")
    return "\n".join(lines)


def render_json(figures: Sequence[Figure], header: Sequence[str]) -> str:
    """The same figures as one JSON object for scripts: the run's conditions, then every row with its numbers
    unrounded (p99 null for a single value)."""
    return json.dumps({"conditions": list(header), "figures": [asdict(f) for f in figures]}, indent=1)


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
