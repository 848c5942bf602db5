"""Backup policies and restore points through the API, the backup action and the schedule, on a
real PostgreSQL with the no-op engine (its services have no hosts, so a backup runs no playbook:
the playbooks and the repository reads are tested on the local data centre, tests/cloud/test_backups.py);
and the orchestrator's restic reader against a real (local) restic repository."""

import os
import subprocess
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from orchestrator.audit.models import AuditEntry
from orchestrator.backup import policies, restore_points, schedule
from orchestrator.backup.models import RestorePoint
from orchestrator.backup.repository import Repository, ResticReader
from orchestrator.catalog import service as catalog
from orchestrator.database.columns import utcnow
from orchestrator.database.core import session_scope
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.errors import NotFound
from orchestrator.jobs import queue
from orchestrator.operations.models import Operation
from tests.conftest import Platform, Tenant, active_service

pytestmark = pytest.mark.integration

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def service_id(client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]) -> str:
    return active_service(client, tenant, platform, work)


def policy_url(service_id: str) -> str:
    return f"/v1/services/{service_id}/backup-policy"


def test_a_service_gets_its_tiers_defaults_and_bounds(
    client: httpx.Client, tenant: Tenant, platform: Platform, service_id: str
) -> None:
    got = client.get(policy_url(service_id), headers=tenant.requester.headers)
    assert got.status_code == 200, got.text
    policy = got.json()
    assert policy["tier"] == "standard"
    assert policy["backup_every_hours"] == 24
    assert policy["retention"] == {"daily": 7, "weekly": 4, "monthly": 6}
    assert policy["bounds"]["retention.daily"] == {"default": 7, "min": 1, "max": 31}
    assert policy["last_backup_at"] is None and policy["next_backup_due_at"] is not None
    # Operators read every ministry's policies; another ministry's people do not find it.
    assert client.get(policy_url(service_id), headers=platform.operator.headers).status_code == 200


def test_another_ministry_does_not_find_the_policy_or_the_restore_points(
    client: httpx.Client, other_tenant: Tenant, service_id: str
) -> None:
    for response in (
        client.get(policy_url(service_id), headers=other_tenant.requester.headers),
        client.put(policy_url(service_id), json={"backup_every_hours": 12}, headers=other_tenant.requester.headers),
        client.get(f"/v1/services/{service_id}/restore-points", headers=other_tenant.requester.headers),
    ):
        assert response.status_code == 404, response.text


def test_the_ministry_changes_its_policy_within_bounds_and_it_is_audited(
    client: httpx.Client, tenant: Tenant, service_id: str
) -> None:
    before = client.get(policy_url(service_id), headers=tenant.requester.headers).json()
    changed = client.put(
        policy_url(service_id),
        json={"backup_every_hours": 12, "retention": {"daily": 1}, "drill_every_days": 14},
        headers=tenant.requester.headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["backup_every_hours"] == 12 and body["drill_every_days"] == 14
    assert body["retention"] == {"daily": 1, "weekly": 4, "monthly": 6}
    # A shorter interval brings the next backup closer.
    assert body["next_backup_due_at"] < before["next_backup_due_at"]
    assert client.get(policy_url(service_id), headers=tenant.requester.headers).json()["retention"]["daily"] == 1
    with session_scope() as session:
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.entity == "backup_policy", AuditEntry.entity_id == service_id)
        ).one()
    assert entry.action == "backup_policy.changed" and entry.detail["after"]["backup_every_hours"] == 12


