"""The co-location installation workflow on the real PostgreSQL, a real procrastinate worker, the
real runner, requests, policy and audit: an approved order's provision waits at `install_devices`
until technicians have marked every device installed, then goes `active`; decommission waits at
`remove_devices` until every device is marked removed, then retires the service with no unit,
feed or reservation left.

The DCIM is an in-memory double (`InstallingDcimDouble`, at the `ports.Dcim` boundary): the
integration tier has no Nautobot. What Nautobot does with an installation (devices, cables, IPs)
is proven against the real one in tests/cloud/test_dcim_nautobot.py; here it is the workflow's
waiting, signals and state that are under test. Through the API (which has no DCIM in this tier)
only what does not need one: 404 for another ministry's service, 401, 409 without a DCIM.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from orchestrator import installation
from orchestrator.catalog import service as catalog
from orchestrator.config import get_settings
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.dcim import connection, work_orders
from orchestrator.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from orchestrator.jobs import queue
from orchestrator.operations.models import Operation, OperationStatus, StepStatus
from orchestrator.ports import Depth, InstalledDevice, RackedDevice, Reservation, UnitSpan
from orchestrator.requests import service as requests
from orchestrator.requests.models import ApprovalCreate, Decision, RequestCreate
from orchestrator.services.models import Service, ServiceStatus
from orchestrator.workflows import commands
from tests.conftest import Account, Database, Platform, Tenant, make_tenant
from tests.integration.dcim_double import DcimDouble, small_site

pytestmark = pytest.mark.integration

PATCH_PORTS = 24


class InstallingDcimDouble(DcimDouble):
    """The placement double plus what installation needs: racked devices with their feeds and
    patch ports, taken out again by `remove`. Like Nautobot, an installed device keeps its units."""

    def __init__(self) -> None:
        super().__init__(small_site())
        self.devices: dict[str, RackedDevice] = {}
        self.cabled: dict[str, set[str]] = {}  # rack id -> patch ports in use

    def install(self, *, device: InstalledDevice) -> str:
        res = device.reservation
        existing = next((d for d in self.devices.values() if d.name == res.device_name), None)
        if existing is not None:
            return existing.id
        rack = next(r for r in self._racks.values() if r.id == res.rack_id)
        ports = self.free_patch_ports(rack_id=res.rack_id)[: device.nic_count]
        self.cabled.setdefault(res.rack_id, set()).update(ports)
        made = RackedDevice(
            id=uuid.uuid4().hex,
            name=res.device_name,
            rack_id=res.rack_id,
            span=res.span,
            serial=device.serial,
            status="Active",
            ministry_code=res.ministry_code,
            order_ref=res.order_ref,
            power_feeds=tuple(sorted(f.name for f in rack.feeds)),
            patch_ports=tuple(ports),
            ip_addresses=device.ip_addresses,
        )
        self.devices[made.id] = made
        # the units stay taken: the device holds them now instead of the reservation
        self._racks[rack.id] = replace(rack, occupied=(*rack.occupied, res.span))
        self.release(reservation_id=res.id)
        return made.id

    def installed(self, *, order_ref: str) -> list[RackedDevice]:
        return sorted((d for d in self.devices.values() if d.order_ref == order_ref), key=lambda d: d.name)

    def remove(self, *, device_id: str) -> None:
        gone = self.devices.pop(device_id, None)
        if gone is None:
            return
        self.cabled[gone.rack_id] -= set(gone.patch_ports)
        rack = self._racks[gone.rack_id]
        occupied = list(rack.occupied)
        occupied.remove(gone.span)
        self._racks[rack.id] = replace(rack, occupied=tuple(occupied))

    def free_patch_ports(self, *, rack_id: str) -> list[str]:
        used = self.cabled.get(rack_id, set())
        return [f"port-{n}" for n in range(1, PATCH_PORTS + 1) if f"port-{n}" not in used]

    def move(self, *, device_id: str, reservation: Reservation) -> None:
        """As Nautobot's adapter: unplugged, taken out of its old units, racked and cabled at the
        reserved ones; serial and addresses kept, the reservation gone."""
        device = self.devices[device_id]
        self.remove(device_id=device_id)
        at = self.install(
            device=InstalledDevice(
                reservation=replace(reservation, device_name=device.name),
                serial=device.serial,
                model="",
                nic_count=len(device.patch_ports),
                ip_addresses=device.ip_addresses,
            )
        )
        self.devices[device_id] = replace(self.devices.pop(at), id=device_id)


@pytest.fixture
def dcim(monkeypatch: pytest.MonkeyPatch, database: Database) -> Iterator[InstallingDcimDouble]:
    """The double as this process's DCIM: for the requests' hooks and mark-installed (through
    `connection`), and for the worker's steps (its adapters)."""
    from orchestrator.bootstrap import noop_adapters

    double = InstallingDcimDouble()
    monkeypatch.setattr(connection, "connect", lambda settings=None: double)
    # Co-location may not be orderable yet in the catalogue; that gate is not what this test is about.
    monkeypatch.setattr(catalog, "require_orderable", lambda *, offering: None)
    queue.set_adapters(replace(noop_adapters(get_settings()), dcim=double))
    yield double
    queue.set_adapters(None)


