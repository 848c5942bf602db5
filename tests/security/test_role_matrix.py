"""Every day-2 endpoint against every kind of caller, through the real API.

The rules (orchestrator/policy.py, README "Roles"): another ministry's service is not found (404),
a visible service the caller may not act on is forbidden (403), no token is 401. Operators read,
vote and retry; they do not change ministries' services. Platform-wide automation exists for
backups and drills only; an automation account with neither a ministry nor the flag reaches nothing.

Every allowed call gets a service (or failed operation) of its own, so that one caller's action
never turns another's expected answer into a 409.
"""

import io
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from orchestrator.bootstrap import noop_adapters
from orchestrator.config import get_settings
from orchestrator.jobs import queue
from orchestrator.noop import NoopEngine
from orchestrator.ports import EventSink, StackSpec, StepFailed
from tests.conftest import Account, Platform, Tenant, make_tenant, run_worker_until_idle

pytestmark = [pytest.mark.security, pytest.mark.integration]

CALLERS = (
    "own_requester",
    "own_approver",
    "own_automation",
    "other_requester",
    "operator",
    "admin",
    "platform_automation",
    "unflagged_automation",
    "anonymous",
)


def expect(
    owners: int,
    *,
    staff: int | None = None,
    own_automation: int | None = None,
    operator: int = 403,
    admin: int | None = None,
    platform_automation: int = 403,
) -> dict[str, int]:
    """Expected statuses; `owners` is the answer for the ministry's own people, automation and admins."""
    return {
        "own_requester": staff if staff is not None else owners,
        "own_approver": staff if staff is not None else owners,
        "own_automation": own_automation if own_automation is not None else owners,
        "other_requester": 404,
        "operator": operator,
        "admin": admin if admin is not None else owners,
        "platform_automation": platform_automation,
        "unflagged_automation": 404,
        "anonymous": 401,
    }


@dataclass(frozen=True)
class Endpoint:
    name: str
    target: str  # which kind of thing it acts on: web, backup (a dr-backup service) or failed (an operation)
    path: Callable[[str], str]
    expected: dict[str, int]
    body: dict[str, Any] | None = None
    upload: bool = False


def service_action(action: str) -> Callable[[str], str]:
    return lambda service_id: f"/v1/services/{service_id}/actions/{action}"


ENDPOINTS = [
    Endpoint("resize (growth)", "web", service_action("resize"), expect(202), body={"plan": "medium"}),
    Endpoint("resize (shrink)", "backup", service_action("resize"), expect(202), body={"plan": "archive-500g"}),
    Endpoint("deploy content", "web", service_action("deploy-content"), expect(202), upload=True),
    Endpoint("restart", "web", service_action("restart"), expect(202)),
    Endpoint("decommission", "web", lambda s: f"/v1/services/{s}/decommission", expect(202)),
    Endpoint("backup", "web", service_action("backup"), expect(202, platform_automation=202)),
    Endpoint("restore", "web", service_action("restore"), expect(202)),
    Endpoint("drill", "web", service_action("drill"), expect(202, platform_automation=202)),
    # Asked for, then approved by an operator: 202 with the request.
    Endpoint("failover", "web", service_action("failover"), expect(202)),
    # The service runs at the primary site: nothing to fail back, once the caller may ask.
    Endpoint("failback", "web", service_action("failback"), expect(409)),
    # Credentials go to the ministry's own people only: not its automation, not even admins.
    Endpoint(
        "reveal credentials",
        "web",
        lambda s: f"/v1/services/{s}/credentials",
        expect(403, staff=200),
    ),
    Endpoint(
        "retry",
        "failed",
        lambda op: f"/v1/operations/{op}/retry",
        expect(403, operator=202, admin=202),
    ),
]


def changes_something(status: int) -> bool:
    return status in (200, 202)


class FailingEngine(NoopEngine):
    """Test double at the engine boundary: every `up` fails, so provisioning leaves a failed operation."""

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        raise StepFailed("the test engine refuses to build anything")


@dataclass
class World:
    client: httpx.Client
    tenant: Tenant
    other: Tenant
    platform: Platform
    unflagged: Account
    shared: dict[str, str]
    fresh: dict[tuple[str, str], str] = field(default_factory=dict)

    def account(self, caller: str) -> Account | None:
        return {
            "own_requester": self.tenant.requester,
            "own_approver": self.tenant.approver,
            "own_automation": self.tenant.automation,
            "other_requester": self.other.requester,
            "operator": self.platform.operator,
            "admin": self.platform.admin,
            "platform_automation": self.platform.automation,
            "unflagged_automation": self.unflagged,
            "anonymous": None,
        }[caller]


