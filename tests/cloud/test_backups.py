"""Backups of a real web-hosting service on the local data centre, through the API (real API and
worker processes, embedded engine, Ansible): a backup now is catalogued as a restore point whose
checksum is what `tonle-checksum` prints on the host; after the content changes, a scheduled
backup (with its repository check) gives another checksum, and the policy's retention (one
daily snapshot) prunes the first, which the catalogue marks."""

import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from orchestrator import secrets
from orchestrator.backup import policies, schedule
from orchestrator.database.columns import utcnow
from orchestrator.database.core import database_url, session_scope
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.jobs import queue
from orchestrator.services.models import Service
from tests.cloud.conftest import System
from tests.cloud.test_web_hosting_e2e import client, follow, ministry, site_archive
from tests.conftest import Platform, Tenant, order_and_approve

pytestmark = [pytest.mark.cloud, pytest.mark.timeout(1500)]

__all__ = ["client", "ministry"]  # fixtures shared with the end-to-end test, not copied


@pytest.fixture(scope="module")
def web(system: System, ministry: Tenant, platform: Platform) -> Iterator[dict[str, Any]]:
    """One web-hosting service for the module, built for real."""
    domain = f"backup-{uuid.uuid4().hex[:6]}.{ministry.dns_suffix}"
    body = {
        "offering_id": "web-hosting",
        "plan": "small",
        "parameters": {"name": "backed-up", "domain": domain, "admin_email": f"web@{ministry.dns_suffix}"},
    }
    with httpx.Client(base_url=system.url, timeout=60) as http:
        approved = order_and_approve(http, ministry, platform, body)
        follow(http, ministry.requester.headers, approved["operation_id"], system)
        yield http.get(f"/v1/services/{approved['service_id']}", headers=ministry.requester.headers).json()


def on_host(service: dict[str, Any], command: str, tmp_path: Path) -> str:
    """Run a command on the service's (only) host over SSH with the service's own key."""
    with session_scope() as session:
        row = session.get(Service, uuid.UUID(service["id"]))
        assert row is not None and row.ssh_private_key_encrypted
        key = secrets.decrypt(row.ssh_private_key_encrypted)
    with psycopg.connect(database_url()) as conn:
        stored = conn.execute("SELECT outputs FROM engine_stack WHERE name = %s", (service["stack_name"],)).fetchone()
    assert stored is not None
    (host,) = stored[0]["hosts"].values()
    key_file = tmp_path / "id"
    key_file.write_text(key if key.endswith("\n") else key + "\n")
    key_file.chmod(0o600)
    done = subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(key_file), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20",
         f"{host.get('user', 'debian')}@{host['address']}", command],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def deploy(client: httpx.Client, ministry: Tenant, system: System, service_id: str, text: str) -> None:
    deployed = client.post(
        f"/v1/services/{service_id}/actions/deploy-content",
        content=site_archive(text),
        headers={**ministry.requester.headers, "Content-Type": "application/gzip"},
    )
    assert deployed.status_code == 202, deployed.text
    follow(client, ministry.requester.headers, deployed.json()["id"], system)


def restore_points(client: httpx.Client, ministry: Tenant, service_id: str, **params: str) -> list[dict[str, Any]]:
    listed = client.get(f"/v1/services/{service_id}/restore-points", params=params, headers=ministry.requester.headers)
    assert listed.status_code == 200, listed.text
    points: list[dict[str, Any]] = listed.json()
    return points


def test_backups_are_catalogued_with_the_hosts_checksum_and_pruned_by_the_policy(
    client: httpx.Client, system: System, ministry: Tenant, web: dict[str, Any], tmp_path: Path
) -> None:
    service_id = web["id"]
    kept = client.put(
        f"/v1/services/{service_id}/backup-policy",
        json={"retention": {"daily": 1, "weekly": 0, "monthly": 0}},
        headers=ministry.requester.headers,
    )
    assert kept.status_code == 200, kept.text

    deploy(client, ministry, system, service_id, f"content A {uuid.uuid4().hex[:8]}")
    started = client.post(f"/v1/services/{service_id}/actions/backup", headers=ministry.requester.headers)
    assert started.status_code == 202, started.text
    first_op = follow(client, ministry.requester.headers, started.json()["id"], system)
    checksum_a = on_host(web, "sudo /usr/local/sbin/tonle-checksum", tmp_path)
    assert checksum_a.startswith("sha256:") and len(checksum_a) == 7 + 64
    (first,) = restore_points(client, ministry, service_id)
    assert first["checksum"] == checksum_a, "the snapshot is tagged with what the host computes"
    assert first["operation_id"] == first_op["id"] and first["size_bytes"] > 0 and len(first["snapshot_id"]) == 64

    # Content B, then a backup the schedule starts (as the system), with the weekly repository check.
    deploy(client, ministry, system, service_id, f"content B {uuid.uuid4().hex[:8]}")
    checksum_b = on_host(web, "sudo /usr/local/sbin/tonle-checksum", tmp_path)
    assert checksum_b != checksum_a
    with session_scope() as session:
        policy = policies.get(session=session, service_id=uuid.UUID(service_id))
        policy.next_backup_due_at = utcnow() - timedelta(minutes=1)
        session.add(policy)
        session.commit()
    with unit_of_work() as uow:  # the test process defers the job; the system's worker runs it
        due = schedule.start_due(
            session=uow.session, service_id=uuid.UUID(service_id), now=utcnow(), start=queue._start_backup
        )
        uow.commit()
    assert isinstance(due, schedule.Started) and due.check, due
    follow(client, ministry.requester.headers, str(due.operation_id), system)

    # One daily snapshot kept: the first is pruned from the repository and marked in the catalogue.
    (second,) = restore_points(client, ministry, service_id)
    assert second["checksum"] == checksum_b and second["operation_id"] == str(due.operation_id)
    everything = restore_points(client, ministry, service_id, include_pruned="true")
    assert [p["snapshot_id"] for p in everything] == [second["snapshot_id"], first["snapshot_id"]]
    assert everything[1]["pruned_at"] is not None

    shown = client.get(f"/v1/services/{service_id}/backup-policy", headers=ministry.requester.headers).json()
    assert shown["last_backup_operation_id"] == str(due.operation_id)
    assert shown["next_backup_due_at"] > shown["last_backup_at"]
    assert shown["last_check_ok"] is True and "read-data-subset 5%" in shown["last_check_detail"]
