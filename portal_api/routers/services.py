"""Deployed services and their day-2 actions."""

import uuid

from fastapi import APIRouter

from orchestrator.errors import NotFound, NotImplementedYet
from orchestrator.operations import service as operations
from orchestrator.operations.models import OperationPublic
from orchestrator.pipeline import actions
from orchestrator.services import service as services
from orchestrator.services.models import ServiceCredentials, ServicePublic, ServiceStatus
from portal_api.deps import ActorDep, SessionDep
from portal_api.pagination import LimitQuery, OffsetQuery, Page

router = APIRouter(prefix="/v1/services", tags=["services"])

# Day-2 actions whose workflows land with their own issues.
PENDING_ACTIONS = ("resize", "deploy-content", "restart", "backup", "restore", "drill", "failover", "failback")


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
def reveal_credentials(service_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> ServiceCredentials:
    shown = services.reveal_credentials(session=session, actor=actor, service_id=service_id)
    return ServiceCredentials(service_id=service_id, credentials=shown)


@router.post("/{service_id}/decommission", status_code=202, summary="Final backup, destroy, release quota")
def decommission(service_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> OperationPublic:
    return OperationPublic.model_validate(actions.decommission(session=session, actor=actor, service_id=service_id))


@router.post(
    "/{service_id}/actions/{action}",
    status_code=202,
    summary="Day-2 actions (resize, deploy-content, restart, backup, restore, drill, failover, failback)",
    responses={501: {"description": "The action's workflow has not landed yet"}},
)
def day2_action(service_id: uuid.UUID, action: str, session: SessionDep, actor: ActorDep) -> OperationPublic:
    services.check_day2_allowed(actor)
    services.get(session=session, actor=actor, service_id=service_id)
    if action not in PENDING_ACTIONS:
        raise NotFound(f"unknown action '{action}'; known: {', '.join(PENDING_ACTIONS)}", field="action")
    raise NotImplementedYet(f"the '{action}' workflow is not available yet", field="action")
