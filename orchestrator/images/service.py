"""Baked images: asking for builds, recording what a build did, retiring old images, listing.

Service functions never commit; the builder and the API call them inside their own unit of
work. Every change of an image's status is audited (entity `image`, no ministry).
"""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from orchestrator import policy
from orchestrator.actors import Actor
from orchestrator.audit import service as audit
from orchestrator.catalog import service as catalog
from orchestrator.config import Settings
from orchestrator.database.columns import utcnow
from orchestrator.errors import Conflict, InvalidInput, NotFound
from orchestrator.images.digest import DigestError, install_digest
from orchestrator.images.models import BakedImage, BakedImagePublic, ImageStatus
from orchestrator.policy import Action

KEEP_PER_ROLE_AND_SITE = 2  # available images kept per role and site; older ones are retired
MAX_ERROR_CHARS = 2000
MAX_PROGRESS_CHARS = 500


def image_roles() -> list[str]:
    """The roles the catalogue's offerings boot from: what `tonle images build` builds."""
    return sorted({offering.image_role for offering in catalog.list_offerings() if offering.image_role})


def image_name(role: str, at: datetime) -> str:
    return f"tonle-{role}-{at:%Y%m%d%H%M%S}"


def current_digest(*, settings: Settings, role: str) -> str | None:
    """The digest of the role's install phase now; None when the role has no image playbook."""
    try:
        return install_digest(playbooks_dir=settings.playbooks_dir, role=role)
    except DigestError:
        return None


def request_builds(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    roles: Sequence[str] | None = None,
    sites: Sequence[str] | None = None,
) -> list[BakedImage]:
    """A `building` image per role and site asked for (every role; the primary site when not
    given). A role already building at a site gives that build back: asking twice builds once."""
    policy.require(actor, Action.manage_images)
    known_roles = image_roles()
    wanted_roles = list(dict.fromkeys(roles or known_roles))
    for index, role in enumerate(wanted_roles):
        if role not in known_roles:
            raise InvalidInput(
                f"no offering boots from an image of role '{role[:32]}'; the roles are {', '.join(known_roles)}",
                field=f"roles.{index}",
            )
    wanted_sites = list(dict.fromkeys(sites or [settings.primary_site]))
    for index, site in enumerate(wanted_sites):
        if site not in settings.site_clouds:
            raise InvalidInput(
                f"unknown site '{site[:64]}'; the sites are {', '.join(sorted(settings.site_clouds))}",
                field=f"sites.{index}",
            )
    builds = []
    for role in wanted_roles:
        digest = current_digest(settings=settings, role=role)
        if digest is None:
            raise InvalidInput(f"role '{role}' has no image playbook (playbooks/image_{role}.yml)", field="roles")
        for site in wanted_sites:
            builds.append(
                _building(session=session, actor=actor, role=role, site=site, digest=digest, settings=settings)
            )
    return builds


def _building(*, session: Session, actor: Actor, role: str, site: str, digest: str, settings: Settings) -> BakedImage:
    # Serialise requests for the same role and site, so the check below sees the other's row.
    session.connection().execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"baked_image:{role}:{site}"}
    )
    running = session.exec(
        select(BakedImage).where(
            BakedImage.role == role, BakedImage.site == site, BakedImage.status == ImageStatus.building
        )
    ).first()
    if running is not None:
        return running
    image = BakedImage(
        role=role,
        site=site,
        name=_free_name(session, role),
        status=ImageStatus.building,
        install_digest=digest,
        base_image=settings.server_image,
        requested_by=actor.username[:64],
        progress="waiting for a worker",
    )
    session.add(image)
    session.flush()
    _audit(session, actor, image, action="build_requested", from_state=None)
    return image


def _free_name(session: Session, role: str) -> str:
    """The role's name for now; a second later when another site's build took this second."""
    at = utcnow()
    while True:
        name = image_name(role, at)
        if session.exec(select(BakedImage.id).where(BakedImage.name == name)).first() is None:
            return name
        at += timedelta(seconds=1)


def get(*, session: Session, image_id: uuid.UUID) -> BakedImage:
    image = session.get(BakedImage, image_id)
    if image is None:
        raise NotFound("image not found")
    return image


def lock(*, session: Session, image_id: uuid.UUID) -> BakedImage:
    image = session.exec(select(BakedImage).where(BakedImage.id == image_id).with_for_update()).first()
    if image is None:
        raise NotFound("image not found")
    return image


def note_progress(*, session: Session, image_id: uuid.UUID, message: str) -> None:
    image = lock(session=session, image_id=image_id)
    if image.status == ImageStatus.building:
        image.progress = message[:MAX_PROGRESS_CHARS]
        session.add(image)


def mark_available(
    *,
    session: Session,
    actor: Actor,
    image_id: uuid.UUID,
    glance_image_id: str,
    packages: dict[str, Any],
    size_bytes: int | None,
    build_seconds: float,
) -> BakedImage:
    image = lock(session=session, image_id=image_id)
    _require_building(image)
    image.status = ImageStatus.available
    image.glance_image_id = glance_image_id
    image.packages = packages
    image.size_bytes = size_bytes
    image.build_seconds = round(build_seconds, 1)
    image.built_at = utcnow()
    image.progress = None
    image.error = None
    session.add(image)
    _audit(
        session,
        actor,
        image,
        action="built",
        from_state=ImageStatus.building,
        detail={"glance_image_id": glance_image_id, "size_bytes": size_bytes, "build_seconds": image.build_seconds},
    )
    return image


