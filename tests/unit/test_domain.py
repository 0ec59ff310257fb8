from __future__ import annotations

import itertools

import pytest

from core.domain import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    IllegalTransitionError,
    PairState,
    Side,
    can_transition,
    check_transition,
)

S = PairState
# Written out by hand from design §3 (plus the documented additions), not derived from the table under test.
ALLOWED = {
    (S.PLANNED, S.OPENING),
    (S.OPENING, S.OPEN),
    (S.OPENING, S.ROLLING_BACK),
    (S.OPENING, S.NAKED),
    (S.ROLLING_BACK, S.FAILED),
    (S.ROLLING_BACK, S.NAKED),
    (S.OPEN, S.CLOSING),
    (S.OPEN, S.NAKED),
    (S.CLOSING, S.CLOSED),
    (S.CLOSING, S.NAKED),
    (S.NAKED, S.CLOSED),
}
ALL_MOVES = list(itertools.product(PairState, PairState))


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transition(current: PairState, target: PairState) -> None:
    assert can_transition(current, target)
    assert check_transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), [m for m in ALL_MOVES if m not in ALLOWED])
def test_forbidden_transition_raises(current: PairState, target: PairState) -> None:
    assert not can_transition(current, target)
    with pytest.raises(IllegalTransitionError) as info:
        check_transition(current, target)
    assert f"{current} -> {target}" in str(info.value)


def test_terminal_states_have_no_exit_and_everything_else_is_active() -> None:
    assert {S.CLOSED, S.FAILED} == TERMINAL_STATES
    assert set(PairState) - TERMINAL_STATES == ACTIVE_STATES
    assert all(s.is_terminal for s in TERMINAL_STATES)
    assert not any(s.is_terminal for s in ACTIVE_STATES)


def test_sides() -> None:
    assert Side.LONG.opposite is Side.SHORT
    assert Side.SHORT.opposite is Side.LONG
    assert (Side.LONG.sign, Side.SHORT.sign) == (1, -1)
