"""Drill: restore the service from a restore point into an isolated copy at the DR site, check
the copy answers and holds the restore point's data, measure RPO and RTO, then destroy the copy,
verify through the cloud's APIs that nothing of it is left, and write the signed report.

The production stack and its backups are never touched (`dr_copy.py`). Whatever fails, the copy
is destroyed, cleanup is verified and the report is written (`always` steps); a failed check
fails the operation, naming the check.

RPO = drill start - the restore point's time; RTO = drill start → the copy's first passing
health check. Both are written down on the operation as they happen, so a drill resumed after a
worker crash measures from its real start.
"""

import uuid
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import InvalidInput
from orchestrator.operations.models import Operation, OperationKind
from orchestrator.ports import StepFailed
from orchestrator.workflows import dr_copy, dr_report
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step, Workflow

MAX_EXPECT_TEXT = 200
PARAMETERS = ("restore_point", "expect_text")


def check_parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """`restore_point`: the id of the restore point to drill (default: the latest);
    `expect_text`: a text the copy's health check must also find (e.g. a marker of the content)."""
    unknown = sorted(set(body) - set(PARAMETERS))
    if unknown:
        raise InvalidInput(
            f"a drill takes no {', '.join(unknown)} (it takes {', '.join(PARAMETERS)})", field=unknown[0]
        )
    found: dict[str, Any] = {}
    if body.get("restore_point") is not None:
        try:
            found["restore_point"] = str(uuid.UUID(str(body["restore_point"])))
        except ValueError as exc:
            raise InvalidInput("restore_point must be a restore point's id (a UUID)", field="restore_point") from exc
    text = body.get("expect_text")
    if text is not None:
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_EXPECT_TEXT:
            raise InvalidInput(f"expect_text must be a text of 1 to {MAX_EXPECT_TEXT} characters", field="expect_text")
        found["expect_text"] = text
    return found


def prepare(ctx: StepContext) -> None:
    """Choose the restore point and write down the drill's start (once: a resumed run keeps both)."""
    known = dr_copy.state(ctx)
    if known.get("reported_at"):
        # Its copy is destroyed and its report signed: running it again would build a copy that
        # no later step destroys.
        raise StepFailed("this drill has ended and been reported; start a new drill")
    if known.get("mode"):
        return
    with ctx.transaction() as session:
        operation = session.get(Operation, ctx.operation_id)
        assert operation is not None
        named = operation.parameters.get("restore_point")
        point = dr_copy.choose_restore_point(session, ctx.inputs.service_id, uuid.UUID(named) if named else None)
        expect_text = operation.parameters.get("expect_text")
    dr_copy.begin(ctx, mode="drill", restore_point=point)
    if expect_text:
        dr_copy.remember(ctx, health_overrides={"expect_text": expect_text})


HEALTH_STEP = "check_health"
DATA_STEP = "check_data"
CLEANUP_STEP = "verify_cleanup"

# The service is left as it is throughout: a drill changes nothing of it.
WORKFLOW = Workflow(
    kind=OperationKind.drill,
    summary="restore into an isolated copy at the DR site, check it, measure RPO and RTO, destroy it",
    steps=(
        Step("prepare", prepare),
        Step("build_copy", dr_copy.build),
        Step("configure_copy", dr_copy.configure),
        Step("restore_data", dr_copy.restore),
        # The data first: a site answering requests writes to its database (WordPress's cron,
        # transients), after which it no longer holds exactly what the restore point held.
        Step(DATA_STEP, dr_copy.check_data),
        Step(HEALTH_STEP, dr_copy.check_health),
        Step("destroy_copy", dr_copy.destroy, always=True),
        Step(CLEANUP_STEP, dr_copy.verify_cleanup, always=True),
        dr_report.report_step(kind=OperationKind.drill, recovered_at="healthy_at"),
    ),
    day2_action=True,
    check_parameters=check_parameters,
)
