"""Drills of a real web-hosting service on the local data centre, through the API (real API and
worker processes, embedded engine, Ansible, restic): content A deployed and backed up, content B
deployed, then a drill restores A into an isolated copy at the DR site (its security group lets it
reach its own subnet and the S3 relay only), which serves A under the service's name (the health
check looks for A's marker) and holds the restore point's data (checksum), with RPO and RTO
measured; the DR project holds nothing of the drill afterwards, DNS was never touched and
production still serves B. A second drill, whose health check looks for a text the copy does not
serve, is reported failed naming the check, and still cleans up (verified). The same for the CMS,
whose content A is in its database: the copy's restored database passes the data check and its
login page shows A's site name while production shows B's. Last, the web site fails over for real
(asked by the ministry, approved by an operator): DNS answers the DR copy's address and B is
served there; then it fails back: DNS answers the primary's address again, B survives, and the DR
project holds nothing of the copy.

One web-hosting service for the web tests, one CMS: each build of a server costs minutes here.
"""

import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.cloud.conftest import DevCloud, System
from tests.cloud.test_backups import deploy, on_host, restore_points
from tests.cloud.test_web_hosting_e2e import OPERATION_TIMEOUT_S, client, fetch, follow, ministry, resolve
from tests.conftest import Platform, Tenant, order_and_approve

pytestmark = [pytest.mark.cloud, pytest.mark.timeout(2400)]

__all__ = ["client", "ministry"]  # fixtures shared with the end-to-end test, not copied

# A failing health check waits this long for the copy to pass; long enough for a healthy copy.
HEALTH_TIMEOUT_S = 45
DRILL_RESOURCES = ("servers", "volumes", "floating_ips", "ports", "routers", "subnets", "networks", "security_groups")


@pytest.fixture(scope="module")
def system_settings() -> dict[str, str]:
    return {"TONLE_HEALTH_TIMEOUT_SECONDS": str(HEALTH_TIMEOUT_S)}


@pytest.fixture(scope="module")
def site(system: System, ministry: Tenant, platform: Platform) -> Iterator[dict[str, Any]]:
    """A web-hosting service built for real, backed up with content A, then serving content B."""
    domain = f"drill-{uuid.uuid4().hex[:6]}.{ministry.dns_suffix}"
    body = {
        "offering_id": "web-hosting",
        "plan": "small",
        "parameters": {"name": "drilled", "domain": domain, "admin_email": f"web@{ministry.dns_suffix}"},
    }
    markers = {"a": f"Content A {uuid.uuid4().hex[:8]}", "b": f"Content B {uuid.uuid4().hex[:8]}"}
    with httpx.Client(base_url=system.url, timeout=60) as http:
        approved = order_and_approve(http, ministry, platform, body)
        follow(http, ministry.requester.headers, approved["operation_id"], system)
        service_id = approved["service_id"]
        deploy(http, ministry, system, service_id, markers["a"])
        backup = http.post(f"/v1/services/{service_id}/actions/backup", headers=ministry.requester.headers)
        assert backup.status_code == 202, backup.text
        follow(http, ministry.requester.headers, backup.json()["id"], system)
        (point,) = restore_points(http, ministry, service_id)
        deploy(http, ministry, system, service_id, markers["b"])
        service = http.get(f"/v1/services/{service_id}", headers=ministry.requester.headers).json()
    assert markers["b"] in fetch(service["endpoints"]["public_address"], domain).text
    yield {"service": service, "domain": domain, "markers": markers, "restore_point": point}


def run_drill(client: httpx.Client, ministry: Tenant, service_id: str, body: dict[str, Any]) -> str:
    started = client.post(f"/v1/services/{service_id}/actions/drill", json=body, headers=ministry.requester.headers)
    assert started.status_code == 202, started.text
    operation_id: str = started.json()["id"]
    return operation_id


def finished(client: httpx.Client, ministry: Tenant, operation_id: str) -> dict[str, Any]:
    """The operation once it has ended, whichever way."""
    deadline = time.monotonic() + OPERATION_TIMEOUT_S
    while time.monotonic() < deadline:
        operation: dict[str, Any] = client.get(
            f"/v1/operations/{operation_id}", headers=ministry.requester.headers
        ).json()
        if operation["status"] in ("succeeded", "failed", "cancelled"):
            return operation
        time.sleep(3)
    pytest.fail(f"drill {operation_id} did not end within {OPERATION_TIMEOUT_S} s")


