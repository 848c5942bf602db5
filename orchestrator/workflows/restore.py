"""Restore: the service's own servers given back a restore point's content (`POST
/v1/services/{id}/actions/restore`, optional `{"restore_point": "<id>"}`; default the latest).

What it holds now is backed up first, so a restore to the wrong point is itself undone by a
restore. Then the restore point's content paths and database dump replace the servers' own
(`restore.yml`, never /etc), and the service must pass its health check and hold exactly the
restore point's content (`tonle-checksum`). The failback restores the primary site the same way.
"""

import uuid
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import InvalidInput
from orchestrator.operations.models import Operation, OperationKind
from orchestrator.ports import StepFailed
from orchestrator.workflows import backup, dr_copy, steps
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step, Workflow


def check_parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"restore_point"})
    if unknown:
        raise InvalidInput(f"a restore takes no {', '.join(unknown)} (it takes restore_point)", field=unknown[0])
    if body.get("restore_point") is None:
        return {}
    try:
        return {"restore_point": str(uuid.UUID(str(body["restore_point"])))}
    except ValueError as exc:
        raise InvalidInput("restore_point must be a restore point's id (a UUID)", field="restore_point") from exc


def choose(ctx: StepContext) -> None:
    """The restore point, chosen once (a resumed run restores the same one)."""
    if dr_copy.state(ctx).get("restore_point"):
        return
    with ctx.transaction() as session:
        operation = session.get(Operation, ctx.operation_id)
        assert operation is not None
        named = operation.parameters.get("restore_point")
        chosen = dr_copy.choose_restore_point(session, ctx.inputs.service_id, uuid.UUID(named) if named else None)
    dr_copy.remember(ctx, started_at=dr_copy.now().isoformat(), restore_point=chosen)


def back_up_first(ctx: StepContext) -> None:
    """What the servers hold now becomes a restore point of its own before it is replaced."""
    if dr_copy.state(ctx).get("backed_up_first"):
        return
    backup.back_up(ctx)
    backup.catalogue(ctx)
    dr_copy.remember(ctx, backed_up_first=True)


def restore_in_place(ctx: StepContext) -> None:
    """The restore point's content onto the servers of the stack in `ctx`."""
    point = dr_copy.state(ctx).get("restore_point")
    if not point:
        raise StepFailed("no restore point to restore from")
    steps.run_playbook(ctx, dr_copy.RESTORE_PLAYBOOK, extra_vars={"restore": dr_copy.restore_vars(point)})


def check_health(ctx: StepContext) -> None:
    steps.verify(ctx)
    if not dr_copy.state(ctx).get("healthy_at"):
        dr_copy.remember(ctx, healthy_at=dr_copy.now().isoformat())


def check_data(ctx: StepContext) -> None:
    point = dr_copy.state(ctx).get("restore_point") or {}
    if not point.get("checksum"):
        raise StepFailed(f"data check: restore point {point.get('id')} has no checksum to compare with")
    try:
        steps.run_playbook(ctx, dr_copy.DATA_CHECK_PLAYBOOK, extra_vars={"restore": dr_copy.restore_vars(point)})
    except StepFailed as exc:
        raise StepFailed(f"data check: {exc}") from exc


# A restore changes what the service serves, not what it is: its status stays as it is.
WORKFLOW = Workflow(
    kind=OperationKind.restore,
    summary="back the service up, then give its servers a restore point's content and check it",
    steps=(
        Step("choose_restore_point", choose),
        Step("back_up_first", back_up_first),
        Step("restore_data", restore_in_place),
        # The data before the health check: a site that answers writes to its database.
        Step("check_data", check_data),
        Step("check_health", check_health),
    ),
    day2_action=True,
    check_parameters=check_parameters,
)
