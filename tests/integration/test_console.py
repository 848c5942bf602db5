"""The console's foundation on a real API process: sign-in, sessions, CSRF, headers, languages."""

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Tenant
from tests.support.console import ConsoleClient

pytestmark = pytest.mark.integration

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE_OR_HANDLER = re.compile(r"""\s(style|on[a-z]+)\s*=\s*["']""", re.IGNORECASE)


@pytest.fixture
def console(api_url: str) -> Iterator[ConsoleClient]:
    with ConsoleClient(api_url) as client:
        yield client


def test_pages_need_a_session_and_come_back_after_sign_in(console: ConsoleClient, tenant: Tenant) -> None:
    response = console.get("/console/?from=mail")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/%3Ffrom%3Dmail"

    signed_in = console.sign_in(tenant.requester.token, next_path="/console/?from=mail")
    assert signed_in.headers["location"] == "/console/?from=mail"
    cookie = next(c for c in signed_in.headers.get_list("set-cookie") if c.startswith("tonle_console="))
    for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/console"):
        assert flag.lower() in cookie.lower(), cookie

    home = console.get("/console/")
    assert home.status_code == 200
    assert tenant.requester.username in home.text


def test_a_wrong_token_is_refused_in_place(console: ConsoleClient) -> None:
    response = console.submit("/console/login", {"token": "tnl_not-a-token", "next": "/console/"})
    assert response.status_code == 401
    assert 'aria-invalid="true"' in response.text
    assert "tonle_console" not in console.cookies


def test_forms_without_the_csrf_token_are_refused(console: ConsoleClient, tenant: Tenant) -> None:
    console.sign_in(tenant.requester.token)
    forged = console.post("/console/logout", data={})
    assert forged.status_code == 403
    wrong = console.post("/console/logout", data={"csrf_token": "0" * 64})
    assert wrong.status_code == 403
    assert console.get("/console/").status_code == 200  # still signed in


def test_signing_out_revokes_the_session_everywhere(console: ConsoleClient, tenant: Tenant, api_url: str) -> None:
    console.sign_in(tenant.requester.token)
    session_token = console.cookies["tonle_console"]
    assert httpx.get(f"{api_url}/v1/services", headers={"Authorization": f"Bearer {session_token}"}).status_code == 200

    out = console.submit("/console/logout", {}, page="/console/")
    assert out.status_code == 303
    assert httpx.get(f"{api_url}/v1/services", headers={"Authorization": f"Bearer {session_token}"}).status_code == 401
    # Replaying the old cookie gets the login page, not the console.
    replay = httpx.get(f"{api_url}/console/", headers={"Cookie": f"tonle_console={session_token}"})
    assert replay.status_code == 303
    # The API token signed in with still works: the session was its child, not the token itself.
    assert httpx.get(f"{api_url}/v1/services", headers=tenant.requester.headers).status_code == 200


def test_the_session_ends_when_the_token_it_came_from_is_revoked(
    console: ConsoleClient, api_url: str, tenant: Tenant
) -> None:
    console.sign_in(tenant.approver.token)
    assert console.get("/console/").status_code == 200
    tokens = httpx.get(f"{api_url}/v1/tokens", headers=tenant.approver.headers).json()
    parent = next(t for t in tokens if t["name"] == "test")
    revoked = httpx.delete(f"{api_url}/v1/tokens/{parent['id']}", headers=tenant.approver.headers)
    assert revoked.status_code == 200, revoked.text
    assert console.get("/console/").status_code == 303


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/console\\@evil", "/v1/services"])
def test_sign_in_never_redirects_off_the_console(console: ConsoleClient, tenant: Tenant, target: str) -> None:
    response = console.sign_in(tenant.requester.token, next_path=target)
    assert response.headers["location"] == "/console/"


def test_khmer_first_then_english_by_choice(console: ConsoleClient, tenant: Tenant) -> None:
    page = console.get("/console/login")
    assert '<html lang="km">' in page.text
    assert "ចូលប្រើ" in page.text
    assert page.headers["content-language"] == "km"

    english = console.get("/console/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in english.text and "Sign in" in english.text

    by_query = console.get("/console/login?lang=en")
    assert '<html lang="en">' in by_query.text
    assert console.cookies.get("tonle_lang") == "en"  # remembered before sign-in
    assert '<html lang="en">' in console.get("/console/login").text


def test_the_language_is_remembered_per_user(api_url: str, tenant: Tenant) -> None:
    with ConsoleClient(api_url) as first:
        first.sign_in(tenant.requester.token)
        assert '<html lang="km">' in first.get("/console/").text
        chosen = first.submit("/console/language", {"lang": "en", "next": "/console/"}, page="/console/")
        assert chosen.status_code == 303
        assert '<html lang="en">' in first.get("/console/").text
    with ConsoleClient(api_url) as elsewhere:  # another browser: no language cookie
        elsewhere.sign_in(tenant.requester.token)
        assert '<html lang="en">' in elsewhere.get("/console/").text


def test_khmer_pages_write_numbers_in_khmer_digits(console: ConsoleClient, tenant: Tenant) -> None:
    console.sign_in(tenant.requester.token)
    home = console.get("/console/?lang=km").text
    figures = re.findall(r'<p class="figure">([^<]*)</p>', home)
    assert figures and all(re.fullmatch(r"[០-៩,]+", f) for f in figures), figures


def test_strict_security_headers_and_no_inline_script(console: ConsoleClient, tenant: Tenant) -> None:
    for response in (
        console.get("/console/login"),
        (console.sign_in(tenant.requester.token), console.get("/console/"))[1],
    ):
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        assert not INLINE_SCRIPT.search(response.text)
        assert not INLINE_STYLE_OR_HANDLER.search(response.text)
    api = console.get("/v1/catalog")
    assert "content-security-policy" not in api.headers  # the API's answers are not pages


def test_the_khmer_font_and_htmx_are_served_from_the_console(console: ConsoleClient) -> None:
    font = console.get("/console/static/vendor/noto-sans-khmer-khmer-400-normal.woff2")
    assert font.status_code == 200 and font.content[:4] == b"wOF2"
    htmx = console.get("/console/static/vendor/htmx.min.js")
    assert htmx.status_code == 200 and b"htmx" in htmx.content[:2000]
    css = console.get("/console/static/console.css").text
    assert "noto-sans-khmer-khmer-400-normal.woff2" in css


def test_unstorable_form_input_is_refused_naming_the_field(console: ConsoleClient) -> None:
    response = console.submit("/console/login", {"token": "tnl_\x00x", "next": "/console/"})
    assert response.status_code == 422
    assert "token" in response.text


def test_console_errors_are_pages_and_api_errors_stay_problem_json(console: ConsoleClient, tenant: Tenant) -> None:
    console.sign_in(tenant.requester.token)
    missing = console.get("/console/no-such-page")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    api = console.get("/v1/no-such-thing")
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"