@pytest.fixture
def rack_tenant(database: Database) -> Tenant:
    return make_tenant(rack_units=84, public_ips=16)


DEVICES = [
    {"name": "app-1", "model": "Dell PowerEdge R650", "rack_units": 1, "power_watts": 700, "weight_kg": 18},
    {
        "name": "nas-1",
        "model": "Synology RS3621xs+",
        "rack_units": 2,
        "power_watts": 400,
        "weight_kg": 25,
        "nic_count": 2,
    },
]


def order_and_approve(tenant: Tenant, platform: Platform) -> uuid.UUID:
    """In this process (the API of this tier has no DCIM): submit, then both approval stages."""
    body = RequestCreate(
        offering_id="colocation",
        plan="quarter-rack",
        parameters={
            "name": f"registry-{uuid.uuid4().hex[:6]}",
            "contact_name": "Sokha <Chan>",
            "contact_phone": "+855 23 000 000",
            "devices": DEVICES,
        },
    )
    with unit_of_work() as uow:
        request = requests.submit(uow=uow, actor=tenant.requester.actor, data=body).request
        request_id = request.id
    for account, reference in ((tenant.approver, "MEMO-1"), (platform.operator, "DC-1")):
        with unit_of_work() as uow:
            approved = requests.vote(
                session=uow.session,
                actor=account.actor,
                request_id=request_id,
                data=ApprovalCreate(decision=Decision.approve, reference=reference),
            )
            uow.commit()
            service_id = approved.service_id
    assert service_id is not None
    return service_id


def state(service_id: uuid.UUID) -> tuple[ServiceStatus, list[Operation]]:
    from orchestrator.operations import service as operations

    with unit_of_work() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        ops = list(operations.list_for_service(session=uow.session, service_id=service_id))
        for op in ops:
            uow.session.expunge(op)
        return service.status, ops


def waiting_step(operation: Operation) -> tuple[str, str | None]:
    step = next(s for s in operation.step_list() if s.status == StepStatus.waiting)
    return step.name, step.waiting_for


def mark_installed(account: Account, service_id: uuid.UUID, device: str, serial: str) -> installation.Report:
    with unit_of_work() as uow:
        report = installation.mark_installed(
            session=uow.session,
            actor=account.actor,
            dcim=connection.require(),
            service_id=service_id,
            device=device,
            serial=serial,
        )
        uow.commit()
        return report


def mark_removed(account: Account, service_id: uuid.UUID, device: str) -> installation.Report:
    with unit_of_work() as uow:
        report = installation.mark_removed(
            session=uow.session,
            actor=account.actor,
            dcim=connection.require(),
            service_id=service_id,
            device=device,
        )
        uow.commit()
        return report


def work_order(service_id: uuid.UUID, kind: work_orders.Kind) -> dict[str, Any]:
    with unit_of_work() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        return work_orders.build(
            dcim=connection.require(), subject=installation.subject(session=uow.session, service=service), kind=kind
        )


