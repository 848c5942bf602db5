"""Which image an order's servers boot from at a site, and why: the newest baked image of the
offering's image role there (or at a site sharing its image service) that was built from the
current install phase, else the base image."""

from dataclasses import dataclass

from sqlmodel import Session

from orchestrator.catalog.models import Offering
from orchestrator.cloud.sites import sites_sharing_images
from orchestrator.config import Settings
from orchestrator.images import service as images


@dataclass(frozen=True)
class ImageChoice:
    name: str
    reason: str


def choose(*, session: Session, settings: Settings, offering: Offering, site: str) -> ImageChoice:
    base = settings.server_image
    role = offering.image_role
    if role is None:
        return ImageChoice(base, f"the base image: {offering.id} has no baked image role")
    digest = images.current_digest(settings=settings, role=role)
    if digest is None:
        return ImageChoice(base, f"the base image: the orchestrator has no image playbook for role {role}")
    sites = sites_sharing_images(settings, site)
    found = images.usable(session=session, role=role, sites=sites, digest=digest)
    if found is not None:
        built = f"{found.built_at:%Y-%m-%d %H:%M} UTC" if found.built_at else "earlier"
        where = site if found.site == site else f"{found.site} (same image service as {site})"
        return ImageChoice(
            found.name, f"the newest {role} image at {where} built from the current install phase ({built})"
        )
    newest = images.newest_available(session=session, role=role, sites=sites)
    if newest is not None:
        return ImageChoice(
            base,
            f"the base image: the {role} images at {site} (newest {newest.name}) were built from an older "
            "install phase; `tonle images build` makes a current one",
        )
    return ImageChoice(base, f"the base image: no {role} image has been built at {site} yet")
