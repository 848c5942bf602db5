"""DR campaigns through the real API, queue and runner: bounded parallelism, the summary's figures,
the overdue listing, who may see and start what, and the drill schedule's choice.

The drill itself is a TEST DOUBLE (`DRILL_DOUBLE`, kind `drill`): it parks until the test says
"go" (so the test decides when each drill ends) and writes a real signed report with the RTO and
RPO the test hands it. The real drill workflow (restore at the DR site, checks, cleanup) is
tested in tests/cloud/test_drill.py.
"""

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from sqlmodel import col, select

from orchestrator import policy, workflows
from orchestrator.actors import Actor, Role
from orchestrator.backup.models import RestorePoint
from orchestrator.database.columns import utcnow
from orchestrator.database.core import database_url
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.dr import campaigns, reports
from orchestrator.dr.campaign_models import DrCampaign, DrCampaignDrill
from orchestrator.jobs import queue
from orchestrator.operations.models import IN_PROGRESS, Operation, OperationStatus
from orchestrator.ports import StepFailed
from orchestrator.workflows import commands
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step, Workflow
from tests.conftest import Platform, Tenant, order_and_approve, order_body

pytestmark = pytest.mark.integration


def wait_for_go(ctx: StepContext) -> None:
    ctx.wait_for("go", "the test ends this drill when it wants")


def check(ctx: StepContext) -> None:
    if not ctx.signals["go"]["passed"]:
        raise StepFailed("health check https://double/ : HTTP 502")


def report(ctx: StepContext) -> None:
    told = ctx.signals.get("go")
    if told is None:
        return
    with ctx.transaction() as session:
        operation = session.get(Operation, ctx.operation_id)
        assert operation is not None
        body = {"rto_seconds": told["rto"], "rpo_seconds": told["rpo"], "passed": told["passed"]}
        reports.record(session=session, operation=operation, body=body)


DRILL_DOUBLE = Workflow(
    kind="drill",
    summary="test double of a DR drill",
    steps=(Step("wait", wait_for_go), Step("check", check), Step("report", report, always=True)),
    signals={"go": policy.Action.retry},
    day2_action=True,
)


@pytest.fixture
def drill_double() -> Iterator[None]:
    real = workflows.load().get("drill")
    workflows.register(DRILL_DOUBLE)
    yield
    workflows.unregister("drill")
    if real is not None:
        workflows.register(real)


def active_services(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], count: int
) -> list[str]:
    ids = []
    for n in range(count):
        params = {
            "name": f"site{n}",
            "domain": f"site{n}.{tenant.dns_suffix}",
            "admin_email": f"web@{tenant.dns_suffix}",
        }
        ids.append(order_and_approve(client, tenant, platform, order_body(tenant, parameters=params))["service_id"])
    work()
    return ids


def drill_operations(service_ids: list[str]) -> list[Operation]:
    with unit_of_work() as uow:
        found = uow.session.exec(
            select(Operation).where(
                Operation.kind == "drill", col(Operation.service_id).in_([uuid.UUID(s) for s in service_ids])
            )
        ).all()
        return list(found)


def most_at_once(operations: list[Operation]) -> int:
    """The largest number of these operations in progress at one instant (created to finished)."""
    edges = [(op.created_at, 1) for op in operations] + [(op.finished_at, -1) for op in operations if op.finished_at]
    running = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # ends before starts at a tie
        running += step
        peak = max(peak, running)
    return peak


def go(operator: Actor, operation_id: uuid.UUID, *, rto: float, rpo: float, passed: bool = True) -> None:
    with unit_of_work() as uow:
        commands.signal(
            session=uow.session,
            actor=operator,
            operation_id=operation_id,
            name="go",
            payload={"rto": rto, "rpo": rpo, "passed": passed},
        )
        uow.commit()


