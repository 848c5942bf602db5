"""Ministry staff's console pages on a real API process: the catalogue's generated order form,
requests, services (credentials once, day-2 actions), quota and an operation's live log."""

import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest

from orchestrator.backup.models import RestorePoint
from orchestrator.database.columns import utcnow
from orchestrator.database.core import session_scope
from tests.conftest import Platform, Tenant, order_and_approve, order_body, web_params
from tests.integration.test_console import INLINE_SCRIPT, INLINE_STYLE_OR_HANDLER
from tests.support.console import ConsoleClient

pytestmark = pytest.mark.integration

IDEMPOTENCY_FIELD = re.compile(r'name="idempotency_key" value="([0-9a-f-]{36})"')


@pytest.fixture
def console(api_url: str) -> Iterator[ConsoleClient]:
    with ConsoleClient(api_url, lang="en") as client:
        yield client


def order_form(console: ConsoleClient, tenant: Tenant, **parameters: str) -> dict[str, str]:
    """The web-hosting order form as a browser fills it in, with the key the form was given."""
    page = console.get("/console/catalog/web-hosting/order")
    assert page.status_code == 200, page.text
    key = IDEMPOTENCY_FIELD.search(page.text)
    assert key, "the order form carries an idempotency key"
    values = {f"parameters.{name}": str(value) for name, value in web_params(tenant).items()}
    values["parameters.php_version"] = "8.2"  # the select's one choice, sent as a browser sends it
    values.update({f"parameters.{name}": value for name, value in parameters.items()})
    return {**values, "plan": "small", "justification": "portal", "idempotency_key": key.group(1)}


def requests_of(client: httpx.Client, tenant: Tenant) -> list[dict[str, object]]:
    listed = client.get("/v1/requests", headers=tenant.requester.headers)
    assert listed.status_code == 200
    items: list[dict[str, object]] = listed.json()["items"]
    return items


def test_the_order_form_is_generated_from_the_offering_schema(
    console: ConsoleClient, tenant: Tenant, client: httpx.Client
) -> None:
    console.sign_in(tenant.requester.token)
    catalogue = console.get("/console/catalog")
    assert catalogue.status_code == 200
    assert "Web hosting" in catalogue.text and "80,000 KHR" in catalogue.text  # the plan's price per month

    page = console.get("/console/catalog/web-hosting/order").text
    domain = re.search(r'<input id="field-parameters.domain"[^>]*>', page, re.DOTALL)
    assert domain and " required" in domain.group(0) and 'maxlength="253"' in domain.group(0)
    assert 'pattern="([a-z0-9]([a-z0-9\\-]{0,61}[a-z0-9])?\\.)+[a-z]{2,}"' in domain.group(0)
    assert '<label for="field-parameters.domain">Domain' in page
    email = re.search(r'<input id="field-parameters.admin_email"[^>]*>', page, re.DOTALL)
    assert email and 'type="email"' in email.group(0)
    assert '<select id="field-parameters.php_version"' in page  # an enum is a choice
    assert '<textarea id="field-parameters.aliases"' in page  # a list of names, one per line
    assert "Who receives certificate and backup notices." in page  # the schema's description as a hint
    for plan in ("small", "medium", "large"):
        assert f'id="plan-{plan}"' in page

    # Every offering's form renders, whatever its schema holds (a list of devices is JSON).
    for offering in client.get("/v1/catalog", headers=tenant.requester.headers).json():
        form = console.get(f"/console/catalog/{offering['id']}/order")
        assert form.status_code == 200, offering["id"]
    colocation = console.get("/console/catalog/colocation/order").text
    assert '<textarea id="field-parameters.devices"' in colocation and "Written as JSON." in colocation
    assert console.get("/console/catalog/no-such-offering/order").status_code == 404


