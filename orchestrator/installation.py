"""What technicians report: a device racked (mark-installed) or taken out (mark-removed).

A part of its own, apart from `dcim`: it drives the DCIM and signals workflows, and workflows'
steps use the DCIM, so inside `dcim` it would make an import cycle.

Each report changes the DCIM at once (the reservation becomes a device with its cables, or the
device and its cables go) and, when it was the last one the waiting operation needed, sends that
operation its signal (`installed` for provision/modify, `removed` for decommission). The
service row is locked for the whole report, so two technicians finishing the last two devices
at the same moment send the signal exactly once.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from orchestrator import policy
from orchestrator.actors import Actor
from orchestrator.audit import service as audit
from orchestrator.catalog import service as catalog
from orchestrator.dcim.work_orders import OrderDevice, Subject, addresses, order_devices
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.ministry import service as ministries
from orchestrator.operations import service as operations
from orchestrator.operations.models import Operation, OperationStatus, StepStatus
from orchestrator.ports import Dcim, InstalledDevice
from orchestrator.services import service as services
from orchestrator.services.models import Service
from orchestrator.workflows import commands

INSTALLED = "installed"
REMOVED = "removed"
MOVED = "moved"
REMOVE_DEVICE = "remove-device"  # the day-2 operation kind (orchestrator/workflows/remove_device.py)


@dataclass(frozen=True)
class Report:
    """What a mark-installed or mark-removed did."""

    device: str
    dcim_id: str | None
    done: int  # devices installed (or removed) so far
    total: int
    signalled: bool  # this report was the last: the operation has been queued again
    operation_id: uuid.UUID | None

    def public(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "dcim_id": self.dcim_id,
            "done": self.done,
            "total": self.total,
            "signalled": self.signalled,
            "operation_id": str(self.operation_id) if self.operation_id else None,
        }


def subject(*, session: Session, service: Service) -> Subject:
    offering = catalog.get_offering(service.offering_id)
    if offering.rack_devices_from is None:
        raise Conflict(f"service {service.id} ({offering.id}) has no devices to rack", current_state=service.status)
    ministry = ministries.get(session=session, ministry_id=service.ministry_id)
    return Subject(
        service_id=str(service.id),
        service_name=str(service.parameters.get("name") or offering.id),  # as the DCIM names were made
        ministry_code=ministry.code,
        ministry_name=ministry.name,
        parameters=service.parameters,
        endpoints=service.endpoints,
        devices_from=offering.rack_devices_from,
    )


def mark_installed(
    *, session: Session, actor: Actor, dcim: Dcim, service_id: uuid.UUID, device: str, serial: str
) -> Report:
    """The device is in its rack with this serial. Again with the same serial: nothing more
    (a technician's retry); with another serial: 409. 409 too when no operation of the service
    waits for its devices. The last device signals `installed`."""
    service, about, wanted = _locked(session=session, actor=actor, service_id=service_id, device=device)
    racked = {d.name: d for d in dcim.installed(order_ref=about.service_id)}
    already = racked.get(wanted.dcim_name)
    waiting = _waiting(session=session, service=service, signal=INSTALLED)
    if already is not None:
        if already.serial != serial:
            raise Conflict(
                f"device '{device}' is already installed with serial '{already.serial}', not '{serial}'",
                field="serial",
            )
        return _report(about, device, already.id, racked, waiting, signalled=False, installing=True)
    if waiting is None:
        raise Conflict(
            f"no operation of service {service_id} waits for its devices to be installed", current_state=service.status
        )
    reservation = next(
        (r for r in dcim.reservations(order_ref=about.service_id) if r.device_name == wanted.dcim_name), None
    )
    if reservation is None:
        raise Conflict(f"device '{device}' has no reservation in the DCIM to install it in", field="device")
    dcim_id = dcim.install(
        device=InstalledDevice(
            reservation=reservation,
            serial=serial,
            model=wanted.model,
            nic_count=wanted.nic_count,
            ip_addresses=_with_prefix(addresses(about.endpoints).get(wanted.name, []), about.endpoints),
            prefix=about.endpoints.get("subnet_cidr"),
        )
    )
    audit.record(
        session=session,
        actor=actor,
        entity="service",
        entity_id=service.id,
        ministry_id=service.ministry_id,
        action="device_installed",
        detail={"device": device, "dcim_name": wanted.dcim_name, "dcim_id": dcim_id, "serial": serial},
    )
    racked = {d.name: d for d in dcim.installed(order_ref=about.service_id)}
    everything = {d.dcim_name for d in order_devices(about)} <= set(racked)
    if everything:
        commands.signal(
            session=session, actor=actor, operation_id=waiting.id, name=INSTALLED, payload={"devices": len(racked)}
        )
    return _report(about, device, dcim_id, racked, waiting, signalled=everything, installing=True)


def mark_removed(*, session: Session, actor: Actor, dcim: Dcim, service_id: uuid.UUID, device: str) -> Report:
    """The device is out of its rack: it and its cables leave the DCIM. Again: nothing more.
    409 when no decommission waits for the removal. The last device signals `removed`."""
    service, about, wanted = _locked(session=session, actor=actor, service_id=service_id, device=device)
    waiting = _waiting(session=session, service=service, signal=REMOVED)
    if waiting is None:
        raise Conflict(
            f"no operation of service {service_id} waits for its devices to be removed", current_state=service.status
        )
    # A day-2 remove-device waits for its one device; a decommission for all of them.
    only = waiting.parameters.get("device") if waiting.kind == REMOVE_DEVICE else None
    if only is not None and only != device:
        raise Conflict(f"the removal under way is of device '{only}', not '{device}'", field="device")
    racked = {d.name: d for d in dcim.installed(order_ref=about.service_id)}
    gone = racked.pop(wanted.dcim_name, None)
    if gone is not None:
        dcim.remove(device_id=gone.id)
        audit.record(
            session=session,
            actor=actor,
            entity="service",
            entity_id=service.id,
            ministry_id=service.ministry_id,
            action="device_removed",
            detail={"device": device, "dcim_name": wanted.dcim_name, "dcim_id": gone.id, "serial": gone.serial},
        )
    done = only is not None or not racked
    if done:
        commands.signal(
            session=session, actor=actor, operation_id=waiting.id, name=REMOVED, payload={"devices": len(racked)}
        )
    return _report(about, device, gone.id if gone else None, racked, waiting, signalled=done, installing=False)


def mark_moved(*, session: Session, actor: Actor, dcim: Dcim, service_id: uuid.UUID, device: str) -> Report:
    """The device stands at the units its move reserved: the DCIM device goes there, re-cabled
    in its new rack, and the reservation goes; the move-device operation is signalled. 409 when
    no move of that device waits."""
    service, about, wanted = _locked(session=session, actor=actor, service_id=service_id, device=device)
    waiting = _waiting(session=session, service=service, signal=MOVED)
    if waiting is None:
        raise Conflict(
            f"no operation of service {service_id} waits for a device to be moved", current_state=service.status
        )
    if waiting.parameters.get("device") != device:
        raise Conflict(
            f"the move under way is of device '{waiting.parameters.get('device')}', not '{device}'", field="device"
        )
    racked = next((d for d in dcim.installed(order_ref=about.service_id) if d.name == wanted.dcim_name), None)
    target = next((r for r in dcim.reservations(order_ref=about.service_id) if r.device_name == wanted.dcim_name), None)
    if racked is None:
        raise Conflict(f"device '{device}' is not installed in the DCIM", field="device")
    if target is not None:  # otherwise an earlier report moved it and this one only signals again
        dcim.move(device_id=racked.id, reservation=target)
        audit.record(
            session=session,
            actor=actor,
            entity="service",
            entity_id=service.id,
            ministry_id=service.ministry_id,
            action="device_moved",
            detail={
                "device": device,
                "dcim_id": racked.id,
                "from": {"rack_id": racked.rack_id, "position": racked.span.position},
                "to": {"rack_id": target.rack_id, "position": target.span.position},
            },
        )
    commands.signal(session=session, actor=actor, operation_id=waiting.id, name=MOVED, payload={"device": device})
    return Report(device=device, dcim_id=racked.id, done=1, total=1, signalled=True, operation_id=waiting.id)


def _locked(
    *, session: Session, actor: Actor, service_id: uuid.UUID, device: str
) -> tuple[Service, Subject, OrderDevice]:
    """The service locked (404 for another ministry's), the caller allowed, the device known (422)."""
    service = services.lock(session=session, service_id=service_id, actor=actor)
    policy.require(actor, policy.Action.install_devices, ministry_id=service.ministry_id)
    about = subject(session=session, service=service)
    wanted = next((d for d in order_devices(about) if d.name == device), None)
    if wanted is None:
        known = ", ".join(d.name for d in order_devices(about)) or "none"
        raise InvalidInput(f"service {service_id} has no device '{device}' (devices: {known})", field="device")
    return service, about, wanted


def _waiting(*, session: Session, service: Service, signal: str) -> Operation | None:
    for operation in operations.list_for_service(session=session, service_id=service.id):
        if operation.status != OperationStatus.waiting:
            continue
        if any(s.status == StepStatus.waiting and s.waiting_for == signal for s in operation.step_list()):
            return operation
    return None


def _with_prefix(found: list[str], endpoints: Any) -> tuple[str, ...]:
    """`10.0.0.5` -> `10.0.0.5/24` with the subnet's length: how the DCIM's IPAM records it."""
    cidr = endpoints.get("subnet_cidr")
    length = ipaddress.ip_network(str(cidr), strict=False).prefixlen if cidr else None
    return tuple(a if "/" in a or length is None else f"{a}/{length}" for a in found)


def _report(
    about: Subject,
    device: str,
    dcim_id: str | None,
    racked: dict[str, Any],
    waiting: Operation | None,
    *,
    signalled: bool,
    installing: bool,
) -> Report:
    total = len(order_devices(about))
    return Report(
        device=device,
        dcim_id=dcim_id,
        done=len(racked) if installing else total - len(racked),
        total=total,
        signalled=signalled,
        operation_id=waiting.id if waiting else None,
    )
