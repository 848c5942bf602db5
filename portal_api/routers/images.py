"""Baked images: which ones exist at each site, and builds of new ones (admins)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from orchestrator import policy
from orchestrator.images import service as images
from orchestrator.images.models import BakedImagePublic, ImageStatus
from orchestrator.jobs import queue
from orchestrator.policy import Action
from portal_api.deps import ActorDep, SessionDep, SettingsDep, UowDep

router = APIRouter(prefix="/v1/images", tags=["images"])

ROLE = r"^[a-z][a-z0-9]{0,15}$"
SITE = r"^[a-z][a-z0-9_-]{0,63}$"


class BuildBody(BaseModel):
    roles: list[Annotated[str, Field(pattern=ROLE)]] | None = Field(
        default=None,
        max_length=16,
        description="Image roles to build (the catalogue's `image_role`s); omitted: every role.",
        examples=[["web"]],
    )
    sites: list[Annotated[str, Field(pattern=SITE)]] | None = Field(
        default=None, max_length=8, description="Sites to build at; omitted: the primary site.", examples=[["primary"]]
    )


class BuildAccepted(BaseModel):
    builds: list[BakedImagePublic] = Field(description="One `building` image per role and site; follow it by its id.")
    job_ids: list[int | None] = Field(
        description="The worker job of each build; null where the build already had one waiting."
    )


@router.get(
    "",
    summary="Baked images, newest first: building, available (current or stale), failed, retired",
    responses={403: {"description": "Only the data centre's operators and admins see images"}},
)
def list_images(
    session: SessionDep,
    actor: ActorDep,
    settings: SettingsDep,
    role: Annotated[str | None, Query(pattern=ROLE)] = None,
    site: Annotated[str | None, Query(pattern=SITE)] = None,
    status: ImageStatus | None = None,
) -> list[BakedImagePublic]:
    return images.list_images(session=session, actor=actor, settings=settings, role=role, site=site, status=status)


@router.get("/{image_id}", summary="One baked image, with its build's progress or error")
def get_image(image_id: uuid.UUID, session: SessionDep, actor: ActorDep, settings: SettingsDep) -> BakedImagePublic:
    policy.require(actor, Action.read_images)
    image = images.get(session=session, image_id=image_id)
    return images.public(image, current_digest=images.current_digest(settings=settings, role=image.role))


@router.post(
    "/builds",
    status_code=202,
    summary="Build images: per role and site, a server booted from the base image, the install phase, a snapshot",
    description=(
        "Each build runs in a worker (a few minutes); a role already building at a site is not built twice: "
        "that build is returned. When it is `available`, new orders of the role's offerings at the site boot it."
    ),
    responses={
        403: {"description": "Only admins build images"},
        422: {"description": "An unknown role or site (`field` names it)"},
    },
)
def build_images(body: BuildBody, uow: UowDep, actor: ActorDep, settings: SettingsDep) -> BuildAccepted:
    builds = images.request_builds(
        session=uow.session, actor=actor, settings=settings, roles=body.roles, sites=body.sites
    )
    found = [images.public(build, current_digest=build.install_digest) for build in builds]
    uow.commit()
    # After the commit: the job must find its image.
    return BuildAccepted(builds=found, job_ids=[queue.defer_image_build(build.id) for build in found])
