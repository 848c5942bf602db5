"""Co-location orders against the DCIM: their devices, a dry-run fit at submission, and the
reservations written at approval.

Concurrent approvals (in any number of API processes) must never place two devices in the same
units or draw a feed or load a rack past its budget. Nautobot knows nothing of draw and weight
(custom fields), does not keep devices out of reserved units, and an order is several
reservations, so `reserve` serialises the read-place-write of one DCIM site under a PostgreSQL
advisory lock held until the approval's transaction ends: the next approval reads the racks only
after this one's reservations are in the DCIM.

Nautobot does refuse a reservation of units another reservation holds, whatever the faces: a
half-depth device may share units with an installed half-depth device on the other face, but
not with a reserved one. Placement therefore sees every reservation as full depth.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from orchestrator.catalog.models import Offering
from orchestrator.config import get_settings
from orchestrator.dcim import connection, placement
from orchestrator.dcim.placement import DeviceRequest, PlacementResult
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.ministry import service as ministries
from orchestrator.ports import Dcim, Depth, RackInfo, Reservation, UnitSpan
from orchestrator.services.models import Service, ServiceStatus

WATTS_PER_KW = 1000

log = logging.getLogger("tonle.dcim")

#: Nautobot's Device.name is at most 64 characters.
DCIM_NAME_MAX = 64

# The order's parameter names for DeviceRequest's fields, so a 422 names what the caller sent.
_ORDER_FIELD = {
    "name": "name",
    "height_u": "rack_units",
    "draw_w": "power_watts",
    "weight_kg": "weight_kg",
    "nic_count": "nic_count",
}


def device_requests(parameters: Mapping[str, Any], offering: Offering) -> list[DeviceRequest]:
    """The devices an order asks to rack (none for an offering without `rack_devices_from`).
    The parameters have passed the offering's schema; `depth: half` lets placement pick the face."""
    if offering.rack_devices_from is None:
        return []
    items = parameters.get(offering.rack_devices_from) or []
    return [
        DeviceRequest(
            name=str(item.get("name", "")),
            height_u=int(item.get("rack_units", 0)),
            draw_w=float(item.get("power_watts", 0)),
            weight_kg=float(item.get("weight_kg", 0)),
            nic_count=int(item.get("nic_count", 1)),
            full_depth=item.get("depth", "full") != "half",
        )
        for item in items
    ]


def dcim_device_name(*, ministry_code: str, service_name: str, device: str) -> str:
    """The device's name in the DCIM: `<ministry>-<service>-<device>`, unique across the data
    centre as long as a ministry's live co-location services have distinct names. Shortened with
    a digest of the whole when it would exceed the DCIM's limit, so it stays unique and stable."""
    name = f"{ministry_code}-{service_name}-{device}"
    if len(name) <= DCIM_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: DCIM_NAME_MAX - 9]}-{digest}"


def validate(*, offering: Offering, devices: Sequence[DeviceRequest]) -> None:
    """Sizes no rack could ever take: 422 naming the order's field (`parameters.devices.0.rack_units`)."""
    try:
        placement.validate(devices)
    except InvalidInput as exc:
        errors = [{**e, "field": _order_field(offering, str(e["field"]))} for e in exc.errors]
        first = errors[0]
        raise InvalidInput(f"{first['field']}: {first['message']}", field=first["field"], errors=errors) from None


def _order_field(offering: Offering, field: str) -> str:
    parts = field.split(".")  # devices.<i>.<DeviceRequest field> or devices
    parts[0] = offering.rack_devices_from or parts[0]
    if len(parts) == 3:
        parts[2] = _ORDER_FIELD.get(parts[2], parts[2])
    return ".".join(["parameters", *parts])


def check_fits(*, dcim: Dcim, ministry_code: str, devices: Sequence[DeviceRequest], site: str | None = None) -> None:
    """The placement `reserve` would make, as the racks are now, writing nothing: an order that
    cannot fit is refused at submission (409 with the reason) rather than at the last approval."""
    _placed(dcim=dcim, ministry_code=ministry_code, devices=devices, site=site or get_settings().dcim_site)


def reserve(
    *,
    session: Session,
    dcim: Dcim,
    ministry_code: str,
    order_ref: str,
    devices: Sequence[DeviceRequest],
    site: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Reservation]:
    """Place the order's devices and hold their units and draw in the DCIM: all or nothing.

    `devices` carry the names the DCIM is to know them by (`dcim_device_name`); each reservation
    records that name and `order_ref` (the service id). Refusal: `Conflict` naming the device and
    the reason (space, weight, power), by its `labels` name when given (the order's own name);
    nothing is written. A write that fails releases what this call wrote before re-raising. The
    site's advisory lock stays held until the caller's transaction ends, so the caller should
    reserve last and commit soon after.
    """
    site = site or get_settings().dcim_site
    lock_site(session=session, site=site)
    result = _placed(dcim=dcim, ministry_code=ministry_code, devices=devices, site=site, labels=labels)
    made: list[Reservation] = []
    try:
        for spot in result.placements:
            made.append(
                dcim.reserve(
                    rack_id=spot.rack_id,
                    span=UnitSpan(spot.position, spot.height_u, spot.depth),
                    ministry_code=ministry_code,
                    order_ref=order_ref,
                    device_name=spot.device,
                    feed_id=spot.feed_id,
                    draw_w=spot.draw_w,
                    weight_kg=spot.weight_kg,
                )
            )
    except Exception:
        _release_all(dcim=dcim, reservations=made)
        raise
    log.info("reserved %d devices for order %s of %s in site %s", len(made), order_ref, ministry_code, site)
    return made


