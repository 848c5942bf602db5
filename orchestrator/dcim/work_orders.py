"""Technicians' work orders for a co-location service: where each device goes (or comes out
of), what it is cabled to, its addresses, and whom to call; as JSON and as a printable page.

Everything is read from the DCIM as it is now (reservations for devices still to rack, the
devices themselves once racked) and from the stack's outputs (addresses, gateway): nothing about
racks is kept in Tonle's tables. The page escapes every value: names, models, serials and
contacts come from ministries and technicians, and are hostile until proven otherwise.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.dcim.service import dcim_device_name
from orchestrator.ports import Dcim, Depth, RackedDevice, RackInfo, Reservation

Kind = Literal["installation", "removal"]


@dataclass(frozen=True)
class OrderDevice:
    """A device as the order names it, and the name the DCIM knows it by."""

    name: str
    dcim_name: str
    model: str
    nic_count: int
    serial: str | None


@dataclass(frozen=True)
class Subject:
    """The service a work order is for, as plain values (the API has rows, a step has inputs)."""

    service_id: str
    service_name: str
    ministry_code: str
    ministry_name: str
    parameters: Mapping[str, Any]
    endpoints: Mapping[str, Any]
    devices_from: str


def order_devices(subject: Subject) -> list[OrderDevice]:
    items: Sequence[Mapping[str, Any]] = subject.parameters.get(subject.devices_from) or []
    return [
        OrderDevice(
            name=str(item["name"]),
            dcim_name=dcim_device_name(
                ministry_code=subject.ministry_code, service_name=subject.service_name, device=str(item["name"])
            ),
            model=str(item.get("model", "")),
            nic_count=int(item.get("nic_count") or 1),
            serial=str(item["serial"]) if item.get("serial") else None,
        )
        for item in items
    ]


def addresses(endpoints: Mapping[str, Any]) -> dict[str, list[str]]:
    """Device name -> its NICs' addresses, from the stack's `devices` output."""
    found: dict[str, list[str]] = {}
    for entry in endpoints.get("devices") or []:
        if isinstance(entry, Mapping) and entry.get("name"):
            found[str(entry["name"])] = [str(a) for a in entry.get("ip_addresses") or [entry.get("address")] if a]
    return found


def build(*, dcim: Dcim, subject: Subject, kind: Kind) -> dict[str, Any]:
    """The work order as JSON (the shape `GET /v1/services/{id}/work-order` returns)."""
    racks = {rack.id: rack for rack in dcim.racks()}
    reserved = {r.device_name: r for r in dcim.reservations(order_ref=subject.service_id)}
    racked = {d.name: d for d in dcim.installed(order_ref=subject.service_id)}
    ips = addresses(subject.endpoints)
    proposed = _proposed_patch_ports(dcim, subject, reserved)
    devices = []
    for device in order_devices(subject):
        entry: dict[str, Any] = {"name": device.name, "dcim_name": device.dcim_name, "model": device.model}
        if device.dcim_name in racked:
            entry |= _racked(racked[device.dcim_name], racks)
        elif device.dcim_name in reserved:
            entry |= _reserved(reserved[device.dcim_name], racks, proposed.get(device.dcim_name, []))
            if device.serial:
                entry["serial"] = device.serial
        else:
            entry |= {"status": "removed", "power_feeds": [], "patch_ports": []}
        entry |= {"ip_addresses": ips.get(device.name, []), "gateway": subject.endpoints.get("gateway")}
        devices.append(entry)
    return {
        "kind": kind,
        "service": {"id": subject.service_id, "name": subject.service_name},
        "ministry": {"code": subject.ministry_code, "name": subject.ministry_name},
        "contact": {
            "name": subject.parameters.get("contact_name"),
            "phone": subject.parameters.get("contact_phone"),
        },
        "subnet_cidr": subject.endpoints.get("subnet_cidr"),
        "devices": devices,
    }


def _where(rack: RackInfo | None) -> dict[str, Any]:
    return {
        "site": rack.site if rack else None,
        "room": rack.room if rack else None,
        "rack": rack.name if rack else None,
    }


def _face(depth: Depth) -> str:
    return "rear" if depth is Depth.REAR else "front"


def _reserved(reservation: Reservation, racks: Mapping[str, RackInfo], patch_ports: list[str]) -> dict[str, Any]:
    rack = racks.get(reservation.rack_id)
    feeds = {f.id: f.name for f in rack.feeds} if rack else {}
    other = [name for fid, name in feeds.items() if fid != reservation.feed_id]
    power = [{"name": feeds.get(reservation.feed_id, reservation.feed_id), "psu": "PSU1"}]
    power += [{"name": name, "psu": "PSU2"} for name in other[:1]]
    return {
        **_where(rack),
        "position": reservation.span.position,
        "height": reservation.span.height,
        "face": _face(reservation.span.depth),
        "depth": "full" if reservation.span.depth is Depth.FULL else "half",
        "power_feeds": power,
        "patch_ports": patch_ports,
        "status": "reserved",
    }


def _racked(device: RackedDevice, racks: Mapping[str, RackInfo]) -> dict[str, Any]:
    return {
        **_where(racks.get(device.rack_id)),
        "position": device.span.position,
        "height": device.span.height,
        "face": _face(device.span.depth),
        "power_feeds": [
            {"name": name, "socket": socket} if socket else {"name": name}
            for name, socket in zip(
                device.power_feeds, device.power_sockets or [""] * len(device.power_feeds), strict=True
            )
        ],
        "patch_ports": list(device.patch_ports),
        "status": "installed",
        "serial": device.serial,
    }


def _padded(sockets: Sequence[str], feeds: Sequence[str]) -> list[str]:
    return [*sockets, *[""] * (len(feeds) - len(sockets))]


def _proposed_patch_ports(dcim: Dcim, subject: Subject, reserved: Mapping[str, Reservation]) -> dict[str, list[str]]:
    """Free patch-panel ports handed out, in the order's device order, to the devices still to
    rack in each rack. A proposal: mark-installed cables to whatever is free at that moment."""
    free: dict[str, list[str]] = {}
    proposed: dict[str, list[str]] = {}
    for device in order_devices(subject):
        reservation = reserved.get(device.dcim_name)
        if reservation is None:
            continue
        if reservation.rack_id not in free:
            free[reservation.rack_id] = dcim.free_patch_ports(rack_id=reservation.rack_id)
        ports = free[reservation.rack_id]
        proposed[device.dcim_name], free[reservation.rack_id] = ports[: device.nic_count], ports[device.nic_count :]
    return proposed


# --- the printable page -----------------------------------------------------------------------

_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid #444;padding:4px 6px;text-align:left;vertical-align:top}"
    "@media print{body{margin:0}}"
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, Mapping):
        return " ".join(_text(v) for v in value.values() if v is not None)
    return str(value)


def render_html(order: Mapping[str, Any]) -> str:
    """A page to print and carry into the hall; every value escaped."""
    e = html.escape
    title = f"{'Installation' if order['kind'] == 'installation' else 'Removal'} work order"
    service, ministry, contact = order["service"], order["ministry"], order["contact"]
    columns = (
        *("name", "model", "site", "room", "rack", "position", "height", "face", "power_feeds"),
        *("patch_ports", "ip_addresses", "gateway", "serial", "status"),
    )
    head = "".join(f"<th>{e(c.replace('_', ' '))}</th>" for c in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{e(_text(device.get(c)))}</td>" for c in columns) + "</tr>"
        for device in order["devices"]
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{e(title)}: {e(_text(service["name"]))}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{e(title)}</h1>"
        f"<p>Service <strong>{e(_text(service['name']))}</strong> ({e(_text(service['id']))}) of "
        f"{e(_text(ministry['name']))} ({e(_text(ministry['code']))})</p>"
        f"<p>Contact: {e(_text(contact.get('name')))}, {e(_text(contact.get('phone')))}</p>"
        f"<p>Subnet {e(_text(order.get('subnet_cidr')))}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        "<p>Technician: ____________________ Date: ____________ Signature: ____________________</p>"
        "</body></html>\n"
    )
