from __future__ import annotations

import copy
import itertools
import json
import pickle

import pytest
from pydantic import BaseModel, ValidationError

from core.domain import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    IllegalTransitionError,
    PairState,
    Side,
    Venue,
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


def test_a_venue_is_one_object_per_name_and_reads_as_its_name() -> None:
    assert Venue("backpack") is Venue.BACKPACK
    assert Venue(Venue.HIBACHI) is Venue.HIBACHI
    gamma = Venue("gamma_2")  # any well-formed name is a venue: the registry says whether it can trade
    assert Venue("gamma_2") is gamma and gamma.value == "gamma_2" and type(gamma.value) is str
    assert f"{gamma}" == str(gamma) == "gamma_2" and repr(gamma) == "Venue('gamma_2')"
    assert gamma == "gamma_2" and {"gamma_2": 1}[gamma] == 1  # a str: dict keys, JSON and the database
    assert json.dumps({gamma: gamma}) == '{"gamma_2": "gamma_2"}'
    assert pickle.loads(pickle.dumps(gamma)) is gamma
    assert copy.deepcopy([gamma])[0] is gamma
    for bad in ("", "Backpack", "1x", "a-b", "x" * 17):
        with pytest.raises(ValueError, match="not a venue name"):
            Venue(bad)


def test_a_venue_validates_from_its_name_and_serializes_back() -> None:
    class Model(BaseModel):
        venue: Venue
        per: dict[Venue, int]

    m = Model.model_validate({"venue": "hibachi", "per": {"backpack": 1}})
    assert m.venue is Venue.HIBACHI and next(iter(m.per)) is Venue.BACKPACK
    assert m.model_dump() == {"venue": "hibachi", "per": {"backpack": 1}}
    assert m.model_dump_json() == '{"venue":"hibachi","per":{"backpack":1}}'
    with pytest.raises(ValidationError, match="not a venue name"):
        Model.model_validate({"venue": "No!", "per": {}})
