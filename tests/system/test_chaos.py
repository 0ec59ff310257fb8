"""The chaos suite, bounded for CI; CHAOS_SECONDS runs it longer (a soak), CHAOS_SEED replays a run."""

from __future__ import annotations

import os

import pytest

from core.domain import Venue
from tests.system.chaos import KINDS, MAKER_GAP_S, MAKER_KINDS, make_schedule, run_chaos

SECONDS = float(os.environ.get("CHAOS_SECONDS", "75"))
SEED = int(os.environ.get("CHAOS_SEED", "20261125"))
REPLAY_SECONDS = 10.0
# Each maker style's run (CHAOS_MAKER_SECONDS for a longer one): long enough for every kind to be drawn.
MAKER_SECONDS = float(os.environ.get("CHAOS_MAKER_SECONDS", "22"))


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


# The private-stream faults are left out of the replay: how long a silenced or dropped account stream stays
# trusted rests on its pings and resubscriptions, which run on real-time threads, so an order's outcome is told
# by the stream or read over REST a fake second apart from one run to the next (measured: 5 runs in 6 diverged
# with them on a loaded 2-core machine, none in 6 without). The other runs here inject them.
REPLAYED_KINDS = tuple(k for k in KINDS if k not in ("drop_private", "silence_private", "reorder_private"))


def test_a_seed_replays_its_run() -> None:
    first = run_chaos(SEED, REPLAY_SECONDS, kinds=REPLAYED_KINDS)
    second = run_chaos(SEED, REPLAY_SECONDS, kinds=REPLAYED_KINDS)
    assert first.lifecycles > 5 and sum(first.taken.values()) > 2  # a run that did something
    one, two = first.outcome(), second.outcome()
    assert one == two, {k: (one[k], two[k]) for k in one if one[k] != two[k]}


def test_the_schedule_is_a_function_of_the_seed_alone() -> None:
    schedule = make_schedule(SEED, 3000)
    assert schedule == make_schedule(SEED, 3000)
    assert schedule != make_schedule(SEED + 1, 3000)
    assert {f.kind for f in schedule} >= set(KINDS) - {"clear"}
    assert [f.at for f in schedule] == sorted(f.at for f in schedule)


@pytest.mark.parametrize("execution", ["maker_taker", "maker_maker"])
def test_chaos_keeps_every_invariant_trading_maker(execution: str, capsys: pytest.CaptureFixture[str]) -> None:
    summary = run_chaos(SEED, MAKER_SECONDS, execution=execution)
    with capsys.disabled():
        print("\n" + summary.render())
    assert not summary.cut_short
    # A forced step (the engine not idle within IDLE_CAP_S real) moves time with work pending; the invariants are
    # checked all the same. maker_taker's hedger thread is now and then not seen parked by the harness (left open:
    # see the closing notes of issues 16 and 18), so a few in a run are allowed; a phase that stalls forces
    # hundreds. Inside the whole suite (never alone, nor after the tests that precede it) 12 of 665 were seen,
    # with every invariant kept: 2.5% allowed; a failure names the threads found busy.
    assert summary.forced_steps <= summary.steps // 40, (summary.forced_steps, summary.forced_by)
    assert summary.lifecycles >= MAKER_SECONDS / 2  # phases take their time: about a lifecycle per real second
    # Every maker fault met a maker order: a storm expired post-only orders, resting orders filled in part, a fill
    # beat a cancel, and a maker order filled while its venue's stream was silent.
    # (A silence counts as taken only when a maker order filled inside it: which prices the phases rest at comes
    # from the live feed in real time, so on some runs no fill falls in a silence; it is always drawn.)
    assert set(summary.taken) >= {"post_only_storm", "resting_partial", "fill_racing_cancel"}, summary.taken
    assert "silence_mid_fill" in {f.kind for f in summary.schedule}
    # The maker states were gone through: maker fills hedged, and phases ended in each way there is.
    maker = summary.maker
    assert maker["maker fills"] >= 30 and maker["hedges"] >= 30
    for end in ("target traded", "maker timeout", "post-only refusals"):
        assert sum(n for k, n in maker.items() if k.endswith(end)) > 0, (end, maker)
    assert {"open phase target traded", "close phase target traded"} <= set(maker)
    checks = summary.checks
    assert checks["maker_unhedged_within_bound"] >= MAKER_SECONDS * 20  # every fake second of the run
    assert checks["orders_recorded_before_sent"] > 0 and checks["nothing_rests_untended"] > 0


# No replay test for maker runs: a phase rests at the touch it reads from the public price feed, whose frames
# arrive in real time against fake time (see chaos.py), so which prices, fills and pairs a seed gives varies.


def test_a_maker_schedule_draws_every_kind_and_sends_maker_faults_to_the_maker_venue() -> None:
    kinds = KINDS + MAKER_KINDS
    schedule = make_schedule(SEED, 700, kinds, (Venue.HIBACHI,), MAKER_GAP_S)
    assert schedule == make_schedule(SEED, 700, kinds, (Venue.HIBACHI,), MAKER_GAP_S)
    assert {f.kind for f in schedule} >= set(kinds) - {"clear"}
    assert {f.venue for f in schedule if f.kind in MAKER_KINDS} == {"hibachi"}
    assert make_schedule(SEED, 3000) == make_schedule(SEED, 3000, KINDS, (Venue.HIBACHI,))  # taker runs unchanged
