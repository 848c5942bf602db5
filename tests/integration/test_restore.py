"""Restore in place through the API and a real worker, with test doubles at the cloud's boundaries
(engine, Ansible, health probe: tests/integration/test_drill.py). Real restores on real servers are
in the cloud tier (the failback restores the primary site with the same steps)."""

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from orchestrator.bootstrap import noop_adapters
from orchestrator.config import get_settings
from orchestrator.jobs import queue
from tests.conftest import Platform, Tenant, active_service
from tests.integration.test_drill import Doubles, Health, RecordingEngine, RecordingRunner, add_restore_point

pytestmark = pytest.mark.integration


@pytest.fixture
def doubles() -> Iterator[Doubles]:
    found = Doubles(RecordingEngine(), RecordingRunner(), Health())
    queue.set_adapters(noop_adapters(get_settings(), engine=found.engine, config=found.runner, health=found.health))
    yield found
    queue.set_adapters(None)


def restore(client: httpx.Client, tenant: Tenant, service_id: str, body: object) -> httpx.Response:
    return client.post(f"/v1/services/{service_id}/actions/restore", json=body, headers=tenant.requester.headers)


def test_a_named_restore_point_is_restored_after_a_backup_of_what_is_there(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], doubles: Doubles
) -> None:
    service_id = active_service(client, tenant, platform, work)
    older = add_restore_point(service_id, hours_ago=30, checksum="sha256:" + "01" * 32)
    add_restore_point(service_id, hours_ago=1)
    doubles.runner.runs.clear()

    started = restore(client, tenant, service_id, {"restore_point": str(older.id)})
    assert started.status_code == 202, started.text
    work()
    operation = client.get(f"/v1/operations/{started.json()['id']}", headers=tenant.requester.headers).json()
    assert operation["status"] == "succeeded", operation
    assert [run.playbook for run in doubles.runner.runs] == ["backup_now", "restore", "data_check"]
    restored = doubles.runner.runs[1].extra_vars["restore"]
    assert (restored["snapshot_id"], restored["checksum"]) == (older.snapshot_id, older.checksum)
    service = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()
    assert service["status"] == "active"


def test_restore_refuses_what_it_cannot_restore(
    client: httpx.Client,
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    doubles: Doubles,
) -> None:
    service_id = active_service(client, tenant, platform, work)
    bad = restore(client, tenant, service_id, {"restore_point": "yesterday"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "restore_point", bad.text
    assert restore(client, tenant, service_id, {"when": "now"}).status_code == 422
    assert restore(client, other_tenant, service_id, {}).status_code == 404

    unknown = restore(client, tenant, service_id, {"restore_point": str(uuid.uuid4())})
    assert unknown.status_code == 202
    work()
    failed = client.get(f"/v1/operations/{unknown.json()['id']}", headers=tenant.requester.headers).json()
    assert (failed["status"], failed["failed_step"]) == ("failed", "choose_restore_point")
    assert "restore point" in failed["error"]
    service = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()
    assert service["status"] == "active", "a restore that never began leaves the service as it was"
