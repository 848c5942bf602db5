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
from datetime import datetime
from typing import Any

from sqlmodel import Session

from orchestrator.actors import Role
from orchestrator.auth.models import User
from orchestrator.backup import policies, restore_points
from orchestrator.backup.models import RestorePoint
from orchestrator.catalog import service as catalog
from orchestrator.dr import reports
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.ministry.models import Ministry
from orchestrator.operations import service as operations
from orchestrator.operations.models import Operation, OperationKind, StepStatus
from orchestrator.ports import StepFailed
from orchestrator.services.models import Service
from orchestrator.workflows import dr_copy
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
        point = _restore_point(session, ctx.inputs.service_id, uuid.UUID(named) if named else None)
        expect_text = operation.parameters.get("expect_text")
    dr_copy.begin(ctx, mode="drill", restore_point=point)
    if expect_text:
        dr_copy.remember(ctx, health_overrides={"expect_text": expect_text})


def _restore_point(session: Session, service_id: uuid.UUID, named: uuid.UUID | None) -> dict[str, Any]:
    if named is not None:
        try:
            found: RestorePoint | None = restore_points.get(
                session=session, service_id=service_id, restore_point_id=named
            )
        except NotFound as exc:
            raise StepFailed(str(exc)) from exc
        assert found is not None
        if found.pruned_at is not None:
            raise StepFailed(f"restore point {named} was pruned at {found.pruned_at.isoformat()}; choose another")
    else:
        found = restore_points.latest(session=session, service_id=service_id)
        if found is None:
            raise StepFailed("the service has no restore point yet: back it up first")
    return dr_copy.restore_point_facts(found)


def report(ctx: StepContext) -> None:
    """The drill's signed report (`orchestrator.dr.reports`), whatever happened before."""
    known = dr_copy.state(ctx)
    finished_at = dr_copy.now()
    with ctx.transaction() as session:
        operation = operations.lock(session=session, operation_id=ctx.operation_id)
        if reports.for_operation(session=session, operation_id=operation.id) is None:
            reports.record(
                session=session, operation=operation, body=report_body(session, operation, known, finished_at)
            )
    if not known.get("reported_at"):
        dr_copy.remember(ctx, reported_at=finished_at.isoformat())


def report_body(
    session: Session, operation: Operation, known: Mapping[str, Any], finished_at: datetime
) -> dict[str, Any]:
    """The report as `orchestrator/dr/reports.py` documents it, from the facts the steps wrote down."""
    started = dr_copy.timestamp(known.get("started_at")) or operation.started_at or finished_at
    healthy = dr_copy.timestamp(known.get("healthy_at"))
    point = known.get("restore_point")
    taken = dr_copy.timestamp(point["taken_at"]) if point else None
    shown_steps = [step for step in operation.step_list() if step.name != REPORT_STEP]
    failed = next((step for step in shown_steps if step.status == StepStatus.failed), None)
    try:
        policy = policies.get(session=session, service_id=operation.service_id)
        targets: tuple[int | None, int | None] = (policy.rto_target_seconds, policy.rpo_target_seconds)
    except NotFound:
        targets = (None, None)
    service = session.get(Service, operation.service_id)
    assert service is not None
    return {
        "kind": "drill",
        "operation_id": str(operation.id),
        "service_id": str(operation.service_id),
        "ministry": _ministry_code(session, operation),
        "offering": catalog.get_offering(service.offering_id).id,
        "started_by": _started_by(session, operation),
        "started_at": started.isoformat(),
        "finished_at": finished_at.isoformat(),
        "rto_seconds": round((healthy - started).total_seconds(), 1) if healthy else None,
        "rpo_seconds": round((started - taken).total_seconds(), 1) if taken else None,
        "target_rto_seconds": targets[0],
        "target_rpo_seconds": targets[1],
        "passed": failed is None and known.get("cleanup_verified") is not False,
        "failed_check": _failed_check(failed.name, failed.error) if failed else None,
        "restore_point": point or None,
        "steps": [
            {
                "name": step.name,
                "status": step.status.value,
                "started_at": step.started_at.isoformat() if step.started_at else None,
                "finished_at": step.finished_at.isoformat() if step.finished_at else None,
                "error": step.error,
            }
            for step in shown_steps
        ],
        "cleanup_verified": known.get("cleanup_verified"),
        "leftovers": list(known.get("leftovers") or []),
        "copy_stack": known.get("copy_stack"),
        "site": known.get("site"),
    }


def _failed_check(step: str, error: str | None) -> str:
    """The health and data checks name themselves in their errors; other steps by name."""
    if step in (HEALTH_STEP, DATA_STEP, CLEANUP_STEP) and error:
        return error
    return f"{step}: {error or 'failed'}"


def _ministry_code(session: Session, operation: Operation) -> str:
    ministry = session.get(Ministry, operation.ministry_id)
    return ministry.code if ministry is not None else str(operation.ministry_id)


def _started_by(session: Session, operation: Operation) -> dict[str, Any]:
    user = session.get(User, operation.created_by) if operation.created_by else None
    if user is None:
        return {"kind": "system", "id": None, "name": "system"}
    kind = "automation" if user.role == Role.automation else "user"
    return {"kind": kind, "id": str(user.id), "name": user.username}


HEALTH_STEP = "check_health"
DATA_STEP = "check_data"
CLEANUP_STEP = "verify_cleanup"
REPORT_STEP = "report"

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
        Step(REPORT_STEP, report, always=True),
    ),
    day2_action=True,
    check_parameters=check_parameters,
)
