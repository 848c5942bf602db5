"""The whole order flow through the real API, queue and database."""

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Platform, Tenant, order_and_approve, order_body

pytestmark = pytest.mark.integration


def test_order_goes_through_two_approvals_to_an_active_service(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    created = client.post(
        "/v1/requests", json=order_body(tenant, justification="campaign site"), headers=tenant.requester.headers
    )
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["status"] == "pending_approval"
    assert request["approval_stages"] == ["ministry_approver", "operator"]
    assert created.headers["Location"] == f"/v1/requests/{request['id']}"

    ministry = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()
    assert ministry["quota_used"]["vcpu"] == 1 and ministry["quota_used"]["public_ips"] == 1

    first = client.post(
        f"/v1/requests/{request['id']}/approvals",
        json={"decision": "approve", "comment": "budget ok", "reference": "MEMO-1"},
        headers=tenant.approver.headers,
    )
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "pending_approval" and first.json()["next_stage"] == 1

    second = client.post(
        f"/v1/requests/{request['id']}/approvals",
        json={"decision": "approve", "reference": "DC-OPS-7"},
        headers=platform.operator.headers,
    )
    assert second.status_code == 200, second.text
    approved = second.json()
    assert approved["status"] == "approved"
    assert approved["service_id"] and approved["operation_id"]

    operation = client.get(f"/v1/operations/{approved['operation_id']}", headers=tenant.requester.headers).json()
    assert operation["status"] == "queued" and operation["kind"] == "provision"

    work()

    operation = client.get(f"/v1/operations/{approved['operation_id']}", headers=tenant.requester.headers).json()
    assert operation["status"] == "succeeded", operation
    assert [s["status"] for s in operation["steps"]] == [
        "succeeded"
    ] * 5  # install_devices (issue 12) is a no-op for web hosting
    service = client.get(f"/v1/services/{approved['service_id']}", headers=tenant.requester.headers).json()
    assert service["status"] == "active"
    assert service["stack_name"].startswith(f"{tenant.code}-web-hosting-")
    final = client.get(f"/v1/requests/{request['id']}", headers=tenant.requester.headers).json()
    assert final["status"] == "fulfilled"

    votes = client.get(f"/v1/requests/{request['id']}/approvals", headers=tenant.requester.headers).json()
    assert [(v["role"], v["voter"], v["reference"]) for v in votes] == [
        ("ministry_approver", tenant.approver.username, "MEMO-1"),
        ("operator", platform.operator.username, "DC-OPS-7"),
    ]

    events = client.get(f"/v1/operations/{approved['operation_id']}/events", headers=tenant.requester.headers).json()
    types = [e["type"] for e in events]
    assert types[0] == "operation.queued" and types[-1] == "operation.succeeded"
    assert [e["step"] for e in events if e["type"] == "step.succeeded"] == [
        "plan",
        "apply",
        "install_devices",
        "configure",
        "verify",
    ]
    assert any(e["type"] == "engine.noop" for e in events), "the no-op engine must say it did nothing"
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)


def test_the_event_stream_replays_and_ends_when_the_operation_is_done(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    operation_id = provision(client, tenant, platform, work)
    seen: list[str] = []
    with client.stream("GET", f"/v1/operations/{operation_id}/stream", headers=tenant.requester.headers) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event:"):
                seen.append(line.split(":", 1)[1].strip())
    assert seen[0] == "operation.queued"
    assert seen[-2:] == ["operation.succeeded", "end"]

    events = client.get(f"/v1/operations/{operation_id}/events", headers=tenant.requester.headers).json()
    middle = events[len(events) // 2]["id"]
    resumed: list[str] = []
    headers = {**tenant.requester.headers, "Last-Event-ID": str(middle)}
    with client.stream("GET", f"/v1/operations/{operation_id}/stream", headers=headers) as stream:
        resumed = [line.split(":", 1)[1].strip() for line in stream.iter_lines() if line.startswith("id:")]
    assert [int(i) for i in resumed] == [e["id"] for e in events if e["id"] > middle]


def test_rejection_ends_the_request_and_gives_the_quota_back(
    client: httpx.Client, tenant: Tenant, platform: Platform
) -> None:
    request = client.post(
        "/v1/requests", json=order_body(tenant, plan="large"), headers=tenant.requester.headers
    ).json()
    used = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()["quota_used"]
    assert used["vcpu"] == 4
    rejected = client.post(
        f"/v1/requests/{request['id']}/approvals",
        json={"decision": "reject", "comment": "no budget this year", "reference": "MEMO-9"},
        headers=tenant.approver.headers,
    )
    assert rejected.json()["status"] == "rejected"
    used = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()["quota_used"]
    assert used["vcpu"] == 0
    again = client.post(
        f"/v1/requests/{request['id']}/approvals", json={"decision": "approve"}, headers=platform.operator.headers
    )
    assert again.status_code == 409
    assert again.json()["current_state"] == "rejected"


def test_decommission_retires_the_service_and_releases_quota(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    operation_id = provision(client, tenant, platform, work)
    service_id = client.get(f"/v1/operations/{operation_id}", headers=tenant.requester.headers).json()["service_id"]
    response = client.post(f"/v1/services/{service_id}/decommission", headers=tenant.requester.headers)
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "decommission"
    twice = client.post(f"/v1/services/{service_id}/decommission", headers=tenant.requester.headers)
    assert twice.status_code == 409
    work()
    service = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()
    assert service["status"] == "retired"
    assert service["retired_at"] and service["retain_backups_until"] > service["retired_at"]
    used = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()["quota_used"]
    assert all(v == 0 for v in used.values()), used


def test_every_change_lands_in_the_audit_log(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    operation_id = provision(client, tenant, platform, work)
    operation = client.get(f"/v1/operations/{operation_id}", headers=tenant.requester.headers).json()
    entries = client.get(
        "/v1/audit", params={"entity": "request", "entity_id": operation["request_id"]}, headers=tenant.approver.headers
    ).json()
    transitions = [(e["from_state"], e["to_state"]) for e in reversed(entries) if e["action"] == "status_changed"]
    assert transitions == [
        ("pending_approval", "approved"),
        ("approved", "fulfilled"),
    ]
    actors = {e["actor"] for e in entries}
    assert {tenant.requester.username, tenant.approver.username, platform.operator.username, "system"} <= actors


def provision(client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]) -> str:
    """Order, approve twice, run the worker; return the finished operation's id."""
    approved = order_and_approve(client, tenant, platform)
    work()
    operation_id: str = approved["operation_id"]
    return operation_id
