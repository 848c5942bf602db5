"""Ministries, their quotas and the DNS suffixes they own (admins manage; operators and members read)."""

import uuid

from fastapi import APIRouter

from orchestrator import policy
from orchestrator.errors import NotFound
from orchestrator.ministry import service as ministries
from orchestrator.ministry.models import MinistryCreate, MinistryPublic, MinistryUpdate
from portal_api.deps import ActorDep, MinistryAdminDep, MinistryListDep, SessionDep, UowDep

router = APIRouter(prefix="/v1/ministries", tags=["ministries"])


@router.get("", summary="List ministries (operators and admins)")
def list_ministries(session: SessionDep, actor: MinistryListDep) -> list[MinistryPublic]:
    return [MinistryPublic.model_validate(m) for m in ministries.list_all(session=session)]


@router.post(
    "",
    status_code=201,
    summary="Create a ministry",
    description="`dns_suffixes` overlapping another ministry's are refused with 409, naming the suffix.",
)
def create_ministry(data: MinistryCreate, uow: UowDep, actor: MinistryAdminDep) -> MinistryPublic:
    ministry = ministries.create(session=uow.session, actor=actor, data=data)
    uow.commit()
    return MinistryPublic.model_validate(ministry)


@router.get("/{ministry_id}", summary="One ministry with its quota and current use")
def get_ministry(ministry_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> MinistryPublic:
    if not policy.can_see(actor, ministry_id):
        raise NotFound(f"ministry {ministry_id} not found")
    return MinistryPublic.model_validate(ministries.get(session=session, ministry_id=ministry_id))


@router.patch(
    "/{ministry_id}",
    summary="Rename a ministry, change its quota or the DNS suffixes it owns",
    description="`dns_suffixes` replaces the list. Services already built under a removed suffix keep "
    "running; new orders must name DNS names under the new list.",
)
def update_ministry(
    ministry_id: uuid.UUID, data: MinistryUpdate, uow: UowDep, actor: MinistryAdminDep
) -> MinistryPublic:
    ministry = ministries.update(session=uow.session, actor=actor, ministry_id=ministry_id, data=data)
    uow.commit()
    return MinistryPublic.model_validate(ministry)
