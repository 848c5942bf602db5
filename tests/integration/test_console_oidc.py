"""Console single sign-on against a real OpenID provider (oidc-provider, tests/support/oidc_provider):
the whole authorization code flow through the provider's own login and consent pages."""

import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from sqlmodel import select

from orchestrator.actors import Role
from orchestrator.audit.models import AuditEntry
from orchestrator.auth.models import User
from orchestrator.auth.oidc import SsoRefused, identity_from_claims
from orchestrator.database.core import session_scope
from tests.conftest import Database, Tenant, free_port, serving_api
from tests.support.console import ConsoleClient
from tests.support.oidc import SsoApi, serving_sso_api

pytestmark = pytest.mark.integration

FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"', re.IGNORECASE)
ABORT = re.compile(r'<a href="([^"]+/abort)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', re.IGNORECASE)


@pytest.fixture(scope="module")
def sso(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SsoApi]:
    with serving_sso_api(database, tmp_path_factory.mktemp("console-oidc")) as running:
        yield running


@pytest.fixture
def console(sso: SsoApi) -> Iterator[ConsoleClient]:
    with ConsoleClient(sso.url, lang="en") as client:
        yield client


def person(sso: SsoApi, **claims: Any) -> str:
    """A new account at the provider; its id (the `sub`)."""
    account_id = f"person-{uuid.uuid4().hex[:10]}"
    sso.provider.set_account(account_id, {"preferred_username": account_id, "name": "Sok Dara", **claims})
    return account_id


def through_provider(
    sso: SsoApi, console: ConsoleClient, account_id: str, *, next_path: str = "/console/", cancel: bool = False
) -> str:
    """Start SSO at the console, sign in and consent at the provider as a person would; the
    console callback URL the provider sends the browser back to."""
    start = console.get(f"/console/login/oidc?next={quote(next_path, safe='')}")
    assert start.status_code == 303, start.text
    location = start.headers["location"]
    assert location.startswith(sso.provider.issuer + "/auth?"), location
    with httpx.Client(timeout=30.0) as browser:
        for _ in range(10):
            if location.startswith(sso.url):
                return location
            page = browser.get(location)
            if page.is_redirect:
                location = str(page.next_request.url) if page.next_request else page.headers["location"]
                continue
            assert page.status_code == 200, page.text
            if cancel:
                abort = ABORT.search(page.text)
                assert abort, page.text
                location = abort.group(1)
                continue
            action = FORM.search(page.text)
            assert action, page.text
            fields = dict(HIDDEN.findall(page.text))
            if fields.get("prompt") == "login":
                fields["login"] = account_id
            answer = browser.post(action.group(1), data=fields)
            assert answer.is_redirect, answer.text
            location = answer.headers["location"]
            if location.startswith("/"):
                location = sso.provider.issuer + location
    raise AssertionError("the provider never sent the browser back to the console")


def sign_in(sso: SsoApi, console: ConsoleClient, account_id: str, *, next_path: str = "/console/") -> httpx.Response:
    callback = through_provider(sso, console, account_id, next_path=next_path)
    return console.get(callback.removeprefix(sso.url))


def user_of(sso: SsoApi, account_id: str) -> User | None:
    with session_scope() as session:
        return session.exec(select(User).where(User.oidc_subject == f"{sso.provider.issuer}|{account_id}")).first()


def test_the_login_page_offers_single_sign_on(console: ConsoleClient) -> None:
    page = console.get("/console/login?next=/console/services")
    assert page.status_code == 200
    assert 'href="/console/login/oidc?next=/console/services"' in page.text
    assert "Sign in with single sign-on" in page.text


def test_first_sign_in_creates_the_user_with_the_claimed_role_and_ministry(
    sso: SsoApi, console: ConsoleClient, tenant: Tenant
) -> None:
    account = person(sso, tonle_role="requester", tonle_ministry=tenant.code, name="Sok  Dara\u0007")

    done = sign_in(sso, console, account, next_path="/console/?from=sso")

    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/console/?from=sso"
    assert "tonle_console" in console.cookies
    assert "tonle_oidc=" in done.headers.get("set-cookie", "")  # the pending sign-in is forgotten
    user = user_of(sso, account)
    assert user is not None
    assert (user.username, user.full_name, user.role, user.ministry_id) == (
        account,
        "Sok Dara",
        Role.requester,
        tenant.ministry_id,
    )
    home = console.get("/console/")
    assert home.status_code == 200
    assert account in home.text