def legacy_platform_automation() -> Account:
    """An automation account with no ministry and no flag, as one created before the flag existed
    could be; the API refuses to create one now, so it is written straight to the database."""
    from orchestrator.actors import SYSTEM, Role
    from orchestrator.auth import service as auth
    from orchestrator.auth.models import ApiTokenCreate, User
    from orchestrator.database.core import session_scope

    username = f"legacy-automation-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        user = User(username=username, role=Role.automation, ministry_id=None, platform_wide=False)
        session.add(user)
        session.commit()
        user_id = user.id
        token = auth.issue_token(session=session, actor=SYSTEM, user_id=user_id, data=ApiTokenCreate(name="legacy"))
        session.commit()
    return Account(username=username, role="automation", ministry_id=None, token=token.token, user_id=user_id)


def web_order(tenant: Tenant, index: int) -> dict[str, Any]:
    return {
        "offering_id": "web-hosting",
        "plan": "small",
        "parameters": {
            "name": f"site{index}",
            "domain": f"site{index}.{tenant.code}.gov.example",
            "admin_email": f"web@{tenant.code}.gov.example",
        },
    }


def backup_order(index: int) -> dict[str, Any]:
    return {
        "offering_id": "dr-backup",
        "plan": "archive-2t",
        "parameters": {"name": f"archive-{index}", "purpose": "Off-site copies for the role matrix"},
    }


def order_all(client: httpx.Client, tenant: Tenant, platform: Platform, bodies: list[dict[str, Any]]) -> list[str]:
    """Order and approve every body (each through its offering's stages); the requests' ids."""
    ids = []
    for body in bodies:
        response = client.post("/v1/requests", json=body, headers=tenant.requester.headers)
        assert response.status_code == 201, response.text
        request = response.json()
        for stage in request["approval_stages"]:
            voter = tenant.approver if stage == "ministry_approver" else platform.operator
            voted = client.post(
                f"/v1/requests/{request['id']}/approvals", json={"decision": "approve"}, headers=voter.headers
            )
            assert voted.status_code == 200, voted.text
        ids.append(request["id"])
    return ids


def service_ids(client: httpx.Client, tenant: Tenant, request_ids: list[str]) -> list[str]:
    found = []
    for request_id in request_ids:
        request = client.get(f"/v1/requests/{request_id}", headers=tenant.requester.headers).json()
        found.append(request["service_id"])
    return found


@pytest.fixture(scope="module")
def world(api_url: str, platform: Platform) -> Iterator[World]:
    tenant = make_tenant(vcpu=200, ram_gb=400, storage_gb=10000, object_gb=100000, public_ips=100)
    other = make_tenant()
    client = httpx.Client(base_url=api_url, timeout=30.0)
    allowed = [
        (endpoint.name, caller)
        for endpoint in ENDPOINTS
        for caller in CALLERS
        if changes_something(endpoint.expected[caller])
    ]
    target_of = {endpoint.name: endpoint.target for endpoint in ENDPOINTS}
    wanted = {kind: [case for case in allowed if target_of[case[0]] == kind] for kind in ("web", "backup", "failed")}

    # Operations that fail: one for the forbidden callers to poke at, one per allowed retry.
    failing = order_all(
        client, tenant, platform, [web_order(tenant, 1000 + i) for i in range(len(wanted["failed"]) + 1)]
    )
    queue.set_adapters(noop_adapters(get_settings(), engine=FailingEngine()))
    try:
        run_worker_until_idle()
    finally:
        queue.set_adapters(None)
    failed_ops = []
    for request_id in failing:
        request = client.get(f"/v1/requests/{request_id}", headers=tenant.requester.headers).json()
        assert request["status"] == "failed", request
        failed_ops.append(request["operation_id"])

    webs = order_all(client, tenant, platform, [web_order(tenant, i) for i in range(len(wanted["web"]) + 1)])
    backups = order_all(client, tenant, platform, [backup_order(i) for i in range(len(wanted["backup"]) + 1)])
    run_worker_until_idle()
    web_ids, backup_ids = service_ids(client, tenant, webs), service_ids(client, tenant, backups)

    world = World(
        client=client,
        tenant=tenant,
        other=other,
        platform=platform,
        unflagged=legacy_platform_automation(),
        shared={"web": web_ids.pop(), "backup": backup_ids.pop(), "failed": failed_ops.pop()},
    )
    pools = {"web": web_ids, "backup": backup_ids, "failed": failed_ops}
    for kind, cases in wanted.items():
        for case in cases:
            world.fresh[case] = pools[kind].pop()
    yield world
    client.close()


