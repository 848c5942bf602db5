"""Request-scoped dependencies: the database session and the authenticated caller."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from orchestrator.auth import service as auth
from orchestrator.auth.models import Actor, Role
from orchestrator.config import Settings, get_settings
from orchestrator.database.core import session_scope
from orchestrator.errors import PermissionDenied


def get_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer tnl_...`")


def current_actor(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "send an API token as `Authorization: Bearer <token>`", headers={"WWW-Authenticate": "Bearer"}
        )
    user = auth.authenticate(session=session, token=credentials.credentials)
    if user is None:
        raise HTTPException(401, "the token is unknown, expired or revoked", headers={"WWW-Authenticate": "Bearer"})
    return user.as_actor()


ActorDep = Annotated[Actor, Depends(current_actor)]


def require(*roles: Role) -> object:
    """A dependency that lets only these roles through (403 otherwise)."""
    allowed = frozenset(roles)

    def check(actor: ActorDep) -> Actor:
        if actor.role not in allowed:
            names = ", ".join(sorted(allowed))
            raise PermissionDenied(f"this needs one of the roles {names}; you are '{actor.role}'")
        return actor

    return Depends(check)


AdminDep = Annotated[Actor, require(Role.admin)]
PlatformDep = Annotated[Actor, require(Role.admin, Role.operator)]
ApproverDep = Annotated[Actor, require(Role.ministry_approver, Role.operator, Role.admin)]
OrdererDep = Annotated[Actor, require(Role.requester, Role.ministry_approver, Role.automation, Role.admin)]
