"""Fail points: named places where a test makes the process die on the spot, as `kill -9` would.

Armed only by the PERP_FARMER_FAILPOINTS environment variable (comma-separated names), read once at start;
with it unset every fail point is a set lookup and nothing else. The crash tests use them to stop the
supervisor exactly between two writes that must survive a crash together or not at all.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

ENV = "PERP_FARMER_FAILPOINTS"
_ARMED = frozenset(name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip())

log = logging.getLogger(__name__)


def armed(name: str) -> bool:
    """True when the fail point `name` will kill the process."""
    return name in _ARMED


def hit(name: str) -> None:
    """Die here, without cleanup, if `name` is armed."""
    if name in _ARMED:
        log.critical("fail point %s: killing the process", name)
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
