"""Remove one device from a co-location service (`POST /v1/services/{id}/actions/remove-device`
`{"device": name}`): a removal work order for it, the technician's mark-removed (which takes the
device and its cables out of the DCIM), then the device leaves the service's devices, `apply`
drops its NIC ports and any reservation it still held is released. The service stays active;
its last device is not removed this way (decommission the service instead)."""

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from orchestrator.catalog import service as catalog
from orchestrator.dcim import service as dcim_placement
from orchestrator.dcim import work_orders
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.policy import Action
from orchestrator.ports import ProgressEvent
from orchestrator.services.models import Service
from orchestrator.workflows import devices, steps
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step, WaitingFor, Workflow

KIND = "remove-device"
REMOVED = "removed"


def check_parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"device"})
    if unknown:
        raise InvalidInput(f"remove-device takes no {', '.join(unknown)} (it takes device)", field=unknown[0])
    if not isinstance(body.get("device"), str) or not body["device"]:
        raise InvalidInput("name the device to remove", field="device")
    return {"device": body["device"]}


def check_for_service(session: Session, service: Service, checked: dict[str, Any]) -> dict[str, Any]:
    device = devices.named(service, checked["device"])
    field = devices.devices_from(catalog.get_offering(service.offering_id))
    if len(devices.listed(service.parameters, field)) == 1:
        raise Conflict(
            f"'{device}' is the service's last device; decommission the service instead", current_state=service.status
        )
    return checked


def wait_for_removal(ctx: StepContext) -> None:
    """The removal work order for the device while the DCIM still has it racked; the
    technician's mark-removed takes it out and signals `removed`."""
    field = devices.devices_from(ctx.inputs.offering)
    name = devices.operation_device(ctx)
    dcim = steps.dcim_of(ctx)
    subject = steps.subject_of(ctx, field)
    dcim_name = next((d.dcim_name for d in work_orders.order_devices(subject) if d.name == name), None)
    if dcim_name is None or dcim_name not in {d.name for d in dcim.installed(order_ref=subject.service_id)}:
        return
    order = work_orders.build(dcim=dcim, subject=subject, kind="removal")
    order["devices"] = [d for d in order["devices"] if d["name"] == name]
    ctx.emit(ProgressEvent(type="dcim.work_order", message=f"removal work order: device {name}", data=order))
    raise WaitingFor(REMOVED, f"device {name} still racked; waiting for the technician's mark-removed")


def drop(ctx: StepContext) -> None:
    """The device leaves the service's devices (so `apply` drops its ports) and whatever it
    still held in the DCIM (a reservation never installed) is released."""
    field = devices.devices_from(ctx.inputs.offering)
    name = devices.operation_device(ctx)
    dcim = steps.dcim_of(ctx)
    with ctx.transaction() as session:
        service = devices.locked(ctx, session)
        service_name = str(service.parameters.get("name") or ctx.inputs.offering.id)
        kept = [d for d in devices.listed(service.parameters, field) if d.get("name") != name]
        devices.set_devices(ctx, session, service, kept)
    dcim_name = dcim_placement.dcim_device_name(
        ministry_code=ctx.inputs.ministry_code, service_name=service_name, device=name
    )
    for reservation in dcim.reservations(order_ref=str(ctx.inputs.service_id)):
        if reservation.device_name == dcim_name:
            dcim.release(reservation_id=reservation.id)


WORKFLOW = Workflow(
    kind=KIND,
    summary="take one co-located device out of its rack and the service",
    steps=(
        Step("remove_device", wait_for_removal),
        Step("drop_device", drop),
        Step("apply", steps.apply),
    ),
    signals={REMOVED: Action.install_devices},
    day2_action=True,
    check_parameters=check_parameters,
    check_for_service=check_for_service,
)
