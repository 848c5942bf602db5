"""DR reports end to end: recorded in PostgreSQL, read through the API (JSON and HTML), checked by `tonle dr verify`.

The operations are finished drill rows written straight to the database (the drill workflow
writes its report the same way, through `reports.record`, from its last step); the service under
them is a real one, ordered, approved and built through the API with the test engine.
"""

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import DBAPIError
from sqlmodel import func, select, text
from typer.testing import CliRunner

from orchestrator.database.columns import utcnow
from orchestrator.database.core import session_scope
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.dr import chain, reports, signing
from orchestrator.dr.models import DrReport
from orchestrator.operations.models import Operation, OperationStatus
from portal_api.cli import app as cli
from tests.conftest import Account, Database, Platform, Tenant, active_service

pytestmark = pytest.mark.integration

HOSTILE = '<script>alert("x")</script>'


def finished_operation(service_id: uuid.UUID, ministry_id: uuid.UUID, kind: str = "drill") -> Operation:
    """A finished operation row of that kind, as a drill leaves it (no job: nothing left to run)."""
    with unit_of_work() as uow:
        operation = Operation(
            service_id=service_id,
            ministry_id=ministry_id,
            kind=kind,
            status=OperationStatus.failed,
            steps=[],
            started_at=utcnow(),
            finished_at=utcnow(),
        )
        uow.session.add(operation)
        uow.commit()
        return operation


def drill_body(operation: Operation, *, passed: bool = False) -> dict[str, Any]:
    return {
        "kind": "drill",
        "operation_id": operation.id,  # a UUID, as workflows hold it; stored as text
        "service_id": str(operation.service_id),
        "ministry": "test",
        "offering": "web-hosting",
        "started_by": {"kind": "automation", "id": str(uuid.uuid4()), "name": "dr-schedules"},
        "started_at": operation.started_at,
        "finished_at": operation.finished_at,
        "rto_seconds": 412.5,
        "rpo_seconds": 3600,
        "target_rto_seconds": 7200,
        "target_rpo_seconds": 86400,
        "passed": passed,
        "failed_check": None if passed else f"health check https://portal/ {HOSTILE}: HTTP 502",
        "restore_point": {
            "id": str(uuid.uuid4()),
            "snapshot_id": "a" * 64,
            "taken_at": "2026-11-30T01:00:00Z",
            "checksum": "sha256:" + "b" * 64,
            "size_bytes": 104857600,
        },
        "steps": [
            {"name": "restore_data", "status": "succeeded", "started_at": "t0", "finished_at": "t1", "error": None},
            {"name": "check_health", "status": "failed", "started_at": "t1", "finished_at": "t2", "error": HOSTILE},
        ],
        "cleanup_verified": True,
        "leftovers": [],
        "bench_note": "an extra key the workflow adds is kept",
    }


def record(operation: Operation, **body: Any) -> DrReport:
    with unit_of_work() as uow:
        report = reports.record(session=uow.session, operation=operation, body={**drill_body(operation), **body})
        uow.commit()
        return report


@pytest.fixture
def service(client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]) -> uuid.UUID:
    return uuid.UUID(active_service(client, tenant, platform, work))


@pytest.fixture
def drill_report(service: uuid.UUID, tenant: Tenant) -> DrReport:
    return record(finished_operation(service, tenant.ministry_id))


def tonle_dr_verify(api_url: str, account: Account, *args: str) -> tuple[int, str]:
    env = {"TONLE_API_URL": api_url, "TONLE_TOKEN": account.token, "COLUMNS": "400"}
    result = CliRunner().invoke(cli, ["dr", "verify", *args], env=env)
    return result.exit_code, " ".join(result.output.split())


@contextmanager
def tampering(database: Database, statement: str, *params: object) -> Iterator[None]:
    """Run one UPDATE on dr_report with its trigger disabled, as someone with the database's owner rights could;
    then put the rows back, so the rest of the session's chain stays whole."""
    with psycopg.connect(database.url, autocommit=True) as conn:
        saved = conn.execute("SELECT seq, body, prev_hash FROM dr_report").fetchall()

        def unguarded(sql: str, *values: object) -> None:
            with conn.transaction():
                conn.execute("ALTER TABLE dr_report DISABLE TRIGGER dr_report_append_only")
                conn.execute(sql, values)
                conn.execute("ALTER TABLE dr_report ENABLE TRIGGER dr_report_append_only")

        unguarded(statement, *params)
        try:
            yield
        finally:
            for seq, body, prev_hash in saved:
                unguarded("UPDATE dr_report SET body = %s, prev_hash = %s WHERE seq = %s", body, prev_hash, seq)


