"""What a ministry does, end to end, against the local data centre: order web hosting through the
API, approve twice, follow the SSE stream to `active`, fetch the site over HTTPS, deploy content,
resize, decommission, and find nothing left in the ministry's project (openstacksdk as an outside
observer). The same for the CMS. Real API and worker processes, real engine, real Ansible."""

import io
import json
import ssl
import tarfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.query
import httpx
import pytest

from tests.cloud.conftest import DevCloud, System
from tests.conftest import Platform, Tenant, make_tenant, order_and_approve

# A whole service life (order, build, configure, day-2, decommission) runs several minutes;
# the suite's 300 s default is for single steps.
pytestmark = [pytest.mark.cloud, pytest.mark.timeout(1500)]

OPERATION_TIMEOUT_S = 900
DNS_SERVER = ("127.0.0.1", 15353)


@pytest.fixture(scope="module")
def ministry(system: System, platform: Platform) -> Iterator[Tenant]:
    """A ministry for these tests; whatever a failed test left running is decommissioned after."""
    tenant = make_tenant()
    yield tenant
    retire_everything(system, platform, [tenant])


def retire_everything(system: System, platform: Platform, tenants: list[Tenant]) -> None:
    """Decommission what the tenants still have and wait for it: what a failed test left running."""
    with httpx.Client(base_url=system.url, timeout=60) as client:
        pending = []
        for tenant in tenants:
            for service in client.get("/v1/services", headers=tenant.requester.headers).json()["items"]:
                if service["status"] != "retired":
                    # Admins, not operators: operators do not change ministries' services.
                    response = client.post(f"/v1/services/{service['id']}/decommission", headers=platform.admin.headers)
                    if response.status_code == 202:
                        pending.append(response.json()["id"])
        deadline = time.monotonic() + OPERATION_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            pending = [
                op
                for op in pending
                if client.get(f"/v1/operations/{op}", headers=platform.operator.headers).json()["status"]
                in ("queued", "running")
            ]
            time.sleep(2)


@pytest.fixture
def client(system: System) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.url, timeout=60) as http:
        yield http


def follow(client: httpx.Client, account_headers: dict[str, str], operation_id: str, system: System) -> dict[str, Any]:
    """Follow the SSE stream to its end; return the finished operation (with its events on failure)."""
    seen: list[str] = []
    with client.stream(
        "GET", f"/v1/operations/{operation_id}/stream", headers=account_headers, timeout=OPERATION_TIMEOUT_S
    ) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                data = json.loads(line[5:])
                if "message" in data:
                    seen.append(f"[{data.get('step')}] {data['message']}")
    operation: dict[str, Any] = client.get(f"/v1/operations/{operation_id}", headers=account_headers).json()
    if operation["status"] != "succeeded":
        worker_log = (system.logs / "worker.log").read_text()[-4000:]
        pytest.fail(
            f"operation {operation['kind']} {operation['status']}:\n" + "\n".join(seen[-60:]) + "\n" + worker_log
        )
    return operation


def event_types(client: httpx.Client, ministry: Tenant, operation_id: str) -> set[str]:
    events = client.get(f"/v1/operations/{operation_id}/events", headers=ministry.requester.headers).json()
    return {event["type"] for event in events}


def fetch(address: str, hostname: str, path: str = "/") -> httpx.Response:
    from orchestrator.pki import service as pki

    context = ssl.create_default_context(cadata=pki.ca_certificate())
    with httpx.Client(verify=context, timeout=20) as http:
        return http.get(f"https://{address}{path}", headers={"Host": hostname}, extensions={"sni_hostname": hostname})


def resolve(name: str) -> list[str]:
    answer = dns.query.udp(dns.message.make_query(name, "A"), DNS_SERVER[0], port=DNS_SERVER[1], timeout=3)
    return [item.address for rrset in answer.answer for item in rrset]


def left_in_project(devcloud: DevCloud, project_name: str) -> dict[str, list[str]]:
    admin = devcloud.admin
    project = admin.identity.find_project(project_name, domain_id="default")
    assert project is not None, f"project {project_name} was never created"
    return {
        "servers": [s.name for s in admin.compute.servers(all_projects=True, project_id=project.id)],
        "ports": [
            p.id
            for p in admin.network.ports(project_id=project.id)
            if p.device_owner not in ("network:router_interface", "network:router_gateway")
        ],
        "volumes": [v.name for v in admin.block_storage.volumes(all_projects=True, project_id=project.id)],
        "floating_ips": [f.floating_ip_address for f in admin.network.ips(project_id=project.id)],
    }


def final_backups(devcloud: DevCloud, ministry_code: str, stack_name: str) -> list[str]:
    """restic snapshot objects in the service's bucket at the DR site, which outlives the stack."""
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(devcloud.clouds_yaml)], vendor_files=[])
    dr = openstack.connection.Connection(config=config.get_one(cloud="tonle-dr", project_name=f"tonle-{ministry_code}"))
    return [o.name for o in dr.object_store.objects(f"tonle-backup-{stack_name}") if "/snapshots/" in o.name]


