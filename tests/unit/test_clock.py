from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from core.clock import FakeClock, SystemClock


def test_system_clock_is_utc_aware() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert SystemClock().monotonic() <= SystemClock().monotonic()


def test_fake_clock_moves_only_when_advanced() -> None:
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    t0, m0 = clock.now(), clock.monotonic()
    assert clock.now() == t0
    clock.advance(90)
    assert clock.now() - t0 == timedelta(seconds=90)
    assert clock.monotonic() - m0 == 90
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        FakeClock(datetime(2026, 1, 1))


def test_sleeper_wakes_only_after_its_deadline() -> None:
    clock = FakeClock()
    woke = threading.Event()

    def sleeper() -> None:
        clock.sleep(60)
        woke.set()

    thread = threading.Thread(target=sleeper)
    thread.start()
    assert clock.wait_for_sleepers(1)
    clock.advance(59)
    assert not woke.wait(0.05)
    assert clock.sleepers() == 1
    clock.advance(1)
    assert woke.wait(5)
    thread.join(5)
    assert clock.sleepers() == 0


def test_zero_sleep_returns_at_once() -> None:
    FakeClock().sleep(0)
    assert not FakeClock().wait_for_sleepers(1, timeout=0.01)


def test_a_wall_step_leaves_monotonic_time_and_sleepers_alone() -> None:
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    woke = threading.Event()

    def sleeper() -> None:
        clock.sleep(10)
        woke.set()

    thread = threading.Thread(target=sleeper, daemon=True)
    thread.start()
    assert clock.wait_for_sleepers(1)
    m0 = clock.monotonic()
    clock.step_wall(3600)
    assert clock.now() == datetime(2026, 3, 1, 1, tzinfo=UTC)
    assert clock.monotonic() == m0
    clock.step_wall(-7200)  # the wall clock may go back; monotonic time never does
    assert clock.now() == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert not woke.wait(0.05)
    clock.advance(10)
    assert woke.wait(5)
    thread.join(5)
    assert clock.now() == datetime(2026, 2, 28, 23, 0, 10, tzinfo=UTC)


def test_asleep_names_the_threads_whose_deadline_is_ahead() -> None:
    clock = FakeClock()
    thread = threading.Thread(target=clock.sleep, args=(10,), daemon=True)
    thread.start()
    assert clock.wait_for_sleepers(1)
    assert clock.asleep() == {thread.ident}
    assert not clock.sleepers_due()
    clock.advance(10)  # due: no longer waiting for fake time, whether or not it has woken yet
    assert clock.asleep() == frozenset()
    thread.join(5)
    assert not thread.is_alive()
    assert clock.sleepers() == 0
