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
from orchestrator.auth import token_cache
from orchestrator.auth.token_cache import Grant
from orchestrator.config import Settings, get_settings
from orchestrator.database.columns import utcnow
from orchestrator.database.unit_of_work import UnitOfWork, unit_of_work
from orchestrator.dcim import connection as dcim_connection
from orchestrator.policy import Action
from orchestrator.ports import Dcim
from portal_api.db_threads import run_db


def get_unit_of_work() -> Iterator[UnitOfWork]:
    with unit_of_work() as uow:
        yield uow


UowDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]


def get_session(uow: UowDep) -> Session:
    return uow.session


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer tnl_...`")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _look_up(token: str) -> Grant | None:
    with unit_of_work() as uow:
        grant = auth.grant_for_token(session=uow.session, token=token)
        # The token's last-use stamp lands even when the route only reads or is refused.
        uow.commit()
        return grant


async def actor_for_token(token: str) -> Actor | None:
    """Whose token this is, if it is live. A token this process has seen costs no query (see
    `token_cache`); any other is looked up in a worker thread, in a session closed at once."""
    token_hash = auth.hash_token(token)
    grant = token_cache.cache.get(token_hash, utcnow())
    if grant is None:
        generation = token_cache.cache.generation
        grant = await run_db(lambda: _look_up(token))
        if grant is not None:
            token_cache.cache.put(token_hash, grant, generation)
    return grant.actor if grant is not None else None


async def current_actor(credentials: BearerDep) -> Actor:
    """The caller, from the request's bearer token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "send an API token as `Authorization: Bearer <token>`", headers={"WWW-Authenticate": "Bearer"}
        )
    actor = await actor_for_token(credentials.credentials)
    if actor is None:
        raise HTTPException(401, "the token is unknown, expired or revoked", headers={"WWW-Authenticate": "Bearer"})
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]
# For endpoints that last (uploads, event streams), which must not hold a pooled connection while a
# client is slow to send or to listen: `current_actor` holds none once it has answered.
BriefActorDep = ActorDep


def allowed_to(*actions: Action) -> object:
    """A dependency that lets through callers the policy allows any of these actions (403 otherwise).

    Only for actions that are not about one ministry's row; those are decided by the service
    functions once the row is found (another ministry's row is 404 first).
    """
    wanted = frozenset(actions)

    async def check(actor: ActorDep) -> Actor:
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