def test_a_bad_domain_is_shown_next_to_its_field_with_the_values_kept(
    console: ConsoleClient, tenant: Tenant, client: httpx.Client
) -> None:
    console.sign_in(tenant.requester.token)
    form = order_form(console, tenant, domain="not a domain", name="keep-me")
    refused = console.submit("/console/catalog/web-hosting/order", form, page="/console/catalog")
    assert refused.status_code == 422
    field = re.search(r'<input id="field-parameters.domain"[^>]*>\s*<p class="field-error"[^>]*>', refused.text)
    assert field, "the error sits right after the domain input"
    assert 'aria-invalid="true"' in field.group(0) and 'role="alert"' in field.group(0)
    assert 'value="keep-me"' in refused.text and 'value="not a domain"' in refused.text
    assert requests_of(client, tenant) == []

    alias = order_form(console, tenant, aliases=f"www.{tenant.dns_suffix}\nBAD NAME")
    refused = console.submit("/console/catalog/web-hosting/order", alias, page="/console/catalog")
    assert refused.status_code == 422
    assert 'id="error-parameters.aliases"' in refused.text  # `parameters.aliases.1` is the aliases field's
    assert "BAD NAME" in refused.text

    outside = order_form(console, tenant, domain="portal.someone-else.gov.example")
    refused = console.submit("/console/catalog/web-hosting/order", outside, page="/console/catalog")
    assert refused.status_code in (403, 422)
    assert 'id="error-parameters.domain"' in refused.text  # not the ministry's name: said at the field


def test_an_order_goes_to_its_request_page_and_a_double_submit_orders_once(
    console: ConsoleClient, tenant: Tenant, client: httpx.Client
) -> None:
    console.sign_in(tenant.requester.token)
    form = order_form(console, tenant, aliases=f"www.{tenant.dns_suffix}\n\n")
    first = console.submit("/console/catalog/web-hosting/order", form, page="/console/catalog")
    assert first.status_code == 303, first.text
    again = console.submit("/console/catalog/web-hosting/order", form, page="/console/catalog")
    assert again.status_code == 303
    assert again.headers["location"] == first.headers["location"]
    ordered = requests_of(client, tenant)
    assert len(ordered) == 1
    assert first.headers["location"] == f"/console/requests/{ordered[0]['id']}"
    assert ordered[0]["parameters"] == {
        **web_params(tenant),
        "aliases": [f"www.{tenant.dns_suffix}"],
        "php_version": "8.2",
    }

    page = console.get(first.headers["location"])
    assert page.status_code == 200
    assert "Approval progress" in page.text and "Cancel the request" in page.text
    cancelled = console.submit(f"{first.headers['location']}/cancel", {"reason": "wrong plan"}, page="/console/")
    assert cancelled.status_code == 303
    assert requests_of(client, tenant)[0]["status"] == "cancelled"


def test_votes_show_who_when_and_the_reference(
    console: ConsoleClient, tenant: Tenant, platform: Platform, client: httpx.Client
) -> None:
    approved = order_and_approve(client, tenant, platform)
    console.sign_in(tenant.approver.token)
    page = console.get(f"/console/requests/{approved['id']}").text
    assert tenant.approver.username in page and platform.operator.username in page
    assert "MEMO-TEST" in page
    assert f'href="/console/services/{approved["service_id"]}"' in page
    assert f'href="/console/operations/{approved["operation_id"]}"' in page
    assert "Cancel the request" not in page
    waiting = client.post(
        "/v1/requests",
        json=order_body(tenant, parameters={**web_params(tenant), "name": "second"}),
        headers=tenant.requester.headers,
    ).json()
    assert f'href="/console/approvals/{waiting["id"]}"' in console.get(f"/console/requests/{waiting['id']}").text
    with ConsoleClient(str(client.base_url)) as requester:
        requester.sign_in(tenant.requester.token)
        assert "/console/approvals/" not in requester.get(f"/console/requests/{waiting['id']}").text
    listed = console.get("/console/requests?status=approved").text
    assert f'href="/console/requests/{approved["id"]}"' in listed


def add_restore_point(service_id: str, tenant: Tenant) -> str:
    """A restore point as a backup records it (the no-op backup adapters take none); its id."""
    with session_scope() as session:
        point = RestorePoint(
            service_id=uuid.UUID(service_id),
            ministry_id=tenant.ministry_id,
            host="web",
            snapshot_id=uuid.uuid4().hex * 2,
            taken_at=utcnow() - timedelta(hours=2),
            size_bytes=4096,
            checksum="sha256:" + "0" * 64,
        )
        session.add(point)
        session.commit()
        return str(point.id)