def test_a_campaign_keeps_at_most_max_parallel_drills_in_progress_and_sums_them_up(
    client: httpx.Client,
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    drill_double: None,
) -> None:
    services = active_services(client, tenant, platform, work, 5)
    operator = Actor(user_id=platform.operator.user_id, username="op", role=Role.operator, ministry_id=None)

    started = client.post(
        "/v1/dr/campaigns", json={"ministry": tenant.code, "max_parallel": 2}, headers=tenant.requester.headers
    )
    assert started.status_code == 201, started.text
    campaign_id = started.json()["id"]
    assert {d["service_id"] for d in started.json()["drills"]} == set(services)
    url = f"/v1/dr/campaigns/{campaign_id}"
    with psycopg.connect(database_url()) as conn:  # the API asked a worker to start it, not the next minute's tick
        asked = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'tonle:advance_campaign' "
            "AND args->>'campaign_id' = %s",
            (campaign_id,),
        ).fetchone()
    assert asked is not None and asked[0] == 1

    # Each round the worker runs what is queued, then the test ends the oldest drill in progress.
    figures = [(600.0, 3600.0, True), (1500.0, 7200.0, True), (900.0, 86000.0, False), (300.0, 60.0, True)]
    figures.append((200.0, 10.0, True))
    for finished in range(5):
        work()
        ops = drill_operations(services)
        in_progress = [op for op in ops if op.status in IN_PROGRESS]
        # A finished drill's slot is refilled at once (by the hook, not the minute's periodic advance).
        assert len(in_progress) == min(2, 5 - finished), [op.status for op in ops]
        counts = client.get(url, headers=tenant.requester.headers).json()["counts"]
        assert counts["running"] == len(in_progress) and counts["pending"] == 5 - len(ops), counts
        assert counts["passed"] + counts["failed"] == finished, counts
        # The periodic advance (the backstop after a crash) run on top changes nothing: the slots are full.
        queue.advance_campaigns(0)
        assert len([op for op in drill_operations(services) if op.status in IN_PROGRESS]) == len(in_progress)
        oldest = min(in_progress, key=lambda op: op.created_at)
        assert oldest.status == OperationStatus.waiting
        rto, rpo, passed = figures[finished]
        go(operator, oldest.id, rto=rto, rpo=rpo, passed=passed)
    work()

    ops = drill_operations(services)
    assert len(ops) == 5 and all(op.status not in IN_PROGRESS for op in ops)
    assert most_at_once(ops) == 2  # never more than two at once, and two were used
    summary = client.get(url, headers=tenant.requester.headers).json()
    assert summary["counts"] == {"pending": 0, "running": 0, "passed": 4, "failed": 1, "skipped": 0}
    assert summary["finished_at"] is not None
    assert summary["worst_rto_seconds"] == 1500.0
    assert summary["worst_rpo_seconds"] == 86000.0  # the failed drill's figures count too
    failed = [d for d in summary["drills"] if d["state"] == "failed"]
    assert len(failed) == 1 and failed[0]["rpo_seconds"] == 86000.0
    # The service whose drill failed has never passed one: it is overdue; the others are not.
    assert [o["service_id"] for o in summary["overdue"]] == [failed[0]["service_id"]]
    assert summary["overdue"][0]["last_passed_drill_at"] is None

    # Another ministry's people: the campaign does not exist for them.
    assert client.get(url, headers=other_tenant.requester.headers).status_code == 404
    assert client.get(url, headers=platform.operator.headers).status_code == 200  # operators read everything


def test_a_service_that_cannot_be_drilled_is_skipped_with_the_reason_and_the_campaign_ends(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], drill_double: None
) -> None:
    at_dr, at_primary = active_services(client, tenant, platform, work, 2)
    with psycopg.connect(database_url()) as conn:  # as after a failover: it runs at the DR site
        conn.execute("UPDATE service SET running_at = 'dr' WHERE id = %s", (at_dr,))
    operator = Actor(user_id=platform.operator.user_id, username="op", role=Role.operator, ministry_id=None)
    started = client.post(
        "/v1/dr/campaigns", json={"ministry": tenant.code, "max_parallel": 1}, headers=tenant.automation.headers
    )
    assert started.status_code == 201, started.text
    url = f"/v1/dr/campaigns/{started.json()['id']}"
    work()
    (running,) = [op for op in drill_operations([at_dr, at_primary]) if op.status in IN_PROGRESS]
    assert str(running.service_id) == at_primary  # the one it could not drill gave its slot away
    go(operator, running.id, rto=50.0, rpo=5.0)
    work()

    summary = client.get(url, headers=tenant.requester.headers).json()
    assert summary["counts"] == {"pending": 0, "running": 0, "passed": 1, "failed": 0, "skipped": 1}
    assert summary["finished_at"] is not None and summary["started_by"] == tenant.automation.username
    (skipped,) = [d for d in summary["drills"] if d["state"] == "skipped"]
    assert skipped["service_id"] == at_dr and "runs at the DR site" in skipped["skipped_reason"]


