"""Who am I, users (admins) and API tokens."""

import uuid

from fastapi import APIRouter
from fastapi.security import HTTPAuthorizationCredentials
from sqlmodel import Session

from orchestrator.auth import service as auth
from orchestrator.auth.models import ApiTokenCreate, ApiTokenIssued, ApiTokenPublic, UserCreate, UserPublic
from portal_api.deps import ActorDep, AdminDep, BearerDep, SessionDep, UowDep

router = APIRouter(prefix="/v1", tags=["users and tokens"])


@router.get("/me", summary="The caller's own account")
def me(session: SessionDep, actor: ActorDep) -> UserPublic:
    assert actor.user_id is not None
    return UserPublic.model_validate(auth.get_user(session=session, user_id=actor.user_id))


@router.get("/users", summary="List users (admins)")
def list_users(session: SessionDep, actor: AdminDep, ministry_id: uuid.UUID | None = None) -> list[UserPublic]:
    return [UserPublic.model_validate(u) for u in auth.list_users(session=session, ministry_id=ministry_id)]


@router.post("/users", status_code=201, summary="Create a user (admins)")
def create_user(data: UserCreate, uow: UowDep, actor: AdminDep) -> UserPublic:
    user = auth.create_user(session=uow.session, actor=actor, data=data)
    uow.commit()
    return UserPublic.model_validate(user)


@router.post(
    "/users/{user_id}/deactivate",
    summary="Deactivate a user (admins): they can no longer sign in, and every token of theirs is revoked",
)
def deactivate_user(user_id: uuid.UUID, uow: UowDep, actor: AdminDep) -> UserPublic:
    user = auth.deactivate_user(session=uow.session, actor=actor, user_id=user_id)
    uow.commit()
    return UserPublic.model_validate(user)


@router.post(
    "/users/{user_id}/tokens",
    status_code=201,
    summary="Issue a token for a user (admins)",
    description="For another user the token stands on its own; for yourself it is tied to the token you call with.",
)
def issue_token_for(
    user_id: uuid.UUID, data: ApiTokenCreate, uow: UowDep, actor: AdminDep, credentials: BearerDep
) -> ApiTokenIssued:
    issued = auth.issue_token(
        session=uow.session,
        actor=actor,
        user_id=user_id,
        data=data,
        issued_with=_calling_token(uow.session, credentials),
    )
    uow.commit()
    return issued


@router.get("/tokens", summary="The caller's tokens (never the secrets)")
def list_tokens(session: SessionDep, actor: ActorDep) -> list[ApiTokenPublic]:
    assert actor.user_id is not None
    return [ApiTokenPublic.model_validate(t) for t in auth.list_tokens(session=session, user_id=actor.user_id)]


@router.post(
    "/tokens",
    status_code=201,
    summary="Issue yourself a new token; the secret is shown once",
    description="The new token expires no later than the token you call with, and stops working when that one is "
    "revoked or expires. Without `expires_in_days` it lives the platform default (`TONLE_TOKEN_DEFAULT_DAYS`).",
)
def issue_token(data: ApiTokenCreate, uow: UowDep, actor: ActorDep, credentials: BearerDep) -> ApiTokenIssued:
    assert actor.user_id is not None
    issued = auth.issue_token(
        session=uow.session,
        actor=actor,
        user_id=actor.user_id,
        data=data,
        issued_with=_calling_token(uow.session, credentials),
    )
    uow.commit()
    return issued


@router.delete("/tokens/{token_id}", summary="Revoke one of your tokens")
def revoke_token(token_id: uuid.UUID, uow: UowDep, actor: ActorDep) -> ApiTokenPublic:
    record = auth.revoke_token(session=uow.session, actor=actor, token_id=token_id)
    uow.commit()
    return ApiTokenPublic.model_validate(record)


def _calling_token(session: Session, credentials: HTTPAuthorizationCredentials | None) -> uuid.UUID | None:
    found = auth.authenticate_token(session=session, token=credentials.credentials) if credentials else None
    return found[1].id if found else None