def mark_failed(*, session: Session, actor: Actor, image_id: uuid.UUID, error: str) -> BakedImage:
    image = lock(session=session, image_id=image_id)
    if image.status != ImageStatus.building:
        return image  # a retry that lost the race with its own earlier attempt: the outcome stands
    image.status = ImageStatus.failed
    image.error = error[:MAX_ERROR_CHARS]
    image.progress = None
    session.add(image)
    _audit(session, actor, image, action="build_failed", from_state=ImageStatus.building, detail={"error": image.error})
    return image


def beyond_kept(*, session: Session, role: str, site: str, keep: int = KEEP_PER_ROLE_AND_SITE) -> list[BakedImage]:
    """Available images of the role and site older than the newest `keep`: the ones to retire."""
    available = session.exec(
        select(BakedImage)
        .where(BakedImage.role == role, BakedImage.site == site, BakedImage.status == ImageStatus.available)
        .order_by(col(BakedImage.built_at).desc(), col(BakedImage.name).desc())
    ).all()
    return list(available[keep:])


def recent_builds(*, session: Session, role: str, site: str, limit: int = 5) -> list[BakedImage]:
    """The latest finished builds of the role at the site: a cloud that failed during their cleanup
    may have kept their build stacks from being destroyed, so the next build destroys them first."""
    finished = (ImageStatus.failed, ImageStatus.available)
    return list(
        session.exec(
            select(BakedImage)
            .where(BakedImage.role == role, BakedImage.site == site, col(BakedImage.status).in_(finished))
            .order_by(col(BakedImage.created_at).desc())
            .limit(limit)
        ).all()
    )


def mark_retired(*, session: Session, actor: Actor, image_id: uuid.UUID) -> BakedImage:
    image = lock(session=session, image_id=image_id)
    if image.status != ImageStatus.available:
        return image
    image.status = ImageStatus.retired
    image.retired_at = utcnow()
    session.add(image)
    _audit(session, actor, image, action="retired", from_state=ImageStatus.available)
    return image


def usable(*, session: Session, role: str, sites: Sequence[str], digest: str) -> BakedImage | None:
    """The newest available image of the role at any of `sites` built from the install phase `digest`."""
    return session.exec(
        select(BakedImage)
        .where(
            BakedImage.role == role,
            col(BakedImage.site).in_(sites),
            BakedImage.status == ImageStatus.available,
            BakedImage.install_digest == digest,
        )
        .order_by(col(BakedImage.built_at).desc(), col(BakedImage.name).desc())
    ).first()


def newest_available(*, session: Session, role: str, sites: Sequence[str]) -> BakedImage | None:
    return session.exec(
        select(BakedImage)
        .where(BakedImage.role == role, col(BakedImage.site).in_(sites), BakedImage.status == ImageStatus.available)
        .order_by(col(BakedImage.built_at).desc(), col(BakedImage.name).desc())
    ).first()


def stale_builds(*, session: Session, older_than: timedelta) -> list[BakedImage]:
    """Builds still `building` long after they were asked for: their job may never have been deferred."""
    return list(
        session.exec(
            select(BakedImage).where(
                BakedImage.status == ImageStatus.building, col(BakedImage.created_at) < utcnow() - older_than
            )
        ).all()
    )


def list_images(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    role: str | None = None,
    site: str | None = None,
    status: ImageStatus | None = None,
) -> list[BakedImagePublic]:
    policy.require(actor, Action.read_images)
    query = select(BakedImage)
    if role is not None:
        query = query.where(BakedImage.role == role)
    if site is not None:
        query = query.where(BakedImage.site == site)
    if status is not None:
        query = query.where(BakedImage.status == status)
    rows = session.exec(query.order_by(col(BakedImage.created_at).desc()).limit(500)).all()
    digests = {row.role: current_digest(settings=settings, role=row.role) for row in rows}
    return [public(row, current_digest=digests[row.role]) for row in rows]


def public(image: BakedImage, *, current_digest: str | None) -> BakedImagePublic:
    # Validated from the row's attributes: dumping the row first would warn on every read (its
    # `status` is the column's plain string until validation makes it an ImageStatus).
    return BakedImagePublic.model_validate(
        image, update={"current": current_digest is not None and image.install_digest == current_digest}
    )


def _require_building(image: BakedImage) -> None:
    if image.status != ImageStatus.building:
        raise Conflict(f"image {image.name} is {image.status}, not building")


def _audit(
    session: Session,
    actor: Actor,
    image: BakedImage,
    *,
    action: str,
    from_state: ImageStatus | None,
    detail: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session=session,
        actor=actor,
        entity="image",
        entity_id=image.id,
        ministry_id=None,
        action=action,
        from_state=from_state,
        to_state=image.status,
        detail={"role": image.role, "site": image.site, "name": image.name, **(detail or {})},
    )