def test_credentials_are_shown_once_and_day2_actions_start_operations(
    console: ConsoleClient, tenant: Tenant, platform: Platform, client: httpx.Client, work: Callable[[], None]
) -> None:
    approved = order_and_approve(client, tenant, platform)
    work()
    service_id = approved["service_id"]
    console.sign_in(tenant.requester.token)
    page = console.get(f"/console/services/{service_id}")
    assert page.status_code == 200
    assert "Show the credentials" in page.text and "Back up now" in page.text
    assert f'href="/console/operations/{approved["operation_id"]}"' in page.text

    shown = console.submit(f"/console/services/{service_id}/credentials", {}, page="/console/")
    assert shown.status_code == 200
    assert "shown this once" in shown.text and shown.headers["cache-control"] == "no-store"
    second = console.submit(f"/console/services/{service_id}/credentials", {}, page="/console/")
    assert second.status_code == 409
    assert "they are not shown twice" in second.text and 'role="alert"' in second.text
    assert "Show the credentials" not in console.get(f"/console/services/{service_id}").text

    backup = console.submit(f"/console/services/{service_id}/actions/backup", {}, page="/console/")
    assert backup.status_code == 303
    operation_id = backup.headers["location"].rsplit("/", 1)[1]
    operation = client.get(f"/v1/operations/{operation_id}", headers=tenant.requester.headers).json()
    assert operation["kind"] == "backup" and operation["service_id"] == service_id
    busy = console.submit(f"/console/services/{service_id}/actions/restart", {}, page="/console/")
    assert busy.status_code == 409 and "in progress" in busy.text  # the service's page, saying why
    work()

    unconfirmed = console.submit(f"/console/services/{service_id}/decommission", {"confirm": "no"}, page="/console/")
    assert unconfirmed.status_code == 422 and 'aria-invalid="true"' in unconfirmed.text
    resized = console.submit(f"/console/services/{service_id}/resize", {"plan": "medium"}, page="/console/")
    assert resized.status_code == 303 and resized.headers["location"].startswith("/console/requests/")

    point = add_restore_point(service_id, tenant)
    page = console.get(f"/console/services/{service_id}")
    assert f'<option value="{point}">' in page.text and "Run a DR drill" in page.text
    unticked = console.submit(
        f"/console/services/{service_id}/actions/restore", {"restore_point": point}, page="/console/"
    )
    assert unticked.status_code == 422 and "Tick the box" in unticked.text
    drill = console.submit(f"/console/services/{service_id}/actions/drill", {"restore_point": point}, page="/console/")
    assert drill.status_code == 303, drill.text
    drilled = client.get(
        f"/v1/operations/{drill.headers['location'].rsplit('/', 1)[1]}", headers=tenant.requester.headers
    ).json()
    assert drilled["kind"] == "drill"


def test_the_quota_page_shows_use_against_limits(console: ConsoleClient, tenant: Tenant, client: httpx.Client) -> None:
    assert client.post("/v1/requests", json=order_body(tenant), headers=tenant.requester.headers).status_code == 201
    console.sign_in(tenant.requester.token)
    page = console.get("/console/quota").text
    assert re.search(r'<meter min="0" max="64"[^>]*value="1"', page)  # one vCPU of 64 held by the order
    assert "Ministry " + tenant.code in page


def test_another_ministrys_pages_and_actions_are_not_found(
    console: ConsoleClient,
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    client: httpx.Client,
    work: Callable[[], None],
) -> None:
    approved = order_and_approve(client, tenant, platform)
    work()
    service_id, operation_id = approved["service_id"], approved["operation_id"]
    console.sign_in(other_tenant.requester.token)
    for page in (
        f"/console/requests/{approved['id']}",
        f"/console/services/{service_id}",
        f"/console/services/{service_id}/decommission",
        f"/console/operations/{operation_id}",
        f"/console/operations/{operation_id}/stream",
        f"/console/requests/{uuid.uuid4()}",
    ):
        assert console.get(page).status_code == 404, page
    for action in (
        f"/console/requests/{approved['id']}/cancel",
        f"/console/services/{service_id}/credentials",
        f"/console/services/{service_id}/actions/backup",
        f"/console/services/{service_id}/resize",
        f"/console/services/{service_id}/dr/failover",
    ):
        assert console.submit(action, {"plan": "medium"}, page="/console/").status_code == 404, action
    confirmed = console.submit(f"/console/services/{service_id}/decommission", {"confirm": "portal"}, page="/console/")
    assert confirmed.status_code == 404
    assert client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()["status"] == "active"
    assert f"/console/services/{service_id}" not in console.get("/console/services").text


