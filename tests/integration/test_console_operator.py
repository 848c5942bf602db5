"""The console's operator pages on a real API process: the approval queue and votes, operations
with filters and retry, co-location, DR drills and capacity (no DCIM in this tier)."""

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from orchestrator.bootstrap import noop_adapters
from orchestrator.config import get_settings
from orchestrator.jobs import queue
from orchestrator.noop import NoopConfigRunner
from orchestrator.ports import EventSink, PlaybookResult, PlaybookRun
from tests.conftest import Account, Platform, Tenant, active_service, order_and_approve, order_body
from tests.support.console import ConsoleClient

pytestmark = pytest.mark.integration

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE_OR_HANDLER = re.compile(r"""\s(style|on[a-z]+)\s*=\s*["']""", re.IGNORECASE)
RETRY_BUTTON = re.compile(r"<button[^>]*>Retry</button>")


class BrokenPlaybookRunner(NoopConfigRunner):
    """Test double at the Ansible boundary: the configure playbook fails until it is 'fixed'."""

    def __init__(self) -> None:
        self.fixed = False

    def run(self, run: PlaybookRun, on_event: EventSink) -> PlaybookResult:
        if not self.fixed:
            return PlaybookResult(ok=False, failures=["web : install nginx"])
        return super().run(run, on_event)


@pytest.fixture
def open_console(api_url: str) -> Iterator[Callable[[Account], ConsoleClient]]:
    opened: list[ConsoleClient] = []

    def open_as(account: Account) -> ConsoleClient:
        console = ConsoleClient(api_url, lang="en")
        console.sign_in(account.token)
        opened.append(console)
        return console

    yield open_as
    for console in opened:
        console.close()


def place_order(client: httpx.Client, tenant: Tenant, justification: str) -> str:
    response = client.post(
        "/v1/requests", json=order_body(tenant, justification=justification), headers=tenant.requester.headers
    )
    assert response.status_code == 201, response.text
    request_id: str = response.json()["id"]
    return request_id


def vote(console: ConsoleClient, request_id: str, **form: str) -> httpx.Response:
    page = f"/console/approvals/{request_id}"
    return console.submit(page, form, page=page)


def assert_no_inline_code(html: str) -> None:
    assert not INLINE_SCRIPT.search(html)
    assert not INLINE_STYLE_OR_HANDLER.search(html)


def test_the_queue_shows_an_order_to_its_own_ministrys_approver_only(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, open_console: Callable[[Account], ConsoleClient]
) -> None:
    request_id = place_order(client, tenant, "Vaccination campaign portal, memo MOH-2026-114")

    queue_page = open_console(tenant.approver).get("/console/approvals")
    assert queue_page.status_code == 200
    assert f'href="/console/approvals/{request_id}"' in queue_page.text
    assert "Vaccination campaign portal, memo MOH-2026-114" in queue_page.text
    assert tenant.requester.username in queue_page.text
    assert f"Ministry {tenant.code}" in queue_page.text
    assert "vcpu" in queue_page.text  # the quota cost
    assert_no_inline_code(queue_page.text)

    stranger = open_console(other_tenant.approver)
    assert request_id not in stranger.get("/console/approvals").text
    assert stranger.get(f"/console/approvals/{request_id}").status_code == 404
    refused = stranger.submit(f"/console/approvals/{request_id}", {"decision": "approve"}, page="/console/approvals")
    assert refused.status_code == 404
    # The requester has no vote and no queue.
    assert "Your role does not vote on orders." in open_console(tenant.requester).get("/console/approvals").text


def test_approving_as_the_approver_then_an_operator_approves_the_order(
    client: httpx.Client, tenant: Tenant, platform: Platform, open_console: Callable[[Account], ConsoleClient]
) -> None:
    request_id = place_order(client, tenant, "Intranet for the provincial offices")
    approver = open_console(tenant.approver)

    first = vote(approver, request_id, decision="approve", comment="Within budget", reference="MOH/IT/2026/031")
    assert first.status_code == 303
    assert first.headers["location"] == f"/console/approvals/{request_id}?voted=approve"
    after_first = approver.get(first.headers["location"])
    assert "Your approval is recorded. Next: stage 2 of 2, by operator." in after_first.text
    assert "MOH/IT/2026/031" in after_first.text and "Within budget" in after_first.text
    assert ">Approve</button>" not in after_first.text  # no second vote offered
    assert request_id not in approver.get("/console/approvals").text

    operator = open_console(platform.operator)
    assert f'href="/console/approvals/{request_id}"' in operator.get("/console/approvals").text
    second = vote(operator, request_id, decision="approve", reference="DC/OPS/2026/7")
    assert second.status_code == 303
    done = operator.get(second.headers["location"])
    assert "The order is approved: its service is being built." in done.text
    assert_no_inline_code(done.text)

    request = client.get(f"/v1/requests/{request_id}", headers=tenant.requester.headers).json()
    assert request["status"] == "approved"
    votes = client.get(f"/v1/requests/{request_id}/approvals", headers=tenant.requester.headers).json()
    assert [(v["role"], v["reference"]) for v in votes] == [
        ("ministry_approver", "MOH/IT/2026/031"),
        ("operator", "DC/OPS/2026/7"),
    ]


