"""Mailboxes and aliases of an e-mail service through the real API: ordered with the service,
revealed once, added, reset and removed on day 2, counted against the ministry's quota.

The engine, Ansible and the health check are the integration tier's no-op adapters, so a
`sync-mailboxes` operation here runs no playbook: what it would be given is checked from the
database (`projection.secret_var`). tests/cloud/test_email_e2e.py runs the real ones.
"""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from orchestrator import secrets
from orchestrator.database.columns import utcnow
from orchestrator.database.core import session_scope
from orchestrator.mail import passwords, projection
from orchestrator.mail.models import Mailbox, MailDomain
from orchestrator.operations.models import Operation
from tests.conftest import Platform, Tenant, make_tenant, order_and_approve

pytestmark = pytest.mark.integration


def mail_order(tenant: Tenant, *locals_: str, plan: str = "team") -> dict[str, Any]:
    domain = f"mail.{tenant.dns_suffix}"
    return {
        "offering_id": "email",
        "plan": plan,
        "parameters": {
            "name": "mail",
            "mail_domain": domain,
            "postmaster": f"postmaster@{domain}",
            "initial_mailboxes": [{"address": f"{name}@{domain}", "full_name": name.title()} for name in locals_],
        },
    }


def mailboxes_used(client: httpx.Client, platform: Platform, tenant: Tenant) -> int:
    ministry = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=platform.admin.headers).json()
    return int(ministry["quota_used"]["mailboxes"])


def stored(address: str) -> list[Mailbox]:
    with session_scope() as session:
        return list(session.exec(select(Mailbox).where(Mailbox.address == address)).all())


def active_mail_service(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], *locals_: str
) -> tuple[str, str]:
    approved = order_and_approve(client, tenant, platform, mail_order(tenant, *locals_))
    work()
    service = client.get(f"/v1/services/{approved['service_id']}", headers=tenant.requester.headers).json()
    assert service["status"] == "active", service
    return service["id"], f"mail.{tenant.dns_suffix}"


def succeeded(client: httpx.Client, tenant: Tenant, accepted: httpx.Response, work: Callable[[], None]) -> None:
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["cache-control"] == "no-store"
    assert accepted.json()["operation"]["kind"] == "action"
    with session_scope() as session:
        operation = session.get(Operation, uuid.UUID(accepted.json()["operation_id"]))
        assert operation is not None and operation.parameters["action"] == "sync-mailboxes"
    work()
    done = client.get(f"/v1/operations/{accepted.json()['operation_id']}", headers=tenant.requester.headers).json()
    assert done["status"] == "succeeded", done


