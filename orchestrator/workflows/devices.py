"""What the co-location day-2 actions share: the device the operation is about, the service's
devices as its parameters hold them, and changing that list for the rest of the run."""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlmodel import Session

from orchestrator.catalog import service as catalog
from orchestrator.catalog.models import Offering
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.operations.models import Operation
from orchestrator.ports import StepFailed
from orchestrator.services import service as services
from orchestrator.services.models import Service
from orchestrator.workflows.context import StepContext


def devices_from(offering: Offering) -> str:
    """The parameter holding the service's devices; 409 for an offering that racks none."""
    if offering.rack_devices_from is None:
        raise Conflict(f"offering {offering.id} has no devices to rack", field="action")
    return offering.rack_devices_from


def listed(parameters: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    return [dict(item) for item in parameters.get(field) or []]


def named(service: Service, device: Any) -> str:
    """A device of the service by its name (422 naming `device` otherwise)."""
    field = devices_from(catalog.get_offering(service.offering_id))
    names = [str(d.get("name")) for d in listed(service.parameters, field)]
    if not isinstance(device, str) or device not in names:
        raise InvalidInput(
            f"service {service.id} has no device '{device}' (devices: {', '.join(names) or 'none'})", field="device"
        )
    return device


def operation_parameters(ctx: StepContext) -> dict[str, Any]:
    with ctx.transaction() as session:
        operation = session.get(Operation, ctx.operation_id)
        assert operation is not None
        return dict(operation.parameters)


def operation_device(ctx: StepContext) -> str:
    device = operation_parameters(ctx).get("device")
    if not device:
        raise StepFailed("the operation names no device")
    return str(device["name"] if isinstance(device, Mapping) else device)


def set_devices(ctx: StepContext, session: Session, service: Service, devices: list[dict[str, Any]]) -> None:
    """The service's devices become `devices`, for the stack of this run too (`apply` after it
    makes or drops their NIC ports)."""
    field = devices_from(ctx.inputs.offering)
    service.parameters = {**service.parameters, field: devices}
    session.add(service)
    ctx.inputs = replace(ctx.inputs, parameters=dict(service.parameters))


def locked(ctx: StepContext, session: Session) -> Service:
    return services.lock(session=session, service_id=ctx.inputs.service_id)