def sse(console: ConsoleClient, url: str, headers: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(id, event name, data) of each message of a console stream, read to its end."""
    cookie = {"Cookie": f"tonle_console={console.cookies['tonle_console']}", **(headers or {})}
    messages: list[tuple[str, str, str]] = []
    fields: dict[str, str] = {}
    with console.http.stream("GET", url, headers=cookie) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if not line:
                if "data" in fields:
                    messages.append((fields.get("id", ""), fields.get("event", "message"), fields["data"]))
                fields = {}
            elif not line.startswith(":") and ":" in line:
                name, value = line.split(":", 1)
                fields[name] = value.strip()
    return messages


def test_the_live_log_streams_by_cookie_and_resumes_after_the_last_event(
    console: ConsoleClient, tenant: Tenant, platform: Platform, client: httpx.Client, work: Callable[[], None]
) -> None:
    approved = order_and_approve(client, tenant, platform)
    operation_id = approved["operation_id"]
    console.sign_in(tenant.requester.token)
    waiting = console.get(f"/console/operations/{operation_id}").text
    assert f'data-stream="/console/operations/{operation_id}/stream?after=' in waiting
    assert '<script src="/console/static/live.js" defer></script>' in waiting
    work()

    messages = sse(console, f"/console/operations/{operation_id}/stream")
    assert messages[-1][1] == "end" and json.loads(messages[-1][2]) == {"status": "succeeded"}
    events = [json.loads(data) for _, name, data in messages if name == "message"]
    assert events[0]["type"] == "operation.queued" and events[-1]["type"] == "operation.succeeded"
    assert [int(i) for i, name, _ in messages if name == "message"] == [e["id"] for e in events]

    middle = events[len(events) // 2]["id"]
    resumed = sse(console, f"/console/operations/{operation_id}/stream", {"Last-Event-ID": str(middle)})
    assert [int(i) for i, name, _ in resumed if name == "message"] == [e["id"] for e in events if e["id"] > middle]
    after = sse(console, f"/console/operations/{operation_id}/stream?after={middle}")
    assert [i for i, name, _ in after if name == "message"] == [i for i, name, _ in resumed if name == "message"]

    finished = console.get(f"/console/operations/{operation_id}").text
    assert "data-stream" not in finished and "operation.succeeded" not in finished  # messages, not types
    assert finished.count('<li class="event') == len(events)

    anonymous = client.get(f"/console/operations/{operation_id}/stream")
    assert anonymous.status_code == 303  # no session, no stream


def test_staff_pages_have_no_inline_script_or_style(
    api_url: str, tenant: Tenant, platform: Platform, client: httpx.Client
) -> None:
    approved = order_and_approve(client, tenant, platform)
    for lang in ("en", "km"):
        with ConsoleClient(api_url, lang=lang) as console:
            console.sign_in(tenant.requester.token)
            for page in (
                "/console/catalog",
                "/console/catalog/web-hosting/order",
                "/console/requests",
                f"/console/requests/{approved['id']}",
                "/console/services",
                f"/console/services/{approved['service_id']}",
                f"/console/services/{approved['service_id']}/decommission",
                "/console/quota",
                f"/console/operations/{approved['operation_id']}",
            ):
                response = console.get(page)
                assert response.status_code == 200, (page, response.text[:500])
                assert not INLINE_SCRIPT.search(response.text), page
                assert not INLINE_STYLE_OR_HANDLER.search(response.text), page
                assert f'<html lang="{lang}">' in response.text


def test_the_live_log_ends_when_the_session_is_signed_out(
    console: ConsoleClient, tenant: Tenant, platform: Platform, client: httpx.Client
) -> None:
    approved = order_and_approve(client, tenant, platform)  # its operation stays queued: nobody works
    console.sign_in(tenant.requester.token)
    cookie = {"Cookie": f"tonle_console={console.cookies['tonle_console']}"}
    names: list[str] = []
    with console.http.stream("GET", f"/console/operations/{approved['operation_id']}/stream", headers=cookie) as stream:
        for line in stream.iter_lines():
            if line.startswith("id:") and not names:
                names.append("first event")
                assert console.submit("/console/logout", {}, page="/console/").status_code == 303
            elif line.startswith("event:"):
                names.append(line.split(":", 1)[1].strip())
    assert names == ["first event", "unauthorized"]
