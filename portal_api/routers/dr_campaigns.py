"""DR drill campaigns (many services drilled with bounded parallelism) and the services overdue a drill."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from orchestrator.dr import campaigns, overdue
from orchestrator.dr.campaign_models import MAX_PARALLEL, CampaignPublic, OverduePublic
from orchestrator.jobs import queue
from portal_api.deps import ActorDep, SessionDep, UowDep

router = APIRouter(prefix="/v1/dr", tags=["disaster recovery"])


class CampaignBody(BaseModel):
    ministry: str | None = Field(
        default=None,
        max_length=64,
        description="The ministry's code or id; omitted: every ministry of the data centre "
        "(admins and platform-wide automation only).",
        examples=["health"],
    )
    max_parallel: int = Field(default=2, ge=1, le=MAX_PARALLEL, description="Drills in progress at once, at most.")


@router.post(
    "/campaigns",
    status_code=201,
    summary="Drill every active service with backups of a ministry, or of the data centre",
    description=(
        "The campaign's drills start in the background, `max_parallel` at most in progress at once; each is a "
        "`drill` operation started with the caller's permissions. Follow it with `GET /v1/dr/campaigns/{id}`."
    ),
    responses={
        403: {"description": "The caller may not drill that ministry's services, or every ministry's"},
        404: {"description": "No such ministry (or one the caller cannot see)"},
    },
)
def start_campaign(body: CampaignBody, uow: UowDep, actor: ActorDep) -> CampaignPublic:
    campaign = campaigns.create(
        session=uow.session, actor=actor, ministry=body.ministry, max_parallel=body.max_parallel
    )
    uow.commit()
    # The periodic advance would pick it up within a minute; this starts it now.
    queue.defer_campaign(campaign.id)
    return campaigns.summary(session=uow.session, actor=actor, campaign_id=campaign.id)


@router.get(
    "/campaigns/{campaign_id}",
    summary="A campaign: drills passed, failed, running and pending, worst RTO and RPO, services overdue",
)
def get_campaign(campaign_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> CampaignPublic:
    return campaigns.summary(session=session, actor=actor, campaign_id=campaign_id)


@router.get(
    "/overdue",
    summary="Services whose last passing drill is older than their backup policy allows, or never drilled",
)
def list_overdue(
    session: SessionDep,
    actor: ActorDep,
    ministry: Annotated[str | None, Query(max_length=64, description="A ministry's code or id")] = None,
) -> list[OverduePublic]:
    ministry_id = None
    if ministry is not None:
        ministry_id = campaigns.resolve_ministry(session=session, actor=actor, ministry=ministry).id
    return overdue.list_overdue(session=session, actor=actor, ministry_id=ministry_id)
