"""The permission policy: who may do what, as one table. Pure; no I/O.

Every permission decision of the API, the CLI and the workers comes from here, visibility
included. Visibility is decided first (`can_see`): a row of another ministry is not found (404),
so the table only ever decides about rows the caller can see, and a refusal is 403.

The table below is the README's Roles table; change them together.
"""

import uuid
from enum import StrEnum

from orchestrator.actors import PLATFORM_ROLES, Actor, Role
from orchestrator.errors import InvalidInput, NotFound, PermissionDenied


class Principal(StrEnum):
    """What kind of caller an actor is: its role, with automation split by its reach."""

    requester = "requester"
    ministry_approver = "ministry_approver"
    ministry_automation = "automation of a ministry"
    operator = "operator"
    admin = "admin"
    platform_automation = "platform-wide automation"
    system = "system"


class Action(StrEnum):
    read_catalog = "read the catalogue"
    order = "order services"
    cancel_request = "cancel requests"
    vote_ministry_stage = "vote on a ministry_approver stage"
    vote_operator_stage = "vote on an operator stage"
    vote_admin_stage = "vote on an admin stage"
    read_audit = "read the audit log"
    resize = "resize services"
    deploy_content = "deploy content to services"
    run_action = "run day-2 actions on services"
    decommission = "decommission services"
    backup = "back services up"
    set_backup_policy = "change backup policies"
    restore = "restore services"
    drill = "run DR drills"
    failover = "fail services over"
    failback = "fail services back"
    reveal_credentials = "see service credentials"
    retry = "retry failed operations"
    list_ministries = "list ministries"
    manage_ministries = "manage ministries and quotas"
    manage_users = "manage users and their tokens"
    install_devices = "install and remove co-located devices"
    read_capacity = "read data-centre capacity"
    read_images = "read baked images"
    manage_images = "build baked images"


P = Principal
_STAFF = frozenset({P.requester, P.ministry_approver})
# Day-2 work on a ministry's service: its own people and automation, admins, and the workers.
_SERVICE_OWNERS = _STAFF | {P.ministry_automation, P.admin, P.system}
_EVERYONE = frozenset(P)

POLICY: dict[Action, frozenset[Principal]] = {
    Action.read_catalog: _EVERYONE,
    Action.order: _STAFF | {P.ministry_automation, P.admin, P.system},
    Action.cancel_request: _STAFF | {P.ministry_automation, P.admin, P.system},
    # Votes need a person: the system never votes.
    Action.vote_ministry_stage: frozenset({P.ministry_approver, P.admin}),
    Action.vote_operator_stage: frozenset({P.operator, P.admin}),
    Action.vote_admin_stage: frozenset({P.admin}),
    Action.read_audit: frozenset({P.ministry_approver, P.operator, P.admin, P.system}),
    Action.resize: _SERVICE_OWNERS,
    Action.deploy_content: _SERVICE_OWNERS,
    Action.run_action: _SERVICE_OWNERS,
    Action.decommission: _SERVICE_OWNERS,
    # Platform-wide automation exists for schedules: backups and drills, nothing else.
    Action.backup: _SERVICE_OWNERS | {P.platform_automation},
    # Schedules and retention are the ministry's choice (within its tier); reading needs visibility only.
    Action.set_backup_policy: _SERVICE_OWNERS,
    Action.restore: _SERVICE_OWNERS,
    Action.drill: _SERVICE_OWNERS | {P.platform_automation},
    Action.failover: _SERVICE_OWNERS,
    Action.failback: _SERVICE_OWNERS,
    # Credentials go to the ministry's own people only; not even admins read them.
    Action.reveal_credentials: _STAFF,
    Action.retry: frozenset({P.operator, P.admin, P.system}),
    Action.list_ministries: frozenset({P.operator, P.admin, P.system}),
    Action.manage_ministries: frozenset({P.admin, P.system}),
    Action.manage_users: frozenset({P.admin, P.system}),
    # Technicians rack and unrack hardware: the data centre's people, never a ministry's.
    Action.install_devices: frozenset({P.operator, P.admin, P.system}),
    Action.read_capacity: frozenset({P.operator, P.admin, P.system}),
    # Images are the data centre's, not a ministry's: operators see them, admins build them.
    Action.read_images: frozenset({P.operator, P.admin, P.system}),
    Action.manage_images: frozenset({P.admin, P.system}),
}

# Principals whose grants hold only inside their own ministry.
MINISTRY_BOUND = frozenset({P.requester, P.ministry_approver, P.ministry_automation})

# Day-2 actions by the name they have in the API (`/v1/services/{id}/actions/{name}`); any other
# name is one of the offering's own playbooks (restart...).
SERVICE_ACTIONS: dict[str, Action] = {
    "resize": Action.resize,
    "deploy-content": Action.deploy_content,
    "backup": Action.backup,
    "restore": Action.restore,
    "drill": Action.drill,
    "failover": Action.failover,
    "failback": Action.failback,
}

