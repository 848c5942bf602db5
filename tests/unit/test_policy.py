"""The permission policy as a table: every action has its roles, and each kind of caller gets exactly
what the README's Roles table gives it."""

import uuid

import pytest

from orchestrator import policy
from orchestrator.actors import SYSTEM, Actor, Role
from orchestrator.errors import NotFound, PermissionDenied
from orchestrator.policy import Action

pytestmark = pytest.mark.unit

OWN, OTHER = uuid.uuid4(), uuid.uuid4()
SERVICE_WORK = {
    Action.resize,
    Action.deploy_content,
    Action.run_action,
    Action.decommission,
    Action.backup,
    Action.set_backup_policy,
    Action.restore,
    Action.drill,
    Action.failover,
    Action.failback,
}


def actor(role: Role, ministry_id: uuid.UUID | None = None, *, platform_wide: bool = False) -> Actor:
    return Actor(
        user_id=uuid.uuid4(), username=role.value, role=role, ministry_id=ministry_id, platform_wide=platform_wide
    )


def granted(who: Actor, ministry_id: uuid.UUID | None = OWN) -> set[Action]:
    return {action for action in Action if policy.allowed(who, action, ministry_id=ministry_id)}


def test_every_action_is_in_the_table() -> None:
    assert set(policy.POLICY) == set(Action)
    assert set(policy.SERVICE_ACTIONS.values()) <= SERVICE_WORK


def test_ministry_people_act_on_their_own_ministry_only() -> None:
    requester = actor(Role.requester, OWN)
    staff = SERVICE_WORK | {
        Action.read_catalog,
        Action.order,
        Action.cancel_request,
        Action.reveal_credentials,
    }
    assert granted(requester) == staff
    assert granted(actor(Role.ministry_approver, OWN)) == staff | {Action.vote_ministry_stage, Action.read_audit}
    assert granted(requester, OTHER) == set()
    automation = actor(Role.automation, OWN)
    assert granted(automation) == SERVICE_WORK | {Action.read_catalog, Action.order, Action.cancel_request}


def test_operators_read_vote_and_retry_but_change_no_service() -> None:
    operator = actor(Role.operator)
    assert granted(operator) == {
        Action.read_catalog,
        Action.vote_operator_stage,
        Action.read_audit,
        Action.retry,
        Action.list_ministries,
        # The data centre's own work: racking ministries' hardware, and its capacity.
        Action.install_devices,
        Action.read_capacity,
        Action.read_images,
    }
    with pytest.raises(PermissionDenied, match="may not decommission services"):
        policy.require(operator, Action.decommission, ministry_id=OWN)


def test_admins_do_everything_but_read_credentials() -> None:
    assert granted(actor(Role.admin)) == set(Action) - {Action.reveal_credentials}
    assert granted(actor(Role.admin), OTHER) == set(Action) - {Action.reveal_credentials}


def test_platform_automation_needs_its_flag_and_then_only_backs_up_and_drills() -> None:
    flagged = actor(Role.automation, platform_wide=True)
    assert granted(flagged) == {Action.read_catalog, Action.backup, Action.drill}
    assert policy.can_see(flagged, OTHER)
    unflagged = actor(Role.automation)
    assert granted(unflagged) == set() and not policy.can_see(unflagged, OWN)
    with pytest.raises(NotFound):
        policy.require(unflagged, Action.backup, ministry_id=OWN, entity="service")


def test_another_ministry_is_not_found_before_it_is_forbidden() -> None:
    with pytest.raises(NotFound, match="service not found"):
        policy.require(actor(Role.requester, OWN), Action.resize, ministry_id=OTHER, entity="service")


def test_the_system_runs_work_but_never_votes() -> None:
    assert granted(SYSTEM) >= SERVICE_WORK
    assert not granted(SYSTEM) & set(policy.STAGE_VOTES.values())


def test_day2_names_map_to_actions() -> None:
    assert policy.service_action("drill") == Action.drill
    assert policy.service_action("restart") == Action.run_action
    assert policy.stage_vote(Role.operator) == Action.vote_operator_stage