def test_each_sign_in_brings_role_ministry_and_name_in_line_and_audits_it(
    sso: SsoApi, console: ConsoleClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    account = person(sso, tonle_role="requester", tonle_ministry=tenant.code)
    assert sign_in(sso, console, account).status_code == 303
    first = user_of(sso, account)
    assert first is not None

    sso.provider.set_account(
        account,
        {
            "preferred_username": "renamed",
            "name": "Sok Dara (DG)",
            "tonle_role": "ministry_approver",
            "tonle_ministry": other_tenant.code,
        },
    )
    with ConsoleClient(sso.url) as again:
        assert sign_in(sso, again, account).status_code == 303

    second = user_of(sso, account)
    assert second is not None
    assert second.id == first.id
    assert second.username == account  # a username is stable; the provider's rename does not move it
    assert (second.role, second.ministry_id, second.full_name) == (
        Role.ministry_approver,
        other_tenant.ministry_id,
        "Sok Dara (DG)",
    )
    with session_scope() as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.entity_id == str(first.id))).all()
    actions = sorted(entry.action for entry in entries if entry.actor == "single-sign-on")
    assert actions == ["created", "full_name_changed", "ministry_changed", "ministry_changed", "role_changed"]
    assert {e.ministry_id for e in entries if e.action == "ministry_changed"} == {
        tenant.ministry_id,
        other_tenant.ministry_id,
    }


def test_platform_roles_and_taken_usernames(sso: SsoApi, console: ConsoleClient, tenant: Tenant) -> None:
    # The provider's user claims a local account's name: they get their own account, never that one.
    account = person(sso, tonle_role="operator", preferred_username=tenant.requester.username.upper())
    assert sign_in(sso, console, account).status_code == 303
    user = user_of(sso, account)
    assert user is not None
    assert user.role == Role.operator and user.ministry_id is None
    assert user.username.startswith(tenant.requester.username + "-")
    assert user.id != tenant.requester.user_id


def test_a_deactivated_user_is_refused(sso: SsoApi, console: ConsoleClient, tenant: Tenant) -> None:
    from orchestrator.actors import SYSTEM
    from orchestrator.auth import service as auth

    account = person(sso, tonle_role="requester", tonle_ministry=tenant.code)
    assert sign_in(sso, console, account).status_code == 303
    user = user_of(sso, account)
    assert user is not None
    with session_scope() as session:
        auth.deactivate_user(session=session, actor=SYSTEM, user_id=user.id)
        session.commit()

    with ConsoleClient(sso.url, lang="en") as again:
        refused = sign_in(sso, again, account)
        assert refused.status_code == 403
        assert "deactivated" in refused.text
        assert "tonle_console" not in again.cookies


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"tonle_ministry": "health"}, "did not say which Tonle role you have (claim tonle_role)"),
        ({"tonle_role": "superuser"}, "is not a Tonle role"),
        ({"tonle_role": ["admin"]}, "is not a Tonle role"),
        ({"tonle_role": "automation"}, "automation role cannot sign in through single sign-on"),
        ({"tonle_role": "requester"}, "needs a ministry"),
        ({"tonle_role": "admin", "tonle_ministry": "TENANT"}, "belongs to the data centre, not a ministry"),
        ({"tonle_role": "requester", "tonle_ministry": "no-such-ministry"}, "no ministry with the code"),
        ({"tonle_role": "requester", "tonle_ministry": "../../etc"}, "is not a ministry code"),
    ],
)
def test_claims_tonle_cannot_accept_are_refused_with_a_clear_message(
    sso: SsoApi, console: ConsoleClient, tenant: Tenant, claims: dict[str, Any], expected: str
) -> None:
    claims = {k: tenant.code if v == "TENANT" else v for k, v in claims.items()}
    account = person(sso, **claims)

    refused = sign_in(sso, console, account)

    assert refused.status_code == 403
    assert expected in refused.text
    assert "Traceback" not in refused.text
    assert "tonle_console" not in console.cookies
    assert user_of(sso, account) is None


