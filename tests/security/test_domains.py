"""A ministry orders only DNS names under the suffixes it owns.

Through the real API, as a ministry's requester would try it: another ministry's names, a real
domain, look-alikes of its own suffix, an alias slipped in beside a good domain, each refused
with 422 naming the field and nothing reserved; its own names are accepted. Then the suffixes
themselves, as an admin manages them: malformed or overlapping another ministry's, refused.
"""

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner, Result

from tests.conftest import Database, Platform, Tenant, order_body

pytestmark = [pytest.mark.security, pytest.mark.integration]


def web(tenant: Tenant, domain: str, aliases: list[str] | None = None) -> dict[str, object]:
    parameters: dict[str, Any] = {"name": "portal", "domain": domain, "admin_email": f"web@{tenant.dns_suffix}"}
    if aliases is not None:
        parameters["aliases"] = aliases
    return order_body(tenant, parameters=parameters)


def mail(tenant: Tenant, mail_domain: str) -> dict[str, object]:
    return {
        "offering_id": "email",
        "plan": "team",
        "parameters": {"name": "mail", "mail_domain": mail_domain, "postmaster": f"postmaster@{tenant.dns_suffix}"},
    }


def cms(tenant: Tenant, domain: str) -> dict[str, object]:
    return {
        "offering_id": "cms",
        "plan": "standard",
        "parameters": {
            "name": "news",
            "domain": domain,
            "site_title": "News",
            "admin_email": f"press@{tenant.dns_suffix}",
        },
    }


def quota_used(client: httpx.Client, tenant: Tenant) -> dict[str, int]:
    ministry = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()
    used: dict[str, int] = ministry["quota_used"]
    return used