STAGE_VOTES: dict[Role, Action] = {
    Role.ministry_approver: Action.vote_ministry_stage,
    Role.operator: Action.vote_operator_stage,
    Role.admin: Action.vote_admin_stage,
}


def sees_all_ministries(actor: Actor) -> bool:
    """Whether every ministry's rows are visible to the actor, not only its own ministry's."""
    if actor.is_system or actor.role in PLATFORM_ROLES:
        return True
    # Platform automation (schedules, drills) is not tied to a ministry; without the flag it sees nothing.
    return actor.role == Role.automation and actor.ministry_id is None and actor.platform_wide


def can_see(actor: Actor, ministry_id: uuid.UUID) -> bool:
    """Whether rows of that ministry are visible: to its own users and to platform roles."""
    return sees_all_ministries(actor) or actor.ministry_id == ministry_id


def check_account(*, role: Role, ministry_id: uuid.UUID | None, platform_wide: bool) -> None:
    """Refuse (422) an account whose role and ministry do not fit: platform roles have no
    ministry, ministry roles need one, and automation reaches every ministry only when asked to."""
    if role in PLATFORM_ROLES and ministry_id is not None:
        raise InvalidInput(f"role '{role}' is not tied to a ministry", field="ministry_id")
    if role in (Role.requester, Role.ministry_approver) and ministry_id is None:
        raise InvalidInput(f"role '{role}' needs a ministry", field="ministry_id")
    # Reaching every ministry is never a default: an automation account without a ministry must say so.
    if role == Role.automation and ministry_id is None and not platform_wide:
        raise InvalidInput(
            "an automation account needs a ministry, or platform_wide: true for backups and drills of every ministry",
            field="platform_wide",
        )
    if platform_wide and (role != Role.automation or ministry_id is not None):
        raise InvalidInput("only an automation account without a ministry is platform-wide", field="platform_wide")


def principal_of(actor: Actor) -> Principal | None:
    """The actor's kind, or None for an account that may do nothing (automation with no reach)."""
    if actor.is_system:
        return P.system
    if actor.role == Role.automation:
        if actor.ministry_id is not None:
            return P.ministry_automation
        return P.platform_automation if actor.platform_wide else None
    if actor.role in (Role.requester, Role.ministry_approver) and actor.ministry_id is None:
        return None  # a ministry role without a ministry is a broken account, not a platform one
    return P(actor.role) if actor.role is not None else None


def service_action(name: str) -> Action:
    return SERVICE_ACTIONS.get(name, Action.run_action)


def stage_vote(stage_role: Role) -> Action:
    return STAGE_VOTES[stage_role]


def allowed(actor: Actor, action: Action, *, ministry_id: uuid.UUID | None = None) -> bool:
    """Whether the actor may do `action` (on a row of `ministry_id`, when the action is about one)."""
    principal = principal_of(actor)
    if principal is None or principal not in POLICY[action]:
        return False
    return ministry_id is None or principal not in MINISTRY_BOUND or actor.ministry_id == ministry_id


def allowed_any(actor: Actor, actions: frozenset[Action]) -> bool:
    return any(allowed(actor, action) for action in actions)


def require(actor: Actor, action: Action, *, ministry_id: uuid.UUID | None = None, entity: str = "resource") -> None:
    """Raise unless `allowed`: NotFound for a ministry the actor cannot see, else PermissionDenied."""
    if ministry_id is not None and not can_see(actor, ministry_id):
        raise NotFound(f"{entity} not found")
    if not allowed(actor, action, ministry_id=ministry_id):
        raise PermissionDenied(f"{describe(actor)} may not {action.value}; that is for: {who_may(action)}")


def require_any(actor: Actor, actions: frozenset[Action]) -> None:
    if not allowed_any(actor, actions):
        raise PermissionDenied(f"{describe(actor)} may not {' or '.join(sorted(a.value for a in actions))}")


def require_data_centre(actor: Actor, action: Action) -> None:
    """Raise unless the actor may do `action` on every ministry at once (a data-centre-wide drill
    campaign): a grant bound to one ministry is not enough, whatever that ministry."""
    principal = principal_of(actor)
    if not allowed(actor, action) or principal in MINISTRY_BOUND:
        raise PermissionDenied(
            f"{describe(actor)} may not {action.value} across the data centre; that is for: "
            + ", ".join(sorted(p.value for p in POLICY[action] - MINISTRY_BOUND if p != P.system))
        )


def who_may(action: Action) -> str:
    return ", ".join(sorted(p.value for p in POLICY[action] if p != P.system))


def describe(actor: Actor) -> str:
    principal = principal_of(actor)
    if principal is None:
        if actor.role == Role.automation:
            return "an automation account with neither a ministry nor the platform-wide flag"
        return f"the account '{actor.username}'"
    return f"role '{principal.value}'"
