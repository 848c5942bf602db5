"""Request-scoped dependencies: the unit of work, its session and the authenticated caller.

A route that changes anything takes `uow: UowDep`, calls the service functions with
`uow.session` and ends with `uow.commit()`; whatever it leaves uncommitted is rolled back.
`SessionDep` is the same request's session, for routes that only read.
"""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from orchestrator import policy
from orchestrator.actors import Actor
from orchestrator.auth import service as auth
from orchestrator.config import Settings, get_settings
from orchestrator.database.unit_of_work import UnitOfWork, unit_of_work
from orchestrator.dcim import connection as dcim_connection
from orchestrator.policy import Action
from orchestrator.ports import Dcim


def get_unit_of_work() -> Iterator[UnitOfWork]:
    with unit_of_work() as uow:
        yield uow


UowDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]


def get_session(uow: UowDep) -> Session:
    return uow.session


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer tnl_...`")


def current_actor(
    uow: UowDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "send an API token as `Authorization: Bearer <token>`", headers={"WWW-Authenticate": "Bearer"}
        )
    user = auth.authenticate(session=uow.session, token=credentials.credentials)
    if user is None:
        raise HTTPException(401, "the token is unknown, expired or revoked", headers={"WWW-Authenticate": "Bearer"})
    # The token's last-use stamp lands even when the route only reads or is refused.
    uow.commit()
    return user.as_actor()


ActorDep = Annotated[Actor, Depends(current_actor)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def current_actor_brief(credentials: BearerDep) -> Actor:
    """The caller, authenticated in a session closed before the endpoint runs.

    For endpoints that last (uploads, event streams): they must not hold a pooled connection
    while a client is slow to send or to listen.
    """
    with unit_of_work() as uow:
        return current_actor(uow, credentials)


BriefActorDep = Annotated[Actor, Depends(current_actor_brief)]


def allowed_to(*actions: Action) -> object:
    """A dependency that lets through callers the policy allows any of these actions (403 otherwise).

    Only for actions that are not about one ministry's row; those are decided by the service
    functions once the row is found (another ministry's row is 404 first).
    """
    wanted = frozenset(actions)

    def check(actor: ActorDep) -> Actor:
        policy.require_any(actor, wanted)
        return actor

    return Depends(check)


AdminDep = Annotated[Actor, allowed_to(Action.manage_users)]
MinistryAdminDep = Annotated[Actor, allowed_to(Action.manage_ministries)]
MinistryListDep = Annotated[Actor, allowed_to(Action.list_ministries)]
VoterDep = Annotated[Actor, allowed_to(*policy.STAGE_VOTES.values())]
OrdererDep = Annotated[Actor, allowed_to(Action.order)]
CatalogReaderDep = Annotated[Actor, allowed_to(Action.read_catalog)]
AuditReaderDep = Annotated[Actor, allowed_to(Action.read_audit)]


def require_dcim(settings: SettingsDep) -> Dcim:
    """The data centre's DCIM; 409 when none is configured (co-location cannot work without it)."""
    return dcim_connection.require(settings)


DcimDep = Annotated[Dcim, Depends(require_dcim)]