def refused(response: httpx.Response, field: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["field"] == field, problem
    return problem


@pytest.mark.parametrize(
    ("build", "field"),
    [
        # Another ministry's domain, its suffix itself, and its mail domain.
        (lambda me, them: web(me, f"portal.{them.dns_suffix}"), "parameters.domain"),
        (lambda me, them: web(me, them.dns_suffix), "parameters.domain"),
        (lambda me, them: mail(me, them.dns_suffix), "parameters.mail_domain"),
        (lambda me, them: cms(me, f"news.{them.dns_suffix}"), "parameters.domain"),
        # A real domain, and the parent every ministry's suffix sits under.
        (lambda me, them: web(me, "www.google.com"), "parameters.domain"),
        (lambda me, them: web(me, "gov.example"), "parameters.domain"),
        # Look-alikes of the ministry's own suffix: not on a label boundary, or with more after it.
        (lambda me, them: web(me, f"evil-{me.dns_suffix}"), "parameters.domain"),
        (lambda me, them: web(me, f"portal.evil{me.dns_suffix}"), "parameters.domain"),
        (lambda me, them: web(me, f"{me.dns_suffix}.attacker.example"), "parameters.domain"),
        # A good domain with an alias outside: the alias is named, by its index.
        (
            lambda me, them: web(me, f"portal.{me.dns_suffix}", [f"www.{me.dns_suffix}", "www.google.com"]),
            "parameters.aliases.1",
        ),
        (lambda me, them: web(me, f"portal.{me.dns_suffix}", [f"www.{them.dns_suffix}"]), "parameters.aliases.0"),
    ],
)
def test_names_outside_the_ministrys_suffixes_are_refused(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, build: Any, field: str
) -> None:
    response = client.post("/v1/requests", json=build(tenant, other_tenant), headers=tenant.requester.headers)
    problem = refused(response, field)
    assert tenant.dns_suffix in problem["detail"], "the refusal says which suffixes the ministry owns"
    assert quota_used(client, tenant)["vcpu"] == 0, "a refused order reserves nothing"


def test_every_name_outside_is_listed(client: httpx.Client, tenant: Tenant) -> None:
    body = web(tenant, "portal.health.gov.example", [f"www.{tenant.dns_suffix}", "a.example", "b.example"])
    problem = refused(client.post("/v1/requests", json=body, headers=tenant.requester.headers), "parameters.domain")
    assert [e["field"] for e in problem["errors"]] == [
        "parameters.domain",
        "parameters.aliases.1",
        "parameters.aliases.2",
    ]


@pytest.mark.parametrize(
    "build",
    [
        lambda me: web(me, f"portal.{me.dns_suffix}", [f"www.{me.dns_suffix}", f"a.b.{me.dns_suffix}"]),
        lambda me: web(me, me.dns_suffix),
        lambda me: mail(me, me.dns_suffix),
        lambda me: mail(me, f"staff.{me.dns_suffix}"),
        lambda me: cms(me, f"news.{me.dns_suffix}"),
    ],
)
def test_the_ministrys_own_names_are_accepted(client: httpx.Client, tenant: Tenant, build: Any) -> None:
    body = build(tenant)
    response = client.post("/v1/requests", json=body, headers=tenant.requester.headers)
    assert response.status_code == 201, response.text


def test_an_admin_ordering_for_a_ministry_is_held_to_that_ministrys_suffixes(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, platform: Platform
) -> None:
    theirs = {**web(tenant, f"portal.{other_tenant.dns_suffix}"), "ministry_id": str(tenant.ministry_id)}
    refused(client.post("/v1/requests", json=theirs, headers=platform.admin.headers), "parameters.domain")
    own = {**web(tenant, f"portal.{tenant.dns_suffix}"), "ministry_id": str(tenant.ministry_id)}
    assert client.post("/v1/requests", json=own, headers=platform.admin.headers).status_code == 201


def new_ministry(client: httpx.Client, admin: dict[str, str], suffixes: list[str]) -> httpx.Response:
    code = f"d-{uuid.uuid4().hex[:8]}"
    return client.post(
        "/v1/ministries", json={"code": code, "name": f"Ministry {code}", "dns_suffixes": suffixes}, headers=admin
    )


@pytest.mark.parametrize(
    ("suffixes", "field"),
    [
        (["example"], "dns_suffixes.0"),  # one label: a top-level domain
        (["ok-{n}.gov.example", "bad..gov.example"], "dns_suffixes.1"),
        (["-bad.gov.example"], "dns_suffixes.0"),
        (["under_score.gov.example"], "dns_suffixes.0"),
        (["x\u0000.gov.example"], "dns_suffixes.0"),
        (["a.{n}.gov.example", "{n}.gov.example"], "dns_suffixes.1"),  # nested in its own list
        (["{n}.gov.example", "{N}.GOV.example."], "dns_suffixes.1"),  # the same, spelt otherwise
    ],
)
def test_malformed_suffixes_are_refused(
    client: httpx.Client, platform: Platform, suffixes: list[str], field: str
) -> None:
    n = uuid.uuid4().hex[:8]
    filled = [s.format(n=n, N=n.upper()) for s in suffixes]
    refused(new_ministry(client, platform.admin.headers, filled), field)


def test_two_ministries_cannot_own_overlapping_suffixes(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, platform: Platform
) -> None:
    admin = platform.admin.headers
    for clash in (tenant.dns_suffix, f"sub.{tenant.dns_suffix}", tenant.dns_suffix.upper() + ".", "gov.example"):
        response = new_ministry(client, admin, [f"free-{uuid.uuid4().hex[:6]}.example", clash])
        assert response.status_code == 409, response.text
        assert response.json()["field"] == "dns_suffixes.1"
        # The parent of every test ministry's suffix clashes with whichever is found first.
        assert clash == "gov.example" or tenant.code in response.json()["detail"]
    # Taking another ministry's suffix by changing one's own list is refused the same way.
    grab = client.patch(
        f"/v1/ministries/{other_tenant.ministry_id}",
        json={"dns_suffixes": [other_tenant.dns_suffix, f"www.{tenant.dns_suffix}"]},
        headers=admin,
    )
    assert grab.status_code == 409 and grab.json()["field"] == "dns_suffixes.1", grab.text
    mine = client.get(f"/v1/ministries/{other_tenant.ministry_id}", headers=admin).json()
    assert mine["dns_suffixes"] == [other_tenant.dns_suffix]


def test_suffixes_are_admin_managed_and_take_effect_at_once(
    client: httpx.Client, tenant: Tenant, platform: Platform
) -> None:
    extra = f"{tenant.code}-campaign.example"
    url = f"/v1/ministries/{tenant.ministry_id}"
    body = {"dns_suffixes": [tenant.dns_suffix, extra]}
    for account in (tenant.requester, tenant.approver, platform.operator):
        assert client.patch(url, json=body, headers=account.headers).status_code == 403
    before = client.post("/v1/requests", json=web(tenant, f"www.{extra}"), headers=tenant.requester.headers)
    refused(before, "parameters.domain")

    changed = client.patch(
        url, json={"dns_suffixes": [tenant.dns_suffix, extra.upper() + "."]}, headers=platform.admin.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["dns_suffixes"] == [tenant.dns_suffix, extra], "stored normalised"
    after = client.post("/v1/requests", json=web(tenant, f"www.{extra}"), headers=tenant.requester.headers)
    assert after.status_code == 201, after.text

    params = {"entity": "ministry", "entity_id": str(tenant.ministry_id)}
    entries = client.get("/v1/audit", params=params, headers=platform.admin.headers).json()
    change = next(e["detail"]["dns_suffixes"] for e in entries if e["action"] == "updated")
    assert change == {"from": [tenant.dns_suffix], "to": [tenant.dns_suffix, extra]}, "the change is audited"


def test_bootstrap_gives_ministries_their_suffixes(database: Database, tenant: Tenant, tmp_path: Path) -> None:
    from orchestrator.database.core import session_scope
    from orchestrator.ministry import service as ministries
    from portal_api.cli import app as cli

    code = f"b-{uuid.uuid4().hex[:8]}"
    file = tmp_path / "bootstrap.yaml"
    runner = CliRunner()

    def bootstrap(suffixes: list[str]) -> Result:
        file.write_text(yaml.safe_dump({"ministries": [{"code": code, "name": "Boot", "dns_suffixes": suffixes}]}))
        # Wide, so the error box does not wrap the message.
        return runner.invoke(cli, ["admin", "bootstrap", "--file", str(file)], env={"TERMINAL_WIDTH": "500"})

    def owned() -> list[str]:
        with session_scope() as session:
            ministry = ministries.get_by_code(session=session, code=code)
            assert ministry is not None
            return list(ministry.dns_suffixes)

    assert bootstrap([f"{code}.gov.example"]).exit_code == 0
    assert owned() == [f"{code}.gov.example"]
    added = bootstrap([f"{code}.gov.example", f"{code}-Portal.example."])
    assert added.exit_code == 0, added.output
    assert owned() == [f"{code}.gov.example", f"{code}-portal.example"]
    # Another ministry's suffix in the file: refused, naming the ministry and the field; nothing changes.
    taken = bootstrap([f"www.{tenant.dns_suffix}"])
    assert taken.exit_code != 0 and f"ministry {code}: 'www.{tenant.dns_suffix}' overlaps" in taken.output
    assert owned() == [f"{code}.gov.example", f"{code}-portal.example"]
    malformed = bootstrap(["not_a.name"])
    assert malformed.exit_code != 0 and "dns_suffixes.0" in malformed.output, malformed.output
