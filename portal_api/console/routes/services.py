"""Services: the list, one service (endpoints, operations, DR reports, restore points), its
credentials shown once, and the day-2 actions its offering allows."""

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from orchestrator.actors import Actor
from orchestrator.backup import restore_points
from orchestrator.catalog import service as catalog
from orchestrator.dr import reports as dr_reports
from orchestrator.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from orchestrator.mail import domain as mail_domain
from orchestrator.operations import service as operations
from orchestrator.requests.models import RequestKind
from orchestrator.services import service as services
from orchestrator.services.models import Service, ServiceStatus
from orchestrator.workflows import commands
from portal_api import problems
from portal_api.console import i18n
from portal_api.console.csrf import CsrfDep
from portal_api.console.session import PATH, ConsoleActorDep
from portal_api.console.templating import page_language, render
from portal_api.deps import SessionDep, UowDep
from portal_api.pagination import OffsetQuery

router = APIRouter(prefix=PATH, include_in_schema=False)

PAGE_SIZE = 25
DR_KINDS = ("drill", "failover", "failback")
# Actions that need more than a button (an uploaded archive, a restore point): the API has them.
NOT_A_BUTTON = frozenset({"deploy-content"})
# Actions that start from a restore point (the latest unless one is chosen).
POINT_IN_TIME = ("drill", "restore")


@router.get("/services")
def service_list(
    request: Request,
    session: SessionDep,
    actor: ConsoleActorDep,
    status: Annotated[ServiceStatus | None, Query()] = None,
    offset: OffsetQuery = 0,
) -> Response:
    rows, total = services.list_services(session=session, actor=actor, status=status, limit=PAGE_SIZE, offset=offset)
    return render(
        request,
        "staff/services.html",
        {
            "nav": "services",
            "rows": rows,
            "total": total,
            "limit": PAGE_SIZE,
            "offset": offset,
            "status": status,
            "statuses": list(ServiceStatus),
            "page_url": f"{PATH}/services" + (f"?status={status}" if status else ""),
        },
    )


def _dr_reports(session: Session, service_operations: list[Any]) -> list[dict[str, Any]]:
    found = []
    for operation in service_operations:
        if operation.kind not in DR_KINDS:
            continue
        report = dr_reports.for_operation(session=session, operation_id=operation.id)
        if report is not None:
            body = json.loads(report.body)
            found.append({"operation": operation, "recorded_at": report.recorded_at, "body": body})
    return found


def _actions(service: Service) -> list[str]:
    offering = catalog.catalog().get(service.offering_id)
    if offering is None:
        return []
    offered = ["backup"] if offering.backup_tier != "none" else []
    offered += [name for name in sorted(offering.day2_playbooks) if name not in NOT_A_BUTTON]
    return offered


def _point_in_time(service: Service) -> list[str]:
    offering = catalog.catalog().get(service.offering_id)
    if offering is None or service.status != ServiceStatus.active:
        return []
    offered = ["restore"] if offering.backup_tier != "none" else []
    return offered + (["drill"] if offering.dr_tier != "none" else [])