def test_the_report_reads_as_json_with_its_fields_and_its_signed_link(
    client: httpx.Client, tenant: Tenant, drill_report: DrReport
) -> None:
    response = client.get(f"/v1/operations/{drill_report.operation_id}/report", headers=tenant.requester.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    report = response.json()
    assert (report["rto_seconds"], report["rpo_seconds"], report["passed"]) == (412.5, 3600, False)
    assert (report["target_rto_seconds"], report["target_rpo_seconds"]) == (7200, 86400)
    assert report["operation_id"] == str(drill_report.operation_id)
    assert report["ministry_id"] == str(tenant.ministry_id)
    assert report["restore_point"]["size_bytes"] == 104857600
    assert [s["name"] for s in report["steps"]] == ["restore_data", "check_health"]
    assert report["started_by"]["kind"] == "automation" and report["cleanup_verified"] is True
    assert report["bench_note"] == "an extra key the workflow adds is kept"
    integrity = report.pop("integrity")
    # The body as signed is the report as served, and its signature checks with the published key.
    assert json.loads(integrity["body"]) == report
    key = client.get("/v1/dr/signing-key", headers=tenant.requester.headers).json()
    link = chain.link_text(
        seq=integrity["seq"],
        report_id=integrity["report_id"],
        recorded_at=drill_report.recorded_at,
        key_id=key["key_id"],
        prev_hash=integrity["prev_hash"],
        body_sha256=chain.sha256_hex(integrity["body"]),
    )
    assert chain.sha256_hex(link) == integrity["hash"]
    assert signing.signature_valid(
        signing.load_public_key(key["public_key_base64"]), link.encode(), integrity["signature"]
    )
    assert signing.load_public_key(key["public_key_pem"]).public_bytes_raw() == signing.raw_bytes(
        signing.load_public_key(key["public_key_base64"])
    )


def test_the_report_reads_as_an_escaped_html_page(client: httpx.Client, tenant: Tenant, drill_report: DrReport) -> None:
    response = client.get(
        f"/v1/operations/{drill_report.operation_id}/report",
        headers={**tenant.requester.headers, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page  # in the failed check and the step error
    assert "FAILED" in page and "412.5 s (6 min 52 s)" in page and "within target" in page
    assert drill_report.hash in page and drill_report.signature in page


def test_a_client_sending_any_accept_gets_json(client: httpx.Client, tenant: Tenant, drill_report: DrReport) -> None:
    response = client.get(
        f"/v1/operations/{drill_report.operation_id}/report", headers={**tenant.requester.headers, "Accept": "*/*"}
    )
    assert response.headers["content-type"].startswith("application/json")


def test_another_ministrys_report_and_an_operation_without_one_are_not_found(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, platform: Platform, drill_report: DrReport
) -> None:
    url = f"/v1/operations/{drill_report.operation_id}/report"
    for headers in (other_tenant.requester.headers, {**other_tenant.approver.headers, "Accept": "text/html"}):
        refused = client.get(url, headers=headers)
        assert refused.status_code == 404, refused.text
        assert str(drill_report.id) not in refused.text
    assert client.get(url, headers=platform.operator.headers).status_code == 200
    assert client.get(url).status_code == 401
    without = finished_operation(drill_report.service_id, tenant.ministry_id)
    missing = client.get(f"/v1/operations/{without.id}/report", headers=tenant.requester.headers)
    assert missing.status_code == 404 and "has no DR report" in missing.text


def test_the_signing_key_is_for_any_authenticated_user(client: httpx.Client, other_tenant: Tenant) -> None:
    assert client.get("/v1/dr/signing-key").status_code == 401
    key = client.get("/v1/dr/signing-key", headers=other_tenant.automation.headers).json()
    assert key["algorithm"] == "Ed25519"
    assert key["key_id"] == signing.key_id(signing.public_key())  # the key this process signs with
    assert key["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_the_chain_lists_other_ministries_reports_as_bare_links(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, drill_report: DrReport
) -> None:
    links = {
        item["id"]: item
        for item in client.get("/v1/dr/reports", params={"limit": 1000}, headers=other_tenant.requester.headers).json()
    }
    theirs = links[str(drill_report.id)]
    assert theirs["body"] is None and theirs["operation_id"] is None and theirs["kind"] is None
    assert theirs["hash"] == drill_report.hash
    own = client.get("/v1/dr/reports", params={"limit": 1000}, headers=tenant.requester.headers).json()
    assert next(i for i in own if i["id"] == str(drill_report.id))["body"] == drill_report.body


def test_recording_is_idempotent_per_operation_and_checks_its_input(drill_report: DrReport, tenant: Tenant) -> None:
    with session_scope() as session:
        operation = session.get(Operation, drill_report.operation_id)
    assert operation is not None
    again = record(operation, rto_seconds=1)
    assert (again.id, again.seq, again.body) == (drill_report.id, drill_report.seq, drill_report.body)
    with pytest.raises(ValueError, match="operation_id"):
        record(finished_operation(drill_report.service_id, tenant.ministry_id), operation_id=str(uuid.uuid4()))
    with pytest.raises(ValueError, match="no DR report"):
        record(finished_operation(drill_report.service_id, tenant.ministry_id, kind="provision"))


def test_the_database_refuses_to_change_or_delete_a_report(drill_report: DrReport) -> None:
    for statement in (
        "UPDATE dr_report SET body = '{}' WHERE id = :id",
        "DELETE FROM dr_report WHERE id = :id",
        "TRUNCATE dr_report",
    ):
        with unit_of_work() as uow, pytest.raises(DBAPIError, match="dr_report is append-only"):
            uow.session.execute(text(statement), {"id": drill_report.id})


def test_reports_recorded_at_the_same_moment_do_not_fork_the_chain(service: uuid.UUID, tenant: Tenant) -> None:
    operations = [finished_operation(service, tenant.ministry_id) for _ in range(2)]
    first_recorded = threading.Event()
    recorded: list[DrReport] = []
    errors: list[BaseException] = []

    def slow_first() -> None:
        with unit_of_work() as uow:
            recorded.append(
                reports.record(session=uow.session, operation=operations[0], body=drill_body(operations[0]))
            )
            first_recorded.set()
            time.sleep(1.0)  # the second recording starts while this transaction still holds the tail
            uow.commit()

    def second() -> None:
        first_recorded.wait(10)
        try:
            recorded.append(record(operations[1]))
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=slow_first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(recorded) == 2
    assert recorded[1].seq == recorded[0].seq + 1
    assert recorded[1].prev_hash == recorded[0].hash


def test_tonle_dr_verify_passes_on_an_untouched_chain(
    api_url: str, tmp_path: Path, tenant: Tenant, platform: Platform, drill_report: DrReport
) -> None:
    with session_scope() as session:
        count = session.exec(select(func.count()).select_from(DrReport)).one()
    code, output = tonle_dr_verify(api_url, platform.operator)
    assert code == 0, output
    assert f"OK: {count} report(s), chain intact, every signature valid with the key the API publishes" in output
    head = re.search(r"Head: ([0-9a-f]{64})", output)
    assert head is not None, output
    code, output = tonle_dr_verify(api_url, platform.operator, "--seen", head.group(1))
    assert code == 0, output
    code, output = tonle_dr_verify(api_url, platform.operator, "--seen", "d" * 64)
    assert code == 1 and f"the report with hash {'d' * 64} noted earlier is not in the chain" in output, output
    # A ministry's auditor checks the whole chain too, other ministries' reports by their links only.
    code, output = tonle_dr_verify(api_url, tenant.approver)
    assert code == 0 and f"OK: {count} report(s)" in output, output
    # On the orchestrator's host, straight from the database, with a key obtained beforehand.
    pinned = tmp_path / "tonle-dr.pub"
    pinned.write_text(client_published_pem(api_url, tenant))
    code, output = tonle_dr_verify(api_url, platform.operator, "--database", "--public-key", str(pinned))
    assert code == 0 and f"OK: {count} report(s)" in output and "the pinned key" in output, output


def test_tonle_dr_verify_fails_with_a_key_that_is_not_the_orchestrators(
    api_url: str, tmp_path: Path, platform: Platform, drill_report: DrReport
) -> None:
    stranger = tmp_path / "stranger.pub"
    stranger.write_text(signing.pem(Ed25519PrivateKey.generate().public_key()))
    code, output = tonle_dr_verify(api_url, platform.operator, "--public-key", str(stranger))
    assert code == 1 and "FAILED after 0 good report(s): report " in output and "signed by key" in output, output


def client_published_pem(api_url: str, account_of: Tenant) -> str:
    key = httpx.get(f"{api_url}/v1/dr/signing-key", headers=account_of.requester.headers).json()
    pem: str = key["public_key_pem"]
    return pem


def test_tonle_dr_verify_names_a_report_whose_body_was_changed(
    api_url: str, database: Database, platform: Platform, drill_report: DrReport
) -> None:
    with tampering(
        database,
        "UPDATE dr_report SET body = replace(body, '\"passed\":false', '\"passed\":true') WHERE id = %s",
        drill_report.id,
    ):
        for extra in ((), ("--database",)):
            code, output = tonle_dr_verify(api_url, platform.operator, *extra)
            assert code == 1, output
            assert (
                f"FAILED after {drill_report.seq - 1} good report(s): report {drill_report.id} (#{drill_report.seq},"
                in output
            )
            assert "its body does not match its body_sha256: the report's content was altered" in output
    code, output = tonle_dr_verify(api_url, platform.operator)
    assert code == 0, output  # put back as it was


def test_tonle_dr_verify_names_a_report_whose_link_was_broken(
    api_url: str, database: Database, platform: Platform, drill_report: DrReport
) -> None:
    with tampering(database, "UPDATE dr_report SET prev_hash = %s WHERE id = %s", "e" * 64, drill_report.id):
        code, output = tonle_dr_verify(api_url, platform.operator)
    assert code == 1, output
    assert f"report {drill_report.id} (#{drill_report.seq}," in output and "the chain is broken" in output
