"""Hibachi nonces after a wall-clock step: back inside the venue's window after a resync, never repeated."""

from __future__ import annotations

from datetime import UTC, datetime

from core.clock import FakeClock
from exchanges.hibachi import nonce
from exchanges.hibachi.nonce import NonceSource

T0 = datetime(2026, 5, 1, tzinfo=UTC)
T0_US = int(T0.timestamp()) * 1_000_000
WINDOW_US = 15_000_000


def test_after_a_step_back_and_a_resync_nonces_return_to_the_window() -> None:
    clock = FakeClock(T0)
    source = NonceSource(clock)
    issued = [source.next() for _ in range(3)]  # in step with the venue
    clock.step_wall(60)  # the host clock jumps ahead: these are refused as outside the window
    ahead = [source.next() for _ in range(3)]
    assert min(ahead) >= T0_US + 60_000_000
    clock.step_wall(-60)  # NTP puts it back
    # Without a resync the floor keeps every nonce a minute ahead of the venue (until it catches up).
    stuck = source.next()
    assert stuck == max(ahead) + 1
    issued += [*ahead, stuck]
    source.set_offset_us(0)  # the resync finds the clocks agree again...
    assert source.rewind(WINDOW_US)  # ...and the floor comes back
    venue_us = T0_US
    fresh = source.next()
    assert abs(fresh - venue_us) <= WINDOW_US
    assert fresh > max(issued[:3])  # above every nonce the venue may have accepted
    issued.append(fresh)
    # A minute on, the new nonces pass through the values issued while the clock was wrong: none repeats.
    for _ in range(120):
        clock.advance(0.5)
        venue_us += 500_000
        value = source.next()
        assert abs(value - venue_us) <= WINDOW_US
        assert value > issued[-1]  # strictly increasing since the rewind
        issued.append(value)
    assert len(set(issued)) == len(issued)


def test_after_a_step_forward_the_resync_offset_brings_nonces_back() -> None:
    clock = FakeClock(T0)
    source = NonceSource(clock)
    before = source.next()
    clock.step_wall(60)
    refused = source.next()
    assert refused - T0_US >= 60_000_000
    source.set_offset_us(-60_000_000)  # measured: we are a minute ahead of the venue
    assert source.next() == refused + 1  # the offset alone does not help: the floor is a minute ahead
    assert source.rewind(WINDOW_US)
    fresh = source.next()
    assert before < fresh <= T0_US + 1
    assert not source.rewind(WINDOW_US)  # nothing to do once the floor is inside the window


def test_nonces_issued_while_the_clock_was_wrong_are_skipped_not_reused() -> None:
    clock = FakeClock(T0)
    source = NonceSource(clock)
    clock.step_wall(20)  # 20 s ahead: beyond a 15 s window
    wrong = [source.next() for _ in range(3)]  # T0+20 s, +1 µs, +2 µs on a frozen clock
    assert wrong == [T0_US + 20_000_000 + i for i in range(3)]
    source.set_offset_us(-20_000_000)
    assert source.rewind(WINDOW_US)
    clock.advance(20 - 1e-6)  # the venue's clock reaches the first of them, one microsecond short
    values = [source.next() for _ in range(5)]
    assert values == [T0_US + 20_000_000 - 1, *(T0_US + 20_000_000 + i for i in range(3, 7))]


def test_a_floor_inside_the_window_is_left_alone() -> None:
    clock = FakeClock(T0)
    source = NonceSource(clock)
    first = source.next()
    source.set_offset_us(10_000_000)
    ahead = source.next()
    assert ahead == first + 10_000_000
    source.set_offset_us(0)
    assert not source.rewind(WINDOW_US)  # 10 s ahead is inside a 15 s window: keep increasing
    assert source.next() == ahead + 1


def test_history_is_bounded_and_a_forgotten_nonce_is_never_issued_again() -> None:
    clock = FakeClock(T0)
    source = NonceSource(clock)
    clock.step_wall(60)
    wrong = [source.next() for _ in range(nonce.HISTORY + 10)]
    source.set_offset_us(-60_000_000)
    assert source.rewind(WINDOW_US)
    fresh = source.next()
    # The ten oldest were forgotten: the floor stays above them (so they cannot repeat), not inside the window.
    assert fresh > wrong[9]
    assert fresh not in set(wrong)
