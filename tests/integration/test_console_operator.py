"""The console's operator pages on a real API process: the approval queue and votes, operations
with filters and retry, co-location, DR drills and capacity (no DCIM in this tier)."""

import re
from collections.abc import Callable, Iterator
from dataclasses import replace

import httpx
import pytest
from fastapi.testclient import TestClient

from orchestrator.bootstrap import noop_adapters
from orchestrator.catalog import service as catalog
from orchestrator.config import get_settings
from orchestrator.dcim import connection
from orchestrator.jobs import queue
from orchestrator.noop import NoopConfigRunner
from orchestrator.ports import EventSink, PlaybookResult, PlaybookRun
from tests.conftest import (
    Account,
    Database,
    Platform,
    Tenant,
    active_service,
    make_tenant,
    order_and_approve,
    order_body,
)
from tests.integration import test_colocation_workflow as colocation
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
    approver.lang = "km"
    in_khmer = approver.get(f"/console/approvals/{request_id}").text
    assert ">យល់ព្រម</button>" in in_khmer and ">បដិសេធ</button>" in in_khmer
    assert "១ ក្នុងចំណោម ២" in in_khmer  # stage 1 of 2, in Khmer digits
    approver.lang = "en"

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
    operator = open_console(platform.operator)
    assert operation_id in operator.get("/console/drills").text
    failed_drills = operator.get(f"/console/operations?ministry={tenant.ministry_id}&kind=drill&status=failed")
    assert operation_id in failed_drills.text

    campaign = client.post("/v1/dr/campaigns", json={"ministry": tenant.code}, headers=tenant.requester.headers)
    assert campaign.status_code == 201, campaign.text
    listed = requester.get("/console/drills").text
    campaigns = listed.split('id="campaigns-heading"')[1].split('id="reports-heading"')[0]
    assert tenant.requester.username in campaigns and f"Ministry {tenant.code}" in campaigns
    stranger = open_console(other_tenant.requester).get("/console/drills").text
    assert tenant.requester.username not in stranger and "No drill campaign yet." in stranger
    work()  # the campaign's drill runs here, not in another test's worker


# With a DCIM: the integration tier's API process has none, so these pages are served by the app in
# this process, whose DCIM is the in-memory double (at the `ports.Dcim` boundary) of the
# co-location workflow's tests; the database, services, worker and policy are the real ones.


@pytest.fixture
def dcim(monkeypatch: pytest.MonkeyPatch, database: Database) -> Iterator[colocation.InstallingDcimDouble]:
    double = colocation.InstallingDcimDouble()
    monkeypatch.setattr(connection, "connect", lambda settings=None: double)
    monkeypatch.setattr(catalog, "require_orderable", lambda *, offering: None)
    queue.set_adapters(replace(noop_adapters(get_settings()), dcim=double))
    yield double
    queue.set_adapters(None)


@pytest.fixture
def in_process_console() -> Iterator[Callable[[Account], ConsoleClient]]:
    from portal_api.main import app

    opened: list[ConsoleClient] = []

    def open_as(account: Account) -> ConsoleClient:
        console = ConsoleClient("http://testserver", lang="en")
        console.http.close()
        console.http = TestClient(app, base_url="http://testserver", follow_redirects=False)
        console.sign_in(account.token)
        opened.append(console)
        return console

    yield open_as
    for console in opened:
        console.close()


def test_work_orders_and_capacity_from_the_dcim_and_a_technicians_report(
    dcim: colocation.InstallingDcimDouble,
    platform: Platform,
    work: Callable[[], None],
    in_process_console: Callable[[Account], ConsoleClient],
) -> None:
    rack_tenant = make_tenant(rack_units=84, public_ips=16)
    service_id = colocation.order_and_approve(rack_tenant, platform)
    work()  # the provision waits at install_devices for the technicians
    reserved = {r.device_name: r for r in dcim.reservations(order_ref=str(service_id))}
    rack_names = {r.id: r.name for r in dcim.racks()}

    operator = in_process_console(platform.operator)
    page = operator.get("/console/colocation")
    assert page.status_code == 200
    assert f'id="order-{service_id}"' in page.text
    assert "Sokha &lt;Chan&gt;" in page.text and "<Chan>" not in page.text
    for held in reserved.values():
        assert rack_names[held.rack_id] in page.text
    assert f'<label for="serial-{service_id}-app-1">Serial number of app-1</label>' in page.text
    assert page.text.count(">Mark installed</button>") == 2
    assert_no_inline_code(page.text)

    install = f"/console/colocation/{service_id}/installed"
    bad = operator.submit(install, {"device": "app-1", "serial": "SN 1; rm -rf"}, page="/console/colocation")
    assert bad.status_code == 422
    assert f'id="error-{service_id}-app-1" role="alert">A serial number is' in bad.text
    unknown = operator.submit(install, {"device": "printer", "serial": "SN-9"}, page="/console/colocation")
    assert unknown.status_code == 422
    assert '<div class="problem" role="alert"><p>' in unknown.text and "printer" in unknown.text

    requester = in_process_console(rack_tenant.requester)
    assert requester.get("/console/colocation").status_code == 403
    refused = requester.submit(install, {"device": "app-1", "serial": "SN-1"}, page="/console/")
    assert refused.status_code == 403

    done = operator.submit(install, {"device": "app-1", "serial": "SN-1"}, page="/console/colocation")
    assert done.status_code == 303 and done.headers["location"] == "/console/colocation?done=installed"
    after = operator.get(done.headers["location"])
    assert "The device is recorded as installed." in after.text
    assert after.text.count(">Mark installed</button>") == 1 and "SN-1" in after.text
    assert {d.serial for d in dcim.installed(order_ref=str(service_id))} == {"SN-1"}

    capacity = operator.get("/console/capacity")
    assert capacity.status_code == 200
    assert "<h2" in capacity.text and "Site primary" in capacity.text
    for name in rack_names.values():
        assert name in capacity.text
    assert_no_inline_code(capacity.text)
    assert requester.get("/console/capacity").status_code == 403

    operator.lang = "km"
    for path in ("/console/capacity", "/console/colocation", "/console/operations", "/console/drills"):
        khmer = operator.get(path)
        assert khmer.status_code == 200 and 'lang="km"' in khmer.text, path
    assert "រ៉ាក់" in operator.get("/console/capacity").text
