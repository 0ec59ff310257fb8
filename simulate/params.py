"""The simulation's defaults, apart so that the command line reads them without importing the engine."""

from __future__ import annotations

from decimal import Decimal

STEP_S = 0.25  # fake seconds per step while anything moves: the price walk's own step
IDLE_STEP_S = 10.0  # fake seconds per step while the engine rests with nothing exposed and nothing resting
WAIT_CAP_S = 2.0  # real seconds a step may wait for the engine before time is moved on anyway (counted)
REALISTIC_VOLATILITY = Decimal("0.00005")  # the walk's deviation per 0.25 s step: ~3% a day
