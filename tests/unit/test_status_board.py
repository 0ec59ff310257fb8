"""The status board's actor answers: fresh ones served as they are, stale ones asked again, and a busy actor's
last answer served dated instead of waited for (a `status`, and a fleet's heartbeat, must not hang on it)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pykka

from actors import board as board_module
from actors.board import StatusBoard
from actors.messages import StatusReply


class Answer:
    """An ask's future: answered at once, or only once `release` is set."""

    def __init__(self, data: dict[str, Any], release: threading.Event | None) -> None:
        self.data, self.release = data, release

    def get(self, timeout: float | None = None) -> StatusReply:
        if self.release is not None and not self.release.wait(timeout):
            raise pykka.Timeout("busy")
        return StatusReply("coordinator", self.data)


class Actor:
    """Counts asks; answers at once unless `busy` holds."""

    def __init__(self) -> None:
        self.asks = 0
        self.busy: threading.Event | None = None

    def ask(self, _message: Any, block: bool = True, timeout: float | None = None) -> Any:
        self.asks += 1
        answer = Answer({"n": self.asks}, self.busy)
        return answer.get(timeout) if block else answer


def test_a_busy_actors_last_answer_is_served_dated_without_a_wait(monkeypatch: Any) -> None:
    now = [1000.0]
    monkeypatch.setattr(board_module.time, "monotonic", lambda: now[0])
    board, actor = StatusBoard(), Actor()
    ref: Any = actor
    assert board.actor_status("coordinator", ref) == {"n": 1}  # no answer yet: asked and waited for
    actor.busy = threading.Event()  # from now on it answers nothing
    assert board.actor_status("coordinator", ref) == {"n": 1}  # fresh: served, and asked again in the background
    now[0] += board_module.FRESH_S + 1
    started = time.monotonic()
    assert board.actor_status("coordinator", ref) == {"n": 1, "as_of_s": 3.0}  # busy: dated, not waited for
    assert time.monotonic() - started < board_module.ASK_TIMEOUT_S / 2
    actor.busy.set()  # it answers the ask it was busy with; the next call serves that answer
    assert board.actor_status("coordinator", ref) == {"n": 2}
