"""Deployed services and their day-2 actions."""

import asyncio
import hashlib
import tempfile
import uuid
from collections.abc import Callable
from typing import Annotated, Any, BinaryIO, Literal, TypeVar

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

from orchestrator.config import get_settings
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.errors import InvalidInput
from orchestrator.mail import domain as mail_domain
from orchestrator.operations import service as operations
from orchestrator.operations import uploads
from orchestrator.operations.models import OperationPublic
from orchestrator.requests.models import RequestKind, RequestPublic
from orchestrator.services import service as services
from orchestrator.services.models import ServiceCredentials, ServicePublic, ServiceStatus
from orchestrator.workflows import commands
from portal_api.deps import ActorDep, BriefActorDep, SessionDep, UowDep
from portal_api.pagination import LimitQuery, OffsetQuery, Page

router = APIRouter(prefix="/v1/services", tags=["services"])
T = TypeVar("T")


@router.get("", summary="List services visible to you")
def list_services(
    session: SessionDep,
    actor: ActorDep,
    status: ServiceStatus | None = None,
    offering_id: str | None = None,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
) -> Page[ServicePublic]:
    rows, total = services.list_services(
        session=session, actor=actor, status=status, offering_id=offering_id, limit=limit, offset=offset
    )
    return Page(items=[ServicePublic.model_validate(s) for s in rows], total=total, limit=limit, offset=offset)


@router.get("/{service_id}", summary="One service")
def get_service(service_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> ServicePublic:
    return ServicePublic.model_validate(services.get(session=session, actor=actor, service_id=service_id))


@router.get("/{service_id}/operations", summary="The service's operations, oldest first")
def list_operations(service_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> list[OperationPublic]:
    services.get(session=session, actor=actor, service_id=service_id)
    return [
        OperationPublic.model_validate(o) for o in operations.list_for_service(session=session, service_id=service_id)
    ]


@router.post(
    "/{service_id}/credentials",
    summary="Show the service's generated credentials, once (ministry staff only)",
    responses={409: {"description": "Already shown, or the service is not active yet"}},
)
def reveal_credentials(service_id: uuid.UUID, uow: UowDep, actor: ActorDep) -> ServiceCredentials:
    shown = mail_domain.reveal_credentials(session=uow.session, actor=actor, service_id=service_id)
    uow.commit()  # shown once: the record of the showing lands before the secrets leave
    return ServiceCredentials(service_id=service_id, credentials=shown)


@router.post("/{service_id}/decommission", status_code=202, summary="Final backup, destroy, release quota")
def decommission(service_id: uuid.UUID, uow: UowDep, actor: ActorDep) -> OperationPublic:
    operation = commands.decommission(session=uow.session, actor=actor, service_id=service_id)
    uow.commit()
    return OperationPublic.model_validate(operation)


class ResizeBody(BaseModel):
    plan: str = Field(description="Another plan of the service's offering.", examples=["medium"])
    justification: str = Field(
        default="", max_length=2000, description="Why the ministry needs it; approvers read it when the plan grows."
    )


class ResizeAccepted(BaseModel):
    """A resize either waits for approval (the plan costs more quota) or has started."""

    outcome: Literal["approval_needed", "started"] = Field(
        description="`approval_needed`: `request` (kind `modify`) holds the quota growth and waits for the "
        "offering's approval stages; its last approval starts the operation (`request.operation_id`). "
        "`started`: the plan costs no more quota; `operation` is the queued `modify` operation."
    )
    request: RequestPublic | None = None
    operation: OperationPublic | None = None


@router.post(
    "/{service_id}/actions/resize",
    status_code=202,
    summary="Move the service to another plan (a larger one goes through approval, like an order of it)",
    responses={
        409: {"description": "An operation is in progress, or a plan change is already waiting for approval"},
        422: {"description": "Unknown plan, the same plan, a volume would shrink, or the quota growth does not fit"},
    },
)
def resize(service_id: uuid.UUID, body: ResizeBody, uow: UowDep, actor: ActorDep) -> ResizeAccepted:
    done = commands.resize(
        session=uow.session, actor=actor, service_id=service_id, plan_id=body.plan, justification=body.justification
    )
    uow.commit()
    if done.request is not None:
        return ResizeAccepted(outcome="approval_needed", request=RequestPublic.model_validate(done.request))
    return ResizeAccepted(outcome="started", operation=OperationPublic.model_validate(done.operation))


class DrMoveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    justification: str = Field(
        default="", max_length=2000, description="Why: the operator who approves reads it (an outage, a drill...)."
    )


def _dr_move(
    kind: RequestKind, service_id: uuid.UUID, body: DrMoveBody | None, uow: UowDep, actor: ActorDep
) -> RequestPublic:
    request = commands.request_dr_move(
        session=uow.session,
        actor=actor,
        service_id=service_id,
        kind=kind,
        justification=body.justification if body is not None else "",
    )
    uow.commit()
    return RequestPublic.model_validate(request)


_DR_MOVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "Busy, not active, already at that site, or a move is already waiting for approval"},
}


