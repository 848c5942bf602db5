"""Failover and failback through the API and a real worker: asked for by the ministry, approved by
an operator (the request machinery of orders), run as workflows, reported and signed. Test doubles
stand at the cloud's boundaries: the engine, Ansible, the health probe (tests/integration/test_drill.py)
and DNS (`RecordingDns` below). The same against the local data centre, with real DNS, servers and
backups, is tests/cloud/test_drill.py.
"""

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from orchestrator.bootstrap import noop_adapters
from orchestrator.config import get_settings
from orchestrator.jobs import queue
from orchestrator.ports import EventSink, ProgressEvent, StackSpec
from tests.conftest import Platform, Tenant, active_service
from tests.integration.test_drill import Health, RecordingEngine, RecordingRunner, add_restore_point

pytestmark = pytest.mark.integration

PRIMARY_ADDRESS = "192.0.2.20"
DR_ADDRESS = "192.0.2.30"


class TwoSiteEngine(RecordingEngine):
    """Test double at the engine boundary: the service's stack answers one address, a DR copy another."""

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        outputs = super().up(stack, on_event)
        domain = stack.config["tonle:parameters"]["domain"]
        address = DR_ADDRESS if "tonle:copy" in stack.config else PRIMARY_ADDRESS
        outputs["hosts"]["web"]["address"] = address
        outputs["endpoints"] = {"public_address": address, "dns_names": [domain]}
        return outputs


@dataclass
class RecordingDns:
    """Test double of Designate: A records in memory, as the service's stack would have made them."""

    records: dict[str, list[str]] = field(default_factory=dict)

    def point(
        self, *, ministry_code: str, names: Sequence[str], address: str, on_event: EventSink
    ) -> dict[str, list[str]]:
        before = {name: self.records.get(name, [PRIMARY_ADDRESS]) for name in names}
        for name in names:
            self.records[name] = [address]
            on_event(ProgressEvent(type="dns.repointed", message=f"{name} now answers {address}"))
        return before

    def addresses(self, *, ministry_code: str, names: Sequence[str]) -> dict[str, list[str]]:
        return {name: self.records.get(name, []) for name in names}


@dataclass
class Doubles:
    engine: TwoSiteEngine
    runner: RecordingRunner
    health: Health
    dns: RecordingDns


@pytest.fixture
def doubles() -> Iterator[Doubles]:
    found = Doubles(TwoSiteEngine(), RecordingRunner(), Health(), RecordingDns())
    adapters = noop_adapters(get_settings(), engine=found.engine, config=found.runner, health=found.health)
    adapters.dns = found.dns
    queue.set_adapters(adapters)
    yield found
    queue.set_adapters(None)


def ask(client: httpx.Client, tenant: Tenant, service_id: str, kind: str, **body: str) -> httpx.Response:
    return client.post(f"/v1/services/{service_id}/actions/{kind}", json=body, headers=tenant.requester.headers)


def approve(client: httpx.Client, request_id: str, account_headers: dict[str, str]) -> httpx.Response:
    return client.post(
        f"/v1/requests/{request_id}/approvals",
        json={"decision": "approve", "reference": "DC-2026-117", "comment": "flooded room A"},
        headers=account_headers,
    )


