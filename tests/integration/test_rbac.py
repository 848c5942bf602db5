"""Each role against each endpoint, including other ministries' data (which must look absent)."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Account, Platform, Tenant, make_tenant, order_and_approve, order_body, run_worker_until_idle

pytestmark = pytest.mark.integration

ROLES = ("requester", "approver", "automation", "operator", "admin", "other_requester", "other_approver", "anonymous")


@dataclass
class World:
    client: httpx.Client
    tenant: Tenant
    other: Tenant
    platform: Platform
    service_id: str
    operation_id: str
    request_id: str

    def account(self, role: str) -> Account | None:
        return {
            "requester": self.tenant.requester,
            "approver": self.tenant.approver,
            "automation": self.tenant.automation,
            "operator": self.platform.operator,
            "admin": self.platform.admin,
            "other_requester": self.other.requester,
            "other_approver": self.other.approver,
            "anonymous": None,
        }[role]

    def pending_request(self) -> str:
        response = self.client.post("/v1/requests", json=order_body(self.tenant), headers=self.tenant.requester.headers)
        assert response.status_code == 201, response.text
        request_id: str = response.json()["id"]
        return request_id


@pytest.fixture(scope="module")
def world(api_url: str, platform: Platform) -> World:
    tenant, other = make_tenant(), make_tenant()
    client = httpx.Client(base_url=api_url, timeout=30.0)
    approved = order_and_approve(client, tenant, platform)
    run_worker_until_idle()
    return World(
        client=client,
        tenant=tenant,
        other=other,
        platform=platform,
        service_id=approved["service_id"],
        operation_id=approved["operation_id"],
        request_id=approved["id"],
    )


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: Callable[[World], str]
    expected: dict[str, int]
    body: Callable[[World, str], Any] | None = None


def everyone(status: int, **overrides: int) -> dict[str, int]:
    table = {role: status for role in ROLES}
    table["anonymous"] = 401
    table.update(overrides)
    return table


SCOPED_READ = everyone(200, other_requester=404, other_approver=404)
PLATFORM_ONLY = everyone(403, operator=200, admin=200)
ADMIN_ONLY = everyone(403, admin=200)


def order_for(world: World, role: str) -> dict[str, Any]:
    # Each ministry orders names under its own DNS suffix; admins and operators order for the tenant.
    body = order_body(world.other if role.startswith("other_") else world.tenant)
    if role in ("admin", "operator"):
        body["ministry_id"] = str(world.tenant.ministry_id)
    return body


CASES = [
    Case("list catalogue", "GET", lambda w: "/v1/catalog", everyone(200)),
    Case("get offering", "GET", lambda w: "/v1/catalog/web-hosting", everyone(200)),
    Case("get schema", "GET", lambda w: "/v1/catalog/web-hosting/schema", everyone(200)),
    Case(
        "submit request",
        "POST",
        lambda w: "/v1/requests",
        everyone(201, operator=403),
        body=order_for,
    ),
    Case("list requests", "GET", lambda w: "/v1/requests", everyone(200)),
    Case("get request", "GET", lambda w: f"/v1/requests/{w.request_id}", SCOPED_READ),
    Case("list votes", "GET", lambda w: f"/v1/requests/{w.request_id}/approvals", SCOPED_READ),
    Case(
        "cancel request",
        "POST",
        lambda w: f"/v1/requests/{w.pending_request()}/cancel",
        # Operators do not withdraw a ministry's order; they reject it at their stage.
        everyone(200, operator=403, other_requester=404, other_approver=404),
    ),
    Case(
        "vote on first stage",
        "POST",
        lambda w: f"/v1/requests/{w.pending_request()}/approvals",
        everyone(403, approver=200, admin=200, other_approver=404),
        body=lambda w, role: {"decision": "approve"},
    ),
    Case("list services", "GET", lambda w: "/v1/services", everyone(200)),
    Case("get service", "GET", lambda w: f"/v1/services/{w.service_id}", SCOPED_READ),
    Case("service operations", "GET", lambda w: f"/v1/services/{w.service_id}/operations", SCOPED_READ),
    Case(
        "day-2 workflow with a bad parameter",
        "POST",
        lambda w: f"/v1/services/{w.service_id}/actions/restore",
        # The policy answers before the parameters: operators do not act on ministries' services.
        everyone(422, operator=403, other_requester=404, other_approver=404),
        body=lambda w, role: {"restore_point": "not-an-id"},
    ),
    Case("get operation", "GET", lambda w: f"/v1/operations/{w.operation_id}", SCOPED_READ),
    Case("operation events", "GET", lambda w: f"/v1/operations/{w.operation_id}/events", SCOPED_READ),
    Case(
        "retry a finished operation",
        "POST",
        lambda w: f"/v1/operations/{w.operation_id}/retry",
        everyone(403, operator=409, admin=409, other_requester=404, other_approver=404),
    ),
    Case("list ministries", "GET", lambda w: "/v1/ministries", PLATFORM_ONLY),
    Case(
        "create ministry",
        "POST",
        lambda w: "/v1/ministries",
        everyone(403, admin=201),
        body=lambda w, role: {"code": f"m-{uuid.uuid4().hex[:8]}", "name": "Ministry of Tests"},
    ),
    Case("get ministry", "GET", lambda w: f"/v1/ministries/{w.tenant.ministry_id}", SCOPED_READ),
    Case("showback", "GET", lambda w: f"/v1/ministries/{w.tenant.ministry_id}/showback", SCOPED_READ),
    Case(
        "change quota",
        "PATCH",
        lambda w: f"/v1/ministries/{w.tenant.ministry_id}",
        everyone(403, admin=200),
        body=lambda w, role: {
            "quota_limits": {"vcpu": 64, "ram_gb": 128, "storage_gb": 5000, "object_gb": 10000, "public_ips": 20}
        },
    ),
    Case("who am I", "GET", lambda w: "/v1/me", everyone(200)),
    Case("list users", "GET", lambda w: "/v1/users", ADMIN_ONLY),
    Case(
        "create user",
        "POST",
        lambda w: "/v1/users",
        everyone(403, admin=201),
        body=lambda w, role: {
            "username": f"u-{uuid.uuid4().hex[:8]}",
            "role": "requester",
            "ministry_id": str(w.tenant.ministry_id),
        },
    ),
    Case("list own tokens", "GET", lambda w: "/v1/tokens", everyone(200)),
    Case("audit log", "GET", lambda w: "/v1/audit", everyone(200, requester=403, automation=403, other_requester=403)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_role_against_endpoint(world: World, case: Case, role: str) -> None:
    account = world.account(role)
    headers = account.headers if account else {}
    body = case.body(world, role) if case.body else None
    response = world.client.request(case.method, case.path(world), json=body, headers=headers)
    assert response.status_code == case.expected[role], f"{role} {case.method} {case.name}: {response.text}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


def test_health_needs_no_token(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json()["checks"]["database"] == "ok"


def test_lists_show_only_the_callers_ministry(world: World) -> None:
    mine = world.client.get("/v1/requests", headers=world.tenant.requester.headers).json()
    assert mine["items"] and {r["ministry_id"] for r in mine["items"]} == {str(world.tenant.ministry_id)}
    theirs = world.client.get("/v1/requests", headers=world.other.requester.headers).json()
    assert all(r["ministry_id"] == str(world.other.ministry_id) for r in theirs["items"])
    services = world.client.get("/v1/services", headers=world.other.requester.headers).json()
    assert world.service_id not in {s["id"] for s in services["items"]}
    everything = world.client.get("/v1/services", headers=world.platform.operator.headers, params={"limit": 500}).json()
    assert world.service_id in {s["id"] for s in everything["items"]}


def test_ordering_for_another_ministry_looks_like_a_missing_ministry(world: World) -> None:
    body = order_body(world.other, ministry_id=str(world.other.ministry_id))
    response = world.client.post("/v1/requests", json=body, headers=world.tenant.requester.headers)
    assert response.status_code == 404
    assert response.json()["field"] == "ministry_id"


def test_a_bad_or_revoked_token_is_refused(world: World) -> None:
    assert world.client.get("/v1/me", headers={"Authorization": "Bearer tnl_nonsense"}).status_code == 401
    issued = world.client.post("/v1/tokens", json={"name": "laptop"}, headers=world.tenant.requester.headers).json()
    fresh = {"Authorization": f"Bearer {issued['token']}"}
    assert world.client.get("/v1/me", headers=fresh).json()["username"] == world.tenant.requester.username
    listed = world.client.get("/v1/tokens", headers=fresh).json()
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert world.client.delete(f"/v1/tokens/{issued['id']}", headers=fresh).status_code == 200
    assert world.client.get("/v1/me", headers=fresh).status_code == 401


def test_nobody_approves_their_own_order(world: World) -> None:
    admin_order = world.client.post(
        "/v1/requests", json=order_for(world, "admin"), headers=world.platform.admin.headers
    ).json()
    response = world.client.post(
        f"/v1/requests/{admin_order['id']}/approvals",
        json={"decision": "approve"},
        headers=world.platform.admin.headers,
    )
    assert response.status_code == 403
    assert "submitted" in response.json()["detail"]
