"""Co-location day-2 actions on the real PostgreSQL, API, worker, runner and policy: `add-device`
places and reserves one more device as an order's are and waits for its mark-installed;
`remove-device` waits for the technician's mark-removed of that one device, then drops it from
the service and its stack; the service stays `active` throughout. Started through the API
(`POST /v1/services/{id}/actions/<name>`), whose checks need no DCIM; the worker's steps and the
technicians' reports use the in-memory DCIM double (`InstallingDcimDouble`, at the `ports.Dcim`
boundary: this tier has no Nautobot)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from orchestrator import installation
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.dcim import connection
from orchestrator.dcim.placement import available_power_w
from orchestrator.errors import Conflict, PermissionDenied
from orchestrator.operations.models import Operation, OperationStatus
from orchestrator.ports import Depth, UnitSpan
from orchestrator.services.models import Service, ServiceStatus
from tests.conftest import Account, Platform, Tenant, make_tenant
from tests.integration.test_colocation_workflow import (
    InstallingDcimDouble,
    dcim,  # noqa: F401  (fixture)
    mark_installed,
    mark_removed,
    order_and_approve,
    rack_tenant,  # noqa: F401  (fixture)
    state,
    waiting_step,
)

pytestmark = pytest.mark.integration

DB = {"name": "db-1", "model": "HPE DL380", "rack_units": 2, "power_watts": 500, "weight_kg": 22, "nic_count": 2}


def active_service(tenant: Tenant, platform: Platform, work: Callable[[], None]) -> uuid.UUID:
    service_id = order_and_approve(tenant, platform)
    work()
    mark_installed(platform.operator, service_id, "app-1", "SN-1")
    mark_installed(platform.operator, service_id, "nas-1", "SN-2")
    work()
    assert state(service_id)[0] == ServiceStatus.active
    return service_id


def action(client: httpx.Client, tenant: Tenant, service_id: uuid.UUID, name: str, body: Any) -> httpx.Response:
    return client.post(f"/v1/services/{service_id}/actions/{name}", json=body, headers=tenant.requester.headers)


def devices_of(service_id: uuid.UUID) -> list[str]:
    with unit_of_work() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        return [d["name"] for d in service.parameters["devices"]]


def latest(service_id: uuid.UUID, kind: str) -> Operation:
    return next(op for op in reversed(state(service_id)[1]) if op.kind == kind)


def test_add_then_remove_a_device_while_the_service_stays_active(
    client: httpx.Client,
    dcim: InstallingDcimDouble,  # noqa: F811
    rack_tenant: Tenant,  # noqa: F811
    platform: Platform,
    work: Callable[[], None],
) -> None:
    service_id = active_service(rack_tenant, platform, work)
    order_ref = str(service_id)
    names = {d.name: d for d in dcim.installed(order_ref=order_ref)}

    # what the API refuses before anything starts
    taken = action(client, rack_tenant, service_id, "add-device", {**DB, "name": "app-1"})
    assert taken.status_code == 422 and taken.json()["field"] == "name", taken.text
    zero = action(client, rack_tenant, service_id, "add-device", {**DB, "rack_units": 0})
    assert zero.status_code == 422 and zero.json()["field"] == "rack_units", zero.text
    over_plan = action(client, rack_tenant, service_id, "add-device", {**DB, "rack_units": 8})  # 3 U + 8 U > 10 U
    assert over_plan.status_code == 422 and over_plan.json()["field"] == "rack_units", over_plan.text
    stray = action(client, rack_tenant, service_id, "add-device", {**DB, "colour": "red"})
    assert stray.status_code == 422, stray.text
    unknown = action(client, rack_tenant, service_id, "remove-device", {"device": "printer"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "device", unknown.text
    assert [op.kind for op in state(service_id)[1]] == ["provision"]

    # a device no rack can power now (another order's draw leaves 500 W per feed): the first
    # step fails with the reason, nothing is held
    fillers = [
        dcim.reserve(
            rack_id=rack.id,
            span=UnitSpan(38 + n, 1, Depth.FULL),
            ministry_code="other",
            order_ref="filler",
            device_name=f"filler-{rack.id}-{n}",
            feed_id=feed.id,
            draw_w=available_power_w(feed) - feed.allocated_w - 500,
            weight_kg=1,
        )
        for rack in dcim.racks()
        for n, feed in enumerate(rack.feeds)
    ]
    too_hungry = action(client, rack_tenant, service_id, "add-device", {**DB, "name": "gpu-1", "power_watts": 800})
    assert too_hungry.status_code == 202, too_hungry.text
    work()
    for filler in fillers:
        dcim.release(reservation_id=filler.id)
    refused = latest(service_id, "add-device")
    assert refused.status == OperationStatus.failed
    assert "power" in (refused.error or ""), refused.error
    assert state(service_id)[0] == ServiceStatus.active
    assert dcim.reservations(order_ref=order_ref) == [] and devices_of(service_id) == ["app-1", "nas-1"]

    # add-device: reserved, in the service's devices, waiting for its technician
    started = action(client, rack_tenant, service_id, "add-device", DB)
    assert started.status_code == 202 and started.json()["kind"] == "add-device", started.text
    work()
    adding = latest(service_id, "add-device")
    assert waiting_step(adding) == ("install_devices", "installed")
    assert state(service_id)[0] == ServiceStatus.active
    assert devices_of(service_id) == ["app-1", "nas-1", "db-1"]
    (held,) = dcim.reservations(order_ref=order_ref)
    assert held.device_name.endswith("-db-1") and held.span.height == 2
    report = mark_installed(platform.operator, service_id, "db-1", "SN-3")
    assert (report.done, report.total, report.signalled) == (3, 3, True)
    work()
    assert latest(service_id, "add-device").status == OperationStatus.succeeded
    assert state(service_id)[0] == ServiceStatus.active
    assert {d.serial for d in dcim.installed(order_ref=order_ref)} == {"SN-1", "SN-2", "SN-3"}
    assert dcim.reservations(order_ref=order_ref) == []

    # remove-device: waits for that device's mark-removed only
    removing = action(client, rack_tenant, service_id, "remove-device", {"device": "nas-1"})
    assert removing.status_code == 202, removing.text
    busy = action(client, rack_tenant, service_id, "remove-device", {"device": "app-1"})
    assert busy.status_code == 409, busy.text
    work()
    assert waiting_step(latest(service_id, "remove-device")) == ("remove_device", "removed")
    with pytest.raises(Conflict, match="nas-1"):
        mark_removed(platform.operator, service_id, "app-1")
    assert mark_removed(platform.operator, service_id, "nas-1").signalled is True
    work()
    assert latest(service_id, "remove-device").status == OperationStatus.succeeded
    assert state(service_id)[0] == ServiceStatus.active
    assert devices_of(service_id) == ["app-1", "db-1"]
    assert sorted(d.serial for d in dcim.installed(order_ref=order_ref)) == ["SN-1", "SN-3"]
    gone = names[next(n for n in names if n.endswith("-nas-1"))]
    rack = next(r for r in dcim.racks() if r.id == gone.rack_id)
    assert gone.span not in rack.occupied and not set(gone.patch_ports) & dcim.cabled[gone.rack_id]


def test_the_last_device_is_not_removed_but_decommissioned(
    client: httpx.Client,
    dcim: InstallingDcimDouble,  # noqa: F811
    rack_tenant: Tenant,  # noqa: F811
    platform: Platform,
    work: Callable[[], None],
) -> None:
    service_id = active_service(rack_tenant, platform, work)
    assert action(client, rack_tenant, service_id, "remove-device", {"device": "app-1"}).status_code == 202
    work()
    assert mark_removed(platform.operator, service_id, "app-1").signalled is True
    work()
    assert devices_of(service_id) == ["nas-1"]
    last = action(client, rack_tenant, service_id, "remove-device", {"device": "nas-1"})
    assert last.status_code == 409 and "decommission" in last.json()["detail"], last.text
    assert action(client, make_tenant(), service_id, "remove-device", {"device": "nas-1"}).status_code == 404
    assert action(client, make_tenant(), service_id, "add-device", DB).status_code == 404


def mark_moved(account: Account, service_id: uuid.UUID, device: str) -> installation.Report:
    with unit_of_work() as uow:
        report = installation.mark_moved(
            session=uow.session,
            actor=account.actor,
            dcim=connection.require(),
            service_id=service_id,
            device=device,
        )
        uow.commit()
        return report


def test_move_a_device_to_another_rack_then_to_a_named_one(
    client: httpx.Client,
    dcim: InstallingDcimDouble,  # noqa: F811
    rack_tenant: Tenant,  # noqa: F811
    platform: Platform,
    work: Callable[[], None],
) -> None:
    service_id = active_service(rack_tenant, platform, work)
    order_ref = str(service_id)
    before = {n: d for d in dcim.installed(order_ref=order_ref) for n in ("app-1", "nas-1") if d.name.endswith(f"-{n}")}
    app = before["app-1"]

    unknown = action(client, rack_tenant, service_id, "move-device", {"device": "printer"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "device", unknown.text
    stray = action(client, rack_tenant, service_id, "move-device", {"device": "app-1", "units": 3})
    assert stray.status_code == 422 and stray.json()["field"] == "units", stray.text
    with pytest.raises(Conflict, match="waits"):
        mark_moved(platform.operator, service_id, "app-1")

    # elsewhere: new units in another rack, held until the technician reports the move
    assert action(client, rack_tenant, service_id, "move-device", {"device": "app-1"}).status_code == 202
    work()
    moving = latest(service_id, "move-device")
    assert waiting_step(moving) == ("move_device", "moved")
    assert state(service_id)[0] == ServiceStatus.active
    (target,) = dcim.reservations(order_ref=order_ref)
    assert target.device_name == app.name and target.rack_id != app.rack_id and target.span.height == 1
    with pytest.raises(Conflict, match="app-1"):
        mark_moved(platform.operator, service_id, "nas-1")
    with pytest.raises(PermissionDenied):
        mark_moved(rack_tenant.requester, service_id, "app-1")
    assert mark_moved(platform.operator, service_id, "app-1").signalled is True
    work()
    assert latest(service_id, "move-device").status == OperationStatus.succeeded
    assert state(service_id)[0] == ServiceStatus.active
    moved = next(d for d in dcim.installed(order_ref=order_ref) if d.name == app.name)
    assert (moved.id, moved.serial, moved.ip_addresses) == (app.id, app.serial, app.ip_addresses)
    assert (moved.rack_id, moved.span) == (target.rack_id, target.span)
    assert dcim.reservations(order_ref=order_ref) == []
    old_rack = next(r for r in dcim.racks() if r.id == app.rack_id)
    assert app.span not in old_rack.occupied and not set(app.patch_ports) & dcim.cabled.get(app.rack_id, set())
    assert len(moved.patch_ports) == 1 and set(moved.patch_ports) <= dcim.cabled[moved.rack_id]

    # to a named rack; a rack the site does not have fails the first step, holding nothing
    named = next(r for r in dcim.racks() if r.id not in {moved.rack_id, before["nas-1"].rack_id})
    assert (
        action(client, rack_tenant, service_id, "move-device", {"device": "nas-1", "rack": "NOPE"}).status_code == 202
    )
    work()
    failed = latest(service_id, "move-device")
    assert failed.status == OperationStatus.failed and "no rack named 'NOPE'" in (failed.error or ""), failed.error
    assert dcim.reservations(order_ref=order_ref) == []
    body = {"device": "nas-1", "rack": named.name}
    assert action(client, rack_tenant, service_id, "move-device", body).status_code == 202
    work()
    (target,) = dcim.reservations(order_ref=order_ref)
    assert target.rack_id == named.id and target.span.height == 2
    mark_moved(platform.operator, service_id, "nas-1")
    work()
    nas = next(d for d in dcim.installed(order_ref=order_ref) if d.name == before["nas-1"].name)
    assert (nas.rack_id, len(nas.patch_ports)) == (named.id, 2)
    assert latest(service_id, "move-device").status == OperationStatus.succeeded

    # the technicians' route is there, and (as for mark-installed) needs the DCIM this API lacks
    report = client.post(
        f"/v1/services/{service_id}/actions/mark-moved", json={"device": "nas-1"}, headers=platform.operator.headers
    )
    assert report.status_code == 409 and "DCIM" in report.json()["detail"], report.text