def test_refusals_are_in_khmer_for_a_khmer_browser(sso: SsoApi) -> None:
    account = person(sso, tonle_role="automation")
    with ConsoleClient(sso.url, lang="km") as khmer:
        refused = sign_in(sso, khmer, account)
    assert refused.status_code == 403
    assert "automation role cannot" not in refused.text
    assert re.search("[\u1780-\u17ff]", refused.text)


@pytest.mark.parametrize("forgery", ["altered", "foreign-key", "wrong-audience", "wrong-nonce", "expired"])
def test_an_id_token_that_does_not_verify_is_refused(
    sso: SsoApi, console: ConsoleClient, tenant: Tenant, forgery: str
) -> None:
    account = person(sso, tonle_role="requester", tonle_ministry=tenant.code, _id_token=forgery)

    refused = sign_in(sso, console, account)

    assert refused.status_code == 400
    assert "ID token could not be verified" in refused.text
    assert "tonle_console" not in console.cookies
    assert user_of(sso, account) is None


def test_a_callback_whose_state_does_not_match_is_refused(sso: SsoApi, console: ConsoleClient, tenant: Tenant) -> None:
    account = person(sso, tonle_role="requester", tonle_ministry=tenant.code)
    callback = urlsplit(through_provider(sso, console, account))
    params = dict(parse_qsl(callback.query))
    forged = urlunsplit(("", "", callback.path, urlencode({**params, "state": "x" + params["state"][1:]}), ""))

    refused = console.get(forged)

    assert refused.status_code == 400
    assert "state does not match" in refused.text
    assert "tonle_console" not in console.cookies
    # The pending sign-in is spent: the genuine callback no longer works either.
    genuine = urlunsplit(("", "", callback.path, callback.query, ""))
    assert console.get(genuine).status_code == 400
    assert user_of(sso, account) is None


def test_a_callback_naming_another_issuer_is_refused(sso: SsoApi, console: ConsoleClient, tenant: Tenant) -> None:
    # RFC 9207: the provider names itself in the callback; a mix-up names another one.
    account = person(sso, tonle_role="requester", tonle_ministry=tenant.code)
    callback = urlsplit(through_provider(sso, console, account))
    params = dict(parse_qsl(callback.query))
    assert params["iss"] == sso.provider.issuer

    refused = console.get(urlunsplit(("", "", callback.path, urlencode({**params, "iss": "https://idp.evil"}), "")))

    assert refused.status_code == 400
    assert "came from another identity provider" in refused.text
    assert user_of(sso, account) is None


def test_cancelling_at_the_provider_signs_nobody_in(sso: SsoApi, console: ConsoleClient, tenant: Tenant) -> None:
    account = person(sso, tonle_role="requester", tonle_ministry=tenant.code)
    callback = through_provider(sso, console, account, cancel=True)
    assert "error=access_denied" in callback

    refused = console.get(callback.removeprefix(sso.url))

    assert refused.status_code == 401
    assert "did not sign you in" in refused.text
    assert "tonle_console" not in console.cookies


def test_a_callback_without_the_browsers_pending_sign_in_is_refused(
    sso: SsoApi, console: ConsoleClient, tenant: Tenant
) -> None:
    # Login CSRF: an attacker's own callback URL pushed into a victim's browser.
    account = person(sso, tonle_role="requester", tonle_ministry=tenant.code)
    callback = through_provider(sso, console, account)
    with ConsoleClient(sso.url, lang="en") as victim:
        refused = victim.get(callback.removeprefix(sso.url))
        assert refused.status_code == 400
        assert "Please start again" in refused.text
        assert "tonle_console" not in victim.cookies


@pytest.mark.parametrize(
    "next_path", ["https://evil.example/", "//evil.example/console/", "/console\\@evil.example", "/\\evil.example"]
)
def test_next_never_leaves_the_console(sso: SsoApi, console: ConsoleClient, tenant: Tenant, next_path: str) -> None:
    account = person(sso, tonle_role="requester", tonle_ministry=tenant.code)
    done = sign_in(sso, console, account, next_path=next_path)
    assert done.status_code == 303
    assert done.headers["location"] == "/console/"