def test_failover_then_failback_through_operator_approval(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], doubles: Doubles
) -> None:
    service_id = active_service(client, tenant, platform, work)
    domain = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()["parameters"]["domain"]
    first = add_restore_point(service_id, hours_ago=3)

    asked = ask(client, tenant, service_id, "failover", justification="primary room flooded")
    assert asked.status_code == 202, asked.text
    request = asked.json()
    assert (request["kind"], request["status"], request["approval_stages"]) == (
        "failover",
        "pending_approval",
        ["operator"],
    )
    assert ask(client, tenant, service_id, "failover").status_code == 409, "one waiting per service"
    assert ask(client, tenant, service_id, "failback").status_code == 409, "it runs at the primary site"
    assert approve(client, request["id"], tenant.approver.headers).status_code == 403, "operators approve"

    approved = approve(client, request["id"], platform.operator.headers)
    assert approved.status_code in (200, 201), approved.text
    operation_id = approved.json()["operation_id"]
    assert client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()["status"] == "failing_over"
    work()

    operation = client.get(f"/v1/operations/{operation_id}", headers=tenant.requester.headers).json()
    assert operation["status"] == "succeeded", operation
    service = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()
    assert (service["status"], service["running_at"]) == ("active", "dr")
    assert doubles.dns.records[domain] == [DR_ADDRESS]
    copy_stacks = [name for name, config in doubles.engine.built.items() if config.get("tonle:copy") == "failover"]
    assert len(copy_stacks) == 1 and doubles.engine.built[copy_stacks[0]]["tonle:site"] == "dr"
    playbooks = [run.playbook for run in doubles.runner.runs]
    assert "backup_agent" in playbooks, "the copy serves for real: it is backed up"

    report = client.get(f"/v1/operations/{operation_id}/report", headers=tenant.requester.headers).json()
    assert report["kind"] == "failover" and report["passed"] is True
    assert report["restore_point"]["id"] == str(first.id)
    assert report["rpo_seconds"] >= 3 * 3600 - 60
    assert report["rto_seconds"] is not None and report["rto_seconds"] >= 0
    assert report["requested_by"]["name"] == tenant.requester.username
    assert [vote["role"] for vote in report["approved_by"]] == ["operator"]
    assert report["approved_by"][0]["reference"] == "DC-2026-117"

    resized = client.post(
        f"/v1/services/{service_id}/actions/resize", json={"plan": "medium"}, headers=tenant.requester.headers
    )
    assert resized.status_code == 409 and "fail it back" in resized.json()["detail"]
    assert ask(client, tenant, service_id, "failover").status_code == 409, "already at the DR site"

    # What changed at the DR site, as the copy's backup would catalogue it.
    latest = add_restore_point(service_id, hours_ago=0.01, checksum="sha256:" + "cd" * 32)
    doubles.runner.runs.clear()
    back = ask(client, tenant, service_id, "failback")
    assert back.status_code == 202, back.text
    approved = approve(client, back.json()["id"], platform.operator.headers)
    assert approved.status_code in (200, 201), approved.text
    work()

    failback = client.get(f"/v1/operations/{approved.json()['operation_id']}", headers=tenant.requester.headers).json()
    assert failback["status"] == "succeeded", failback
    service = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()
    assert (service["status"], service["running_at"]) == ("active", "primary")
    assert doubles.dns.records[domain] == [PRIMARY_ADDRESS]
    assert copy_stacks[0] in doubles.engine.destroyed
    backed_up = [run for run in doubles.runner.runs if run.playbook == "backup_now"]
    assert backed_up and backed_up[0].hosts["web"]["address"] == DR_ADDRESS, "the DR copy is backed up first"
    restored = [run for run in doubles.runner.runs if run.playbook == "restore"]
    assert restored and restored[0].hosts["web"]["address"] == PRIMARY_ADDRESS

    report = client.get(f"/v1/operations/{failback['id']}/report", headers=tenant.requester.headers).json()
    assert report["kind"] == "failback" and report["passed"] is True
    assert report["restore_point"]["id"] == str(latest.id)


def test_a_failed_failover_points_names_back_and_leaves_the_service_where_it_ran(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], doubles: Doubles
) -> None:
    service_id = active_service(client, tenant, platform, work)
    add_restore_point(service_id)
    doubles.health.passes = False
    request = ask(client, tenant, service_id, "failover").json()
    operation_id = approve(client, request["id"], platform.operator.headers).json()["operation_id"]
    work()

    operation = client.get(f"/v1/operations/{operation_id}", headers=tenant.requester.headers).json()
    assert (operation["status"], operation["failed_step"]) == ("failed", "check_health")
    service = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()
    assert (service["status"], service["running_at"]) == ("active", "primary")
    assert doubles.dns.records == {}, "never repointed"
    copy = next(name for name, config in doubles.engine.built.items() if config.get("tonle:copy") == "failover")
    assert copy in doubles.engine.destroyed
    report = client.get(f"/v1/operations/{operation_id}/report", headers=tenant.requester.headers).json()
    assert report["passed"] is False and "HTTP 502" in report["failed_check"]

    retried = client.post(f"/v1/operations/{operation_id}/retry", headers=platform.operator.headers)
    assert retried.status_code == 409, "a failover is asked for anew, not resumed"


def test_another_ministry_cannot_ask_and_automation_can(
    client: httpx.Client,
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    doubles: Doubles,
) -> None:
    service_id = active_service(client, tenant, platform, work)
    assert ask(client, other_tenant, service_id, "failover").status_code == 404
    assert ask(client, tenant, str(uuid.uuid4()), "failover").status_code == 404
    by_automation = client.post(
        f"/v1/services/{service_id}/actions/failover", json={}, headers=tenant.automation.headers
    )
    assert by_automation.status_code == 202, by_automation.text
    assert by_automation.json()["status"] == "pending_approval"
    unknown = client.post(
        f"/v1/services/{service_id}/actions/failback", json={"reason": "x"}, headers=tenant.requester.headers
    )
    assert unknown.status_code == 422