@pytest.mark.parametrize(
    ("body", "field", "bound"),
    [
        ({"retention": {"daily": 0}}, "retention.daily", "from 1 to 31"),
        ({"backup_every_hours": 72}, "backup_every_hours", "from 4 to 48"),
        ({"rpo_target_seconds": 3600}, "rpo_target_seconds", "from 14400 to 259200"),
    ],
)
def test_a_value_out_of_the_tiers_bounds_is_422_naming_field_and_bound(
    client: httpx.Client, tenant: Tenant, service_id: str, body: dict[str, object], field: str, bound: str
) -> None:
    refused = client.put(policy_url(service_id), json=body, headers=tenant.requester.headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    problem = refused.json()
    assert problem["field"] == field and bound in problem["detail"], problem
    assert client.get(policy_url(service_id), headers=tenant.requester.headers).json()["retention"]["daily"] == 7


def test_operators_read_policies_but_do_not_change_them(
    client: httpx.Client, platform: Platform, service_id: str
) -> None:
    refused = client.put(policy_url(service_id), json={"backup_every_hours": 12}, headers=platform.operator.headers)
    assert refused.status_code == 403, refused.text
    assert "may not change backup policies" in refused.json()["detail"]


def test_a_bucket_has_no_backup_policy(client: httpx.Client, tenant: Tenant, work: Callable[[], None]) -> None:
    offering = catalog.get_offering("dr-backup")
    body = {"offering_id": "dr-backup", "plan": offering.plans[0].id, "parameters": offering.parameters["examples"][0]}
    ordered = client.post("/v1/requests", json=body, headers=tenant.requester.headers)
    assert ordered.status_code == 201, ordered.text
    approved = client.post(
        f"/v1/requests/{ordered.json()['id']}/approvals", json={"decision": "approve"}, headers=tenant.approver.headers
    ).json()
    work()
    missing = client.get(policy_url(approved["service_id"]), headers=tenant.requester.headers)
    assert missing.status_code == 404 and "no backup tier" in missing.json()["detail"], missing.text


def test_restore_points_are_listed_newest_first_without_the_pruned_ones(
    client: httpx.Client, tenant: Tenant, platform: Platform, service_id: str
) -> None:
    now = utcnow()
    rows = [
        RestorePoint(
            service_id=uuid.UUID(service_id),
            ministry_id=tenant.ministry_id,
            host="web-1",
            snapshot_id=f"{index:064x}",
            taken_at=now - timedelta(days=index),
            size_bytes=1000 + index,
            checksum=f"sha256:{index:064x}",
            pruned_at=now if index == 2 else None,
        )
        for index in range(4)
    ]
    with session_scope() as session:
        session.add_all(rows)
        session.commit()
    listed = client.get(f"/v1/services/{service_id}/restore-points", headers=tenant.requester.headers)
    assert listed.status_code == 200, listed.text
    points = listed.json()
    assert [p["snapshot_id"] for p in points] == [f"{i:064x}" for i in (0, 1, 3)]
    assert points[0]["checksum"] == f"sha256:{0:064x}" and points[0]["size_bytes"] == 1000
    assert points[0]["host"] == "web-1" and points[0]["pruned_at"] is None
    everything = client.get(
        f"/v1/services/{service_id}/restore-points",
        params={"include_pruned": "true"},
        headers=platform.operator.headers,
    ).json()
    assert [p["snapshot_id"] for p in everything] == [f"{i:064x}" for i in range(4)]
    assert everything[2]["pruned_at"] is not None
    # What the drill calls.
    with session_scope() as session:
        latest = restore_points.latest(session=session, service_id=uuid.UUID(service_id))
        assert latest is not None and latest.snapshot_id == f"{0:064x}"
        pruned = restore_points.get(session=session, service_id=uuid.UUID(service_id), restore_point_id=rows[2].id)
        assert pruned.pruned_at is not None
        with pytest.raises(NotFound):
            restore_points.get(session=session, service_id=uuid.uuid4(), restore_point_id=rows[0].id)


def test_the_backup_action_runs_and_moves_the_schedule(
    client: httpx.Client, tenant: Tenant, service_id: str, work: Callable[[], None]
) -> None:
    started = client.post(f"/v1/services/{service_id}/actions/backup", headers=tenant.requester.headers)
    assert started.status_code == 202, started.text
    assert started.json()["kind"] == "backup"
    work()
    operation = client.get(f"/v1/operations/{started.json()['id']}", headers=tenant.requester.headers).json()
    assert operation["status"] == "succeeded", operation
    policy = client.get(policy_url(service_id), headers=tenant.requester.headers).json()
    assert policy["last_backup_operation_id"] == operation["id"]
    assert policy["last_backup_at"] is not None
    assert policy["next_backup_due_at"] > policy["last_backup_at"]


def test_the_schedule_starts_due_backups_as_the_system_and_records_a_miss(
    client: httpx.Client, tenant: Tenant, service_id: str, work: Callable[[], None]
) -> None:
    sid = uuid.UUID(service_id)
    with session_scope() as session:
        policy = policies.get(session=session, service_id=sid)
        due_at = utcnow() - timedelta(minutes=10)
        policy.next_backup_due_at = due_at
        session.add(policy)
        session.commit()
    with unit_of_work() as uow:  # its commit defers the operation's job
        outcome = schedule.start_due(session=uow.session, service_id=sid, now=utcnow(), start=queue._start_backup)
        uow.commit()
    assert isinstance(outcome, schedule.Started), outcome
    assert outcome.check, "a service never checked gets its repository check with its first scheduled backup"
    with session_scope() as session:
        operation = session.get(Operation, outcome.operation_id)
        assert operation is not None and operation.kind == "backup" and operation.created_by is None
        assert operation.parameters["scheduled"] is True
        # While it runs, nothing else is started and nothing is missed.
        assert schedule.start_due(session=session, service_id=sid, now=utcnow(), start=queue._start_backup) is None
        policy = policies.get(session=session, service_id=sid)
        assert policy.next_backup_due_at is not None and policy.next_backup_due_at > utcnow()
    work()

    # Due again while another operation holds the service: a miss, recorded once per due time.
    restart = client.post(f"/v1/services/{service_id}/actions/restart", headers=tenant.requester.headers)
    assert restart.status_code == 202, restart.text
    with session_scope() as session:
        policy = policies.get(session=session, service_id=sid)
        policy.next_backup_due_at = utcnow() - timedelta(minutes=1)
        session.add(policy)
        session.commit()
    for _ in range(2):
        with unit_of_work() as uow:
            missed = schedule.start_due(session=uow.session, service_id=sid, now=utcnow(), start=queue._start_backup)
            uow.commit()
        assert isinstance(missed, schedule.Missed) and "busy with a action operation" in missed.reason
    shown = client.get(policy_url(service_id), headers=tenant.requester.headers).json()
    assert shown["last_missed_at"] is not None and "could not start" in shown["last_missed_reason"]
    assert shown["next_backup_due_at"] < shown["last_missed_at"], "still overdue"
    with session_scope() as session:
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.entity_id == service_id, AuditEntry.action == "backup.missed")
        ).all()
    assert len(entries) == 1
    work()


