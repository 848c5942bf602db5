"""Single sign-on: the console as an OpenID Connect relying party (authorization code + PKCE S256).

The browser leaves for the identity provider carrying nothing but a short-lived signed cookie
(state, nonce, PKCE verifier, where to go next); the callback checks it, exchanges the code
server-to-server, verifies the ID token (signature by the provider's JWKS, issuer, audience,
expiry, nonce), and signs the user in as any console session is: a console-session API token.
Who the user is (role, ministry) comes from orchestrator.auth.oidc.
"""

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from orchestrator import secrets as platform_secrets
from orchestrator.auth.oidc import SsoRefused, user_for_claims
from orchestrator.config import Settings
from portal_api.console import i18n
from portal_api.console.errors import error_page
from portal_api.console.session import PATH, safe_next, sign_in
from portal_api.console.templating import page_language
from portal_api.deps import SettingsDep, UowDep

log = logging.getLogger(__name__)
router = APIRouter(prefix=PATH, include_in_schema=False)

CALLBACK = f"{PATH}/auth/callback"
STATE_COOKIE = "tonle_oidc"
# Long enough to sign in at the provider (a password, a second factor), short enough to be useless later.
STATE_LIFETIME_SECONDS = 600
SCOPES = "openid profile email tonle"
# Asymmetric signatures only: `none` is no signature, and HMAC with the client secret would let
# anyone holding the secret mint ID tokens.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
CLOCK_LEEWAY_SECONDS = 60
PROVIDER_TIMEOUT = httpx.Timeout(10.0)
# The provider's metadata and keys change rarely; a key rotation is caught by refetching on an unknown key.
METADATA_TTL_SECONDS = 300