def test_overdue_lists_services_never_drilled_or_drilled_too_long_ago(
    client: httpx.Client,
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    drill_double: None,
) -> None:
    drilled, never = active_services(client, tenant, platform, work, 2)
    operator = Actor(user_id=platform.operator.user_id, username="op", role=Role.operator, ministry_id=None)
    requester = Actor(
        user_id=tenant.requester.user_id, username="r", role=Role.requester, ministry_id=tenant.ministry_id
    )
    with unit_of_work() as uow:  # in this process, where the drill double is registered
        drill_id = commands.run_action(
            session=uow.session, actor=requester, service_id=uuid.UUID(drilled), action="drill"
        ).id
        uow.commit()
    work()
    go(operator, drill_id, rto=100.0, rpo=100.0)
    work()

    listed = client.get("/v1/dr/overdue", headers=tenant.requester.headers)
    assert listed.status_code == 200, listed.text
    assert [o["service_id"] for o in listed.json()] == [never]  # the drilled one passed just now
    assert listed.json()[0]["drill_every_days"] == 30  # the standard tier's default
    assert listed.json()[0]["overdue_seconds"] > 0

    # Its last passing drill 33 days ago under a 30-day policy: 3 days overdue, more than the
    # never-drilled one (overdue since its creation, seconds ago), so it comes first.
    with psycopg.connect(database_url()) as conn:
        conn.execute("UPDATE operation SET finished_at = now() - interval '33 days' WHERE id = %s", (str(drill_id),))
    listed = client.get(f"/v1/dr/overdue?ministry={tenant.code}", headers=tenant.requester.headers).json()
    assert [o["service_id"] for o in listed] == [drilled, never]
    assert listed[0]["last_passed_operation_id"] == str(drill_id)
    assert 3 * 86400 - 120 < listed[0]["overdue_seconds"] < 3 * 86400 + 120

    # Other ministries see none of it; the ministry by name is not found for them.
    theirs = client.get("/v1/dr/overdue", headers=other_tenant.requester.headers).json()
    assert not {o["service_id"] for o in theirs} & {drilled, never}
    hidden = client.get(f"/v1/dr/overdue?ministry={tenant.code}", headers=other_tenant.requester.headers)
    assert hidden.status_code == 404, hidden.text
    seen = client.get(f"/v1/dr/overdue?ministry={tenant.ministry_id}", headers=platform.operator.headers).json()
    assert [o["service_id"] for o in seen] == [drilled, never]


def test_who_may_start_a_campaign(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, platform: Platform
) -> None:
    def start(body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        return client.post("/v1/dr/campaigns", json=body, headers=headers)

    another = start({"ministry": tenant.code}, other_tenant.requester.headers)
    assert another.status_code == 404 and another.json()["field"] == "ministry", another.text
    assert start({"ministry": str(uuid.uuid4())}, tenant.requester.headers).status_code == 404
    whole = start({}, tenant.requester.headers)
    assert whole.status_code == 403 and "across the data centre" in whole.json()["detail"], whole.text
    assert start({}, tenant.automation.headers).status_code == 403
    assert start({}, platform.operator.headers).status_code == 403
    assert start({"ministry": tenant.code}, platform.operator.headers).status_code == 403  # operators drill nothing
    too_many = start({"ministry": tenant.code, "max_parallel": 11}, tenant.requester.headers)
    assert too_many.status_code == 422, too_many.text
    # Its own automation account and its approver may; by id as well as by code.
    assert start({"ministry": str(tenant.ministry_id)}, tenant.automation.headers).status_code == 201
    assert start({"ministry": tenant.code}, tenant.approver.headers).status_code == 201

    # A whole-data-centre campaign (a finished, empty one: a live one would drill every test's services)
    # is seen only by those who see every ministry.
    with unit_of_work() as uow:
        whole_dc = DrCampaign(max_parallel=2, started_by_name="admin", finished_at=utcnow())
        uow.session.add(whole_dc)
        uow.commit()
        url = f"/v1/dr/campaigns/{whole_dc.id}"
    assert client.get(url, headers=tenant.requester.headers).status_code == 404
    assert client.get(url, headers=tenant.automation.headers).status_code == 404
    for sees_all in (platform.operator, platform.admin, platform.automation):
        assert client.get(url, headers=sees_all.headers).status_code == 200


def test_the_schedule_drills_services_due_with_a_restore_point_and_not_tried_today(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    restorable, without_backup = active_services(client, tenant, platform, work, 2)

    with unit_of_work() as uow:
        uow.session.add(
            RestorePoint(
                service_id=uuid.UUID(restorable),
                ministry_id=tenant.ministry_id,
                host="web-1",
                snapshot_id=uuid.uuid4().hex * 2,
                taken_at=utcnow() - timedelta(hours=2),
                size_bytes=1024,
                checksum="sha256:" + "0" * 64,
            )
        )
        uow.commit()
    campaign_id: uuid.UUID | None = None
    try:
        with unit_of_work() as uow:
            campaign = campaigns.schedule_due(session=uow.session, max_parallel=2)
            assert campaign is not None and campaign.scheduled and campaign.started_by is None
            campaign_id = campaign.id
            uow.commit()
        with unit_of_work() as uow:
            chosen = {
                str(service_id)
                for service_id in uow.session.exec(
                    select(DrCampaignDrill.service_id).where(DrCampaignDrill.campaign_id == campaign_id)
                ).all()
            }
            assert restorable in chosen and without_backup not in chosen
            # One scheduled campaign at a time: the next tick adds none while this one is open.
            assert campaigns.schedule_due(session=uow.session, max_parallel=2) is None
    finally:
        # Other tests' services may be in it (the schedule covers the data centre): no worker must
        # advance it after this test, so it is closed here.
        if campaign_id is not None:
            with unit_of_work() as uow:
                row = uow.session.get(DrCampaign, campaign_id)
                assert row is not None
                row.finished_at = utcnow()
                uow.session.add(row)
                uow.commit()
