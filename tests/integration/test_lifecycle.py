"""Approval timeouts, the append-only audit log, the OpenAPI document, the CLI and bootstrap."""

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlmodel import select
from typer.testing import CliRunner

from orchestrator.actors import SYSTEM
from orchestrator.database.columns import utcnow
from orchestrator.database.core import session_scope
from orchestrator.requests import service as requests
from orchestrator.requests.models import Request
from portal_api.cli import app as cli
from tests.conftest import Database, Platform, Tenant, order_body

pytestmark = pytest.mark.integration


def test_an_undecided_request_expires_and_gives_its_quota_back(client: httpx.Client, tenant: Tenant) -> None:
    request = client.post("/v1/requests", json=order_body(tenant), headers=tenant.requester.headers).json()
    assert request["approval_deadline"] > request["created_at"]
    with session_scope() as session:
        row = session.exec(select(Request).where(Request.id == request["id"])).one()
        row.approval_deadline = utcnow() - timedelta(minutes=1)
        session.add(row)
        session.commit()
        expired = requests.expire_overdue(session=session, actor=SYSTEM)
        session.commit()
    assert str(expired[0]) == request["id"]
    assert client.get(f"/v1/requests/{request['id']}", headers=tenant.requester.headers).json()["status"] == "expired"
    used = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()["quota_used"]
    assert used["vcpu"] == 0
    late = client.post(
        f"/v1/requests/{request['id']}/approvals", json={"decision": "approve"}, headers=tenant.approver.headers
    )
    assert late.status_code == 409 and late.json()["current_state"] == "expired"


def test_the_audit_log_refuses_updates_and_deletes(database: Database, client: httpx.Client, tenant: Tenant) -> None:
    client.post("/v1/requests", json=order_body(tenant), headers=tenant.requester.headers)
    with psycopg.connect(database.url) as conn:
        for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)
            conn.rollback()


def test_openapi_documents_the_order_example(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    submit = spec["paths"]["/v1/requests"]["post"]
    examples = submit["requestBody"]["content"]["application/json"]["examples"]
    assert examples["web hosting"]["value"]["offering_id"] == "web-hosting"
    assert "Idempotency-Key" in {p["name"] for p in submit["parameters"]}
    assert "/v1/operations/{operation_id}/stream" in spec["paths"]


def test_the_cli_orders_approves_and_watches(
    api_url: str, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    runner = CliRunner()

    def tonle(token: str, *args: str) -> str:
        result = runner.invoke(cli, list(args), env={"TONLE_API_URL": api_url, "TONLE_TOKEN": token, "COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.output

    ordered = tonle(
        tenant.requester.token,
        "order",
        "web-hosting",
        "small",
        "-p",
        "name=cli-site",
        "-p",
        f"domain=cli.{tenant.dns_suffix}",
        "-p",
        f"admin_email=cli@{tenant.dns_suffix}",
    )
    request_id = re.search(r"request (\S+) is pending_approval", ordered)
    assert request_id, ordered
    tonle(tenant.approver.token, "approve", request_id.group(1), "--reference", "MEMO-CLI")
    approved = tonle(platform.operator.token, "approve", request_id.group(1))
    operation_id = re.search(r"tonle watch (\S+)", approved)
    assert operation_id, approved
    work()
    watched = tonle(tenant.requester.token, "watch", operation_id.group(1))
    assert "step verify succeeded" in watched and f"operation {operation_id.group(1)}: succeeded" in watched
    services = tonle(tenant.requester.token, "service", "list")
    assert "cli-site" in services and "active" in services
    service_id = re.search(r"([0-9a-f-]{36})\W+cli-site", services)
    assert service_id, services
    decommissioned = tonle(tenant.requester.token, "service", "decommission", service_id.group(1), "--yes")
    assert "(decommission) queued" in decommissioned

    bad = runner.invoke(
        cli,
        ["order", "web-hosting", "small", "-p", "name=x"],
        env={"TONLE_API_URL": api_url, "TONLE_TOKEN": tenant.requester.token},
    )
    assert bad.exit_code == 1 and "field: parameters." in bad.output


def test_bootstrap_creates_ministries_and_users_once(database: Database, tmp_path: Path) -> None:
    file = tmp_path / "bootstrap.yaml"
    file.write_text(
        "ministries:\n  - {code: boot-m, name: Ministry of Bootstrap, quota: {vcpu: 4}}\n"
        "users:\n  - {username: boot-it, role: requester, ministry: boot-m}\n  - {username: boot-ops, role: operator}\n"
    )
    runner = CliRunner()
    first = runner.invoke(cli, ["admin", "bootstrap", "--file", str(file)])
    assert first.exit_code == 0, first.output
    issued = json.loads(first.stdout[first.stdout.index("[") :])
    assert [u["username"] for u in issued] == ["boot-it", "boot-ops"]
    assert all(u["token"].startswith("tnl_") for u in issued)
    again = runner.invoke(cli, ["admin", "bootstrap", "--file", str(file)])
    assert again.exit_code == 0 and json.loads(again.stdout[again.stdout.index("[") :]) == []

    file.write_text("users:\n  - {username: lost, role: requester, ministry: nowhere}\n")
    wrong = runner.invoke(cli, ["admin", "bootstrap", "--file", str(file)])
    assert wrong.exit_code != 0 and "no ministry 'nowhere'" in wrong.output
