"""One build job, start to end: the recorded `building` image is built (`builder.py`), recorded
available with what it contains, and images of its role and site beyond the newest two are
deleted from Glance and retired. A clear failure (a playbook failed, the image has no
image.json) ends the build `failed` at once; anything else is retried by the queue with backoff,
and the last attempt's error is recorded.
"""

import logging
import time
import uuid

from orchestrator.actors import SYSTEM
from orchestrator.cloud.sites import sites_sharing_images
from orchestrator.config import Settings
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.images import service as images
from orchestrator.images.builder import BuildSpec, ImageBuilder
from orchestrator.images.models import BakedImage, ImageStatus
from orchestrator.ports import Adapters, EventSink, ProgressEvent, StepFailed

log = logging.getLogger("tonle.images")

ATTEMPTS = 3  # of a build job on unexpected errors (the cloud, the network)


def run_build(
    *, image_id: uuid.UUID, adapters: Adapters, settings: Settings, final_attempt: bool
) -> ImageStatus | None:
    with unit_of_work() as uow:
        image = uow.session.get(BakedImage, image_id)
        if image is None:
            log.warning("image build %s: no such image (deleted since it was asked for)", image_id)
            return None
        if image.status != ImageStatus.building:
            return image.status  # a job run again after its build ended: nothing to do
        # Built from the install phase as it is now, which may have changed since the build was asked for.
        digest = images.current_digest(settings=settings, role=image.role) or image.install_digest
        image.install_digest = digest
        uow.session.add(image)
        spec = BuildSpec(image_id=image.id, role=image.role, site=image.site, name=image.name, install_digest=digest)
        leftovers = [
            BuildSpec(image_id=f.id, role=f.role, site=f.site, name=f.name, install_digest=f.install_digest)
            for f in images.recent_builds(session=uow.session, role=image.role, site=image.site)
        ]
        uow.commit()
    on_event = progress_writer(image_id, spec.name)
    started = time.monotonic()
    try:
        builder = ImageBuilder(settings=settings, adapters=adapters)
        built = builder.build(spec, on_event, leftovers=leftovers)
    except StepFailed as exc:
        log.error("image %s failed: %s", spec.name, exc)
        return _failed(image_id, str(exc))
    except Exception as exc:
        if final_attempt:
            log.exception("image %s failed on its last attempt", spec.name)
            _failed(image_id, f"{type(exc).__name__}: {exc}")
        else:
            log.warning("image %s: attempt failed (%s); the queue retries it", spec.name, exc)
            on_event(ProgressEvent(type="image.retry", message=f"attempt failed, retried: {exc}"[:500]))
        raise
    seconds = time.monotonic() - started
    with unit_of_work() as uow:
        images.mark_available(
            session=uow.session,
            actor=SYSTEM,
            image_id=image_id,
            glance_image_id=built.glance_image_id,
            packages=built.packages,
            size_bytes=built.size_bytes,
            build_seconds=seconds,
        )
        uow.commit()
    log.info("image %s built in %.0f s, %s bytes", spec.name, seconds, built.size_bytes)
    retire_old(builder=builder, role=spec.role, site=spec.site, on_event=on_event)
    return ImageStatus.available


def retire_old(*, builder: ImageBuilder, role: str, site: str, on_event: EventSink) -> list[str]:
    """Delete from Glance and retire the role's images at the site beyond the newest two. A
    failure here leaves the image available for the next build to retire; the build stands."""
    with unit_of_work() as uow:
        old = [
            (image.id, image.name, image.glance_image_id)
            for image in images.beyond_kept(session=uow.session, role=role, site=site)
        ]
    retired = []
    for image_id, name, glance_image_id in old:
        try:
            if glance_image_id:
                builder.retire(site_name=site, glance_image_id=glance_image_id, on_event=on_event)
            with unit_of_work() as uow:
                images.mark_retired(session=uow.session, actor=SYSTEM, image_id=image_id)
                uow.commit()
            retired.append(name)
        except Exception:
            log.exception("could not retire image %s; the next build tries again", name)
    return retired


def request_scheduled(*, settings: Settings) -> list[uuid.UUID]:
    """The weekly rebuild: every role at every site, asked for by the system; the builds' ids."""
    # One build per image service: sites sharing one boot each other's images.
    sites: list[str] = []
    for name in sorted(settings.site_clouds):
        if not any(name in sites_sharing_images(settings, kept) for kept in sites):
            sites.append(name)
    with unit_of_work() as uow:
        builds = images.request_builds(session=uow.session, actor=SYSTEM, settings=settings, sites=sites)
        ids = [build.id for build in builds]
        uow.commit()
    return ids


def progress_writer(image_id: uuid.UUID, name: str) -> EventSink:
    """Each event of the build is logged and becomes the image's `progress` (what `GET /v1/images` shows)."""

    def emit(event: ProgressEvent) -> None:
        log.log(
            logging.WARNING if event.level in ("warning", "error") else logging.INFO,
            "image %s: %s",
            name,
            event.message,
        )
        with unit_of_work() as uow:
            images.note_progress(session=uow.session, image_id=image_id, message=event.message)
            uow.commit()

    return emit


def _failed(image_id: uuid.UUID, error: str) -> ImageStatus:
    with unit_of_work() as uow:
        images.mark_failed(session=uow.session, actor=SYSTEM, image_id=image_id, error=error)
        uow.commit()
    return ImageStatus.failed
