"""Reservations no service holds any more, given back to the data centre.

An approval writes its reservations to the DCIM before its transaction commits; if that commit
fails, the reservations stay in the DCIM for a service that never was. Under the site's placement
lock (which every approval holds until it commits), each Tonle reservation belongs either to a
committed service or to none: those of no service, or of a retired one, are released. References
that are not service ids (an operator's own reservations have none; tests use their own) are not
Tonle's to judge and are left alone.
"""

from __future__ import annotations

import logging
import uuid

from sqlmodel import Session, col, select

from orchestrator.dcim import service as placement_service
from orchestrator.ports import Dcim, Reservation
from orchestrator.services.models import Service, ServiceStatus

log = logging.getLogger("tonle.dcim")


def release_orphans(*, session: Session, dcim: Dcim, site: str) -> list[Reservation]:
    """Release (and return) the reservations of services that do not exist or are retired."""
    placement_service.lock_site(session=session, site=site)
    held = dcim.reservations()
    refs = {r.order_ref: _service_id(r.order_ref) for r in held}
    ids = {service_id for service_id in refs.values() if service_id is not None}
    live = (
        set(
            session.exec(
                select(Service.id).where(col(Service.id).in_(ids), Service.status != ServiceStatus.retired)
            ).all()
        )
        if ids
        else set()
    )
    orphans = [r for r in held if refs[r.order_ref] is not None and refs[r.order_ref] not in live]
    for reservation in orphans:
        dcim.release(reservation_id=reservation.id)
        log.warning(
            "released DCIM reservation %s (%s, ministry %s): its service %s does not exist or is retired",
            reservation.id,
            reservation.device_name,
            reservation.ministry_code,
            reservation.order_ref,
        )
    return orphans


def _service_id(order_ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(order_ref)
    except ValueError:
        return None
