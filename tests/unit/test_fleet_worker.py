"""The worker's lease keeping and its reading of the paper host's file, with a fake lease book and clock."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from core.config import ConfigError, WorkersConfig, load_settings
from fleet import worker as worker_module
from fleet.worker import LeaseKeeper, paper_venues, take_scheduling_class
from storage.leases import Lease


class Book:
    """Answers renewals from a script: True, False, or an exception to raise."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.renewed: list[tuple[Any, float]] = []

    def renew(self, lease: Any, lease_s: float) -> bool:
        self.renewed.append((lease, lease_s))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return bool(answer)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def keeper(book: Book, clock: Clock, lost: list[str]) -> LeaseKeeper:
    return LeaseKeeper(book, Lease("alice", "holder", 1), 30.0, lost.append, clock)  # type: ignore[arg-type]


def test_a_lease_taken_by_another_stops_the_worker() -> None:
    lost: list[str] = []
    k = keeper(Book(True, False), Clock(), lost)
    assert k.turn() and not lost
    assert not k.turn()
    assert lost == ["the lease is no longer ours"] and k.lost == lost[0]
    assert not k.turn() and len(lost) == 1  # told once


def test_renewals_failing_past_half_the_lease_stop_the_worker() -> None:
    clock, lost = Clock(), []
    k = keeper(Book(True, OSError(), OSError(), OSError()), clock, lost)
    assert k.turn()
    clock.now = 10.0
    assert k.turn() and not lost  # a failure within lease_s/2 of the last renewal: retried
    clock.now = 15.0
    assert k.turn() and not lost
    clock.now = 15.5
    assert not k.turn()
    assert lost == ["the lease could not be renewed for 15.5s (OSError)"]


def test_a_renewal_that_succeeds_again_resets_the_deadline() -> None:
    clock, lost = Clock(), []
    k = keeper(Book(OSError(), True, OSError()), clock, lost)
    clock.now = 14.0
    assert k.turn()
    clock.now = 15.0
    assert k.turn()
    clock.now = 29.0
    assert k.turn() and not lost


def test_a_stuck_renewal_still_loses_the_lease_at_its_deadline() -> None:
    clock, lost = Clock(), []
    k = keeper(Book(True), clock, lost)
    assert k.turn()
    clock.now = 15.0  # the renewing thread is stuck in a call that never returns: the watch alone decides
    assert k.check_deadline() and not lost
    clock.now = 15.5
    assert not k.check_deadline()
    assert lost == ["the lease could not be renewed for 15.5s"]


def test_paper_venues_for_an_account(tmp_path: Path) -> None:
    config = tmp_path / "fleet.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n[[accounts]]\nname = "a"\n[[accounts]]\nname = "b"\n')
    settings = load_settings(config)
    with pytest.raises(ConfigError, match="no paper host serves it"):  # never simulators of its own
        paper_venues(settings, "a")
    venues = {"venue_a": {"rest_url": "http://127.0.0.1:1", "api_key": "k"}}
    (tmp_path / "paper-host.json").write_text(json.dumps({"pid": os.getpid(), "accounts": {"a": venues}}))
    assert paper_venues(settings, "a") == venues
    with pytest.raises(ConfigError):
        paper_venues(settings, "b")
    (tmp_path / "paper-host.json").write_text(json.dumps({"pid": 2**22 + 7, "accounts": {"a": venues}}))
    with pytest.raises(ConfigError):  # a file left by a host that is gone
        paper_venues(settings, "a")


@pytest.mark.parametrize("argv", [["--data-dir", "/tmp"], ["--account", "a", "--holder", "h"]])
def test_the_worker_command_line_needs_its_arguments(argv: list[str]) -> None:
    from fleet.worker import main

    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


def test_the_worker_takes_the_batch_class_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[str] = []
    monkeypatch.setattr(worker_module, "batch_class", lambda who: taken.append(who) or True)
    assert take_scheduling_class(WorkersConfig()) is True  # the default
    assert take_scheduling_class(WorkersConfig(batch_scheduling=False)) is False
    assert taken == ["worker"]