def test_a_rejection_needs_its_reason_shown_in_place_and_keeps_it(
    client: httpx.Client, tenant: Tenant, open_console: Callable[[Account], ConsoleClient]
) -> None:
    request_id = place_order(client, tenant, "A second mail domain")
    approver = open_console(tenant.approver)

    refused = vote(approver, request_id, decision="reject", comment="   ", reference="MOH/IT/2026/040")
    assert refused.status_code == 422
    assert re.search(r'<textarea id="field-comment"[^>]*aria-describedby="[^"]*error-comment"', refused.text, re.S)
    assert 'aria-invalid="true"' in refused.text
    assert '<p class="field-error" id="error-comment" role="alert">Please give the reason' in refused.text
    assert 'value="MOH/IT/2026/040"' in refused.text  # what was typed is kept
    pending = client.get(f"/v1/requests/{request_id}", headers=tenant.requester.headers).json()
    assert pending["status"] == "pending_approval"

    rejected = vote(approver, request_id, decision="reject", comment="Use the shared mail domain", reference="")
    assert rejected.status_code == 303
    page = approver.get(rejected.headers["location"])
    assert "The order is rejected." in page.text and "Use the shared mail domain" in page.text
    assert client.get(f"/v1/requests/{request_id}", headers=tenant.requester.headers).json()["status"] == "rejected"


def test_a_failed_operation_shows_retry_to_operators_only_and_retry_requeues_it(
    client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    open_console: Callable[[Account], ConsoleClient],
) -> None:
    runner = BrokenPlaybookRunner()
    queue.set_adapters(noop_adapters(get_settings(), config=runner))
    try:
        approved = order_and_approve(client, tenant, platform)
        work()
        operation_id = approved["operation_id"]

        operator = open_console(platform.operator)
        mine = f"/console/operations?ministry={tenant.ministry_id}"
        listed = operator.get(f"{mine}&status=failed")
        assert listed.status_code == 200
        assert f'href="/console/operations/{operation_id}"' in listed.text
        assert "web : install nginx" in listed.text
        assert RETRY_BUTTON.search(listed.text)
        assert f'action="/console/operations/{operation_id}/retry"' in listed.text
        assert_no_inline_code(listed.text)

        # Filters: another status, kind or offering leaves it out.
        assert operation_id not in operator.get(f"{mine}&status=succeeded").text
        assert operation_id not in operator.get(f"{mine}&kind=backup").text
        assert operation_id not in operator.get(f"{mine}&offering=email").text
        assert operation_id in operator.get(f"{mine}&kind=provision&offering=web-hosting").text
        bad = operator.get("/console/operations?status=exploded")
        assert bad.status_code == 422 and "status" in bad.text

        requester = open_console(tenant.requester)
        own = requester.get("/console/operations?status=failed")
        assert operation_id in own.text and not RETRY_BUTTON.search(own.text)
        assert 'id="filter-ministry"' not in own.text  # a ministry's people see theirs only
        forbidden = requester.submit(f"/console/operations/{operation_id}/retry", {}, page="/console/operations")
        assert forbidden.status_code == 403

        runner.fixed = True
        retried = operator.submit(f"/console/operations/{operation_id}/retry", {}, page="/console/operations")
        assert retried.status_code == 303
        assert retried.headers["location"] == f"/console/operations/{operation_id}"
        operation = client.get(f"/v1/operations/{operation_id}", headers=tenant.requester.headers).json()
        assert operation["status"] == "queued"
        work()
        operation = client.get(f"/v1/operations/{operation_id}", headers=tenant.requester.headers).json()
        assert operation["status"] == "succeeded" and operation["attempts"] == 2
    finally:
        queue.set_adapters(None)


def test_another_ministrys_operations_are_not_listed_nor_retried(
    client: httpx.Client,
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    open_console: Callable[[Account], ConsoleClient],
) -> None:
    approved = order_and_approve(client, tenant, platform)
    assert approved["operation_id"] in open_console(tenant.requester).get("/console/operations").text
    stranger = open_console(other_tenant.requester)
    listed = stranger.get("/console/operations")
    assert listed.status_code == 200 and approved["operation_id"] not in listed.text
    refused = stranger.submit(f"/console/operations/{approved['operation_id']}/retry", {}, page="/console/operations")
    assert refused.status_code == 404


def test_capacity_and_colocation_without_a_dcim_say_so(
    tenant: Tenant, platform: Platform, open_console: Callable[[Account], ConsoleClient]
) -> None:
    operator = open_console(platform.operator)
    capacity = operator.get("/console/capacity")
    assert capacity.status_code == 200
    assert "No DCIM is configured" in capacity.text
    assert "<h1>Data-centre capacity</h1>" in capacity.text
    colocation = operator.get("/console/colocation")
    assert colocation.status_code == 200 and "No DCIM is configured" in colocation.text
    for page in (capacity, colocation):
        assert_no_inline_code(page.text)

    requester = open_console(tenant.requester)
    assert requester.get("/console/capacity").status_code == 403
    assert requester.get("/console/colocation").status_code == 403


def test_the_drills_page_lists_reports_and_overdue_services(
    client: httpx.Client,
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    open_console: Callable[[Account], ConsoleClient],
) -> None:
    requester = open_console(tenant.requester)
    empty = requester.get("/console/drills")
    assert empty.status_code == 200
    assert "No DR report yet." in empty.text
    assert_no_inline_code(empty.text)
    assert requester.get("/console/drills?kind=<script>").status_code == 422

    service_id = active_service(client, tenant, platform, work)
    started = client.post(f"/v1/services/{service_id}/actions/drill", headers=tenant.requester.headers)
    assert started.status_code == 202, started.text
    operation_id = started.json()["id"]
    work()  # no backup was taken: the drill fails at once, and is still reported

    page = requester.get("/console/drills").text
    assert f'href="/console/operations/{operation_id}"' in page
    assert "no restore point" in page
    overdue = page.split('id="overdue-heading"')[1].split('id="reports-heading"')[0]
    assert "portal" in overdue and "Never" in overdue  # never passed a drill: overdue since it exists
    assert operation_id not in requester.get("/console/drills?kind=failover").text
    assert operation_id not in open_console(other_tenant.requester).get("/console/drills").text
    assert operation_id in open_console(platform.operator).get("/console/drills").text
