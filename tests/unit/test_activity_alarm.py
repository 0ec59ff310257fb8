"""The alarm that ends maker phases early: a phase ends for alarms raised after it began, never for earlier ones."""

from __future__ import annotations

from core.activity import Activity


def test_a_phase_sees_only_alarms_raised_after_it_began() -> None:
    activity = Activity()
    activity.alarm("pair 1 is NAKED")
    began = activity.alarms()
    assert activity.alarm_since(began) is None  # raised before: its work was waiting when the phase was started
    activity.alarm("close-all by operator")
    assert activity.alarm_since(began) == "close-all by operator"
    assert activity.alarm_since(activity.alarms()) is None
