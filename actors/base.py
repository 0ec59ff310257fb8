"""What every supervised actor shares: a name and generation, Ping, and telling the supervisor it died.

Pykka has no supervision: an exception while handling a `tell` kills the actor and calls `on_failure`;
one while handling an `ask` goes back to the caller and the actor lives on. So handlers catch the errors
they expect (venue errors) and only bugs reach this path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any

import pykka

from actors.messages import Ping, Pong
from core.clock import Clock

log = logging.getLogger(__name__)

DeathCallback = Callable[[str, int, BaseException | None], None]


class Directory:
    """name -> the current ActorRef of that name. Peers resolve refs here at send time: a ref cached
    across a restart would point at a dead actor."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[str, pykka.ActorRef[Any]] = {}

    def set(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        """Publish the ref now serving `name`."""
        with self._lock:
            self._refs[name] = ref

    def get(self, name: str) -> pykka.ActorRef[Any]:
        """The current ref; ActorDeadError when nothing serves `name` (never started, or given up)."""
        with self._lock:
            ref = self._refs.get(name)
        if ref is None:
            raise pykka.ActorDeadError(f"no actor serves {name!r}")
        return ref

    def names(self) -> list[str]:
        """Every published name."""
        with self._lock:
            return list(self._refs)


class SupervisedActor(pykka.ThreadingActor):
    """A named actor that answers Ping and reports its own death to the supervisor."""

    def __init__(self, name: str, generation: int, clock: Clock, on_death: DeathCallback | None = None) -> None:
        super().__init__()
        self.name = name
        self.generation = generation
        self.clock = clock
        self.started_at: datetime = clock.now()
        self._on_death = on_death

    def on_receive(self, message: Any) -> Any:
        """Ping is answered here; everything else goes to `handle`."""
        if isinstance(message, Ping):
            return Pong(self.name, self.generation, self.started_at)
        return self.handle(message)

    def handle(self, message: Any) -> Any:
        """Subclasses dispatch their messages; an unknown message is a bug and kills the actor."""
        raise TypeError(f"{self.name}: unexpected message {message!r}")

    def release(self) -> None:
        """Free threads and connections the actor owns (runs on normal stop and on failure)."""

    def on_stop(self) -> None:
        """Normal stop: release resources."""
        self.release()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Death by an unhandled exception: release resources and tell the supervisor."""
        log.error("actor %s (generation %d) died: %r", self.name, self.generation, exception_value)
        try:
            self.release()
        finally:
            if self._on_death is not None:
                self._on_death(self.name, self.generation, exception_value)
