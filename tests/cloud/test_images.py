"""The image pipeline against the local data centre: the session's web image (built by the
`baked_images` fixture through `POST /v1/images/builds` and the worker) is in Glance, active and
public, recorded with its install digest and the package versions the image itself reports;
nothing of its build is left in the builds' project; and a web-hosting order boots it and
configures without installing (no apt task of the install phase ran). openstacksdk is the outside observer."""

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from orchestrator.config import get_settings
from orchestrator.images.digest import install_digest
from tests.cloud.conftest import DevCloud, System
from tests.conftest import Platform, Tenant, make_tenant, order_and_approve, web_params

pytestmark = [pytest.mark.cloud, pytest.mark.timeout(2700)]

OPERATION_TIMEOUT_S = 900
BUILD_TIMEOUT_S = 1500
APT_MODULES = {"apt", "ansible.builtin.apt"}


@pytest.fixture(scope="module")
def web_image(baked_images: dict[str, dict[str, Any]], system: System, platform: Platform) -> dict[str, Any]:
    """The session's web image, waited for when its build outlasted the fixture's wait."""
    with httpx.Client(base_url=system.url, headers=platform.operator.headers, timeout=30) as client:
        deadline = time.monotonic() + BUILD_TIMEOUT_S
        while True:
            tried = client.get("/v1/images", params={"role": "web"}).json()
            available = [i for i in tried if i["status"] == "available" and i["current"]]
            if available:
                return dict(available[0])
            if not any(i["status"] == "building" for i in tried) or time.monotonic() > deadline:
                pytest.fail(f"the session's web image was not built: {[(i['status'], i['error']) for i in tried]}")
            time.sleep(5)


@pytest.fixture(scope="module")
def ministry(system: System, platform: Platform) -> Iterator[Tenant]:
    tenant = make_tenant()
    yield tenant
    with httpx.Client(base_url=system.url, timeout=60) as client:
        for service in client.get("/v1/services", headers=tenant.requester.headers).json()["items"]:
            if service["status"] != "retired":
                client.post(f"/v1/services/{service['id']}/decommission", headers=platform.admin.headers)


def test_the_web_image_is_in_glance_with_what_it_holds(
    web_image: dict[str, Any], devcloud: DevCloud, system: System, platform: Platform
) -> None:
    image = devcloud.admin.image.get_image(web_image["glance_image_id"])
    assert image.status == "active" and image.visibility == "public", (image.status, image.visibility)
    assert image.name == web_image["name"] and image.size == web_image["size_bytes"] > 0
    assert web_image["install_digest"] == install_digest(playbooks_dir=get_settings().playbooks_dir, role="web")
    assert web_image["current"] is True
    facts = web_image["packages"]
    assert facts["image_role"] == "web" and {"baseline", "web", "backup_agent"} <= set(facts["roles"])
    assert {"nginx", "php8.2-fpm", "restic"} <= set(facts["packages"]), facts
    assert all(re.fullmatch(r"[0-9A-Za-z.+:~-]+", version) for version in facts["packages"].values()), facts
    # The build's server, network and floating IP were destroyed with its stack (named after the build).
    project = devcloud.admin.identity.find_project("tonle-_images", domain_id="default")
    assert project is not None
    build = f"image-web-{web_image['id'].replace('-', '')[:8]}"
    left = [s.name for s in devcloud.admin.compute.servers(all_projects=True, project_id=project.id)]
    left += [n.name for n in devcloud.admin.network.networks(project_id=project.id)]
    left += [r.name for r in devcloud.admin.network.routers(project_id=project.id)]
    left += [g.name for g in devcloud.admin.network.security_groups(project_id=project.id)]
    assert [name for name in left if build in name] == []
    assert [i.id for i in devcloud.admin.image.images(name=web_image["name"])] == [image.id]
    print(
        f"web image {web_image['name']}: built in {web_image['build_seconds']:.0f} s, "
        f"{web_image['size_bytes'] / 1e6:.0f} MB"
    )


def test_a_web_order_boots_the_image_and_installs_nothing(
    web_image: dict[str, Any], devcloud: DevCloud, system: System, platform: Platform, ministry: Tenant
) -> None:
    with httpx.Client(base_url=system.url, timeout=60) as client:
        body = {"offering_id": "web-hosting", "plan": "small", "parameters": web_params(ministry)}
        approved = order_and_approve(client, ministry, platform, body)
        operation = _finished(client, ministry, approved["operation_id"], system)
        events = client.get(
            f"/v1/operations/{approved['operation_id']}/events", headers=ministry.requester.headers
        ).json()
        service = client.get(f"/v1/services/{approved['service_id']}", headers=ministry.requester.headers).json()
    assert operation["status"] == "succeeded"
    selected = [e for e in events if e["type"] == "image.selected"]
    assert selected and selected[0]["data"]["image"] == web_image["name"], selected
    apt_tasks = install_phase_apt_tasks()
    assert apt_tasks, "the install phase names no apt task: the playbooks changed shape"
    ran = [
        (e["data"]["task"], e["data"]["outcome"])
        for e in events
        if e["type"] == "ansible.task" and e["data"].get("task") in apt_tasks and e["data"]["outcome"] != "skipped"
    ]
    assert ran == [], ran
    assert service["status"] == "active"
    project = devcloud.admin.identity.find_project(f"tonle-{ministry.code}", domain_id="default")
    servers = list(devcloud.admin.compute.servers(all_projects=True, project_id=project.id))
    assert servers and all(s.image["id"] == web_image["glance_image_id"] for s in servers), servers


def install_phase_apt_tasks() -> set[str]:
    """Names of the install phase's tasks that call apt (package lists, package installs)."""
    names: set[str] = set()

    def visit(tasks: Any) -> None:
        for task in tasks if isinstance(tasks, list) else []:
            if not isinstance(task, dict):
                continue
            if APT_MODULES & set(task) and isinstance(task.get("name"), str):
                names.add(task["name"])
            for key in ("block", "rescue", "always"):
                visit(task.get(key))

    for path in (get_settings().playbooks_dir / "roles").glob("*/tasks/install*.yml"):
        visit(yaml.safe_load(path.read_text()))
    return names


def _finished(client: httpx.Client, tenant: Tenant, operation_id: str, system: System) -> dict[str, Any]:
    deadline = time.monotonic() + OPERATION_TIMEOUT_S
    while time.monotonic() < deadline:
        operation: dict[str, Any] = client.get(
            f"/v1/operations/{operation_id}", headers=tenant.requester.headers
        ).json()
        if operation["status"] not in ("queued", "running"):
            if operation["status"] != "succeeded":
                pytest.fail(f"operation {operation['status']}: {(system.logs / 'worker.log').read_text()[-4000:]}")
            return operation
        time.sleep(2)
    pytest.fail(f"operation {operation_id} still running after {OPERATION_TIMEOUT_S} s")