@router.post(
    "/{service_id}/actions/failover",
    status_code=202,
    summary="Ask to run the service at the DR site (restored there, DNS repointed); an operator approves",
    responses=_DR_MOVE_RESPONSES,
)
def failover(service_id: uuid.UUID, uow: UowDep, actor: ActorDep, body: DrMoveBody | None = None) -> RequestPublic:
    return _dr_move(RequestKind.failover, service_id, body, uow, actor)


@router.post(
    "/{service_id}/actions/failback",
    status_code=202,
    summary="Ask to bring a failed-over service back to the primary site; an operator approves",
    responses=_DR_MOVE_RESPONSES,
)
def failback(service_id: uuid.UUID, uow: UowDep, actor: ActorDep, body: DrMoveBody | None = None) -> RequestPublic:
    return _dr_move(RequestKind.failback, service_id, body, uow, actor)


@router.post(
    "/{service_id}/actions/deploy-content",
    status_code=202,
    summary="Upload a site archive (.tar.gz or .zip, as the request body) and deploy it",
    description=(
        "The caller, the service and the Content-Type are checked before the body is read. A body over the upload "
        "limit (`TONLE_UPLOAD_MAX_BYTES`) is refused with 413, from its Content-Length when it declares one, else "
        "when the limit is crossed; a body that takes longer than `TONLE_UPLOAD_TIMEOUT_SECONDS` to arrive is "
        "refused with 408."
    ),
    responses={
        408: {"description": "The body took too long to arrive"},
        413: {"description": "The body is larger than the upload limit"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in sorted(commands.ARCHIVE_TYPES)},
        }
    },
)
async def deploy_content(
    service_id: uuid.UUID,
    request: Request,
    actor: BriefActorDep,
    filename: Annotated[
        str,
        Query(min_length=1, max_length=uploads.MAX_FILENAME, description="Name of the archive, for the record only"),
        AfterValidator(uploads.check_filename),
    ] = "site.tar.gz",
) -> OperationPublic:
    # No session is held while the body arrives: a slow client must not keep a pooled connection.
    await run_in_threadpool(_in_session, commands.check_action, actor=actor, service_id=service_id, action=_DEPLOY)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    uploads.check_media_type(media_type)
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput("Content-Length is not a number", field="Content-Length")
        uploads.check_size(int(declared))
    with tempfile.TemporaryFile(prefix="tonle-upload-") as spool:
        size, digest = await _receive(request, spool)
        received = uploads.ReceivedFile(filename=filename, media_type=media_type, file=spool, size=size, sha256=digest)
        operation = await run_in_threadpool(
            _in_session, commands.run_action, actor=actor, service_id=service_id, action=_DEPLOY, upload=received
        )
    return OperationPublic.model_validate(operation)


_DEPLOY = "deploy-content"


async def _receive(request: Request, spool: BinaryIO) -> tuple[int, str]:
    """Copy the body into `spool` until the byte cap or the time limit; (size, sha256)."""
    settings = get_settings()
    digest = hashlib.sha256()
    size = 0
    try:
        async with asyncio.timeout(settings.upload_timeout_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                # A client that declared less, or nothing (chunked), is cut off here.
                uploads.check_size(size)
                digest.update(chunk)
                spool.write(chunk)
    except TimeoutError:
        raise uploads.UploadTooSlow(
            f"the upload did not arrive within {settings.upload_timeout_seconds:g} seconds", field="body"
        ) from None
    except ClientDisconnect:
        # Nobody is left to answer; say so in the log as what it is, not as a server failure.
        raise InvalidInput("the client went away before the upload was complete", field="body") from None
    return size, digest.hexdigest()


def _in_session(function: Callable[..., T], **kwargs: Any) -> T:
    """`function` in a unit of work of its own, committed when it returns."""
    with unit_of_work() as uow:
        result = function(session=uow.session, **kwargs)
        uow.commit()
        return result


@router.post(
    "/{service_id}/actions/{action}",
    status_code=202,
    summary="Day-2 workflows (backup, restore, drill) and the playbooks the offering defines (e.g. restart)",
)
def day2_action(
    service_id: uuid.UUID,
    action: str,
    uow: UowDep,
    actor: ActorDep,
    body: Annotated[
        dict[str, Any] | None,
        Body(description='The action\'s parameters, for those that take some (drill: `{"restore_point": "<id>"}`)'),
    ] = None,
) -> OperationPublic:
    operation = commands.run_action(session=uow.session, actor=actor, service_id=service_id, action=action, body=body)
    uow.commit()
    return OperationPublic.model_validate(operation)
