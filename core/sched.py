"""The batch scheduling class for processes whose wake-ups must not take the CPU from an engine writing an open's
legs (core/gate.py): the paper host's simulators and a fleet's workers.

A SCHED_BATCH task gets its fair share of the CPU like any other; what it gives up is preempting the running task
when it wakes (Linux's fair class: "BATCH and IDLE tasks do not preempt others"). An open's two legs are written
back to back by one worker thread; on a busy machine a task woken in between (a simulator woken by the first leg,
another worker woken by a price or a venue reply) could otherwise preempt that thread and part the legs by a time
slice. The cost: a woken worker waits for the running task's slice to end, a few ms on a busy machine, nothing on
an idle one; both legs wait alike.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def batch_class(who: str) -> bool:
    """Put the calling process on SCHED_BATCH (threads started later inherit it); True if that took. `who` names
    the process in the warning logged when it cannot be done (another OS, or a policy that refuses it)."""
    batch = getattr(os, "SCHED_BATCH", None)
    if batch is None:
        log.warning("%s: scheduling class unchanged (no SCHED_BATCH on this system)", who)
        return False
    try:
        os.sched_setscheduler(0, batch, os.sched_param(0))
    except OSError as exc:
        log.warning("%s: scheduling class unchanged (%s)", who, exc)
        return False
    return True
