"""The chaos suite, bounded for CI; CHAOS_SECONDS runs it longer (a soak), CHAOS_SEED replays a run."""

from __future__ import annotations

import os

import pytest

from tests.system.chaos import KINDS, make_schedule, run_chaos

SECONDS = float(os.environ.get("CHAOS_SECONDS", "75"))
SEED = int(os.environ.get("CHAOS_SEED", "20261125"))
REPLAY_SECONDS = 10.0


def test_chaos_keeps_every_invariant(capsys: pytest.CaptureFixture[str]) -> None:
    summary = run_chaos(SEED, SECONDS)
    with capsys.disabled():
        print("\n" + summary.render())
    assert not summary.cut_short
    assert summary.lifecycles >= SECONDS  # about 2 pair lifecycles per real second, so over a hundred per CI run
    # Latency is taken by every request while it lasts; the others alter one request, reply or feed each.
    assert sum(n for kind, n in summary.taken.items() if kind != "latency") >= SECONDS / 5
    assert set(summary.taken) >= {
        "reject",
        "reject_close",
        "http_5xx",
        "blackhole",
        "partial_fill",
        "delay",
        "drop_ws",
        "freeze",
        "jump",
        "maintenance",
        "drop_private_ws",
        "silence_private",
        "reorder_private",
    }
    # The account streams carry the orders' outcomes through the faults: most orders are told by them.
    for venue in ("backpack", "hibachi"):
        told, rest = summary.stream_waits[f"{venue} told"], summary.stream_waits[f"{venue} rest"]
        assert told > rest, f"{venue}: {told} orders told by the account stream, {rest} left to REST"
    assert summary.forced_steps == 0


def test_a_seed_replays_its_run() -> None:
    first = run_chaos(SEED, REPLAY_SECONDS)
    second = run_chaos(SEED, REPLAY_SECONDS)
    assert first.lifecycles > 5 and sum(first.taken.values()) > 2  # a run that did something
    assert first.outcome() == second.outcome()


def test_the_schedule_is_a_function_of_the_seed_alone() -> None:
    schedule = make_schedule(SEED, 3000)
    assert schedule == make_schedule(SEED, 3000)
    assert schedule != make_schedule(SEED + 1, 3000)
    assert {f.kind for f in schedule} >= set(KINDS) - {"clear"}
    assert [f.at for f in schedule] == sorted(f.at for f in schedule)