class SsoFailed(Exception):
    """The sign-in could not be completed; `message` is shown translated, `status` is the page's."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@router.get("/login/oidc")
def start_sign_in(
    request: Request, settings: SettingsDep, next: Annotated[str, Query(max_length=2000)] = ""
) -> Response:
    try:
        provider = _configured(settings)
        metadata = _metadata(provider.issuer)
    except SsoFailed as exc:
        return _failure_page(request, exc)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = generate_token(64)
    url = prepare_grant_uri(
        metadata["authorization_endpoint"],
        client_id=provider.client_id,
        response_type="code",
        redirect_uri=_redirect_uri(request, settings),
        scope=SCOPES,
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
        ui_locales=page_language(request),
    )
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        _seal({"state": state, "nonce": nonce, "verifier": verifier, "next": safe_next(next), "at": int(time.time())}),
        max_age=STATE_LIFETIME_SECONDS,
        path=CALLBACK,
        secure=True,
        httponly=True,
        # Lax: the provider sends the browser back with a top-level GET, which carries it.
        samesite="lax",
    )
    return response


@router.get("/auth/callback")
def finish_sign_in(
    request: Request,
    uow: UowDep,
    settings: SettingsDep,
    code: Annotated[str, Query(max_length=2000)] = "",
    state: Annotated[str, Query(max_length=200)] = "",
    error: Annotated[str, Query(max_length=200)] = "",
    iss: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    try:
        provider = _configured(settings)
        pending = _unseal(request.cookies.get(STATE_COOKIE))
        if error:
            log.info("console SSO: the provider answered %r", error[:100])
            raise SsoFailed("The identity provider did not sign you in. Please try again.", status=401)
        if not state or not hmac.compare_digest(state.encode(), str(pending["state"]).encode()):
            raise SsoFailed("This sign-in could not be verified (its state does not match). Please start again.")
        # RFC 9207: a provider that names itself must be ours (a mix-up attack names another).
        if iss is not None and iss != provider.issuer:
            raise SsoFailed("This sign-in came from another identity provider. Please start again.")
        if not code:
            raise SsoFailed("The identity provider sent no authorisation code. Please start again.")
        claims = _verified_claims(provider, request=request, settings=settings, code=code, pending=pending)
        user = user_for_claims(session=uow.session, issuer=provider.issuer, claims=claims, settings=settings)
    except SsoFailed as exc:
        return _forget_state(_failure_page(request, exc))
    except SsoRefused as exc:
        log.warning("console SSO refused: %s", exc.detail)
        return _forget_state(error_page(request, status=403, detail=_refusal(request, exc)))
    response = RedirectResponse(safe_next(pending.get("next")), status_code=303)
    sign_in(session=uow.session, user=user, response=response)
    uow.commit()
    log.info("console SSO: %s signed in", user.username)
    return _forget_state(response)


@dataclass(frozen=True)
class _Provider:
    issuer: str
    client_id: str
    client_secret: str


def _configured(settings: Settings) -> _Provider:
    if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret):
        raise SsoFailed("Single sign-on is not set up on this console.", status=404)
    return _Provider(
        # Exactly as configured: the ID token's `iss` must be identical (some providers' end in "/").
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret.get_secret_value(),
    )


def _redirect_uri(request: Request, settings: Settings) -> str:
    base = settings.public_url.rstrip("/") if settings.public_url else str(request.base_url).rstrip("/")
    return base + CALLBACK


def _verified_claims(
    provider: _Provider, *, request: Request, settings: Settings, code: str, pending: dict[str, Any]
) -> dict[str, Any]:
    """The ID token's claims, verified, completed by the provider's userinfo."""
    metadata = _metadata(provider.issuer)
    # client_secret_basic (RFC 6749 2.3.1): id and secret are form-encoded before Basic encoding.
    credentials = (quote(provider.client_id, safe=""), quote(provider.client_secret, safe=""))
    with httpx.Client(timeout=PROVIDER_TIMEOUT) as http:
        try:
            answer = http.post(
                metadata["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": _redirect_uri(request, settings),
                    "code_verifier": pending["verifier"],
                },
                auth=credentials,
                headers={"Accept": "application/json"},
            )
            token = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("console SSO: the code exchange failed: %s", exc)
            raise SsoFailed("The identity provider did not answer. Please try again later.", status=502) from exc
        if answer.status_code != 200 or not isinstance(token, dict) or not isinstance(token.get("access_token"), str):
            log.warning("console SSO: the code exchange was refused: %s %.200s", answer.status_code, answer.text)
            raise SsoFailed("The identity provider refused this sign-in. Please start again.", status=401)
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoFailed("The identity provider sent no ID token.", status=502)
        claims = _verify_id_token(provider, metadata, id_token=id_token, nonce=pending["nonce"], token=token)
        userinfo_endpoint = metadata.get("userinfo_endpoint")
        if not isinstance(userinfo_endpoint, str):
            return claims
        try:
            answer = http.get(userinfo_endpoint, headers={"Authorization": f"Bearer {token['access_token']}"})
            answer.raise_for_status()
            userinfo = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("console SSO: userinfo failed: %s", exc)
            raise SsoFailed("The identity provider did not answer. Please try again later.", status=502) from exc
    # OIDC core 5.3.2: userinfo about anyone but the ID token's subject is not used.
    if not isinstance(userinfo, dict) or userinfo.get("sub") != claims["sub"]:
        raise SsoFailed("The identity provider's answers do not agree. Please start again.", status=502)
    # The signed ID token wins where both speak.
    return {**userinfo, **claims}


def _verify_id_token(
    provider: _Provider, metadata: dict[str, Any], *, id_token: str, nonce: str, token: dict[str, Any]
) -> dict[str, Any]:
    offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [alg for alg in SIGNING_ALGORITHMS if alg in offered]
    try:
        try:
            decoded = jwt.decode(id_token, _key_set(provider.issuer, metadata), algorithms=algorithms)
        except JoseError:
            # Perhaps the provider rotated its keys since we cached them: one fresh look.
            decoded = jwt.decode(id_token, _key_set(provider.issuer, metadata, fresh=True), algorithms=algorithms)
        checked = CodeIDToken(
            decoded.claims,
            decoded.header,
            options={
                "iss": {"essential": True, "value": provider.issuer},
                "aud": {"essential": True, "value": provider.client_id},
                "exp": {"essential": True},
                "nonce": {"essential": True, "value": nonce},
            },
            params={"nonce": nonce, "client_id": provider.client_id, "access_token": token.get("access_token")},
        )
        checked.validate(leeway=CLOCK_LEEWAY_SECONDS)
    except (JoseError, ValueError) as exc:
        log.warning("console SSO: ID token refused: %s", exc)
        raise SsoFailed("The identity provider's ID token could not be verified. Please start again.") from exc
    return dict(checked)


# issuer -> (fetched at, metadata, JWKS)
_cache: dict[str, tuple[float, dict[str, Any], dict[str, Any] | None]] = {}
_cache_lock = threading.Lock()


def _metadata(issuer: str) -> dict[str, Any]:
    with _cache_lock:
        cached = _cache.get(issuer)
    if cached and time.monotonic() - cached[0] < METADATA_TTL_SECONDS:
        return cached[1]
    try:
        answer = httpx.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration", timeout=PROVIDER_TIMEOUT)
        answer.raise_for_status()
        metadata = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("console SSO: discovery at %s failed: %s", issuer, exc)
        raise SsoFailed("The identity provider did not answer. Please try again later.", status=503) from exc
    # OIDC discovery 4.3: the document must name the issuer it was fetched for.
    if not isinstance(metadata, dict) or metadata.get("issuer") != issuer:
        raise SsoFailed("The identity provider is misconfigured.", status=502)
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(metadata.get(endpoint), str):
            raise SsoFailed("The identity provider is misconfigured.", status=502)
    with _cache_lock:
        _cache[issuer] = (time.monotonic(), metadata, None)
    return metadata


def _key_set(issuer: str, metadata: dict[str, Any], *, fresh: bool = False) -> KeySet:
    with _cache_lock:
        cached = _cache.get(issuer)
    if cached and cached[2] is not None and not fresh:
        return KeySet.import_key_set(cached[2])  # type: ignore[arg-type]
    try:
        answer = httpx.get(metadata["jwks_uri"], timeout=PROVIDER_TIMEOUT)
        answer.raise_for_status()
        jwks = answer.json()
        keys = KeySet.import_key_set(jwks)
    except (httpx.HTTPError, ValueError, JoseError) as exc:
        log.warning("console SSO: the provider's keys could not be read: %s", exc)
        raise SsoFailed("The identity provider did not answer. Please try again later.", status=503) from exc
    with _cache_lock:
        _cache[issuer] = (cached[0] if cached else time.monotonic(), metadata, jwks)
    return keys


def _seal(payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{body}.{_signature(body)}"


def _signature(body: str) -> str:
    return hmac.new(platform_secrets.derived_key("console-oidc-state"), body.encode(), hashlib.sha256).hexdigest()


def _unseal(value: str | None) -> dict[str, Any]:
    """The pending sign-in this browser started, if the cookie is ours, intact and recent."""
    expired = SsoFailed("This sign-in took too long or was started elsewhere. Please start again.")
    if not value or len(value) > 4000 or "." not in value:
        raise expired
    body, signature = value.rsplit(".", 1)
    if not hmac.compare_digest(signature.encode(), _signature(body).encode()):
        raise expired
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if not isinstance(payload, dict) or time.time() - payload.get("at", 0) > STATE_LIFETIME_SECONDS:
        raise expired
    return payload


def _forget_state(response: Response) -> Response:
    # One use: a replayed callback finds no pending sign-in.
    response.delete_cookie(STATE_COOKIE, path=CALLBACK, secure=True, httponly=True, samesite="lax")
    return response


def _refusal(request: Request, exc: SsoRefused) -> str:
    lang = page_language(request)
    # A role is named as the console names it elsewhere ("ministry approver", in the page's language).
    params = {k: i18n.gettext(lang, v.replace("_", " ")) if k == "role" else v for k, v in exc.params.items()}
    return i18n.gettext(lang, exc.message).format(**params)


def _failure_page(request: Request, exc: SsoFailed) -> Response:
    return error_page(request, status=exc.status, detail=i18n.gettext(page_language(request), exc.message))