def site_archive() -> bytes:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        page = b"<h1>role matrix</h1>"
        info = tarfile.TarInfo("index.html")
        info.size = len(page)
        tar.addfile(info, io.BytesIO(page))
    return archive.getvalue()


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_caller_against_day2_endpoint(world: World, endpoint: Endpoint, caller: str) -> None:
    expected = endpoint.expected[caller]
    target = world.fresh[(endpoint.name, caller)] if changes_something(expected) else world.shared[endpoint.target]
    account = world.account(caller)
    headers = dict(account.headers) if account else {}
    if endpoint.upload:
        headers["Content-Type"] = "application/gzip"
        response = world.client.post(endpoint.path(target), content=site_archive(), headers=headers)
    else:
        response = world.client.post(endpoint.path(target), json=endpoint.body, headers=headers)
    assert response.status_code == expected, f"{caller} → {endpoint.name}: {response.text}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
    if response.status_code == 403:
        assert "may not" in response.json()["detail"], "the refusal says which rule refused"
    if endpoint.name == "resize (growth)" and expected == 202:
        assert response.json()["outcome"] == "approval_needed"
        assert response.json()["request"]["status"] == "pending_approval"
    if endpoint.name == "resize (shrink)" and expected == 202:
        assert response.json()["outcome"] == "started" and response.json()["operation"]["kind"] == "modify"


def test_refused_calls_changed_nothing(world: World) -> None:
    """Runs after the matrix (pytest keeps file order): the shared targets took every refusal."""
    headers = world.tenant.requester.headers
    web = world.client.get(f"/v1/services/{world.shared['web']}", headers=headers).json()
    assert web["status"] == "active" and web["plan"] == "small" and web["credentials_revealed_at"] is None
    operations = world.client.get(f"/v1/services/{world.shared['web']}/operations", headers=headers).json()
    assert [o["kind"] for o in operations] == ["provision"]
    backup = world.client.get(f"/v1/services/{world.shared['backup']}", headers=headers).json()
    assert backup["status"] == "active" and backup["plan"] == "archive-2t"
    failed = world.client.get(f"/v1/operations/{world.shared['failed']}", headers=headers).json()
    assert failed["status"] == "failed"
    waiting = world.client.get(
        "/v1/requests", params={"status": "pending_approval", "limit": 200}, headers=headers
    ).json()["items"]
    assert {r["service_id"] for r in waiting if r["kind"] == "modify"} == {
        world.fresh[("resize (growth)", caller)]
        for caller in CALLERS
        if changes_something(ENDPOINTS[0].expected[caller])
    }


def test_platform_automation_orders_nothing_and_needs_its_flag(world: World) -> None:
    body = web_order(world.tenant, 5000) | {"ministry_id": str(world.tenant.ministry_id)}
    for account in (world.platform.automation, world.unflagged):
        response = world.client.post("/v1/requests", json=body, headers=account.headers)
        assert response.status_code == 403, response.text
    assert world.client.get("/v1/services", headers=world.unflagged.headers).json()["total"] == 0
    assert world.client.get("/v1/catalog", headers=world.unflagged.headers).status_code == 403
    assert world.client.get("/v1/catalog", headers=world.platform.automation.headers).status_code == 200

    admin = world.platform.admin.headers
    name = f"dr-{uuid.uuid4().hex[:8]}"
    unflagged = world.client.post("/v1/users", json={"username": name, "role": "automation"}, headers=admin)
    assert unflagged.status_code == 422 and unflagged.json()["field"] == "platform_wide", unflagged.text
    flagged = world.client.post(
        "/v1/users", json={"username": name, "role": "automation", "platform_wide": True}, headers=admin
    )
    assert flagged.status_code == 201 and flagged.json()["platform_wide"] is True, flagged.text
    requester = world.client.post(
        "/v1/users",
        json={
            "username": f"r-{uuid.uuid4().hex[:8]}",
            "role": "requester",
            "ministry_id": str(world.tenant.ministry_id),
            "platform_wide": True,
        },
        headers=admin,
    )
    assert requester.status_code == 422 and requester.json()["field"] == "platform_wide"