def test_an_ordered_domain_has_its_mailboxes_revealed_once(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    client = client
    service_id, domain = active_mail_service(client, tenant, platform, work, "alice", "bob")
    assert mailboxes_used(client, platform, tenant) == 2  # the mailboxes there are, not the plan's 50

    listed = client.get(f"/v1/services/{service_id}/mailboxes", headers=tenant.requester.headers).json()
    assert [m["address"] for m in listed] == [f"alice@{domain}", f"bob@{domain}"]
    assert all(m["status"] == "active" and m["quota_mb"] == 5120 and not m["system"] for m in listed)
    everything = client.get(
        f"/v1/services/{service_id}/mailboxes?include_system=true", headers=tenant.requester.headers
    ).json()
    assert {m["address"] for m in everything if m["system"]} == {f"tonle-probe-a@{domain}", f"tonle-probe-b@{domain}"}

    with session_scope() as session:
        mail = session.get(MailDomain, uuid.UUID(service_id))
        assert mail is not None and mail.domain == domain
        assert mail.dkim_selector == f"tonle{utcnow():%Y%m}"
        assert "PRIVATE KEY" in secrets.decrypt(mail.dkim_private_key_encrypted)

    revealed = client.post(f"/v1/services/{service_id}/credentials", headers=tenant.requester.headers)
    assert revealed.status_code == 200, revealed.text
    shown = revealed.json()["credentials"]
    assert set(shown) == {f"alice@{domain}", f"bob@{domain}"}
    for address, password in shown.items():
        (row,) = stored(address)
        assert passwords.verify(password, row.password_hash)
        assert row.password_encrypted is None  # shown once: the plaintext is gone
    again = client.post(f"/v1/services/{service_id}/credentials", headers=tenant.requester.headers)
    assert again.status_code == 409
    # The probe's accounts keep theirs: the health check logs in with them on every run.
    with session_scope() as session:
        mail = session.get(MailDomain, uuid.UUID(service_id))
        assert mail is not None
        secret = projection.secret_var(session=session, domain=mail, parameters={}, now=utcnow())
    assert secret["probe"]["sender"]["address"] == f"tonle-probe-a@{domain}"
    assert secret["probe"]["recipient"]["password"]
    assert secret["dkim"]["selector"] == mail.dkim_selector
    assert {m["address"] for m in secret["mailboxes"]} == {
        f"alice@{domain}",
        f"bob@{domain}",
        f"tonle-probe-a@{domain}",
        f"tonle-probe-b@{domain}",
    }


def test_mailboxes_and_aliases_on_day_two(
    client: httpx.Client,
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
) -> None:
    client, headers = client, tenant.requester.headers
    service_id, domain = active_mail_service(client, tenant, platform, work, "alice", "bob")
    base = f"/v1/services/{service_id}"

    added = client.post(f"{base}/mailboxes", json={"address": f"Carol@{domain}", "full_name": "Carol"}, headers=headers)
    succeeded(client, tenant, added, work)
    carol = f"carol@{domain}"
    assert added.json()["mailbox"]["address"] == carol
    (row,) = stored(carol)
    assert passwords.verify(added.json()["password"], row.password_hash) and row.password_encrypted is None
    assert mailboxes_used(client, platform, tenant) == 3

    refused = {
        "taken": client.post(f"{base}/mailboxes", json={"address": carol, "full_name": "C"}, headers=headers),
        "outside": client.post(
            f"{base}/mailboxes", json={"address": f"dave@{other_tenant.dns_suffix}", "full_name": "D"}, headers=headers
        ),
        "probe": client.post(
            f"{base}/mailboxes", json={"address": f"tonle-probe-a@{domain}", "full_name": "P"}, headers=headers
        ),
    }
    refused["name"] = client.post(
        f"{base}/mailboxes", json={"address": f"dave@{domain}", "full_name": "Dave:x"}, headers=headers
    )
    assert refused["taken"].status_code == 409
    for name, field in (("outside", "address"), ("probe", "address"), ("name", "full_name")):
        assert refused[name].status_code == 422, refused[name].text
        assert refused[name].headers["content-type"].startswith("application/problem+json")
        assert refused[name].json()["field"] == field
    assert mailboxes_used(client, platform, tenant) == 3

    reset = client.post(f"{base}/mailboxes/{carol}/reset", headers=headers)
    succeeded(client, tenant, reset, work)
    (row,) = stored(carol)
    assert passwords.verify(reset.json()["password"], row.password_hash)
    assert not passwords.verify(added.json()["password"], row.password_hash)

    alias = client.post(
        f"{base}/aliases",
        json={"address": f"team@{domain}", "destinations": [carol, f"bob@{domain}", "chair@partner.example"]},
        headers=headers,
    )
    succeeded(client, tenant, alias, work)
    bad_aliases = [
        ({"address": f"bob@{domain}", "destinations": [carol]}, 422, "address"),  # would shadow a mailbox
        ({"address": f"x@{domain}", "destinations": [carol, f"nobody@{domain}"]}, 422, "destinations.1"),
        ({"address": f"x@{other_tenant.dns_suffix}", "destinations": [carol]}, 422, "address"),
        ({"address": f"team@{domain}", "destinations": [carol]}, 409, None),
    ]
    for body, status, named in bad_aliases:
        answer = client.post(f"{base}/aliases", json=body, headers=headers)
        assert answer.status_code == status, (body, answer.text)
        assert named is None or answer.json()["field"] == named
    nested = client.post(
        f"{base}/aliases", json={"address": f"all@{domain}", "destinations": [f"team@{domain}"]}, headers=headers
    )
    succeeded(client, tenant, nested, work)
    listed = client.get(f"{base}/aliases", headers=headers).json()
    assert {a["address"]: a["destinations"] for a in listed}[f"team@{domain}"] == [
        carol,
        f"bob@{domain}",
        "chair@partner.example",
    ]

    # What an alias still delivers to is not removed from under it.
    assert client.delete(f"{base}/mailboxes/{carol}", headers=headers).status_code == 409
    assert client.delete(f"{base}/aliases/team@{domain}", headers=headers).status_code == 409
    succeeded(client, tenant, client.delete(f"{base}/aliases/all@{domain}", headers=headers), work)
    succeeded(client, tenant, client.delete(f"{base}/aliases/team@{domain}", headers=headers), work)
    assert client.delete(f"{base}/aliases/team@{domain}", headers=headers).status_code == 404

    removed = client.delete(f"{base}/mailboxes/{carol}", headers=headers)
    succeeded(client, tenant, removed, work)
    gone = removed.json()["mailbox"]
    assert gone["status"] == "removed"
    retain_until = datetime.fromisoformat(gone["retain_until"])
    assert abs((retain_until - (utcnow() + timedelta(days=90))).total_seconds()) < 120
    assert mailboxes_used(client, platform, tenant) == 2
    assert client.delete(f"{base}/mailboxes/{carol}", headers=headers).status_code == 404
    assert client.post(f"{base}/mailboxes/{carol}/reset", headers=headers).status_code == 404
    # Its mail is still on the server: the address is not handed to someone else meanwhile.
    again = client.post(f"{base}/mailboxes", json={"address": carol, "full_name": "New Carol"}, headers=headers)
    assert again.status_code == 409 and "kept until" in again.json()["detail"]
    with session_scope() as session:
        mail = session.get(MailDomain, uuid.UUID(service_id))
        assert mail is not None
        now = utcnow()
        assert projection.secret_var(session=session, domain=mail, parameters={}, now=now)["removed"] == [
            {"address": carol, "purge": False}
        ]
        later = now + timedelta(days=91)
        assert projection.secret_var(session=session, domain=mail, parameters={}, now=later)["removed"] == [
            {"address": carol, "purge": True}
        ]

    # Another ministry's service is not there at all.
    other = other_tenant.requester.headers
    assert client.get(f"{base}/mailboxes", headers=other).status_code == 404
    assert client.get(f"{base}/aliases", headers=other).status_code == 404
    stranger = client.post(f"{base}/mailboxes", json={"address": f"eve@{domain}", "full_name": "Eve"}, headers=other)
    assert stranger.status_code == 404
    assert client.delete(f"{base}/mailboxes/bob@{domain}", headers=other).status_code == 404


def test_one_change_at_a_time(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    client, headers = client, tenant.requester.headers
    service_id, domain = active_mail_service(client, tenant, platform, work, "alice")
    first = client.post(
        f"/v1/services/{service_id}/mailboxes", json={"address": f"b@{domain}", "full_name": "B"}, headers=headers
    )
    assert first.status_code == 202
    busy = client.post(
        f"/v1/services/{service_id}/mailboxes", json={"address": f"c@{domain}", "full_name": "C"}, headers=headers
    )
    assert busy.status_code == 409, busy.text
    assert stored(f"c@{domain}") == []
    assert mailboxes_used(client, platform, tenant) == 2
    work()


def test_bad_orders_are_refused_naming_the_field_and_reserve_nothing(client: httpx.Client, platform: Platform) -> None:
    client = client
    tenant = make_tenant(vcpu=64, ram_gb=128, storage_gb=5000, object_gb=10000, public_ips=20, mailboxes=3)
    outside = mail_order(tenant, "a")
    outside["parameters"]["initial_mailboxes"].append({"address": "b@elsewhere.gov.example", "full_name": "B"})
    twice = mail_order(tenant, "a", "a")
    too_many_for_plan = mail_order(tenant, *[f"u{i}" for i in range(51)])
    over_quota = mail_order(tenant, "a", "b", "c", "d")
    cases = [
        (outside, "parameters.initial_mailboxes.1.address", "Invalid input"),
        (twice, "parameters.initial_mailboxes.1.address", "Invalid input"),
        (too_many_for_plan, "parameters.initial_mailboxes", "Invalid input"),
        (over_quota, "parameters.initial_mailboxes", "Quota exceeded"),
    ]
    for body, field, title in cases:
        answer = client.post("/v1/requests", json=body, headers=tenant.requester.headers)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["field"] == field and answer.json()["title"] == title
        ministry = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=platform.admin.headers).json()
        assert not any(ministry["quota_used"].values()), ministry["quota_used"]

    fits = client.post("/v1/requests", json=mail_order(tenant, "a", "b", "c"), headers=tenant.requester.headers)
    assert fits.status_code == 201, fits.text
    assert fits.json()["quota_cost"]["mailboxes"] == 3
    assert mailboxes_used(client, platform, tenant) == 3
    cancelled = client.post(f"/v1/requests/{fits.json()['id']}/cancel", headers=tenant.requester.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert mailboxes_used(client, platform, tenant) == 0


def test_a_larger_plan_keeps_the_mailboxes_charged_and_decommissioning_gives_them_back(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    client, headers = client, tenant.requester.headers
    service_id, domain = active_mail_service(client, tenant, platform, work, "alice", "bob")
    resize = client.post(f"/v1/services/{service_id}/actions/resize", json={"plan": "department"}, headers=headers)
    assert resize.status_code == 202 and resize.json()["outcome"] == "approval_needed", resize.text
    request_id = resize.json()["request"]["id"]
    for voter in (tenant.approver, platform.operator):
        vote = client.post(f"/v1/requests/{request_id}/approvals", json={"decision": "approve"}, headers=voter.headers)
        assert vote.status_code == 200, vote.text
    work()
    service = client.get(f"/v1/services/{service_id}", headers=headers).json()
    assert service["plan"] == "department" and service["status"] == "active", service
    # The plan's change settles the held quota on the new plan's cost: the mailboxes stay counted.
    assert mailboxes_used(client, platform, tenant) == 2

    added = client.post(
        f"/v1/services/{service_id}/mailboxes", json={"address": f"carol@{domain}", "full_name": "C"}, headers=headers
    )
    succeeded(client, tenant, added, work)
    assert mailboxes_used(client, platform, tenant) == 3
    decommissioned = client.post(f"/v1/services/{service_id}/decommission", headers=headers)
    assert decommissioned.status_code == 202, decommissioned.text
    work()
    assert client.get(f"/v1/services/{service_id}", headers=headers).json()["status"] == "retired"
    assert mailboxes_used(client, platform, tenant) == 0
