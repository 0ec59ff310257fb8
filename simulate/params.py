"""The simulation's defaults, apart so that the command line reads them without importing the engine."""

from __future__ import annotations

from decimal import Decimal

STEP_S = 0.25  # fake seconds per step while anything moves: the price walk's own step
IDLE_STEP_S = 30.0  # fake seconds per step while the engine rests with nothing exposed and nothing resting
WAIT_CAP_S = 2.0  # real seconds a step may wait for the engine before time is moved on anyway (counted)
REALISTIC_VOLATILITY = Decimal("0.00005")  # the walk's deviation per 0.25 s step: ~3% a day
# The monitor's full reading (accounts, positions, quotes over REST, limits) costs ~40 ms of real time: every
# 60 s (the default) it would be most of a simulated day's cost. In a simulation without faults it observes
# (and checks the limits), so it reads every 5 minutes here.
MONITOR_INTERVAL_S = 300
