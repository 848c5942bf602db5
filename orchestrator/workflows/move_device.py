"""Move an installed co-located device (`POST /v1/services/{id}/actions/move-device`
`{"device": name, "rack"?: rack name}`): new units are reserved in another rack (or in the rack
named, which may be its own), a move work order names where from and where to, and the operation
waits for the technician's `POST /v1/services/{id}/actions/mark-moved` `{"device": name}`, which
moves the DCIM device to the reserved units, re-cables it there and drops the reservation. The
device keeps its NIC ports and addresses: the stack does not change. The service stays active."""

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from orchestrator.config import get_settings
from orchestrator.dcim import placement, work_orders
from orchestrator.dcim import service as dcim_placement
from orchestrator.errors import InvalidInput
from orchestrator.policy import Action
from orchestrator.ports import Dcim, ProgressEvent, RackedDevice, RackInfo, Reservation, StepFailed, UnitSpan
from orchestrator.services.models import Service
from orchestrator.workflows import devices, steps
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step, WaitingFor, Workflow

KIND = "move-device"
MOVED = "moved"


def check_parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"device", "rack"})
    if unknown:
        raise InvalidInput(f"move-device takes no {', '.join(unknown)} (it takes device, rack)", field=unknown[0])
    if not isinstance(body.get("device"), str) or not body["device"]:
        raise InvalidInput("name the device to move", field="device")
    rack = body.get("rack")
    if rack is not None and (not isinstance(rack, str) or not 0 < len(rack) <= 100):
        raise InvalidInput("rack is a rack's name in the DCIM", field="rack")
    return {"device": body["device"], **({"rack": rack} if rack else {})}


def check_for_service(session: Session, service: Service, checked: dict[str, Any]) -> dict[str, Any]:
    devices.named(service, checked["device"])
    return checked


def _where(ctx: StepContext) -> tuple[Dcim, work_orders.Subject, work_orders.OrderDevice, RackedDevice | None]:
    """The DCIM, the service, the device the operation moves, and where the DCIM has it racked."""
    dcim = steps.dcim_of(ctx)
    subject = steps.subject_of(ctx, devices.devices_from(ctx.inputs.offering))
    name = devices.operation_device(ctx)
    device = next((d for d in work_orders.order_devices(subject) if d.name == name), None)
    if device is None:
        raise StepFailed(f"the service has no device '{name}' any more")
    racked = next((d for d in dcim.installed(order_ref=subject.service_id) if d.name == device.dcim_name), None)
    return dcim, subject, device, racked


def _held(dcim: Dcim, subject: work_orders.Subject, device: work_orders.OrderDevice) -> Reservation | None:
    return next((r for r in dcim.reservations(order_ref=subject.service_id) if r.device_name == device.dcim_name), None)


def reserve(ctx: StepContext) -> None:
    """New units for the device under the site's lock, as full depth: it may not share units
    with anything, whatever faces they have. A resumed run keeps the reservation it made."""
    dcim, subject, device, racked = _where(ctx)
    if racked is None:
        raise StepFailed(f"device '{device.name}' is not installed in the DCIM; there is nothing to move")
    if _held(dcim, subject, device) is not None:
        return
    item = next(d for d in devices.listed(subject.parameters, subject.devices_from) if d.get("name") == device.name)
    request = placement.DeviceRequest(
        name=device.dcim_name,
        height_u=racked.span.height,
        draw_w=float(item.get("power_watts", 0)),
        weight_kg=float(item.get("weight_kg", 0)),
        nic_count=device.nic_count,
        full_depth=True,
    )
    wanted = devices.operation_parameters(ctx).get("rack")
    site = get_settings().dcim_site
    with ctx.transaction() as session:
        dcim_placement.lock_site(session=session, site=site)
        found = dcim.racks(site=site)
        racks = _candidates(found, racked, wanted, site)
        held = dcim.reservations(ministry_code=subject.ministry_code)
        ours = dcim_placement.ministry_racks(racks=found, held=held, ministry_code=subject.ministry_code)
        ours -= {racked.rack_id}
        result = placement.place(racks=racks, devices=[request], ministry_rack_ids=ours, site=site)
        if not result.ok:
            refusal = result.refusals[0]
            where = f"rack '{wanted}'" if wanted else f"another rack of site '{site}'"
            raise StepFailed(
                f"device '{device.name}' does not fit in {where}: not enough {refusal.reason.value}: "
                f"{refusal.detail}; nothing was reserved"
            )
        spot = result.placements[0]
        dcim.reserve(
            rack_id=spot.rack_id,
            span=UnitSpan(spot.position, spot.height_u, spot.depth),
            ministry_code=subject.ministry_code,
            order_ref=subject.service_id,
            device_name=device.dcim_name,
            feed_id=spot.feed_id,
            draw_w=spot.draw_w,
            weight_kg=spot.weight_kg,
        )


def _candidates(racks: list[RackInfo], racked: RackedDevice, wanted: str | None, site: str) -> list[RackInfo]:
    if wanted is None:
        return [r for r in racks if r.id != racked.rack_id]
    named = [r for r in racks if r.name == wanted]
    if not named:
        raise StepFailed(f"site '{site}' has no rack named '{wanted}'")
    return named


def wait_for_move(ctx: StepContext) -> None:
    """The move work order while the reservation stands; mark-moved moves the DCIM device to
    it (the reservation goes) and signals `moved`."""
    dcim, subject, device, racked = _where(ctx)
    target = _held(dcim, subject, device)
    if target is None:
        if racked is None:
            raise StepFailed(f"device '{device.name}' is neither reserved for its move nor racked")
        ctx.emit(ProgressEvent(type="dcim.moved", message=f"device {device.name} moved", data={"device": device.name}))
        return
    racks = {r.id: r for r in dcim.racks()}
    order = {
        "kind": "move",
        "service": {"id": subject.service_id, "name": subject.service_name},
        "ministry": {"code": subject.ministry_code, "name": subject.ministry_name},
        "device": device.name,
        "dcim_name": device.dcim_name,
        "from": _place(racks, racked.rack_id, racked.span) if racked else None,
        "to": {**_place(racks, target.rack_id, target.span), "power_feed": _feed(racks, target)},
    }
    ctx.emit(ProgressEvent(type="dcim.work_order", message=f"move work order: device {device.name}", data=order))
    raise WaitingFor(MOVED, f"device {device.name} to move; waiting for the technician's mark-moved")


def _place(racks: Mapping[str, RackInfo], rack_id: str, span: UnitSpan) -> dict[str, Any]:
    rack = racks.get(rack_id)
    return {
        "site": rack.site if rack else None,
        "room": rack.room if rack else None,
        "rack": rack.name if rack else rack_id,
        "position": span.position,
        "height": span.height,
    }


def _feed(racks: Mapping[str, RackInfo], target: Reservation) -> str:
    rack = racks.get(target.rack_id)
    return next((f.name for f in rack.feeds if f.id == target.feed_id), target.feed_id) if rack else target.feed_id


WORKFLOW = Workflow(
    kind=KIND,
    summary="reserve new units for a co-located device and wait for the technician to move it",
    steps=(
        Step("reserve_new_place", reserve),
        Step("move_device", wait_for_move),
    ),
    signals={MOVED: Action.install_devices},
    day2_action=True,
    check_parameters=check_parameters,
    check_for_service=check_for_service,
)
