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

from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.errors import Conflict
from orchestrator.operations.models import Operation, OperationStatus
from orchestrator.services.models import Service, ServiceStatus
from tests.conftest import Platform, Tenant, make_tenant
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
    stray = action(client, rack_tenant, service_id, "add-device", {**DB, "colour": "red"})
    assert stray.status_code == 422, stray.text
    unknown = action(client, rack_tenant, service_id, "remove-device", {"device": "printer"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "device", unknown.text
    assert [op.kind for op in state(service_id)[1]] == ["provision"]

    # a device no rack can power: the first step fails with the reason, nothing is held
    too_hungry = action(client, rack_tenant, service_id, "add-device", {**DB, "name": "gpu-1", "power_watts": 4000})
    assert too_hungry.status_code == 202, too_hungry.text
    work()
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
