"""The signed report of a drill, failover or failback (`orchestrator/dr/reports.py`), written by
the workflow's last step, `always`: whatever happened before, from the facts its steps wrote down
on the operation (`dr_copy.state`).

RPO = start - the restore point's time (0 when the point was taken after the start). RTO = start
→ the moment the workflow names: a drill's copy first passing its health check; a failover's or
failback's DNS answering the new address.
"""

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from orchestrator.actors import Role
from orchestrator.auth.models import User
from orchestrator.backup import policies
from orchestrator.catalog import service as catalog
from orchestrator.dr import reports
from orchestrator.errors import NotFound
from orchestrator.ministry.models import Ministry
from orchestrator.operations import service as operations
from orchestrator.operations.models import Operation, StepStatus
from orchestrator.requests.models import Approval, Request
from orchestrator.services.models import Service
from orchestrator.workflows import dr_copy
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step

REPORT_STEP = "report"
# Steps whose errors name the check that failed; any other failed step is named by its name.
CHECK_STEPS = frozenset({"check_health", "check_data", "verify_cleanup", "check_primary", "check_primary_data"})


def report_step(*, kind: str, recovered_at: str) -> Step:
    """The workflow's last step; `recovered_at` is the fact whose time ends the RTO."""

    def report(ctx: StepContext) -> None:
        known = dr_copy.state(ctx)
        finished_at = dr_copy.now()
        with ctx.transaction() as session:
            operation = operations.lock(session=session, operation_id=ctx.operation_id)
            if reports.for_operation(session=session, operation_id=operation.id) is None:
                body = report_body(
                    session, operation, known, finished_at, kind=kind, recovered_at=known.get(recovered_at)
                )
                reports.record(session=session, operation=operation, body=body)
        if not known.get("reported_at"):
            dr_copy.remember(ctx, reported_at=finished_at.isoformat())

    return Step(REPORT_STEP, report, always=True)


def report_body(
    session: Session,
    operation: Operation,
    known: Mapping[str, Any],
    finished_at: datetime,
    *,
    kind: str,
    recovered_at: str | None,
) -> dict[str, Any]:
    """The report as `orchestrator/dr/reports.py` documents it."""
    started = dr_copy.timestamp(known.get("started_at")) or operation.started_at or finished_at
    recovered = dr_copy.timestamp(recovered_at)
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
        "kind": kind,
        "operation_id": str(operation.id),
        "service_id": str(operation.service_id),
        "ministry": _ministry_code(session, operation),
        "offering": catalog.get_offering(service.offering_id).id,
        "started_by": _started_by(session, operation),
        "started_at": started.isoformat(),
        "finished_at": finished_at.isoformat(),
        "rto_seconds": round((recovered - started).total_seconds(), 1) if recovered else None,
        # A restore point taken after the start (a failover's last backup of the primary) lost nothing.
        "rpo_seconds": round(max(0.0, (started - taken).total_seconds()), 1) if taken else None,
        # What the old site took in after the restore point and before the names moved is not in
        # the new one: for a failover or failback, the window in which writes were lost.
        **(
            {"data_loss_window_seconds": round((recovered - taken).total_seconds(), 1)}
            if kind != "drill" and recovered and taken
            else {}
        ),
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
        **({"dns": known["dns"]} if known.get("dns") else {}),
        **_approval_trail(session, operation),
    }


def _approval_trail(session: Session, operation: Operation) -> dict[str, Any]:
    """Who asked and who approved, for an operation started by an approved request."""
    if operation.request_id is None:
        return {}
    request = session.get(Request, operation.request_id)
    if request is None:
        return {}
    votes = session.exec(select(Approval).where(Approval.request_id == request.id).order_by(col(Approval.stage))).all()
    return {
        "request_id": str(request.id),
        "requested_by": _user(session, request.created_by),
        "justification": request.justification,
        "approved_by": [
            {"name": vote.voter, "role": vote.role, "reference": vote.reference, "comment": vote.comment}
            for vote in votes
        ],
    }


def _failed_check(step: str, error: str | None) -> str:
    if step in CHECK_STEPS and error:
        return error
    return f"{step}: {error or 'failed'}"


def _ministry_code(session: Session, operation: Operation) -> str:
    ministry = session.get(Ministry, operation.ministry_id)
    return ministry.code if ministry is not None else str(operation.ministry_id)


def _started_by(session: Session, operation: Operation) -> dict[str, Any]:
    return _user(session, operation.created_by)


def _user(session: Session, user_id: uuid.UUID | None) -> dict[str, Any]:
    user = session.get(User, user_id) if user_id else None
    if user is None:
        return {"kind": "system", "id": None, "name": "system"}
    kind = "automation" if user.role == Role.automation else "user"
    return {"kind": kind, "id": str(user.id), "name": user.username}
