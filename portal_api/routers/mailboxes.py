"""A mail service's mailboxes and aliases: each change is recorded, then applied on the server by a
`sync-mailboxes` operation named in the answer."""

import uuid

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from orchestrator.mail.models import MailAliasCreate, MailAliasPublic, MailboxCreate, MailboxPublic
from orchestrator.operations.models import OperationPublic
from orchestrator.workflows import mailboxes as mail
from portal_api.deps import ActorDep, SessionDep, UowDep

router = APIRouter(prefix="/v1/services", tags=["mail"])


class MailChangeAccepted(BaseModel):
    """A recorded change; `operation` applies it on the mail server."""

    operation_id: uuid.UUID
    operation: OperationPublic
    mailbox: MailboxPublic | None = None
    alias: MailAliasPublic | None = None
    password: str | None = Field(
        default=None, description="A new or reset mailbox's password: shown in this answer only, never again."
    )


_CHANGE_RESPONSES: dict[int | str, dict[str, str]] = {
    404: {"description": "No such service (or another ministry's), no mail domain, or no such mailbox/alias"},
    409: {"description": "An operation is in progress, the service is not active, or the address is taken"},
    422: {"description": "Outside the mail domain, over the plan's mailboxes or the ministry's quota"},
}


def _accepted(change: mail.MailChange, response: Response) -> MailChangeAccepted:
    # A password may be in it: no cache, proxy or browser history keeps a copy.
    response.headers["Cache-Control"] = "no-store"
    return MailChangeAccepted(
        operation_id=change.operation.id,
        operation=OperationPublic.model_validate(change.operation),
        mailbox=MailboxPublic.model_validate(change.mailbox) if change.mailbox is not None else None,
        alias=MailAliasPublic.model_validate(change.alias) if change.alias is not None else None,
        password=change.password,
    )


@router.get("/{service_id}/mailboxes", summary="The service's mailboxes, removed ones with their retention date")
def list_mailboxes(
    service_id: uuid.UUID, session: SessionDep, actor: ActorDep, include_system: bool = False
) -> list[MailboxPublic]:
    rows = mail.list_mailboxes(session=session, actor=actor, service_id=service_id, include_system=include_system)
    return [MailboxPublic.model_validate(m) for m in rows]


@router.post(
    "/{service_id}/mailboxes",
    status_code=202,
    summary="Add a mailbox (its password is in the answer, once)",
    responses=_CHANGE_RESPONSES,
)
def add_mailbox(
    service_id: uuid.UUID, body: MailboxCreate, uow: UowDep, actor: ActorDep, response: Response
) -> MailChangeAccepted:
    change = mail.add_mailbox(session=uow.session, actor=actor, service_id=service_id, data=body)
    uow.commit()
    return _accepted(change, response)


@router.delete(
    "/{service_id}/mailboxes/{address}",
    status_code=202,
    summary="Remove a mailbox: no more logins or mail; its mail is kept until the retention date",
    responses=_CHANGE_RESPONSES,
)
def remove_mailbox(
    service_id: uuid.UUID, address: str, uow: UowDep, actor: ActorDep, response: Response
) -> MailChangeAccepted:
    change = mail.remove_mailbox(session=uow.session, actor=actor, service_id=service_id, address=address)
    uow.commit()
    return _accepted(change, response)


@router.post(
    "/{service_id}/mailboxes/{address}/reset",
    status_code=202,
    summary="Give a mailbox a new password (in the answer, once)",
    responses=_CHANGE_RESPONSES,
)
def reset_mailbox(
    service_id: uuid.UUID, address: str, uow: UowDep, actor: ActorDep, response: Response
) -> MailChangeAccepted:
    change = mail.reset_mailbox(session=uow.session, actor=actor, service_id=service_id, address=address)
    uow.commit()
    return _accepted(change, response)


@router.get("/{service_id}/aliases", summary="The service's aliases")
def list_aliases(service_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> list[MailAliasPublic]:
    return [
        MailAliasPublic.model_validate(a)
        for a in mail.list_aliases(session=session, actor=actor, service_id=service_id)
    ]


@router.post("/{service_id}/aliases", status_code=202, summary="Add an alias", responses=_CHANGE_RESPONSES)
def add_alias(
    service_id: uuid.UUID, body: MailAliasCreate, uow: UowDep, actor: ActorDep, response: Response
) -> MailChangeAccepted:
    change = mail.add_alias(session=uow.session, actor=actor, service_id=service_id, data=body)
    uow.commit()
    return _accepted(change, response)


@router.delete(
    "/{service_id}/aliases/{address}", status_code=202, summary="Remove an alias", responses=_CHANGE_RESPONSES
)
def remove_alias(
    service_id: uuid.UUID, address: str, uow: UowDep, actor: ActorDep, response: Response
) -> MailChangeAccepted:
    change = mail.remove_alias(session=uow.session, actor=actor, service_id=service_id, address=address)
    uow.commit()
    return _accepted(change, response)
