"""Signing in and out, and the language switch.

Two ways in: the data centre's single sign-on (routes/oidc.py, when configured) and an API token
pasted once, for sites without an identity provider and for service accounts' owners.
"""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from orchestrator.auth import service as auth
from portal_api.console import i18n
from portal_api.console.csrf import CsrfDep
from portal_api.console.session import (
    PATH,
    OptionalActorDep,
    remember_language,
    safe_next,
    sign_in,
    sign_out,
)
from portal_api.console.templating import render
from portal_api.deps import SettingsDep, UowDep

router = APIRouter(prefix=PATH, include_in_schema=False)


@router.get("/login")
def login_page(request: Request, settings: SettingsDep, actor: OptionalActorDep, next: str | None = None) -> Response:
    if actor is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(
        request,
        "login.html",
        {"next": safe_next(next), "sso": bool(settings.oidc_issuer), "error": request.query_params.get("error")},
    )


@router.post("/login")
def login_with_token(
    request: Request,
    uow: UowDep,
    settings: SettingsDep,
    _: CsrfDep,
    token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    found = auth.authenticate_token(session=uow.session, token=token.strip()) if token.strip() else None
    if found is None:
        return render(
            request,
            "login.html",
            {"next": safe_next(next), "sso": bool(settings.oidc_issuer), "token_error": True},
            status_code=401,
        )
    user, record = found
    response = RedirectResponse(safe_next(next), status_code=303)
    sign_in(session=uow.session, user=user, response=response, parent_token_id=record.id)
    uow.commit()
    return response


@router.post("/logout")
def logout(request: Request, uow: UowDep, _: CsrfDep) -> Response:
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    sign_out(session=uow.session, request=request, response=response)
    uow.commit()
    return response


@router.post("/language")
def choose_language(
    request: Request,
    uow: UowDep,
    actor: OptionalActorDep,
    _: CsrfDep,
    lang: Annotated[str, Form(max_length=8)],
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    chosen = lang if i18n.is_language(lang) else i18n.DEFAULT_LANGUAGE
    response = RedirectResponse(safe_next(next), status_code=303)
    remember_language(response, chosen)
    if actor is not None and actor.user_id is not None:
        user = auth.get_user(session=uow.session, user_id=actor.user_id)
        user.preferred_language = chosen
        uow.commit()
    return response
