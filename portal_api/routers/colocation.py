"""Co-location: a service's work order, and what technicians report (mark-installed, mark-removed,
mark-moved).

Mounted before the services router: `/actions/mark-installed`, `/mark-removed` and `/mark-moved` are
reports about hardware, not day-2 workflows, and must not fall into `/actions/{action}`.
"""

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from orchestrator import installation
from orchestrator.dcim import connection, work_orders
from orchestrator.services import service as services
from orchestrator.services.models import ServiceStatus
from portal_api.deps import ActorDep, SessionDep, UowDep

router = APIRouter(prefix="/v1/services", tags=["co-location"])

DEVICE_NAME = r"^[a-z][a-z0-9-]{0,30}$"
SERIAL = r"^[A-Za-z0-9._/-]{1,64}$"


class MarkInstalled(BaseModel):
    device: str = Field(pattern=DEVICE_NAME, description="The device's name in the order.", examples=["app-1"])
    serial: str = Field(pattern=SERIAL, description="The serial number on the racked device.", examples=["CZ1234"])


class MarkRemoved(BaseModel):
    device: str = Field(pattern=DEVICE_NAME, description="The device's name in the order.", examples=["app-1"])


class DeviceReport(BaseModel):
    device: str
    dcim_id: str | None = Field(description="The device's id in the DCIM (None: it was already gone).")
    done: int = Field(description="Devices of the service installed (mark-installed) or removed (mark-removed) so far.")
    total: int
    signalled: bool = Field(description="This report was the last one: the waiting operation goes on.")
    operation_id: str | None


@router.get(
    "/{service_id}/work-order",
    summary="The technicians' work order: where each device goes, its power, patch ports and addresses",
    responses={
        200: {"content": {"text/html": {}}, "description": "JSON, or a printable page with `Accept: text/html`."},
        409: {"description": "The service racks no devices, or no DCIM is configured"},
    },
)
def get_work_order(service_id: uuid.UUID, request: Request, session: SessionDep, actor: ActorDep) -> Any:
    service = services.get(session=session, actor=actor, service_id=service_id)
    subject = installation.subject(session=session, service=service)
    kind: work_orders.Kind = (
        "removal" if service.status in {ServiceStatus.decommissioning, ServiceStatus.retired} else "installation"
    )
    order = work_orders.build(dcim=connection.require(), subject=subject, kind=kind)
    if _wants_html(request.headers.get("accept", "")):
        return HTMLResponse(work_orders.render_html(order))
    return JSONResponse(order)


def _wants_html(accept: str) -> bool:
    """HTML only when asked for ahead of JSON (browsers send text/html first)."""
    kinds = [part.split(";")[0].strip() for part in accept.split(",")]
    html = kinds.index("text/html") if "text/html" in kinds else None
    json = kinds.index("application/json") if "application/json" in kinds else None
    return html is not None and (json is None or html < json)


@router.post(
    "/{service_id}/actions/mark-installed",
    summary="A technician racked a device: it becomes a DCIM device with its serial, power and network cables",
    responses={409: {"description": "Installed with another serial, or no operation waits for the devices"}},
)
def mark_installed(service_id: uuid.UUID, body: MarkInstalled, uow: UowDep, actor: ActorDep) -> DeviceReport:
    services.get(session=uow.session, actor=actor, service_id=service_id)  # 404 before 409 (no DCIM)
    report = installation.mark_installed(
        session=uow.session,
        actor=actor,
        dcim=connection.require(),
        service_id=service_id,
        device=body.device,
        serial=body.serial,
    )
    uow.commit()
    return DeviceReport.model_validate(report.public())


@router.post(
    "/{service_id}/actions/mark-removed",
    summary="A technician took a device out: it and its cables leave the DCIM",
    responses={409: {"description": "No decommission waits for the devices"}},
)
def mark_removed(service_id: uuid.UUID, body: MarkRemoved, uow: UowDep, actor: ActorDep) -> DeviceReport:
    services.get(session=uow.session, actor=actor, service_id=service_id)
    report = installation.mark_removed(
        session=uow.session, actor=actor, dcim=connection.require(), service_id=service_id, device=body.device
    )
    uow.commit()
    return DeviceReport.model_validate(report.public())


@router.post(
    "/{service_id}/actions/mark-moved",
    summary="A technician moved a device to the units its move-device reserved: the DCIM device follows, re-cabled",
    responses={409: {"description": "No move of that device waits"}},
)
def mark_moved(service_id: uuid.UUID, body: MarkRemoved, uow: UowDep, actor: ActorDep) -> DeviceReport:
    services.get(session=uow.session, actor=actor, service_id=service_id)
    report = installation.mark_moved(
        session=uow.session, actor=actor, dcim=connection.require(), service_id=service_id, device=body.device
    )
    uow.commit()
    return DeviceReport.model_validate(report.public())
