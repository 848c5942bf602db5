"""Day-2 operations through the API: resize (growth approved like an order), content deployment, restart.

The configuration runner is a recording test double at the Ansible boundary (real playbook runs
are tested in tests/integration/test_ansible_runner.py and the cloud tier).
"""

import io
import re
import tarfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select
from typer.testing import CliRunner

from orchestrator.actors import SYSTEM
from orchestrator.bootstrap import noop_adapters
from orchestrator.config import get_settings
from orchestrator.database.columns import utcnow
from orchestrator.database.core import session_scope
from orchestrator.jobs import queue
from orchestrator.noop import NoopEngine
from orchestrator.ports import EventSink, PlaybookResult, PlaybookRun, StackSpec
from orchestrator.requests import service as requests
from orchestrator.requests.models import Request
from portal_api.cli import app as cli
from tests.conftest import Platform, Tenant, active_service, make_tenant

pytestmark = pytest.mark.integration


class RecordingRunner:
    """Test double: records each playbook run, and the uploaded files as they were during it."""

    name = "recording"

    def __init__(self) -> None:
        self.runs: list[PlaybookRun] = []
        self.file_contents: dict[str, bytes] = {}

    def run(self, run: PlaybookRun, on_event: EventSink) -> PlaybookResult:
        self.runs.append(run)
        for name, path in run.files.items():
            self.file_contents[name] = path.read_bytes()
        return PlaybookResult(ok=True)


