"""The chaos suite, bounded for CI; CHAOS_SECONDS runs it longer, CHAOS_SEED replays a run."""

from __future__ import annotations

import os

import pytest

from tests.system.chaos import run_chaos

SECONDS = float(os.environ.get("CHAOS_SECONDS", "75"))
SEED = int(os.environ.get("CHAOS_SEED", "20261125"))


def test_chaos_keeps_every_invariant(capsys: pytest.CaptureFixture[str]) -> None:
    summary = run_chaos(SEED, SECONDS)
    with capsys.disabled():
        print("\n" + summary.render())
    assert summary.lifecycles >= SECONDS  # about 2+ pair lifecycles per real second, so hundreds per CI run
    assert sum(summary.faults.values()) >= SECONDS
    assert set(summary.faults) >= {
        "reject",
        "reject_close",
        "http_5xx",
        "blackhole",
        "partial_fill",
        "drop_ws",
        "jump",
        "maintenance",
    }
