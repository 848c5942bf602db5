"""Server co-location end to end against the local data centre and its DCIM (Nautobot): a ministry
orders rack space for two devices through the API; approval places them and reserves their units
and power in Nautobot; the work order names the racks and units Nautobot holds; a technician marks
each device installed with its serial and the service becomes `active`; the devices, their power
and network cables and their addresses are in Nautobot; decommissioning produces a removal work
order, waits for the technician, then frees the units, feeds and network. Nautobot is checked
through its own REST API (plain HTTP, an outside observer), the network through OpenStack's.
Real API and worker processes, real engine, real Nautobot."""

import html
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.cloud.conftest import DevCloud, System
from tests.cloud.test_web_hosting_e2e import left_in_project
from tests.conftest import Platform, Tenant, make_tenant

pytestmark = [pytest.mark.cloud, pytest.mark.timeout(1800)]

OPERATION_TIMEOUT_S = 600
QUOTA = {"vcpu": 8, "ram_gb": 16, "storage_gb": 100, "public_ips": 20, "rack_units": 84}


def everything(nautobot_api: httpx.Client, path: str, **params: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    url: str | None = path
    query: dict[str, str] | None = {**params, "limit": "1000", "depth": "1"}
    while url:
        page = nautobot_api.get(url, params=query)
        page.raise_for_status()
        found += page.json()["results"]
        url, query = page.json().get("next"), None
    return found


def tonle_records(nautobot_api: httpx.Client, path: str, service_id: str) -> list[dict[str, Any]]:
    """Devices or rack reservations Tonle made for the service (its id is their `tonle_order`)."""
    return [
        r for r in everything(nautobot_api, path) if (r.get("custom_fields") or {}).get("tonle_order") == service_id
    ]


def wait_status(client: httpx.Client, headers: dict[str, str], operation_id: str, wanted: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + OPERATION_TIMEOUT_S
    while True:
        operation: dict[str, Any] = client.get(f"/v1/operations/{operation_id}", headers=headers).json()
        if operation["status"] in wanted:
            return operation
        if operation["status"] == "failed" or time.monotonic() > deadline:
            events = client.get(f"/v1/operations/{operation_id}/events", headers=headers).json()
            pytest.fail(f"operation {operation_id} is {operation['status']}, not {sorted(wanted)}:\n{events}")
        time.sleep(1)


@pytest.fixture(scope="module")
def ministry(system: System, platform: Platform) -> Iterator[Tenant]:
    tenant = make_tenant(**QUOTA)
    yield tenant
    retire_colocation(system, platform, tenant)


def retire_colocation(system: System, platform: Platform, tenant: Tenant) -> None:
    """What a failed test left: decommission, and play the technician who unracks everything."""
    with httpx.Client(base_url=system.url, timeout=60) as client:
        for service in client.get("/v1/services", headers=tenant.requester.headers).json()["items"]:
            if service["status"] == "retired":
                continue
            started = client.post(f"/v1/services/{service['id']}/decommission", headers=platform.admin.headers)
            if started.status_code != 202:
                continue
            operation_id = started.json()["id"]
            wait_status(client, platform.admin.headers, operation_id, {"waiting", "succeeded"})
            work_order = client.get(f"/v1/services/{service['id']}/work-order", headers=platform.operator.headers)
            for device in work_order.json().get("devices", []) if work_order.status_code == 200 else []:
                client.post(
                    f"/v1/services/{service['id']}/actions/mark-removed",
                    json={"device": device["name"]},
                    headers=platform.operator.headers,
                )
            wait_status(client, platform.admin.headers, operation_id, {"succeeded"})


def order_body(tenant: Tenant) -> dict[str, Any]:
    return {
        "offering_id": "colocation",
        "plan": "quarter-rack",
        "parameters": {
            "name": f"registry-{uuid.uuid4().hex[:4]}",
            "contact_name": "Sokha <Chan>",  # hostile in HTML: escaped on the printable work order
            "contact_phone": "+855 23 000 000",
            "devices": [
                {
                    "name": "app-1",
                    "model": "Dell PowerEdge R650",
                    "rack_units": 2,
                    "power_watts": 700,
                    "weight_kg": 25,
                    "nic_count": 2,
                },
                {
                    "name": "nas-1",
                    "model": "Synology RS3621xs+",
                    "rack_units": 1,
                    "power_watts": 300,
                    "weight_kg": 12,
                    "depth": "half",
                },
            ],
        },
    }


def test_colocation_end_to_end(
    system: System, ministry: Tenant, platform: Platform, devcloud: DevCloud, nautobot_api: httpx.Client
) -> None:
    client = httpx.Client(base_url=system.url, timeout=60)
    operator = platform.operator.headers
    body = order_body(ministry)

    request = client.post("/v1/requests", json=body, headers=ministry.requester.headers)
    assert request.status_code == 201, request.text
    request_id = request.json()["id"]
    first = client.post(
        f"/v1/requests/{request_id}/approvals",
        json={"decision": "approve", "reference": "MEMO-COLO"},
        headers=ministry.approver.headers,
    )
    assert first.status_code == 200, first.text
    approved = client.post(f"/v1/requests/{request_id}/approvals", json={"decision": "approve"}, headers=operator)
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    service_id, operation_id = approved.json()["service_id"], approved.json()["operation_id"]

    # Approval reserved the units and power in Nautobot, before anything was built.
    reservations = tonle_records(nautobot_api, "/dcim/rack-reservations/", service_id)
    assert len(reservations) == 2, reservations

    # The network is built; the operation then waits for the technicians.
    waiting = wait_status(client, ministry.requester.headers, operation_id, {"waiting"})
    assert any(step["waiting_for"] == "installed" for step in waiting["steps"] if step["status"] == "waiting")
    service = client.get(f"/v1/services/{service_id}", headers=ministry.requester.headers).json()
    assert service["status"] == "provisioning", service

    work_order = client.get(f"/v1/services/{service_id}/work-order", headers=operator)
    assert work_order.status_code == 200, work_order.text
    order = work_order.json()
    assert order["kind"] == "installation"
    devices = {device["name"]: device for device in order["devices"]}
    assert set(devices) == {"app-1", "nas-1"}
    racks = {r["id"]: r for r in everything(nautobot_api, "/dcim/racks/")}
    for reservation in reservations:
        device = next(d for d in devices.values() if d["dcim_name"] == reservation["custom_fields"]["tonle_device"])
        rack = racks[reservation["rack"]["id"]]
        # What the technician is told is what Nautobot holds.
        assert device["rack"] == rack["name"]
        assert sorted(reservation["units"]) == list(range(device["position"], device["position"] + device["height"]))
        assert device["site"] == "primary" and device["room"]
        assert device["power_feeds"], device
        assert device["status"] == "reserved"
    assert devices["app-1"]["height"] == 2 and devices["nas-1"]["height"] == 1
    assert len(devices["app-1"]["ip_addresses"]) == 2 and len(devices["nas-1"]["ip_addresses"]) == 1
    # The ministry sees its own work order; another ministry does not know it exists.
    assert client.get(f"/v1/services/{service_id}/work-order", headers=ministry.requester.headers).status_code == 200
    stranger = make_tenant(**QUOTA)
    assert client.get(f"/v1/services/{service_id}/work-order", headers=stranger.requester.headers).status_code == 404

    printable = client.get(f"/v1/services/{service_id}/work-order", headers={**operator, "Accept": "text/html"})
    assert printable.status_code == 200 and printable.headers["content-type"].startswith("text/html")
    assert "Sokha <Chan>" not in printable.text and html.escape("Sokha <Chan>") in printable.text
    for device in devices.values():
        assert device["rack"] in printable.text and device["ip_addresses"][0] in printable.text

    # The ministry's own staff cannot say the hardware is in: only the data centre's technicians.
    refused = client.post(
        f"/v1/services/{service_id}/actions/mark-installed",
        json={"device": "app-1", "serial": "SN-APP-1"},
        headers=ministry.requester.headers,
    )
    assert refused.status_code == 403, refused.text
    unknown = client.post(
        f"/v1/services/{service_id}/actions/mark-installed",
        json={"device": "no-such", "serial": "X1"},
        headers=operator,
    )
    assert unknown.status_code == 422 and "device" in unknown.text, unknown.text

    for name, serial in (("app-1", "SN-APP-1"), ("nas-1", "SN-NAS-1")):
        marked = client.post(
            f"/v1/services/{service_id}/actions/mark-installed",
            json={"device": name, "serial": serial},
            headers=operator,
        )
        assert marked.status_code in (200, 202), marked.text
    # The same report again is harmless; a different serial for an installed device is a conflict.
    again = client.post(
        f"/v1/services/{service_id}/actions/mark-installed",
        json={"device": "app-1", "serial": "SN-APP-1"},
        headers=operator,
    )
    assert again.status_code in (200, 202), again.text
    clash = client.post(
        f"/v1/services/{service_id}/actions/mark-installed",
        json={"device": "app-1", "serial": "OTHER-1"},
        headers=operator,
    )
    assert clash.status_code == 409, clash.text

    finished = wait_status(client, ministry.requester.headers, operation_id, {"succeeded"})
    assert finished["status"] == "succeeded"
    service = client.get(f"/v1/services/{service_id}", headers=ministry.requester.headers).json()
    assert service["status"] == "active", service

    # In Nautobot: the devices with their serials where the work order said, cabled, addressed.
    made = tonle_records(nautobot_api, "/dcim/devices/", service_id)
    assert sorted(d["serial"] for d in made) == ["SN-APP-1", "SN-NAS-1"]
    assert not tonle_records(nautobot_api, "/dcim/rack-reservations/", service_id), "reservations became devices"
    for device in made:
        planned = devices["app-1" if device["serial"] == "SN-APP-1" else "nas-1"]
        assert racks[device["rack"]["id"]]["name"] == planned["rack"]
        assert device["position"] == planned["position"]
        power_ports = everything(nautobot_api, "/dcim/power-ports/", device=device["id"])
        assert power_ports and all(port["cable"] for port in power_ports), power_ports
        interfaces = everything(nautobot_api, "/dcim/interfaces/", device=device["id"])
        assert len(interfaces) == len(planned["ip_addresses"])
        assert all(interface["cable"] for interface in interfaces), "each NIC is patched"
        addresses = everything(nautobot_api, "/ipam/ip-addresses/", device_id=device["id"])
        assert sorted(a["address"].split("/")[0] for a in addresses) == sorted(planned["ip_addresses"])

    # Neutron holds the same addresses, on the ministry's co-location network.
    project = f"tonle-{ministry.code}"
    ports = left_in_project(devcloud, project)["ports"]
    fixed = {ip["ip_address"] for port_id in ports for ip in devcloud.admin.network.get_port(port_id).fixed_ips}
    assert {ip for device in devices.values() for ip in device["ip_addresses"]} <= fixed

    # Decommission: a removal work order, the technician unracks, then everything is freed.
    started = client.post(f"/v1/services/{service_id}/decommission", headers=ministry.requester.headers)
    assert started.status_code == 202, started.text
    retiring = started.json()["id"]
    wait_status(client, ministry.requester.headers, retiring, {"waiting"})
    removal = client.get(f"/v1/services/{service_id}/work-order", headers=operator).json()
    assert removal["kind"] == "removal" and {d["name"] for d in removal["devices"]} == {"app-1", "nas-1"}
    assert all(d["serial"] for d in removal["devices"])
    for name in ("app-1", "nas-1"):
        removed = client.post(
            f"/v1/services/{service_id}/actions/mark-removed", json={"device": name}, headers=operator
        )
        assert removed.status_code in (200, 202), removed.text
    wait_status(client, ministry.requester.headers, retiring, {"succeeded"})
    service = client.get(f"/v1/services/{service_id}", headers=ministry.requester.headers).json()
    assert service["status"] == "retired", service
    assert not tonle_records(nautobot_api, "/dcim/devices/", service_id)
    assert not tonle_records(nautobot_api, "/dcim/rack-reservations/", service_id)
    leftovers = left_in_project(devcloud, project)
    assert not any(leftovers.values()), leftovers