def _service_page(
    request: Request,
    session: Session,
    actor: Actor,
    service_id: uuid.UUID,
    *,
    revealed: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    service = services.get(session=session, actor=actor, service_id=service_id)
    offering = catalog.catalog().get(service.offering_id)
    service_operations = list(operations.list_for_service(session=session, service_id=service_id))
    points = list(
        restore_points.list_for_service(session=session, actor=actor, service_id=service_id, include_pruned=False)
    )
    return render(
        request,
        "staff/service.html",
        {
            "nav": "services",
            "service": service,
            "offering": offering,
            "plan": offering.plan(service.plan) if offering else None,
            "other_plans": [p for p in offering.plans if p.id != service.plan] if offering else [],
            "operations": list(reversed(service_operations)),
            "dr_reports": _dr_reports(session, service_operations),
            "restore_points": points[:20],
            "actions": _actions(service) if service.status == ServiceStatus.active else [],
            "point_in_time": _point_in_time(service) if points else [],
            "dr_moves": offering is not None and offering.dr_tier != "none" and service.status == ServiceStatus.active,
            "revealed": revealed,
            "message": message,
        },
        status_code=status_code,
    )


@router.get("/services/{service_id}")
def service_page(request: Request, service_id: uuid.UUID, session: SessionDep, actor: ConsoleActorDep) -> Response:
    return _service_page(request, session, actor, service_id)


def _refused(request: Request, uow: UowDep, actor: Actor, service_id: uuid.UUID, refused: DomainError) -> Response:
    """An action the service cannot take now: its page again, saying why."""
    if isinstance(refused, (NotFound, PermissionDenied)):
        raise refused
    uow.session.rollback()
    status = problems.status_for(refused)
    # Fixed messages are in the catalogues; a service's own refusal (English) shows as it is.
    message = i18n.gettext(page_language(request), refused.detail)
    return _service_page(request, uow.session, actor, service_id, message=message, status_code=status)


@router.post("/services/{service_id}/credentials")
def reveal_credentials(
    request: Request, service_id: uuid.UUID, uow: UowDep, actor: ConsoleActorDep, _: CsrfDep
) -> Response:
    try:
        shown = mail_domain.reveal_credentials(session=uow.session, actor=actor, service_id=service_id)
    except (Conflict, InvalidInput) as refused:
        return _refused(request, uow, actor, service_id, refused)
    uow.commit()  # the record of the showing lands before the secrets leave
    response = _service_page(request, uow.session, actor, service_id, revealed=shown)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/services/{service_id}/actions/{action}")
def run_action(
    request: Request,
    service_id: uuid.UUID,
    action: str,
    uow: UowDep,
    actor: ConsoleActorDep,
    _: CsrfDep,
    restore_point: Annotated[str, Form(max_length=64)] = "",
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    if action in NOT_A_BUTTON:
        raise NotFound(f"'{action}' is not offered on this page")
    if action == "restore" and confirm != "yes":
        # A restore replaces the service's data: the form says so and asks for a tick.
        refused = InvalidInput("Tick the box to confirm that the service's data will be replaced.", field="confirm")
        return _refused(request, uow, actor, service_id, refused)
    body = {"restore_point": restore_point} if action in POINT_IN_TIME and restore_point else None
    try:
        operation = commands.run_action(
            session=uow.session, actor=actor, service_id=service_id, action=action, body=body
        )
    except DomainError as refused:
        return _refused(request, uow, actor, service_id, refused)
    uow.commit()
    return RedirectResponse(f"{PATH}/operations/{operation.id}", status_code=303)


@router.post("/services/{service_id}/resize")
def resize(
    request: Request,
    service_id: uuid.UUID,
    uow: UowDep,
    actor: ConsoleActorDep,
    _: CsrfDep,
    plan: Annotated[str, Form(max_length=64)] = "",
    justification: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        done = commands.resize(
            session=uow.session, actor=actor, service_id=service_id, plan_id=plan, justification=justification
        )
    except DomainError as refused:
        return _refused(request, uow, actor, service_id, refused)
    uow.commit()
    if done.request is not None:
        return RedirectResponse(f"{PATH}/requests/{done.request.id}", status_code=303)
    assert done.operation is not None
    return RedirectResponse(f"{PATH}/operations/{done.operation.id}", status_code=303)


@router.post("/services/{service_id}/dr/{move}")
def dr_move(
    request: Request,
    service_id: uuid.UUID,
    move: str,
    uow: UowDep,
    actor: ConsoleActorDep,
    _: CsrfDep,
    justification: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    kinds = {"failover": RequestKind.failover, "failback": RequestKind.failback}
    if move not in kinds:
        raise NotFound("no such move")
    try:
        asked = commands.request_dr_move(
            session=uow.session, actor=actor, service_id=service_id, kind=kinds[move], justification=justification
        )
    except DomainError as refused:
        return _refused(request, uow, actor, service_id, refused)
    uow.commit()
    return RedirectResponse(f"{PATH}/requests/{asked.id}", status_code=303)


@router.get("/services/{service_id}/decommission")
def confirm_decommission(
    request: Request, service_id: uuid.UUID, session: SessionDep, actor: ConsoleActorDep
) -> Response:
    service = services.get(session=session, actor=actor, service_id=service_id)
    return render(request, "staff/decommission.html", {"nav": "services", "service": service, "error": False})


@router.post("/services/{service_id}/decommission")
def decommission(
    request: Request,
    service_id: uuid.UUID,
    uow: UowDep,
    actor: ConsoleActorDep,
    _: CsrfDep,
    confirm: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    service = services.get(session=uow.session, actor=actor, service_id=service_id)
    if confirm.strip() != service.name:
        # Destroying a service and its data is said twice: by the button and by its name typed.
        return render(
            request,
            "staff/decommission.html",
            {"nav": "services", "service": service, "error": True},
            status_code=422,
        )
    try:
        operation = commands.decommission(session=uow.session, actor=actor, service_id=service_id)
    except DomainError as refused:
        return _refused(request, uow, actor, service_id, refused)
    uow.commit()
    return RedirectResponse(f"{PATH}/operations/{operation.id}", status_code=303)
