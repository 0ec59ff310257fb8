"""The fleet supervisor's rules, on made-up times: no process, no socket."""

from __future__ import annotations

import signal
import threading
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from fleet.link import SupervisorWatch, watched
from fleet.policy import (
    EXIT_CONFIG,
    Knobs,
    describe_exit,
    heartbeat_due,
    heartbeat_overdue,
    restart_delay,
    silent_for,
)
from tests.helpers import wait_until

KNOBS = Knobs(max_restarts=3, restart_window_s=100.0, backoff_min_s=1.0, backoff_max_s=3.0, heartbeat_timeout_s=10.0)


def test_restarts_back_off_doubling_up_to_the_cap_then_give_up() -> None:
    policy = KNOBS.restart_policy()
    assert [restart_delay(policy, t, 1) for t in (0.0, 1.0, 3.0)] == [1.0, 2.0, 3.0]  # 4 capped at 3
    assert restart_delay(policy, 10.0, -9) is None  # a fourth death within the window


def test_deaths_older_than_the_window_are_forgotten() -> None:
    policy = KNOBS.restart_policy()
    for t in (0.0, 1.0, 3.0):
        restart_delay(policy, t, 1)
    assert restart_delay(policy, 101.5, 1) == 2.0  # the deaths at 0 and 1 have left the window; 3 remains
    assert restart_delay(policy, 202.0, 1) == 1.0  # and the one at 101.5 too


def test_a_configuration_error_is_given_up_at_once() -> None:
    assert restart_delay(KNOBS.restart_policy(), 0.0, EXIT_CONFIG) is None


def test_killed_for_silence_counts_as_a_death() -> None:
    policy = KNOBS.restart_policy()
    assert restart_delay(policy, 0.0, None) == 1.0
    assert restart_delay(policy, 0.0, None) == 2.0


def test_heartbeats_one_at_a_time_every_interval() -> None:
    assert heartbeat_due(5.0, None, False, 1.0)
    assert not heartbeat_due(5.5, 5.0, False, 1.0)
    assert heartbeat_due(6.0, 5.0, False, 1.0)
    assert not heartbeat_due(9.0, 5.0, True, 1.0)  # the last one has not come back yet


def test_a_worker_is_overdue_after_the_timeout_since_its_last_reply() -> None:
    assert silent_for(20.0, 0.0, 15.0) == 5.0
    assert not heartbeat_overdue(25.0, 0.0, 15.0, KNOBS)
    assert heartbeat_overdue(25.1, 0.0, 15.0, KNOBS)


def test_a_new_worker_gets_the_start_deadline() -> None:
    slow_start = Knobs(heartbeat_timeout_s=1.0, start_timeout_s=30.0)
    assert not heartbeat_overdue(29.0, 0.0, None, slow_start)
    assert heartbeat_overdue(30.5, 0.0, None, slow_start)
    assert heartbeat_overdue(1.5, 0.0, None, Knobs(heartbeat_timeout_s=1.0))  # default: the heartbeat timeout
    assert not heartbeat_overdue(30.5, 0.0, 30.0, slow_start)  # once it answered, the heartbeat timeout


def test_knobs_from_the_workers_section() -> None:
    section = SimpleNamespace(
        heartbeat_interval_s=Decimal("0.5"), heartbeat_timeout_s=Decimal(4), max_restarts=2,
        restart_window_s=Decimal(60), restart_backoff_min_s=Decimal("0.1"), restart_backoff_max_s=Decimal(5),
        stop_timeout_s=Decimal(7), start_timeout_s=Decimal(30),
    )  # fmt: skip
    knobs = Knobs.from_config(section)
    assert knobs == Knobs(0.5, 4.0, 2, 60.0, 0.1, 5.0, 7.0, 30.0)
    # a new worker imports, opens the database and reads the venues before it can answer: not the beat's deadline
    assert knobs.call_timeout_s == 2.0 and knobs.start_deadline_s == 30.0
    assert Knobs(heartbeat_timeout_s=4.0).start_deadline_s == 4.0


def test_exits_in_words() -> None:
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(-99) == "killed by signal 99"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_watch_expires_when_the_supervisor_is_silent() -> None:
    clock = Clock()
    watch = SupervisorWatch(10.0, clock)
    clock.now = 109.0
    assert not watch.expired()
    watch.poke()
    clock.now = 118.0
    assert not watch.expired() and watch.silent_for() == 9.0
    clock.now = 119.5
    assert watch.expired()


def test_only_the_heartbeat_pokes_the_watch() -> None:
    clock = Clock()
    watch = SupervisorWatch(10.0, clock)
    served: list[str] = []

    def handler(cmd: str, _args: dict[str, Any]) -> str:
        served.append(cmd)
        return cmd

    serve = watched(handler, watch)
    clock.now = 105.0
    assert serve("status", {}) == "status" and watch.silent_for() == 5.0
    assert serve("health", {}) == "health" and watch.silent_for() == 0.0
    assert served == ["status", "health"]


def test_the_watch_thread_calls_back_once_on_silence() -> None:
    clock = Clock()
    watch = SupervisorWatch(10.0, clock)
    called = threading.Event()
    stop = threading.Event()
    thread = watch.watch(called.set, stop, tick_s=0.01)
    assert not called.wait(0.05)  # not silent yet: it keeps watching
    clock.now = 111.0
    wait_until(called.is_set, 5, "the callback")
    thread.join(5)
    assert not thread.is_alive()