def site_archive(text: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        page = f"<html><body><h1>{text}</h1></body></html>".encode()
        info = tarfile.TarInfo("index.html")
        info.size = len(page)
        tar.addfile(info, io.BytesIO(page))
    return buffer.getvalue()


def test_web_hosting_end_to_end(
    client: httpx.Client, system: System, ministry: Tenant, platform: Platform, devcloud: DevCloud
) -> None:
    domain = f"portal-{uuid.uuid4().hex[:6]}.{ministry.dns_suffix}"
    body = {
        "offering_id": "web-hosting",
        "plan": "small",
        "parameters": {"name": "portal", "domain": domain, "admin_email": f"web@{ministry.dns_suffix}"},
    }
    approved = order_and_approve(client, ministry, platform, body)
    operation = follow(client, ministry.requester.headers, approved["operation_id"], system)
    assert {s["name"]: s["status"] for s in operation["steps"]} == {
        "plan": "succeeded",
        "apply": "succeeded",
        "install_devices": "succeeded",  # nothing to rack for web hosting
        "configure": "succeeded",
        "verify": "succeeded",
    }
    # Ansible connected only with the server's host key, learned from its console and pinned.
    assert "ssh.host_keys" in event_types(client, ministry, approved["operation_id"])

    service = client.get(f"/v1/services/{approved['service_id']}", headers=ministry.requester.headers).json()
    assert service["status"] == "active"
    address = service["endpoints"]["public_address"]
    page = fetch(address, domain)
    assert page.status_code == 200 and domain in page.text
    assert resolve(domain) == [address]

    marker = f"Vaccination campaign {uuid.uuid4().hex[:8]}"
    deployed = client.post(
        f"/v1/services/{service['id']}/actions/deploy-content",
        content=site_archive(marker),
        headers={**ministry.requester.headers, "Content-Type": "application/gzip"},
    )
    assert deployed.status_code == 202, deployed.text
    follow(client, ministry.requester.headers, deployed.json()["id"], system)
    assert marker in fetch(address, domain).text
    assert "ssh.host_keys" not in event_types(client, ministry, deployed.json()["id"]), "pinned keys are reused"

    resized = client.post(
        f"/v1/services/{service['id']}/actions/resize", json={"plan": "medium"}, headers=ministry.requester.headers
    )
    assert resized.status_code == 202, resized.text
    # A larger plan is approved like an order of it; the last vote starts the change.
    change = resized.json()["request"]
    for voter in (ministry.approver, platform.operator):
        voted = client.post(
            f"/v1/requests/{change['id']}/approvals", json={"decision": "approve"}, headers=voter.headers
        )
        assert voted.status_code == 200, voted.text
    follow(client, ministry.requester.headers, voted.json()["operation_id"], system)
    servers = list(devcloud.admin.compute.servers(all_projects=True, name=f"{ministry.code}-"))
    assert servers and all(s.flavor["original_name"] == "m1.medium" for s in servers)
    assert marker in fetch(address, domain).text, "resizing keeps the site and its address"

    retired = client.post(f"/v1/services/{service['id']}/decommission", headers=ministry.requester.headers)
    follow(client, ministry.requester.headers, retired.json()["id"], system)
    assert client.get(f"/v1/services/{service['id']}", headers=ministry.requester.headers).json()["status"] == "retired"
    assert final_backups(devcloud, ministry.code, service["stack_name"]), "the final backup is in the DR bucket"
    assert left_in_project(devcloud, f"tonle-{ministry.code}") == {
        "servers": [],
        "ports": [],
        "volumes": [],
        "floating_ips": [],
    }


def test_cms_end_to_end(
    client: httpx.Client, system: System, ministry: Tenant, platform: Platform, devcloud: DevCloud
) -> None:
    domain = f"news-{uuid.uuid4().hex[:6]}.{ministry.dns_suffix}"
    body = {
        "offering_id": "cms",
        "plan": "standard",
        "parameters": {
            "name": "news",
            "domain": domain,
            "site_title": "Education news",
            "admin_email": f"press@{ministry.dns_suffix}",
        },
    }
    approved = order_and_approve(client, ministry, platform, body)
    follow(client, ministry.requester.headers, approved["operation_id"], system)
    service = client.get(f"/v1/services/{approved['service_id']}", headers=ministry.requester.headers).json()
    address = service["endpoints"]["public_address"]
    front = fetch(address, domain)
    assert front.status_code == 200 and "Education news" in front.text
    login = fetch(address, domain, "/wp-login.php")
    assert login.status_code == 200 and "user_login" in login.text
    credentials = client.post(f"/v1/services/{service['id']}/credentials", headers=ministry.requester.headers).json()
    assert credentials["credentials"]["cms_admin_password"]

    retired = client.post(f"/v1/services/{service['id']}/decommission", headers=ministry.requester.headers)
    follow(client, ministry.requester.headers, retired.json()["id"], system)
    left = left_in_project(devcloud, f"tonle-{ministry.code}")
    assert left == {"servers": [], "ports": [], "volumes": [], "floating_ips": []}
