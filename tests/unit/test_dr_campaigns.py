"""The pure parts of DR campaigns: which drills start next, when a drill is overdue, who may drill
the whole data centre."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator import policy
from orchestrator.actors import SYSTEM, Actor, Role
from orchestrator.dr.campaigns import Readiness, Round, plan_round
from orchestrator.dr.overdue import due
from orchestrator.errors import PermissionDenied

pytestmark = pytest.mark.unit

R = Readiness
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def starts(plan: Round[str]) -> list[str]:
    """What a round starts when every candidate does start."""
    return plan.candidates[: plan.slots]


def test_a_round_fills_only_the_free_slots_in_order() -> None:
    waiting = [("a", R.ready), ("b", R.ready), ("c", R.ready)]
    assert starts(plan_round(waiting=waiting, in_progress=0, max_parallel=2)) == ["a", "b"]
    assert starts(plan_round(waiting=waiting, in_progress=1, max_parallel=2)) == ["a"]
    assert starts(plan_round(waiting=waiting, in_progress=2, max_parallel=2)) == []
    # More in progress than allowed (the limit was lowered or met when they started): nothing starts.
    assert plan_round(waiting=waiting, in_progress=3, max_parallel=2).slots == 0


def test_a_candidate_that_does_not_start_leaves_its_slot_to_the_next() -> None:
    plan = plan_round(waiting=[("a", R.ready), ("b", R.ready), ("c", R.ready)], in_progress=1, max_parallel=2)
    assert plan.slots == 1 and plan.candidates == ["a", "b", "c"]


def test_a_busy_service_keeps_its_place_and_lets_the_next_one_go() -> None:
    plan = plan_round(waiting=[("a", R.busy), ("b", R.ready), ("c", R.ready)], in_progress=1, max_parallel=2)
    assert starts(plan) == ["b"]
    assert plan.skip == []


def test_a_service_that_is_gone_is_skipped_even_with_no_free_slot() -> None:
    plan = plan_round(waiting=[("a", R.gone), ("b", R.ready), ("c", R.gone)], in_progress=2, max_parallel=2)
    assert starts(plan) == []
    assert plan.skip == ["a", "c"]


def test_a_drill_is_due_its_interval_after_the_last_passing_one() -> None:
    created = NOW - timedelta(days=400)
    recent = due(now=NOW, drill_every_days=30, last_passed_at=NOW - timedelta(days=10), created_at=created)
    assert recent.due_at == NOW + timedelta(days=20)
    assert recent.overdue_seconds == -timedelta(days=20).total_seconds()
    late = due(now=NOW, drill_every_days=30, last_passed_at=NOW - timedelta(days=45), created_at=created)
    assert late.due_at == NOW - timedelta(days=15)
    assert late.overdue_seconds == timedelta(days=15).total_seconds()


def test_a_service_never_drilled_is_due_since_it_exists() -> None:
    never = due(now=NOW, drill_every_days=30, last_passed_at=None, created_at=NOW - timedelta(hours=3))
    assert never.due_at == NOW - timedelta(hours=3)
    assert never.overdue_seconds == 3 * 3600


def actor(role: Role, ministry_id: uuid.UUID | None = None, *, platform_wide: bool = False) -> Actor:
    return Actor(user_id=uuid.uuid4(), username=role, role=role, ministry_id=ministry_id, platform_wide=platform_wide)


def test_only_admins_and_platform_automation_drill_the_whole_data_centre() -> None:
    for allowed in (actor(Role.admin), actor(Role.automation, platform_wide=True), SYSTEM):
        policy.require_data_centre(allowed, policy.Action.drill)
    ministry = uuid.uuid4()
    for refused in (
        actor(Role.requester, ministry),
        actor(Role.ministry_approver, ministry),
        actor(Role.automation, ministry),
        actor(Role.operator),  # sees everything, drills nothing
        actor(Role.automation),  # no ministry and no platform-wide flag: nothing at all
    ):
        with pytest.raises(PermissionDenied, match="across the data centre"):
            policy.require_data_centre(refused, policy.Action.drill)