def test_the_reader_lists_a_real_repositorys_snapshots_with_sizes_and_checksums(tmp_path: Path) -> None:
    if not Path("/usr/bin/restic").exists():
        pytest.skip("restic is not installed on this machine (apt-get install restic)")
    repository = tmp_path / "repo"
    content = tmp_path / "content"
    content.mkdir()
    (content / "index.html").write_text("A" * 1000)
    env = {
        **os.environ,
        "RESTIC_REPOSITORY": str(repository),
        "RESTIC_PASSWORD": "pw",
        "RESTIC_CACHE_DIR": str(tmp_path / "cache"),  # not a parent of the content: restic skips its cache
    }
    subprocess.run(["restic", "init", "--quiet"], env=env, check=True)
    subprocess.run(
        ["restic", "backup", "--quiet", "--host", "s-web-1", "--tag", "checksum=sha256:" + "ab" * 32, str(content)],
        env=env,
        check=True,
    )
    snapshots = ResticReader().snapshots(Repository(url=str(repository), password="pw", access_key="", secret_key=""))
    assert len(snapshots) == 1
    assert snapshots[0].checksum == "sha256:" + "ab" * 32 and snapshots[0].size_bytes == 1000
    assert len(snapshots[0].id) == 64
    assert not list(repository.joinpath("locks").iterdir()), "reads leave no lock"
    with pytest.raises(Exception, match=r"wrong password|no key found"):
        ResticReader().snapshots(Repository(url=str(repository), password="nope", access_key="", secret_key=""))


def test_syncing_a_hosts_snapshots_adds_new_ones_and_marks_the_gone_ones_pruned(
    tenant: Tenant, service_id: str
) -> None:
    from orchestrator.backup.repository import Snapshot

    sid, now = uuid.UUID(service_id), utcnow()
    operation_id = uuid.uuid4()

    def snapshot(n: int, age: timedelta) -> Snapshot:
        return Snapshot(f"{n:064x}", now - age, "s-web-1", ("tonle", f"checksum=sha256:{n:064x}"), 100 * n)

    older, timer_made, newest = (
        snapshot(1, timedelta(days=2)),
        snapshot(2, timedelta(hours=3)),
        snapshot(3, timedelta(0)),
    )
    with session_scope() as session:
        added, pruned = restore_points.sync(
            session=session, service_id=sid, ministry_id=tenant.ministry_id, host="web", snapshots=[older, timer_made]
        )
        session.commit()
    assert len(added) == 2 and pruned == []
    # Retention removed the older one; a backup operation started an hour ago made the newest.
    with session_scope() as session:
        added, pruned = restore_points.sync(
            session=session,
            service_id=sid,
            ministry_id=tenant.ministry_id,
            host="web",
            snapshots=[timer_made, newest],
            operation_id=operation_id,
            operation_started_at=now - timedelta(hours=1),
        )
        session.commit()
    assert [row.snapshot_id for row in added] == [newest.id] and [row.snapshot_id for row in pruned] == [older.id]
    with session_scope() as session:
        rows = {
            row.snapshot_id: row for row in session.exec(select(RestorePoint).where(RestorePoint.service_id == sid))
        }
        latest = restore_points.latest(session=session, service_id=sid)
    assert rows[newest.id].operation_id == operation_id and rows[newest.id].checksum == f"sha256:{3:064x}"
    assert rows[timer_made.id].operation_id is None, "the host's own timer made it, before the operation"
    assert rows[older.id].pruned_at is not None and rows[timer_made.id].pruned_at is None
    assert latest is not None and latest.snapshot_id == newest.id and latest.size_bytes == 300