class SizeRecordingEngine(NoopEngine):
    """Test double at the engine boundary: remembers sizes asked for and outputs like a checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[dict[str, Any]] = []
        self.stored: dict[str, dict[str, Any]] = {}

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        self.sizes.append(stack.config["tonle:sizes"])
        self.stored[stack.name] = {"hosts": {"web": {"address": "192.0.2.10", "groups": ["web"]}}}
        return self.stored[stack.name]

    def outputs(self, stack_name: str) -> dict[str, Any]:
        return self.stored.get(stack_name, {})


@pytest.fixture
def doubles() -> Iterator[tuple[SizeRecordingEngine, RecordingRunner]]:
    engine, runner = SizeRecordingEngine(), RecordingRunner()
    queue.set_adapters(noop_adapters(get_settings(), engine=engine, config=runner))
    yield engine, runner
    queue.set_adapters(None)


def quota_used(client: httpx.Client, tenant: Tenant) -> dict[str, int]:
    used: dict[str, int] = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()[
        "quota_used"
    ]
    return used


def resize(client: httpx.Client, service_id: str, plan: str, headers: dict[str, str]) -> httpx.Response:
    return client.post(f"/v1/services/{service_id}/actions/resize", json={"plan": plan}, headers=headers)


def vote(client: httpx.Client, request_id: str, headers: dict[str, str], decision: str = "approve") -> dict[str, Any]:
    response = client.post(f"/v1/requests/{request_id}/approvals", json={"decision": decision}, headers=headers)
    assert response.status_code == 200, response.text
    voted: dict[str, Any] = response.json()
    return voted


def service_of(client: httpx.Client, tenant: Tenant, service_id: str) -> dict[str, Any]:
    service: dict[str, Any] = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()
    return service


def test_growth_is_approved_like_an_order_and_then_rebuilds_with_the_new_sizes(
    client: httpx.Client,
    platform: Platform,
    work: Callable[[], None],
    doubles: tuple[SizeRecordingEngine, RecordingRunner],
) -> None:
    engine, runner = doubles
    tenant = make_tenant(vcpu=3, ram_gb=100, storage_gb=1000, object_gb=1000, public_ips=5)
    service_id = active_service(client, tenant, platform, work)
    assert quota_used(client, tenant)["vcpu"] == 1

    too_big = resize(client, service_id, "large", tenant.requester.headers)
    assert too_big.status_code == 422 and too_big.json()["title"] == "Quota exceeded"
    assert quota_used(client, tenant)["vcpu"] == 1

    asked = resize(client, service_id, "medium", tenant.requester.headers)
    assert asked.status_code == 202, asked.text
    assert asked.json()["outcome"] == "approval_needed" and asked.json()["operation"] is None
    request = asked.json()["request"]
    assert request["kind"] == "modify" and request["service_id"] == service_id and request["plan"] == "medium"
    assert request["status"] == "pending_approval"
    assert request["approval_stages"] == ["ministry_approver", "operator"]
    assert request["quota_cost"]["vcpu"] == 1 and request["quota_cost"]["storage_gb"] == 30
    assert quota_used(client, tenant)["vcpu"] == 2, "the growth is held from the moment it is asked for"
    assert service_of(client, tenant, service_id)["status"] == "active"
    assert (
        client.get(f"/v1/services/{service_id}/operations", headers=tenant.requester.headers).json()[-1]["kind"]
        == "provision"
    ), "nothing runs before the approvals"

    second = resize(client, service_id, "large", tenant.requester.headers)
    assert second.status_code == 409 and request["id"] in second.json()["detail"]
    restarted = client.post(f"/v1/services/{service_id}/actions/restart", headers=tenant.requester.headers)
    assert restarted.status_code == 202, "other day-2 actions still work while a change waits"
    work()

    assert vote(client, request["id"], tenant.approver.headers)["status"] == "pending_approval"
    assert service_of(client, tenant, service_id)["status"] == "active"
    approved = vote(client, request["id"], platform.operator.headers)
    assert approved["status"] == "approved" and approved["operation_id"]
    assert service_of(client, tenant, service_id)["status"] == "modifying"
    operation = client.get(f"/v1/operations/{approved['operation_id']}", headers=tenant.requester.headers).json()
    assert operation["kind"] == "modify" and operation["request_id"] == request["id"]
    work()
    service = service_of(client, tenant, service_id)
    assert service["status"] == "active" and service["plan"] == "medium"
    assert engine.sizes[-1]["flavor"] == "m1.medium"
    assert quota_used(client, tenant)["vcpu"] == 2 and quota_used(client, tenant)["storage_gb"] == 50
    finished = client.get(f"/v1/requests/{request['id']}", headers=tenant.requester.headers).json()
    assert finished["status"] == "fulfilled"

    shrink = resize(client, service_id, "small", tenant.requester.headers)
    assert shrink.status_code == 422 and shrink.json()["field"] == "plan"
    assert "shrink volume_gb from 50 to 20" in shrink.json()["detail"]

    client.post(f"/v1/services/{service_id}/decommission", headers=tenant.requester.headers)
    work()
    assert all(v == 0 for v in quota_used(client, tenant).values()), "retiring gives back what the resize took"
    assert runner.runs[-1].playbook == "backup_now", "decommissioning takes a final backup first"


def test_a_refused_or_withdrawn_growth_gives_the_quota_back_once(
    client: httpx.Client,
    platform: Platform,
    work: Callable[[], None],
    doubles: tuple[SizeRecordingEngine, RecordingRunner],
) -> None:
    tenant = make_tenant(vcpu=3, ram_gb=100, storage_gb=1000, object_gb=1000, public_ips=5)
    service_id = active_service(client, tenant, platform, work)
    before = quota_used(client, tenant)

    rejected = resize(client, service_id, "medium", tenant.requester.headers).json()["request"]
    assert quota_used(client, tenant)["vcpu"] == 2
    assert vote(client, rejected["id"], tenant.approver.headers, "reject")["status"] == "rejected"
    assert quota_used(client, tenant) == before
    again = client.post(f"/v1/requests/{rejected['id']}/cancel", headers=tenant.requester.headers)
    assert again.status_code == 409 and quota_used(client, tenant) == before, "released exactly once"
    assert service_of(client, tenant, service_id)["plan"] == "small"

    withdrawn = resize(client, service_id, "medium", tenant.requester.headers).json()["request"]
    assert client.post(f"/v1/requests/{withdrawn['id']}/cancel", headers=tenant.requester.headers).status_code == 200
    assert quota_used(client, tenant) == before

    expiring = resize(client, service_id, "medium", tenant.requester.headers).json()["request"]
    with session_scope() as session:
        row = session.exec(select(Request).where(Request.id == uuid.UUID(expiring["id"]))).one()
        row.approval_deadline = utcnow() - timedelta(minutes=1)
        session.add(row)
        session.commit()
        assert uuid.UUID(expiring["id"]) in requests.expire_overdue(session=session, actor=SYSTEM)
        session.commit()
    assert quota_used(client, tenant) == before, "an expired change gives its growth back"

    # A service that goes away takes its waiting change with it.
    pending = resize(client, service_id, "medium", tenant.requester.headers).json()["request"]
    retired = client.post(f"/v1/services/{service_id}/decommission", headers=tenant.requester.headers)
    assert retired.status_code == 202, retired.text
    assert client.get(f"/v1/requests/{pending['id']}", headers=tenant.requester.headers).json()["status"] == "cancelled"
    late = client.post(
        f"/v1/requests/{pending['id']}/approvals", json={"decision": "approve"}, headers=tenant.approver.headers
    )
    assert late.status_code == 409
    work()
    assert all(v == 0 for v in quota_used(client, tenant).values())


def test_two_growths_at_once_give_one_request_and_one_conflict(
    client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    doubles: tuple[SizeRecordingEngine, RecordingRunner],
) -> None:
    service_id = active_service(client, tenant, platform, work)
    before = quota_used(client, tenant)
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(
            pool.map(lambda plan: resize(client, service_id, plan, tenant.requester.headers), ["medium", "large"])
        )
    assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
    (accepted,) = [a.json()["request"] for a in answers if a.status_code == 202]
    grown = quota_used(client, tenant)
    assert grown["vcpu"] - before["vcpu"] == accepted["quota_cost"]["vcpu"], "only the accepted growth is held"


def test_a_plan_that_costs_no_more_starts_at_once(
    client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    doubles: tuple[SizeRecordingEngine, RecordingRunner],
) -> None:
    # dr-backup's plans are the only ones between which a change costs no more.
    api_url = str(client.base_url).rstrip("/")
    ordered = client.post("/v1/requests", json=BACKUP_ORDER, headers=tenant.requester.headers)
    assert ordered.status_code == 201, ordered.text
    # This offering has one stage: the ministry's head.
    approved = vote(client, ordered.json()["id"], tenant.approver.headers)
    work()
    service_id = approved["service_id"]
    assert quota_used(client, tenant)["object_gb"] == 2000

    def tonle(*args: str) -> str:
        env = {"TONLE_API_URL": api_url, "TONLE_TOKEN": tenant.requester.token, "COLUMNS": "300"}
        result = CliRunner().invoke(cli, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    shrunk = tonle("service", "resize", service_id, "archive-500g")
    operation = re.search(r"operation (\S+) \(modify\) queued", shrunk)
    assert operation, shrunk
    assert service_of(client, tenant, service_id)["status"] == "modifying"
    work()
    assert (
        client.get(f"/v1/operations/{operation.group(1)}", headers=tenant.requester.headers).json()["status"]
        == "succeeded"
    )
    assert service_of(client, tenant, service_id)["plan"] == "archive-500g"
    assert quota_used(client, tenant)["object_gb"] == 500, "the difference comes back once the change succeeded"

    grown = tonle("service", "resize", service_id, "archive-2t", "--justification", "longer retention")
    request = re.search(r"request (\S+) waits for ministry_approver;", grown)
    assert request, grown
    waiting = client.get(f"/v1/requests/{request.group(1)}", headers=tenant.requester.headers).json()
    assert waiting["kind"] == "modify" and waiting["justification"] == "longer retention"
    assert quota_used(client, tenant)["object_gb"] == 2000


def test_openapi_documents_both_resize_outcomes(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    resize_op = spec["paths"]["/v1/services/{service_id}/actions/resize"]["post"]
    schema = resize_op["responses"]["202"]["content"]["application/json"]["schema"]
    accepted = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert set(accepted["properties"]) == {"outcome", "request", "operation"}
    assert accepted["properties"]["outcome"]["enum"] == ["approval_needed", "started"]
    assert "409" in resize_op["responses"]


BACKUP_ORDER = {
    "offering_id": "dr-backup",
    "plan": "archive-2t",
    "parameters": {"name": "tax-archive", "purpose": "Off-site copies of the tax archive"},
}


def test_deploy_content_hands_the_archive_to_the_playbook_and_keeps_it_off_disk(
    client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    doubles: tuple[SizeRecordingEngine, RecordingRunner],
) -> None:
    _, runner = doubles
    service_id = active_service(client, tenant, platform, work)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        page = b"<h1>Vaccination campaign</h1>"
        info = tarfile.TarInfo("index.html")
        info.size = len(page)
        tar.addfile(info, io.BytesIO(page))
    response = client.post(
        f"/v1/services/{service_id}/actions/deploy-content",
        params={"filename": "campaign.tar.gz"},
        content=archive.getvalue(),
        headers={**tenant.requester.headers, "Content-Type": "application/gzip"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "action" and [s["name"] for s in response.json()["steps"]] == ["run"]
    work()
    operation = client.get(f"/v1/operations/{response.json()['id']}", headers=tenant.requester.headers).json()
    assert operation["status"] == "succeeded"
    last = runner.runs[-1]
    assert last.playbook == "web_deploy_content"
    assert runner.file_contents["archive"] == archive.getvalue()
    assert not last.files["archive"].exists(), "the temporary copy is removed"
    assert last.hosts == {"web": {"address": "192.0.2.10", "groups": ["web"]}}

    wrong = client.post(
        f"/v1/services/{service_id}/actions/deploy-content",
        content=b"hello",
        headers={**tenant.requester.headers, "Content-Type": "text/plain"},
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "Content-Type"


def test_restart_and_unknown_actions(
    client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    doubles: tuple[SizeRecordingEngine, RecordingRunner],
) -> None:
    _, runner = doubles
    service_id = active_service(client, tenant, platform, work)
    restarted = client.post(f"/v1/services/{service_id}/actions/restart", headers=tenant.requester.headers)
    assert restarted.status_code == 202
    busy = client.post(f"/v1/services/{service_id}/actions/restart", headers=tenant.requester.headers)
    assert busy.status_code == 409, "one operation at a time per service"
    work()
    assert runner.runs[-1].playbook == "web_restart"
    unknown = client.post(f"/v1/services/{service_id}/actions/dance", headers=tenant.requester.headers)
    assert unknown.status_code == 422 and unknown.json()["field"] == "action"
    failover = client.post(f"/v1/services/{service_id}/actions/failover", headers=tenant.requester.headers)
    assert failover.status_code == 202 and failover.json()["kind"] == "failover", "asked for, an operator approves"