def release(*, dcim: Dcim, order_ref: str) -> int:
    """Drop every reservation of the order (the DCIM's, whoever wrote them); how many there were."""
    held = dcim.reservations(order_ref=order_ref)
    for reservation in held:
        dcim.release(reservation_id=reservation.id)
    return len(held)


def lock_site(*, session: Session, site: str) -> None:
    """The site's advisory transaction lock: one placement of a site at a time, across processes."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"tonle.dcim:{site}"})


def _placed(
    *,
    dcim: Dcim,
    ministry_code: str,
    devices: Sequence[DeviceRequest],
    site: str,
    labels: Mapping[str, str] | None = None,
) -> PlacementResult:
    held = dcim.reservations()
    found = dcim.racks(site=site)
    ours = ministry_racks(racks=found, held=held, ministry_code=ministry_code)
    racks = _reservations_full_depth(found, held)
    result = _place_as_reservations(racks=racks, devices=devices, ministry_rack_ids=ours, site=site)
    if not result.ok:
        raise _refused(result, site=site, racks=len(racks), labels=labels or {})
    return result


def ministry_racks(*, racks: Sequence[RackInfo], held: Sequence[Reservation], ministry_code: str) -> set[str]:
    """Racks where the ministry already has devices installed or units reserved."""
    return {r.id for r in racks if ministry_code in r.ministries} | {
        r.rack_id for r in held if r.ministry_code == ministry_code
    }


def _place_as_reservations(
    *, racks: Sequence[RackInfo], devices: Sequence[DeviceRequest], ministry_rack_ids: set[str], site: str
) -> PlacementResult:
    """`placement.place`, one device at a time in its order (tallest first), each against the
    racks as the earlier ones left them with their units taken on both faces: two half-depth
    devices of one order must not share units either, as their reservations could not."""
    placement.validate(devices)
    ours = set(ministry_rack_ids)
    placed: dict[int, placement.Placement] = {}
    refused: dict[int, placement.Refusal] = {}
    current = list(racks)
    for i in sorted(
        range(len(devices)), key=lambda i: (-devices[i].height_u, -devices[i].draw_w, -devices[i].weight_kg)
    ):
        result = placement.place(racks=current, devices=[devices[i]], ministry_rack_ids=ours, site=site)
        if not result.ok:
            refused[i] = result.refusals[0]
            continue
        spot = placed[i] = result.placements[0]
        ours.add(spot.rack_id)
        current = [_reserved(r, spot) if r.id == spot.rack_id else r for r in current]
    return PlacementResult(
        placements=tuple(placed[i] for i in sorted(placed)), refusals=tuple(refused[i] for i in sorted(refused))
    )


def _reserved(rack: RackInfo, spot: placement.Placement) -> RackInfo:
    feeds = tuple(
        replace(f, allocated_w=f.allocated_w + spot.draw_w) if f.id == spot.feed_id else f for f in rack.feeds
    )
    return replace(
        rack,
        weight_kg=rack.weight_kg + spot.weight_kg,
        feeds=feeds,
        occupied=(*rack.occupied, UnitSpan(spot.position, spot.height_u, Depth.FULL)),
    )


def _reservations_full_depth(racks: Sequence[RackInfo], held: Sequence[Reservation]) -> list[RackInfo]:
    """The racks with each reservation's units taken on both faces (see the module's docstring)."""
    widened: dict[str, list[UnitSpan]] = {}
    for reservation in held:
        if reservation.span.depth is not Depth.FULL:
            widened.setdefault(reservation.rack_id, []).append(replace(reservation.span, depth=Depth.FULL))
    return [replace(r, occupied=(*r.occupied, *widened[r.id])) if r.id in widened else r for r in racks]


def _refused(result: PlacementResult, *, site: str, racks: int, labels: Mapping[str, str]) -> Conflict:
    first = result.refusals[0]
    name = labels.get(first.device, first.device)
    others = f" (and {len(result.refusals) - 1} more devices refused)" if len(result.refusals) > 1 else ""
    return Conflict(
        f"device '{name}' does not fit in site '{site}': not enough {first.reason.value}: "
        f"{first.detail}{others}; nothing was reserved",
        reason=first.reason.value,
        device=name,
        refusals=[
            {"device": labels.get(r.device, r.device), "reason": r.reason.value, "detail": r.detail}
            for r in result.refusals
        ],
        racks=racks,
    )


def _release_all(*, dcim: Dcim, reservations: Sequence[Reservation]) -> None:
    for reservation in reservations:
        try:
            dcim.release(reservation_id=reservation.id)
        except Exception:  # keep releasing the others; the leftover is logged by id
            log.exception("could not release DCIM reservation %s of order %s", reservation.id, reservation.order_ref)


# --- the order's hooks (requests.service) -----------------------------------------------------


def check_request(*, offering: Offering, parameters: Mapping[str, Any], sizes: Mapping[str, Any]) -> None:
    """At submission, with the other input checks: sizes no rack could take, or more units or
    power than the plan sells (422 naming the field)."""
    if offering.rack_devices_from is None:
        return
    validate(offering=offering, devices=device_requests(parameters, offering))
    field = f"parameters.{offering.rack_devices_from}"
    within_plan(sizes=sizes, devices=list(parameters.get(offering.rack_devices_from) or []), fields=(field, field))


def within_plan(*, sizes: Mapping[str, Any], devices: Sequence[Mapping[str, Any]], fields: tuple[str, str]) -> None:
    """The plan's units and power are what the ministry's quota pays for: its devices together
    stay within them (422 naming `fields`' units or power field, whichever goes over)."""
    units = sum(int(d.get("rack_units", 0)) for d in devices)
    watts = sum(float(d.get("power_watts", 0)) for d in devices)
    if "rack_units" in sizes and units > int(sizes["rack_units"]):
        raise InvalidInput(f"the devices take {units} U; the plan has {sizes['rack_units']} U", field=fields[0])
    if "power_kw" in sizes and watts > float(sizes["power_kw"]) * WATTS_PER_KW:
        raise InvalidInput(f"the devices draw {watts:g} W; the plan has {sizes['power_kw']} kW", field=fields[1])


def checks_at_order(offering: Offering) -> bool:
    """Whether `check_order` has anything to check for this offering's orders (it places devices)."""
    return offering.rack_devices_from is not None


def check_order(*, session: Session, offering: Offering, ministry_id: uuid.UUID, parameters: Mapping[str, Any]) -> None:
    """At submission, once an idempotent replay has been answered: no DCIM configured (409), a name
    the ministry's co-location already uses (409), or devices that do not fit the racks as they
    are now (409 with the reason). Writes nothing, and needs no lock of the ministry's: it reads
    live services, which only approvals create, and the approval checks again under the site's
    lock before it places the devices for real."""
    if not checks_at_order(offering):
        return
    dcim = connection.require()
    ministry = ministries.get(session=session, ministry_id=ministry_id)
    _refuse_taken_name(session=session, offering=offering, ministry_id=ministry_id, name=_service_name(parameters))
    check_fits(dcim=dcim, ministry_code=ministry.code, devices=device_requests(parameters, offering))


def reserve_for_service(*, session: Session, offering: Offering, service: Service) -> list[Reservation]:
    """At the last approval, once the service row exists: reserve its devices under their DCIM
    names with the service's id as the order. A refusal raises and the approval rolls back."""
    if offering.rack_devices_from is None:
        return []
    ministry = ministries.get(session=session, ministry_id=service.ministry_id)
    name = _service_name(service.parameters)
    ordered = device_requests(service.parameters, offering)
    labels = {dcim_device_name(ministry_code=ministry.code, service_name=name, device=d.name): d.name for d in ordered}
    devices = [replace(d, name=dcim_name) for d, dcim_name in zip(ordered, labels, strict=True)]
    session.flush()  # the database's own errors before anything is written to the DCIM
    site = get_settings().dcim_site
    lock_site(session=session, site=site)  # before the name check: the lock orders approvals
    _refuse_taken_name(
        session=session, offering=offering, ministry_id=service.ministry_id, name=name, excluding=service.id
    )
    return reserve(
        site=site,
        session=session,
        dcim=connection.require(),
        ministry_code=ministry.code,
        order_ref=str(service.id),
        devices=devices,
        labels=labels,
    )


def _service_name(parameters: Mapping[str, Any]) -> str:
    return str(parameters.get("name") or "colocation")


def _refuse_taken_name(
    *, session: Session, offering: Offering, ministry_id: uuid.UUID, name: str, excluding: uuid.UUID | None = None
) -> None:
    """Devices are named after their service in the DCIM, so a ministry's live co-location
    services must have distinct names: checked at submission, and again at approval under the
    site's lock (which serialises approvals, so two orders of one name cannot both pass)."""
    query = select(Service.id).where(
        Service.ministry_id == ministry_id,
        Service.offering_id == offering.id,
        Service.name == name,
        Service.status != ServiceStatus.retired,
    )
    if excluding is not None:
        query = query.where(Service.id != excluding)
    live = session.exec(query).first()
    if live is not None:
        raise Conflict(
            f"the ministry's service {live} is already named '{name}'; its devices would share their DCIM names",
            field="parameters.name",
        )