def test_provision_waits_for_every_device_then_decommission_waits_for_their_removal(
    dcim: InstallingDcimDouble, rack_tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    service_id = order_and_approve(rack_tenant, platform)
    order_ref = str(service_id)
    reserved = {r.device_name: r for r in dcim.reservations(order_ref=order_ref)}
    assert len(reserved) == 2

    work()
    status, (provision,) = state(service_id)
    assert status == ServiceStatus.provisioning and provision.status == OperationStatus.waiting
    assert waiting_step(provision) == ("install_devices", "installed")

    # the work order: where placement put each device, as the DCIM holds it
    order = work_order(service_id, "installation")
    assert order["kind"] == "installation" and order["ministry"]["code"] == rack_tenant.code
    assert order["contact"] == {"name": "Sokha <Chan>", "phone": "+855 23 000 000"}
    by_name = {d["name"]: d for d in order["devices"]}
    assert set(by_name) == {"app-1", "nas-1"}
    for device in by_name.values():
        held = reserved[device["dcim_name"]]
        rack = next(r for r in dcim.racks() if r.id == held.rack_id)
        assert (device["rack"], device["site"], device["room"]) == (rack.name, rack.site, rack.room)
        assert (device["position"], device["height"], device["status"]) == (
            held.span.position,
            held.span.height,
            "reserved",
        )
        assert [f["psu"] for f in device["power_feeds"]] == ["PSU1", "PSU2"]
    assert len(by_name["nas-1"]["patch_ports"]) == 2 and len(by_name["app-1"]["patch_ports"]) == 1
    assert not set(by_name["nas-1"]["patch_ports"]) & set(by_name["app-1"]["patch_ports"])
    page = work_orders.render_html(order)
    assert "Sokha &lt;Chan&gt;" in page and "<Chan>" not in page

    # who may report, and what
    with pytest.raises(PermissionDenied):
        mark_installed(rack_tenant.requester, service_id, "app-1", "SN-1")
    with pytest.raises(NotFound):
        mark_installed(make_tenant().requester, service_id, "app-1", "SN-1")
    with pytest.raises(InvalidInput) as unknown:
        mark_installed(platform.operator, service_id, "printer", "SN-1")
    assert unknown.value.field == "device"

    first = mark_installed(platform.operator, service_id, "app-1", "SN-1")
    assert (first.done, first.total, first.signalled) == (1, 2, False)
    again = mark_installed(platform.operator, service_id, "app-1", "SN-1")  # a technician's retry
    assert (again.dcim_id, again.done, again.signalled) == (first.dcim_id, 1, False)
    with pytest.raises(Conflict, match="SN-1"):
        mark_installed(platform.operator, service_id, "app-1", "SN-OTHER")
    assert state(service_id)[1][0].status == OperationStatus.waiting

    last = mark_installed(platform.operator, service_id, "nas-1", "SN-2")
    assert (last.done, last.total, last.signalled) == (2, 2, True)
    assert state(service_id)[1][0].status == OperationStatus.queued
    work()
    status, (provision,) = state(service_id)
    assert (status, provision.status) == (ServiceStatus.active, OperationStatus.succeeded)
    assert dcim.reservations(order_ref=order_ref) == []
    racked = {d.name: d for d in dcim.installed(order_ref=order_ref)}
    assert {d.serial for d in racked.values()} == {"SN-1", "SN-2"}
    assert {racked[name].span for name in reserved} == {r.span for r in reserved.values()}
    installed_order = {d["name"]: d for d in work_order(service_id, "installation")["devices"]}
    assert {d["status"] for d in installed_order.values()} == {"installed"}
    assert installed_order["nas-1"]["serial"] == "SN-2"
    # nothing waits any more: a new serial is refused, the same one still answers
    with pytest.raises(Conflict):
        mark_installed(platform.operator, service_id, "nas-1", "SN-3")
    assert mark_installed(platform.operator, service_id, "nas-1", "SN-2").signalled is False
    with pytest.raises(Conflict, match="removed"):
        mark_removed(platform.operator, service_id, "nas-1")

    # a reservation left behind (a device never racked): decommission must give it back too
    leftover = dcim.reserve(
        rack_id=next(iter(reserved.values())).rack_id,
        span=UnitSpan(30, 1, Depth.FULL),
        ministry_code=rack_tenant.code,
        order_ref=order_ref,
        device_name="never-racked",
        feed_id=next(iter(reserved.values())).feed_id,
        draw_w=100,
        weight_kg=5,
    )

    with unit_of_work() as uow:
        commands.decommission(session=uow.session, actor=rack_tenant.requester.actor, service_id=service_id)
        uow.commit()
    work()
    status, operations = state(service_id)
    decommission = next(op for op in operations if op.kind == "decommission")
    assert (status, decommission.status) == (ServiceStatus.decommissioning, OperationStatus.waiting)
    assert waiting_step(decommission) == ("remove_devices", "removed")
    removal = work_order(service_id, "removal")
    assert removal["kind"] == "removal" and {d["status"] for d in removal["devices"]} == {"installed"}

    assert mark_removed(platform.operator, service_id, "app-1").signalled is False
    repeat = mark_removed(platform.operator, service_id, "app-1")
    assert (repeat.dcim_id, repeat.done, repeat.signalled) == (None, 1, False)
    assert mark_removed(platform.operator, service_id, "nas-1").signalled is True
    work()
    status, operations = state(service_id)
    assert status == ServiceStatus.retired
    assert next(op for op in operations if op.kind == "decommission").status == OperationStatus.succeeded
    assert dcim.installed(order_ref=order_ref) == []
    assert dcim.reservations(order_ref=order_ref) == [], f"{leftover.id} was not released"
    assert all(not rack.occupied and not rack.weight_kg for rack in dcim.racks())
    assert all(f.allocated_w == 0 for rack in dcim.racks() for f in rack.feeds)


def test_the_api_hides_other_ministries_services_and_needs_a_dcim(
    client: httpx.Client, dcim: InstallingDcimDouble, rack_tenant: Tenant, platform: Platform
) -> None:
    """The API process of this tier has no DCIM: 409 saying so, after 401 and 404."""
    service_id = order_and_approve(rack_tenant, platform)
    stranger = make_tenant()
    for path, body in (
        ("work-order", None),
        ("actions/mark-installed", {"device": "app-1", "serial": "SN-1"}),
        ("actions/mark-removed", {"device": "app-1"}),
    ):
        url = f"/v1/services/{service_id}/{path}"
        send = client.get if body is None else (lambda u, **kw: client.post(u, json=body, **kw))  # noqa: B023
        assert send(url).status_code == 401
        assert send(url, headers=stranger.requester.headers).status_code == 404
        refused = send(url, headers=platform.operator.headers)
        assert refused.status_code == 409, refused.text
        assert "DCIM" in refused.json()["detail"]
    bad = client.post(
        f"/v1/services/{service_id}/actions/mark-installed",
        json={"device": "app-1", "serial": "<script>"},
        headers=platform.operator.headers,
    )
    assert bad.status_code == 422 and "serial" in bad.text