@pytest.mark.parametrize(
    ("preferred_username", "expected"),
    [
        ("Dara.Sok", "dara.sok"),
        ("dara@health.gov.kh", "dara-health.gov.kh"),
        ("<script>alert(1)</script>", "script-alert-1-script"),
        ("ដារ៉ា", None),
        ("-", None),
        ("x" * 500, None),
        (["dara"], None),
        (None, None),
    ],
)
def test_usernames_from_hostile_claims(preferred_username: object, expected: str | None) -> None:
    identity = identity_from_claims(
        issuer="https://idp.example",
        claims={"sub": "abc", "preferred_username": preferred_username, "tonle_role": "operator"},
        role_claim="tonle_role",
        ministry_claim="tonle_ministry",
    )
    assert re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,63}", identity.username)
    if expected is None:
        assert identity.username.startswith("sso-")
    else:
        assert identity.username == expected


@pytest.mark.parametrize("sub", [None, "", 42, "a\nb", "s" * 300])
def test_a_subject_tonle_cannot_keep_is_refused(sub: object) -> None:
    with pytest.raises(SsoRefused, match="subject"):
        identity_from_claims(
            issuer="https://idp.example",
            claims={"sub": sub, "tonle_role": "operator"},
            role_claim="tonle_role",
            ministry_claim="tonle_ministry",
        )


def test_an_identity_provider_that_does_not_answer_gets_a_page_not_a_crash(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> None:
    silent = f"http://127.0.0.1:{free_port()}"
    settings = {"TONLE_OIDC_ISSUER": silent, "TONLE_OIDC_CLIENT_ID": "tonle-console", "TONLE_OIDC_CLIENT_SECRET": "x"}
    with (
        serving_api(database.url, tmp_path_factory.mktemp("silent-idp"), **settings) as api_url,
        ConsoleClient(api_url, lang="en") as console,
    ):
        start = console.get("/console/login/oidc?next=/console/")
        assert start.status_code == 503
        assert "did not answer. Please try again later." in start.text
        assert "Traceback" not in start.text


def test_two_first_sign_ins_of_one_person_at_once_make_one_user(database: Database, tenant: Tenant) -> None:
    """Two browsers' first sign-ins race on the new row: the loser finds the winner's user."""
    from sqlalchemy import text
    from sqlmodel import Session

    from orchestrator.auth.oidc import user_for_claims
    from orchestrator.config import get_settings
    from orchestrator.database.core import get_engine

    claims = {"sub": uuid.uuid4().hex, "tonle_role": "requester", "tonle_ministry": tenant.code}
    issuer = "https://idp.example"
    found: dict[str, User] = {}
    with (
        Session(get_engine(), expire_on_commit=False) as first,
        Session(get_engine(), expire_on_commit=False) as second,
    ):
        second_pid = second.exec(text("SELECT pg_backend_pid()")).one()[0]  # type: ignore[call-overload]
        winner = user_for_claims(session=first, issuer=issuer, claims=claims, settings=get_settings())

        def sign_in_elsewhere() -> None:
            found["user"] = user_for_claims(session=second, issuer=issuer, claims=claims, settings=get_settings())
            second.commit()

        elsewhere = threading.Thread(target=sign_in_elsewhere)
        elsewhere.start()
        # Commit only once the other sign-in waits on the new row's unique index.
        with session_scope() as watcher:
            for _ in range(200):
                waiting = watcher.exec(  # type: ignore[call-overload]
                    text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), params={"pid": second_pid}
                ).one()[0]
                if waiting == "Lock":
                    break
                watcher.rollback()
                time.sleep(0.05)
            else:
                raise AssertionError("the second sign-in never waited on the first one's row")
        first.commit()
        elsewhere.join(timeout=30)

    assert found["user"].id == winner.id
    with session_scope() as session:
        users = session.exec(select(User).where(User.oidc_subject == f"{issuer}|{claims['sub']}")).all()
        created = session.exec(
            select(AuditEntry).where(AuditEntry.entity_id == str(winner.id), AuditEntry.action == "created")
        ).all()
    assert len(users) == 1
    assert len(created) == 1