def report_of(client: httpx.Client, ministry: Tenant, operation_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/operations/{operation_id}/report", headers=ministry.requester.headers)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def marker_of(operation_id: str) -> str:
    return f"drill-{uuid.UUID(operation_id).hex[:8]}"


def drill_resources(
    devcloud: DevCloud, ministry: Tenant, operation_id: str, *, mark: str | None = None
) -> dict[str, list[str]]:
    """What the drill's copy has in the ministry's project, seen by an outside observer (admin):
    anything whose name, tags or metadata carry the drill's mark."""
    admin = devcloud.admin
    project = admin.identity.find_project(f"tonle-{ministry.code}", domain_id="default")
    assert project is not None
    mark = mark or marker_of(operation_id)

    def marked(resource: Any) -> bool:
        metadata = getattr(resource, "metadata", None) or {}
        return (
            mark in (resource.name or "")
            or f"copy={mark}" in (getattr(resource, "tags", None) or [])
            or metadata.get("tonle_copy") == mark
        )

    listings = {
        "servers": admin.compute.servers(all_projects=True, project_id=project.id),
        "volumes": admin.block_storage.volumes(all_projects=True, project_id=project.id),
        "floating_ips": admin.network.ips(project_id=project.id),
        "ports": admin.network.ports(project_id=project.id),
        "routers": admin.network.routers(project_id=project.id),
        "subnets": admin.network.subnets(project_id=project.id),
        "networks": admin.network.networks(project_id=project.id),
        "security_groups": admin.network.security_groups(project_id=project.id),
    }
    return {kind: [f"{r.name or ''} {r.id}" for r in listing if marked(r)] for kind, listing in listings.items()}


def copy_security_group(devcloud: DevCloud, operation_id: str, timeout: float = 600) -> list[dict[str, Any]]:
    """The rules of the copy's security group, once the build has made its egress rules."""
    deadline = time.monotonic() + timeout
    suffix = f"-{marker_of(operation_id)}-sg"
    while time.monotonic() < deadline:
        groups = [g for g in devcloud.admin.network.security_groups() if (g.name or "").endswith(suffix)]
        if groups:
            rules = [dict(r) for r in devcloud.admin.network.security_group_rules(security_group_id=groups[0].id)]
            # Neutron's default egress rules (no prefix) are deleted before the stack's own are made.
            if sum(1 for r in rules if r["direction"] == "egress" and r["remote_ip_prefix"]) >= 2:
                return rules
        time.sleep(2)
    pytest.fail(f"no security group ending in {suffix} with its egress rules within {timeout} s")


def test_a_drill_restores_content_a_into_an_isolated_copy_and_leaves_nothing(
    client: httpx.Client, system: System, ministry: Tenant, site: dict[str, Any], devcloud: DevCloud
) -> None:
    service, domain, markers = site["service"], site["domain"], site["markers"]
    production = service["endpoints"]["public_address"]
    operation_id = run_drill(client, ministry, service["id"], {"expect_text": markers["a"]})

    # While it runs: the copy's group lets it out to its own subnet and the S3 relay, nothing else.
    rules = copy_security_group(devcloud, operation_id)
    egress = sorted(r["remote_ip_prefix"] for r in rules if r["direction"] == "egress")
    assert len(egress) == 2 and "172.24.4.1/32" in egress, egress
    assert not {"0.0.0.0/0", "::/0", None} & set(egress)
    assert {r["remote_ip_prefix"] for r in rules if r["direction"] == "ingress"} == {"172.24.4.0/24"}

    operation = follow(client, ministry.requester.headers, operation_id, system)
    assert [s["status"] for s in operation["steps"]] == ["succeeded"] * len(operation["steps"])
    events = client.get(f"/v1/operations/{operation_id}/events", headers=ministry.requester.headers).json()
    # The health check reached the copy by its own address under the service's name, and found A.
    probes = [e for e in events if e["type"] == "health.probe" and e["data"].get("passed")]
    assert probes and all(p["data"]["address"] != production for p in probes)
    assert probes[-1]["data"]["hostname"] == domain

    report = report_of(client, ministry, operation_id)
    assert report["passed"] is True and report["failed_check"] is None, report
    point = site["restore_point"]
    assert report["restore_point"]["snapshot_id"] == point["snapshot_id"]
    assert report["restore_point"]["checksum"] == point["checksum"]
    started, ended = datetime.fromisoformat(report["started_at"]), datetime.fromisoformat(report["finished_at"])
    taken = datetime.fromisoformat(point["taken_at"])
    # RPO: from A's backup to the drill's start (B's deployment came between). RTO: start to healthy copy.
    assert abs(report["rpo_seconds"] - (started - taken).total_seconds()) < 1.5
    assert 0 < report["rpo_seconds"] < OPERATION_TIMEOUT_S * 2
    assert 0 < report["rto_seconds"] < (ended - started).total_seconds()
    assert report["target_rto_seconds"] > 0 and report["target_rpo_seconds"] > 0
    assert report["cleanup_verified"] is True and report["leftovers"] == []

    assert drill_resources(devcloud, ministry, operation_id) == {kind: [] for kind in DRILL_RESOURCES}
    # Production was never touched: still B, at its address, under its name.
    assert markers["b"] in fetch(production, domain).text
    assert resolve(domain) == [production]
    assert client.get(f"/v1/services/{service['id']}", headers=ministry.requester.headers).json()["status"] == "active"


def test_a_drill_whose_health_check_fails_is_reported_failed_naming_it_and_still_cleans_up(
    client: httpx.Client, ministry: Tenant, site: dict[str, Any], devcloud: DevCloud
) -> None:
    service, domain = site["service"], site["domain"]
    absent = f"text the site never served {uuid.uuid4().hex[:8]}"
    operation_id = run_drill(client, ministry, service["id"], {"expect_text": absent})

    operation = finished(client, ministry, operation_id)
    assert operation["status"] == "failed" and operation["failed_step"] == "check_health", operation
    statuses = {step["name"]: step["status"] for step in operation["steps"]}
    assert statuses["destroy_copy"] == statuses["verify_cleanup"] == statuses["report"] == "succeeded"

    report = report_of(client, ministry, operation_id)
    assert report["passed"] is False
    assert report["failed_check"].startswith(f"health check https://{domain}/ via "), report["failed_check"]
    assert report["rto_seconds"] is None and report["rpo_seconds"] > 0
    assert report["cleanup_verified"] is True and report["leftovers"] == []
    assert drill_resources(devcloud, ministry, operation_id) == {kind: [] for kind in DRILL_RESOURCES}
    assert site["markers"]["b"] in fetch(service["endpoints"]["public_address"], domain).text


@pytest.fixture(scope="module")
def cms(
    system: System, ministry: Tenant, platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A CMS built for real and backed up while its site name (in its database) was A, then renamed B."""
    domain = f"news-{uuid.uuid4().hex[:6]}.{ministry.dns_suffix}"
    # Plain words: WordPress escapes what it prints, and the checks compare text.
    names = {"a": f"NewsA{uuid.uuid4().hex[:8]}", "b": f"NewsB{uuid.uuid4().hex[:8]}"}
    body = {
        "offering_id": "cms",
        "plan": "standard",
        "parameters": {
            "name": "news",
            "domain": domain,
            "site_title": names["a"],
            "admin_email": f"press@{ministry.dns_suffix}",
        },
    }
    with httpx.Client(base_url=system.url, timeout=60) as http:
        approved = order_and_approve(http, ministry, platform, body)
        follow(http, ministry.requester.headers, approved["operation_id"], system)
        service_id = approved["service_id"]
        backup = http.post(f"/v1/services/{service_id}/actions/backup", headers=ministry.requester.headers)
        assert backup.status_code == 202, backup.text
        follow(http, ministry.requester.headers, backup.json()["id"], system)
        (point,) = restore_points(http, ministry, service_id)
        service = http.get(f"/v1/services/{service_id}", headers=ministry.requester.headers).json()
    rename = f"UPDATE wp_options SET option_value = '{names['b']}' WHERE option_name = 'blogname'"
    on_host(service, f'sudo mariadb wordpress -e "{rename}"', tmp_path_factory.mktemp("cms-ssh"))
    login = fetch(service["endpoints"]["public_address"], domain, "/wp-login.php")
    assert names["b"] in login.text and names["a"] not in login.text
    yield {"service": service, "domain": domain, "names": names, "restore_point": point}


def test_a_cms_drill_restores_the_database_of_its_restore_point(
    client: httpx.Client, system: System, ministry: Tenant, cms: dict[str, Any], devcloud: DevCloud
) -> None:
    service, domain, names = cms["service"], cms["domain"], cms["names"]
    operation_id = run_drill(client, ministry, service["id"], {"expect_text": names["a"]})
    operation = follow(client, ministry.requester.headers, operation_id, system)
    assert all(step["status"] == "succeeded" for step in operation["steps"])

    report = report_of(client, ministry, operation_id)
    assert report["passed"] is True and report["failed_check"] is None, report
    # The database dump is part of the checksum: the copy's database is the restore point's.
    assert report["restore_point"]["checksum"] == cms["restore_point"]["checksum"]
    assert report["rto_seconds"] > 0 and report["rpo_seconds"] > 0
    assert report["cleanup_verified"] is True and report["leftovers"] == []
    assert drill_resources(devcloud, ministry, operation_id) == {kind: [] for kind in DRILL_RESOURCES}
    assert names["b"] in fetch(service["endpoints"]["public_address"], domain, "/wp-login.php").text


def test_failover_then_failback_repoints_dns_keeps_the_latest_content_and_leaves_nothing_at_dr(
    client: httpx.Client,
    system: System,
    ministry: Tenant,
    platform: Platform,
    site: dict[str, Any],
    devcloud: DevCloud,
) -> None:
    """Last in the module (after the drills): the web site fails over for real, and back."""
    service, domain, markers = site["service"], site["domain"], site["markers"]
    production = service["endpoints"]["public_address"]

    failover = move(client, system, ministry, platform, service["id"], "failover")
    dr_address = failover["report"]["dns"]["address"]
    assert dr_address != production
    assert served(domain, dr_address), f"{domain} does not answer {dr_address} after the failover"
    # The failover took a last backup of the primary first: B, not the drilled A, is what runs at DR.
    assert markers["b"] in fetch(dr_address, domain).text
    state = client.get(f"/v1/services/{service['id']}", headers=ministry.requester.headers).json()
    assert (state["status"], state["running_at"]) == ("active", "dr")
    report = failover["report"]
    assert report["passed"] is True and report["kind"] == "failover"
    # The primary answered: its last backup, taken during the failover, is what was restored.
    assert report["rpo_seconds"] == 0 and report["data_loss_window_seconds"] > 0
    # RTO ends when the names move, moments before the report: within the whole (figures are to 0.1 s).
    took = datetime.fromisoformat(report["finished_at"]) - datetime.fromisoformat(report["started_at"])
    assert 0 < report["rto_seconds"] <= round(took.total_seconds(), 1) + 0.1
    assert [vote["role"] for vote in report["approved_by"]] == ["operator"]

    failback = move(client, system, ministry, platform, service["id"], "failback")
    assert served(domain, production), f"{domain} does not answer {production} after the failback"
    assert markers["b"] in fetch(production, domain).text
    state = client.get(f"/v1/services/{service['id']}", headers=ministry.requester.headers).json()
    assert (state["status"], state["running_at"]) == ("active", "primary")
    report = failback["report"]
    assert report["passed"] is True and report["cleanup_verified"] is True and report["leftovers"] == []
    copy_mark = f"failover-{uuid.UUID(failover['operation']['id']).hex[:8]}"
    assert drill_resources(devcloud, ministry, failover["operation"]["id"], mark=copy_mark) == {
        kind: [] for kind in DRILL_RESOURCES
    }


def move(
    client: httpx.Client, system: System, ministry: Tenant, platform: Platform, service_id: str, kind: str
) -> dict[str, Any]:
    """Ask for a failover or failback as the ministry, approve it as an operator, follow it."""
    asked = client.post(
        f"/v1/services/{service_id}/actions/{kind}",
        json={"justification": f"cloud test: {kind}"},
        headers=ministry.requester.headers,
    )
    assert asked.status_code == 202, asked.text
    approved = client.post(
        f"/v1/requests/{asked.json()['id']}/approvals",
        json={"decision": "approve", "reference": "DR-TEST"},
        headers=platform.operator.headers,
    )
    assert approved.status_code == 200, approved.text
    operation = follow(client, ministry.requester.headers, approved.json()["operation_id"], system)
    return {"operation": operation, "report": report_of(client, ministry, operation["id"])}


def served(name: str, address: str, timeout: float = 60) -> bool:
    """Whether the data centre's DNS answers `address` for `name` within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if resolve(name) == [address]:
            return True
        time.sleep(1)
    return False
