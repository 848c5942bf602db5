"""Co-location health: every device of the order is racked in the DCIM, Active, with the serial
the technician reported and its power cabled. There is nothing to probe over the network (the
ministry's own servers answer only their owners), so the DCIM is what confirms the service."""

from typing import Any

from orchestrator.dcim import connection
from orchestrator.health.polling import poll_until_passed
from orchestrator.ports import Dcim, EventSink, StepFailed

ACTIVE = "Active"


def problems(*, dcim: Dcim, order_ref: str, expected: int) -> list[str]:
    """What keeps the order's devices from being in service; empty when nothing does."""
    racked = dcim.installed(order_ref=order_ref)
    found = []
    if len(racked) != expected:
        found.append(f"{len(racked)} of {expected} devices are in the DCIM")
    for device in racked:
        if device.status != ACTIVE:
            found.append(f"{device.name} is {device.status or 'without a status'}, not {ACTIVE}")
        if not device.serial:
            found.append(f"{device.name} has no serial")
        if not device.power_feeds:
            found.append(f"{device.name} has no power supply cabled to a feed")
    return found


def check_dcim(
    spec: dict[str, Any],
    outputs: dict[str, Any],
    parameters: dict[str, Any],
    secret_vars: dict[str, Any],
    on_event: EventSink,
    deadline: float,
) -> bool:
    """`health_check: {kind: dcim, devices_from: devices}`: the stack names the order
    (`endpoints.dcim_order`), the order's parameter how many devices it has. One look: racked
    devices do not change by waiting."""
    order_ref = (outputs.get("endpoints") or {}).get("dcim_order")
    if not order_ref:
        raise StepFailed("the stack outputs no `dcim_order` endpoint: nothing names the devices to check")
    expected = len(parameters.get(str(spec.get("devices_from", "devices"))) or [])
    dcim = connection.require()

    def attempt() -> tuple[bool, str]:
        found = problems(dcim=dcim, order_ref=str(order_ref), expected=expected)
        return (not found, "; ".join(found) or f"all {expected} devices Active, with serials, powered")

    return poll_until_passed(
        attempt,
        describe=lambda seen: f"DCIM, order {order_ref}: {seen}",
        data={"order": str(order_ref)},
        deadline_seconds=0,
        on_event=on_event,
    )
