"""Submission rules: idempotency, quota under concurrency, validation errors, illegal transitions."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import Platform, Tenant, make_tenant, order_body

pytestmark = pytest.mark.integration


def test_the_same_idempotency_key_returns_the_original_request(client: httpx.Client, tenant: Tenant) -> None:
    headers = {**tenant.requester.headers, "Idempotency-Key": "order-2026-0042"}
    first = client.post("/v1/requests", json=order_body(tenant), headers=headers)
    again = client.post("/v1/requests", json=order_body(tenant), headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    used = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()["quota_used"]
    assert used["vcpu"] == 1, "a replay must not reserve quota twice"
    listed = client.get("/v1/requests", headers=tenant.requester.headers).json()
    assert listed["total"] == 1


def test_reusing_a_key_for_a_different_order_is_refused(client: httpx.Client, tenant: Tenant) -> None:
    headers = {**tenant.requester.headers, "Idempotency-Key": "k-1"}
    assert client.post("/v1/requests", json=order_body(tenant), headers=headers).status_code == 201
    response = client.post("/v1/requests", json=order_body(tenant, plan="medium"), headers=headers)
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key"


def test_concurrent_retries_with_one_key_create_one_request(client: httpx.Client, tenant: Tenant) -> None:
    headers = {**tenant.requester.headers, "Idempotency-Key": "burst"}
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(
            pool.map(lambda _: client.post("/v1/requests", json=order_body(tenant), headers=headers), range(10))
        )
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["id"] for r in responses}) == 1


def test_fifty_concurrent_orders_against_a_quota_for_ten(api_url: str, platform: Platform) -> None:
    # Each small web-hosting order takes 1 vCPU and 1 public IP; the ministry has 10 of each.
    tenant = make_tenant(vcpu=10, ram_gb=100, storage_gb=1000, object_gb=1000, public_ips=10)

    def submit(i: int) -> httpx.Response:
        with httpx.Client(base_url=api_url, timeout=60.0) as client:
            return client.post("/v1/requests", json=order_body(tenant), headers=tenant.requester.headers)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(submit, range(50)))
    codes = [r.status_code for r in responses]
    assert codes.count(201) == 10, codes
    assert codes.count(422) == 40, codes
    refused = next(r.json() for r in responses if r.status_code == 422)
    assert refused["title"] == "Quota exceeded" and "vcpu" in refused["detail"]
    with httpx.Client(base_url=api_url) as client:
        ministry = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()
    assert ministry["quota_used"]["vcpu"] == 10 and ministry["quota_used"]["public_ips"] == 10


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"name": "portal", "admin_email": "a@b.example"}, "parameters.domain"),
        ({"name": "Bad Name!", "domain": "a.example", "admin_email": "a@b.example"}, "parameters.name"),
        ({"name": "portal", "domain": "a.example", "admin_email": "not-an-email"}, "parameters.admin_email"),
        ({"name": "portal", "domain": "a.example", "admin_email": "a@b.example", "aliases": "x"}, "parameters.aliases"),
        ({"name": "portal", "domain": "a.example", "admin_email": "a@b.example", "colour": "red"}, "parameters"),
    ],
)
def test_invalid_parameters_name_the_field(
    client: httpx.Client, tenant: Tenant, parameters: dict[str, object], field: str
) -> None:
    response = client.post(
        "/v1/requests", json=order_body(tenant, parameters=parameters), headers=tenant.requester.headers
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == field, problem
    assert problem["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"plan": "gigantic"}, 422, "plan"),
        ({"offering_id": "teleporter"}, 404, "offering_id"),
        ({"offering_id": None, "parameters": {}}, 422, "offering_id"),
        ({"parameters": "not an object"}, 422, "parameters"),
    ],
)
def test_malformed_orders_name_the_field(
    client: httpx.Client, tenant: Tenant, change: dict[str, object], status: int, field: str
) -> None:
    # None drops the key from the body.
    body = {key: value for key, value in order_body(tenant, **change).items() if value is not None}
    response = client.post("/v1/requests", json=body, headers=tenant.requester.headers)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field


def test_a_bad_query_parameter_names_it(client: httpx.Client, tenant: Tenant) -> None:
    response = client.get("/v1/requests", params={"limit": 0}, headers=tenant.requester.headers)
    assert response.status_code == 422
    assert response.json()["field"] == "limit"
    response = client.get("/v1/requests", params={"status": "dreaming"}, headers=tenant.requester.headers)
    assert response.json()["field"] == "status"


def test_illegal_transitions_are_409_with_the_current_state(
    client: httpx.Client, tenant: Tenant, platform: Platform
) -> None:
    request = client.post("/v1/requests", json=order_body(tenant), headers=tenant.requester.headers).json()
    assert client.post(f"/v1/requests/{request['id']}/cancel", headers=tenant.requester.headers).status_code == 200
    again = client.post(f"/v1/requests/{request['id']}/cancel", headers=tenant.requester.headers)
    assert again.status_code == 409
    problem = again.json()
    assert problem["current_state"] == "cancelled" and problem["target_state"] == "cancelled"
    vote = client.post(
        f"/v1/requests/{request['id']}/approvals", json={"decision": "approve"}, headers=tenant.approver.headers
    )
    assert vote.status_code == 409 and vote.json()["current_state"] == "cancelled"
    used = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()["quota_used"]
    assert used["vcpu"] == 0, "cancelling gives the quota back exactly once"


def test_pagination_and_filters(client: httpx.Client, tenant: Tenant) -> None:
    ids = [
        client.post("/v1/requests", json=order_body(tenant), headers=tenant.requester.headers).json()["id"]
        for _ in range(5)
    ]
    client.post(f"/v1/requests/{ids[0]}/cancel", headers=tenant.requester.headers)
    first = client.get("/v1/requests", params={"limit": 2}, headers=tenant.requester.headers).json()
    second = client.get("/v1/requests", params={"limit": 2, "offset": 2}, headers=tenant.requester.headers).json()
    assert first["total"] == 5 and len(first["items"]) == 2 and len(second["items"]) == 2
    assert not {r["id"] for r in first["items"]} & {r["id"] for r in second["items"]}
    cancelled = client.get("/v1/requests", params={"status": "cancelled"}, headers=tenant.requester.headers).json()
    assert [r["id"] for r in cancelled["items"]] == [ids[0]]
    waiting = client.get(
        "/v1/requests", params={"awaiting_role": "ministry_approver"}, headers=tenant.approver.headers
    ).json()
    assert waiting["total"] == 4
