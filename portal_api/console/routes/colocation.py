"""Co-location work orders for the data centre's technicians: each racked service's devices, where
they go (site, room, rack, units), their power, and what is done; with the reports the API offers
(`mark-installed`, `mark-removed`) as forms."""

import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from orchestrator import installation, policy
from orchestrator.actors import Actor
from orchestrator.catalog import service as catalog
from orchestrator.database.unit_of_work import UnitOfWork
from orchestrator.dcim import connection, work_orders
from orchestrator.errors import DomainError, Unavailable
from orchestrator.policy import Action
from orchestrator.ports import Dcim
from orchestrator.services import service as services
from orchestrator.services.models import ServiceStatus
from portal_api import problems
from portal_api.console.csrf import CsrfDep
from portal_api.console.session import PATH, ConsoleActorDep
from portal_api.console.templating import render
from portal_api.deps import SessionDep, UowDep
from portal_api.routers.colocation import DEVICE_NAME, SERIAL

router = APIRouter(prefix=f"{PATH}/colocation", include_in_schema=False)

MAX_SERVICES = 100
SERIAL_INVALID = "A serial number is 1 to 64 letters, digits, dots, dashes, slashes or underscores."
# A retired service's devices are gone; nothing is left to do for it.
DONE = frozenset({ServiceStatus.retired})


def _work_orders(session: Session, actor: Actor, dcim: Dcim) -> list[dict[str, Any]]:
    """Every visible service of an offering that racks devices, with its work order from the DCIM."""
    orders = []
    for offering in catalog.list_offerings():
        if offering.rack_devices_from is None:
            continue
        rows, _ = services.list_services(session=session, actor=actor, offering_id=offering.id, limit=MAX_SERVICES)
        for service in rows:
            if service.status in DONE:
                continue
            kind: work_orders.Kind = "removal" if service.status == ServiceStatus.decommissioning else "installation"
            subject = installation.subject(session=session, service=service)
            orders.append({"service": service, "order": work_orders.build(dcim=dcim, subject=subject, kind=kind)})
    return orders


def _page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    errors: Mapping[tuple[str, str], str] | None = None,
    done: str = "",
    status_code: int = 200,
) -> Response:
    policy.require(actor, Action.install_devices)
    context: dict[str, Any] = {
        "nav": "colocation",
        "configured": False,
        "orders": [],
        "errors": errors or {},
        "done": done,
        "unavailable": False,
    }
    dcim = connection.connect()
    if dcim is not None:
        context["configured"] = True
        try:
            context["orders"] = _work_orders(session, actor, dcim)
        except Unavailable:
            context["unavailable"] = True
            status_code = 503
    listed = {(str(o["service"].id), d["name"]) for o in context["orders"] for d in o["order"]["devices"]}
    # A refusal about a device the page does not list (a forged or stale form) shows above the orders.
    context["report_problem"] = next((message for key, message in context["errors"].items() if key not in listed), "")
    return render(request, "operator/colocation.html", context, status_code=status_code)


@router.get("")
def work_order_list(request: Request, session: SessionDep, actor: ConsoleActorDep) -> Response:
    done = request.query_params.get("done", "")
    return _page(request, session, actor, done=done if done in ("installed", "removed") else "")


def _report(
    request: Request,
    uow: UnitOfWork,
    actor: Actor,
    service_id: uuid.UUID,
    device: str,
    serial: str | None,
) -> Response:
    """Record a technician's report through the installation service; a refusal shows at the device."""
    services.get(session=uow.session, actor=actor, service_id=service_id)  # another ministry's: 404 first
    key = (str(service_id), device)
    if not re.fullmatch(DEVICE_NAME, device):
        return _page(request, uow.session, actor, errors={key: "No such device."}, status_code=422)
    if serial is not None and not re.fullmatch(SERIAL, serial):
        return _page(request, uow.session, actor, errors={key: SERIAL_INVALID}, status_code=422)
    dcim = connection.require()
    try:
        if serial is not None:
            installation.mark_installed(
                session=uow.session, actor=actor, dcim=dcim, service_id=service_id, device=device, serial=serial
            )
        else:
            installation.mark_removed(session=uow.session, actor=actor, dcim=dcim, service_id=service_id, device=device)
    except DomainError as exc:
        if exc.field not in ("device", "serial"):
            raise
        uow.rollback()
        return _page(request, uow.session, actor, errors={key: exc.detail}, status_code=problems.status_for(exc))
    uow.commit()
    return RedirectResponse(f"{PATH}/colocation?done={'installed' if serial is not None else 'removed'}", 303)


@router.post("/{service_id}/installed")
def mark_installed(
    service_id: uuid.UUID,
    request: Request,
    uow: UowDep,
    actor: ConsoleActorDep,
    _: CsrfDep,
    device: Annotated[str, Form(max_length=64)],
    serial: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    return _report(request, uow, actor, service_id, device, serial.strip())


@router.post("/{service_id}/removed")
def mark_removed(
    service_id: uuid.UUID,
    request: Request,
    uow: UowDep,
    actor: ConsoleActorDep,
    _: CsrfDep,
    device: Annotated[str, Form(max_length=64)],
) -> Response:
    return _report(request, uow, actor, service_id, device, None)
