"""The DCIM port (`ports.Dcim`) on Nautobot, through pynautobot.

What Tonle needs and Nautobot lacks lives in custom fields the data centre's Nautobot carries
(devcloud/dcim/seed.py makes them; a real site adds the same): `tonle_max_weight_kg` on racks;
`tonle_weight_kg`, `tonle_draw_w`, `tonle_feed` on devices and reservations; `tonle_device`,
`tonle_depth`, `tonle_ministry`, `tonle_order` on reservations.

How the racks are read:

* occupied units: every racked device (its position, its type's height, its face and depth)
  and every rack reservation (Tonle's with their depth; anybody else's as full depth, split into
  contiguous runs). Nautobot does not enforce reservations; placement does.
* weight: the racked devices' and the reservations' `tonle_weight_kg` (nothing when unset).
* a feed's allocated draw: the `tonle_draw_w` of the devices and reservations whose `tonle_feed`
  names it.

Reservations are not safe against concurrent writers by themselves: the caller serialises
placement + reserve per site (a lock in Tonle's database), re-reading the racks inside the lock.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pynautobot

from orchestrator.ports import Depth, InstalledDevice, PowerFeed, RackedDevice, RackInfo, Reservation, UnitSpan

SITE_TYPE = "Site"
COLOCATION_ROLE = "Co-location"
PATCH_PANEL_ROLE = "Patch panel"
MANUFACTURER = "Generic"
NIC_TYPE = "1000base-t"
#: The IPAM namespace co-location addresses live in (the seeded VLANs' prefixes are there too).
NAMESPACE = "Global"
PSU_TYPE = "iec-60320-c14"
#: A feed takes one cable: devices plug into a zero-U PDU per feed and rack (`<feed>-pdu`).
PDU_ROLE = "PDU"
PDU_MODEL = "PDU 24-outlet (0U)"
PDU_INLET = "inlet"
PDU_OUTLETS = 24


def _id(value: Any) -> str | None:
    """The id of a nested object (pynautobot Record or dict) or of a plain id."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value["id"]) if value.get("id") else None
    return str(value.id)


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def runs(units: Iterable[int]) -> list[tuple[int, int]]:
    """Contiguous runs of unit numbers as (lowest, height): [1, 2, 3, 7] -> [(1, 3), (7, 1)]."""
    result: list[tuple[int, int]] = []
    for unit in sorted(set(units)):
        if result and result[-1][0] + result[-1][1] == unit:
            result[-1] = (result[-1][0], result[-1][1] + 1)
        else:
            result.append((unit, 1))
    return result


class NautobotDcim:
    """`ports.Dcim` against one Nautobot (its REST API, a token with write access)."""

    def __init__(self, *, url: str, token: str) -> None:
        self.api = pynautobot.api(url, token=token)
        if url.startswith(("http://127.", "http://localhost", "http://[::1]")):
            self.api.http_session.trust_env = False  # loopback: never through a proxy

    @classmethod
    def from_file(cls, path: Path) -> NautobotDcim:
        """From a `{"url", "token"}` file, as the local data centre writes `devcloud/dcim.json`."""
        data = json.loads(path.read_text())
        return cls(url=str(data["url"]), token=str(data["token"]))

    # --- reading ------------------------------------------------------------------------------

    def _sites(self) -> dict[str, tuple[str, str]]:
        """location id -> (site name, room name): the site is the nearest ancestor of location
        type `Site` (a rack right in a site has the site as its room too)."""
        types = {str(t.id): str(t.name) for t in self.api.dcim.location_types.all()}
        locations = {str(loc.id): loc for loc in self.api.dcim.locations.all()}
        out: dict[str, tuple[str, str]] = {}
        for lid, loc in locations.items():
            chain = [loc]
            while _id(chain[-1].parent) in locations:
                chain.append(locations[str(_id(chain[-1].parent))])
            site = next((c for c in chain if types.get(str(_id(c.location_type))) == SITE_TYPE), chain[-1])
            out[lid] = (str(site.name), str(loc.name))
        return out

    def racks(self, *, site: str | None = None) -> list[RackInfo]:
        where = self._sites()
        device_types = {str(t.id): t for t in self.api.dcim.device_types.all()}
        occupied: dict[str, list[UnitSpan]] = defaultdict(list)
        weight: dict[str, float] = defaultdict(float)
        draw: dict[str, float] = defaultdict(float)
        ministries: dict[str, set[str]] = defaultdict(set)
        for device in self.api.dcim.devices.all():
            rack_id = _id(device.rack)
            dtype = device_types.get(str(_id(device.device_type)))
            if rack_id is None or dtype is None:
                continue
            cf = device.custom_fields or {}
            if cf.get("tonle_ministry"):
                ministries[rack_id].add(str(cf["tonle_ministry"]))
            weight[rack_id] += _number(cf.get("tonle_weight_kg"))
            if cf.get("tonle_feed"):
                draw[str(cf["tonle_feed"])] += _number(cf.get("tonle_draw_w"))
            height = int(dtype.u_height or 0)
            if device.position is None or height < 1:
                continue
            face = _value(device.face) or "front"
            depth = Depth.FULL if dtype.is_full_depth else Depth(face)
            occupied[rack_id].append(UnitSpan(int(device.position), height, depth))
        for reservation in self.api.dcim.rack_reservations.all():
            rack_id = str(_id(reservation.rack))
            cf = reservation.custom_fields or {}
            weight[rack_id] += _number(cf.get("tonle_weight_kg"))
            if cf.get("tonle_feed"):
                draw[str(cf["tonle_feed"])] += _number(cf.get("tonle_draw_w"))
            depth = Depth(cf["tonle_depth"]) if cf.get("tonle_depth") in set(Depth) else Depth.FULL
            occupied[rack_id] += [UnitSpan(low, height, depth) for low, height in runs(reservation.units or [])]
        feeds: dict[str, list[PowerFeed]] = defaultdict(list)
        for feed in self.api.dcim.power_feeds.all():
            rack_id = _id(feed.rack)
            if rack_id is None:
                continue
            feeds[rack_id].append(
                PowerFeed(
                    id=str(feed.id),
                    name=str(feed.name),
                    voltage=int(feed.voltage),
                    amperage=int(feed.amperage),
                    phase=_value(feed.phase) or "single-phase",
                    max_utilization=int(feed.max_utilization),
                    allocated_w=draw[str(feed.id)],
                )
            )
        result = []
        for rack in self.api.dcim.racks.all():
            rid = str(rack.id)
            site_name, room = where.get(str(_id(rack.location)), ("", ""))
            if site is not None and site_name != site:
                continue
            cf = rack.custom_fields or {}
            result.append(
                RackInfo(
                    id=rid,
                    name=str(rack.name),
                    site=site_name,
                    room=room,
                    u_height=int(rack.u_height),
                    max_weight_kg=_number(cf.get("tonle_max_weight_kg")),
                    weight_kg=weight[rid],
                    feeds=tuple(sorted(feeds[rid], key=lambda f: f.name)),
                    occupied=tuple(occupied[rid]),
                    ministries=frozenset(ministries[rid]),
                )
            )
        return sorted(result, key=lambda r: (r.site, r.room, r.name))

    def reservations(self, *, ministry_code: str | None = None, order_ref: str | None = None) -> list[Reservation]:
        found = []
        for record in self.api.dcim.rack_reservations.all():
            reservation = _reservation(record)
            if reservation is None:
                continue
            if ministry_code is not None and reservation.ministry_code != ministry_code:
                continue
            if order_ref is not None and reservation.order_ref != order_ref:
                continue
            found.append(reservation)
        return found

    # --- writing ------------------------------------------------------------------------------

    def reserve(
        self,
        *,
        rack_id: str,
        span: UnitSpan,
        ministry_code: str,
        order_ref: str,
        device_name: str,
        feed_id: str,
        draw_w: float,
        weight_kg: float,
    ) -> Reservation:
        record = self.api.dcim.rack_reservations.create(
            rack=rack_id,
            units=list(range(span.position, span.top + 1)),
            description=f"tonle {order_ref} {device_name} ({ministry_code})",
            custom_fields={
                "tonle_device": device_name,
                "tonle_depth": span.depth.value,
                "tonle_feed": feed_id,
                "tonle_draw_w": draw_w,
                "tonle_weight_kg": weight_kg,
                "tonle_ministry": ministry_code,
                "tonle_order": order_ref,
            },
        )
        made = _reservation(record)
        assert made is not None
        return made

    def release(self, *, reservation_id: str) -> None:
        record = self.api.dcim.rack_reservations.get(id=reservation_id)
        if record is not None:
            record.delete()

    def install(self, *, device: InstalledDevice) -> str:
        """The reservation becomes a device (type `Generic <model>` of the reserved height) in
        the rack at the reserved units, with its serial, weight, draw and feed; a power port
        cabled to the reserved feed; then the reservation is deleted. Each step looks for what an
        earlier, interrupted call made, so a retry finishes the job instead of failing on it."""
        res = device.reservation
        rack = self.api.dcim.racks.get(id=res.rack_id)
        manufacturer = self.api.dcim.manufacturers.get(name=MANUFACTURER) or self.api.dcim.manufacturers.create(
            name=MANUFACTURER
        )
        model = f"{device.model} ({res.span.height}U{'' if res.span.depth is Depth.FULL else ', half depth'})"
        dtype = self.api.dcim.device_types.get(model=model, manufacturer=manufacturer.id)
        if dtype is None:
            dtype = self.api.dcim.device_types.create(
                manufacturer=manufacturer.id,
                model=model,
                u_height=res.span.height,
                is_full_depth=res.span.depth is Depth.FULL,
            )
        role = self.api.extras.roles.get(name=COLOCATION_ROLE)
        status = self.api.extras.statuses.get(name="Active")
        made = self.api.dcim.devices.get(name=res.device_name, rack=res.rack_id) or self.api.dcim.devices.create(
            name=res.device_name,
            device_type=dtype.id,
            role=role.id,
            status=status.id,
            location=_id(rack.location),
            rack=res.rack_id,
            position=res.span.position,
            face="rear" if res.span.depth is Depth.REAR else "front",
            serial=device.serial,
            custom_fields={
                "tonle_weight_kg": res.weight_kg,
                "tonle_draw_w": res.draw_w,
                "tonle_feed": res.feed_id,
                "tonle_ministry": res.ministry_code,
                "tonle_order": res.order_ref,
            },
        )
        interfaces = self._nics(made.id, device.nic_count, status.id)
        self._plug(made.id, rack, res, interfaces, status.id)
        if device.ip_addresses:
            self._addresses(interfaces, device, status.id)
        self.release(reservation_id=res.id)
        return str(made.id)

    def _plug(self, device_id: Any, rack: Any, res: Reservation, interfaces: list[Any], status: Any) -> None:
        """The device's PSUs and NICs cabled in `rack` where they are not yet."""
        connected = self.api.extras.statuses.get(name="Connected").id
        # PSU1 on the feed placement drew on, PSU2 on the rack's other feed, for redundancy; the
        # draw is counted once, on the reserved feed, as placement counted it. A feed takes one
        # cable, so each is plugged into the outlets of that feed's PDU in the rack.
        feeds = list(self.api.dcim.power_feeds.filter(rack=res.rack_id))
        reserved = next(f for f in feeds if str(f.id) == res.feed_id)
        other = next((f for f in feeds if str(f.id) != res.feed_id), None)
        for psu, feed, draw in (("PSU1", reserved, res.draw_w), ("PSU2", other, 0.0)):
            if feed is None:
                continue
            port = self.api.dcim.power_ports.get(device=device_id, name=psu) or self.api.dcim.power_ports.create(
                device=device_id, name=psu, type=PSU_TYPE, allocated_draw=round(draw) or None
            )
            if port.cable is None:
                outlet = self._free_outlet(rack, feed, status, connected)
                self._cable("dcim.powerport", port.id, "dcim.poweroutlet", outlet.id, connected)
        free = self._free_front_ports(res.rack_id)
        for interface in interfaces:
            if interface.cable is None:
                if not free:
                    raise RuntimeError(f"rack {rack.name} has no free patch-panel port for {res.device_name}")
                self._cable("dcim.interface", interface.id, "dcim.frontport", free.pop(0).id, connected)

    def move(self, *, device_id: str, reservation: Reservation) -> None:
        """Cables out, then the device to its new rack, units and face with the reserved feed
        recorded, then cabled there. Once the device stands at the reserved place its old
        cables are gone (they go first), so a retry only cables what is missing."""
        res = reservation
        device = self.api.dcim.devices.get(id=device_id)
        if device is None:
            raise RuntimeError(f"no device {device_id} in the DCIM to move")
        rack = self.api.dcim.racks.get(id=res.rack_id)
        face = "rear" if res.span.depth is Depth.REAR else "front"
        there = str(_id(device.rack)) == res.rack_id and int(device.position or 0) == res.span.position
        if not there:
            self._unplug(device_id)
            device.update(
                {
                    "location": _id(rack.location),
                    "rack": res.rack_id,
                    "position": res.span.position,
                    "face": face,
                    "custom_fields": {**(device.custom_fields or {}), "tonle_feed": res.feed_id},
                }
            )
        interfaces = sorted(self.api.dcim.interfaces.filter(device=device_id), key=lambda i: _port_number(str(i.name)))
        self._plug(device_id, rack, res, interfaces, self.api.extras.statuses.get(name="Active").id)
        self.release(reservation_id=res.id)

    def _unplug(self, device_id: str) -> None:
        for endpoint in (self.api.dcim.power_ports, self.api.dcim.interfaces):
            for port in endpoint.filter(device=device_id):
                if port.cable is not None:
                    cable = self.api.dcim.cables.get(id=_id(port.cable))
                    if cable is not None:
                        cable.delete()

    def _free_outlet(self, rack: Any, feed: Any, status: Any, connected: Any) -> Any:
        """The lowest free outlet of the feed's PDU in the rack (made, and cabled to the feed,
        the first time a device of the rack needs it)."""
        pdu = self._pdu(rack, feed, status, connected)
        free = [o for o in self.api.dcim.power_outlets.filter(device=pdu.id) if o.cable is None]
        if not free:
            raise RuntimeError(f"PDU {pdu.name} of rack {rack.name} has no free outlet")
        return sorted(free, key=lambda o: _port_number(str(o.name)))[0]

    def _pdu(self, rack: Any, feed: Any, status: Any, connected: Any) -> Any:
        name = f"{feed.name}-pdu"
        pdu = self.api.dcim.devices.get(name=name, rack=rack.id)
        if pdu is None:
            try:
                pdu = self.api.dcim.devices.create(
                    name=name,
                    device_type=self._pdu_type().id,
                    role=self._role(PDU_ROLE).id,
                    status=status,
                    location=_id(rack.location),
                    rack=rack.id,  # zero-U: in the rack, at no unit
                )
            except pynautobot.RequestError:  # made a moment ago by another installation
                pdu = self.api.dcim.devices.get(name=name, rack=rack.id)
                if pdu is None:
                    raise
        inlet = self.api.dcim.power_ports.get(device=pdu.id, name=PDU_INLET)
        if inlet.cable is None:
            self._cable("dcim.powerport", inlet.id, "dcim.powerfeed", feed.id, connected)
        return pdu

    def _pdu_type(self) -> Any:
        manufacturer = self.api.dcim.manufacturers.get(name=MANUFACTURER)
        dtype = self.api.dcim.device_types.get(model=PDU_MODEL, manufacturer=manufacturer.id)
        if dtype is not None:
            return dtype
        dtype = self.api.dcim.device_types.create(
            manufacturer=manufacturer.id, model=PDU_MODEL, u_height=0, is_full_depth=False
        )
        inlet = self.api.dcim.power_port_templates.create(
            device_type=dtype.id, name=PDU_INLET, type="iec-60309-p-n-e-6h"
        )
        for n in range(1, PDU_OUTLETS + 1):
            self.api.dcim.power_outlet_templates.create(
                device_type=dtype.id, name=f"outlet-{n}", type="iec-60320-c13", power_port_template=inlet.id
            )
        return dtype

    def _role(self, name: str) -> Any:
        return self.api.extras.roles.get(name=name) or self.api.extras.roles.create(
            name=name, content_types=["dcim.device"]
        )

    def _cable(self, a_type: str, a_id: Any, b_type: str, b_id: Any, status: Any) -> None:
        self.api.dcim.cables.create(
            termination_a_type=a_type,
            termination_a_id=str(a_id),
            termination_b_type=b_type,
            termination_b_id=str(b_id),
            status=status,
        )

    def _nics(self, device_id: Any, count: int, status: Any) -> list[Any]:
        """nic1 .. nic<count> of the device, made when missing, in order."""
        found = []
        for n in range(1, count + 1):
            name = f"nic{n}"
            found.append(
                self.api.dcim.interfaces.get(device=device_id, name=name)
                or self.api.dcim.interfaces.create(device=device_id, name=name, type=NIC_TYPE, status=status)
            )
        return found

    def _patch_panel(self, rack_id: str) -> Any | None:
        return next(iter(self.api.dcim.devices.filter(rack=rack_id, role=PATCH_PANEL_ROLE)), None)

    def _free_front_ports(self, rack_id: str) -> list[Any]:
        panel = self._patch_panel(rack_id)
        if panel is None:
            return []
        ports = [p for p in self.api.dcim.front_ports.filter(device=panel.id) if p.cable is None]
        return sorted(ports, key=lambda p: _port_number(str(p.name)))

    def free_patch_ports(self, *, rack_id: str) -> list[str]:
        return [str(p.name) for p in self._free_front_ports(rack_id)]

    def _addresses(self, interfaces: list[Any], device: InstalledDevice, status: Any) -> None:
        """The NICs' addresses in the DCIM's IPAM, under the service's subnet (Nautobot keeps an
        address only inside a prefix it knows)."""
        if device.prefix and not list(self.api.ipam.prefixes.filter(prefix=device.prefix)):
            self.api.ipam.prefixes.create(
                prefix=device.prefix,
                status=status,
                type="network",
                description=_prefix_description(device.reservation.order_ref),
            )
        namespace = self.api.ipam.namespaces.get(name=NAMESPACE).id
        for interface, address in zip(interfaces, device.ip_addresses, strict=False):
            ip = next(iter(self.api.ipam.ip_addresses.filter(address=address)), None) or (
                self.api.ipam.ip_addresses.create(address=address, status=status, type="host", namespace=namespace)
            )
            if not list(self.api.ipam.ip_address_to_interface.filter(ip_address=ip.id, interface=interface.id)):
                self.api.ipam.ip_address_to_interface.create(ip_address=ip.id, interface=interface.id)

    def installed(self, *, order_ref: str) -> list[RackedDevice]:
        devices = list(self.api.dcim.devices.filter(cf_tonle_order=order_ref))
        if not devices:
            return []
        heights = {str(t.id): int(t.u_height or 0) for t in self.api.dcim.device_types.all()}
        statuses = {str(s.id): str(s.name) for s in self.api.extras.statuses.all()}
        found = []
        for device in devices:
            rack_id = str(_id(device.rack))
            sockets = self._sockets(rack_id)
            psus = sorted(self.api.dcim.power_ports.filter(device=device.id), key=lambda p: str(p.name))
            power = [sockets.get(_id(p.cable), ("?", "")) for p in psus if p.cable]
            panel = self._patch_panel(rack_id)
            ports = (
                {_id(p.cable): str(p.name) for p in self.api.dcim.front_ports.filter(device=panel.id) if p.cable}
                if panel is not None
                else {}
            )
            nics = sorted(self.api.dcim.interfaces.filter(device=device.id), key=lambda i: _port_number(str(i.name)))
            cf = device.custom_fields or {}
            found.append(
                RackedDevice(
                    id=str(device.id),
                    name=str(device.name),
                    rack_id=rack_id,
                    span=UnitSpan(
                        int(device.position or 0),
                        heights.get(str(_id(device.device_type)), 1),
                        Depth.FULL if _value(device.face) != "rear" else Depth.REAR,
                    ),
                    serial=str(device.serial or ""),
                    status=statuses.get(str(_id(device.status)), ""),
                    ministry_code=str(cf.get("tonle_ministry") or ""),
                    order_ref=str(cf.get("tonle_order") or ""),
                    power_feeds=tuple(feed for feed, _ in power),
                    power_sockets=tuple(socket for _, socket in power),
                    patch_ports=tuple(ports.get(_id(i.cable), "?") for i in nics if i.cable),
                    ip_addresses=tuple(str(ip.address) for ip in self._device_addresses(device.id)),
                )
            )
        return sorted(found, key=lambda d: d.name)

    def _sockets(self, rack_id: str) -> dict[str | None, tuple[str, str]]:
        """Cable id -> (feed name, socket) for what a device's PSU can be cabled to in the rack:
        an outlet of a feed's PDU (`<pdu> outlet-<n>`), or the feed itself (no socket)."""
        feeds = {_id(f.cable): str(f.name) for f in self.api.dcim.power_feeds.filter(rack=rack_id) if f.cable}
        found: dict[str | None, tuple[str, str]] = {cable: (name, "") for cable, name in feeds.items()}
        role = self.api.extras.roles.get(name=PDU_ROLE)
        for pdu in self.api.dcim.devices.filter(rack=rack_id, role=role.id) if role is not None else []:
            inlet = self.api.dcim.power_ports.get(device=pdu.id, name=PDU_INLET)
            feed = feeds.get(_id(inlet.cable), "?") if inlet is not None and inlet.cable else "?"
            for outlet in self.api.dcim.power_outlets.filter(device=pdu.id):
                if outlet.cable:
                    found[_id(outlet.cable)] = (feed, f"{pdu.name} {outlet.name}")
        return found

    def _device_addresses(self, device_id: Any) -> list[Any]:
        return sorted(self.api.ipam.ip_addresses.filter(device_id=str(device_id)), key=lambda ip: str(ip.address))

    def remove(self, *, device_id: str) -> None:
        """Cables first (Nautobot would leave the patch-panel and feed ends marked as cabled
        otherwise), then the addresses, the device, and the subnet's prefix once no address of
        it is left when Tonle made it."""
        device = self.api.dcim.devices.get(id=device_id)
        if device is None:
            return
        order_ref = str((device.custom_fields or {}).get("tonle_order") or "")
        self._unplug(device_id)
        parents = set()
        for ip in self._device_addresses(device_id):
            parents.add(_id(ip.parent))
            ip.delete()
        device.delete()
        for parent_id in parents - {None}:
            prefix = self.api.ipam.prefixes.get(id=parent_id)
            if (
                prefix is not None
                and prefix.description == _prefix_description(order_ref)
                and not list(self.api.ipam.ip_addresses.filter(parent=parent_id))
            ):
                prefix.delete()


def _first_id(records: list[Any]) -> str | None:
    return str(records[0].id) if records else None


def _port_number(name: str) -> tuple[int, str]:
    """`port-10` after `port-9`: the number in a port's name, then the name."""
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else 0, name)


def _prefix_description(order_ref: str) -> str:
    return f"tonle co-location {order_ref}"


def _value(choice: Any) -> str | None:
    """A choice field as its value (`{"value": "front", "label": "Front"}` or a Record)."""
    if choice is None:
        return None
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict):
        return str(choice.get("value")) if choice.get("value") is not None else None
    value = getattr(choice, "value", None)
    return str(value) if value is not None else None


def _reservation(record: Any) -> Reservation | None:
    """A Tonle reservation (one with `tonle_device`), or None for anybody else's."""
    cf = record.custom_fields or {}
    if not cf.get("tonle_device"):
        return None
    low, height = runs(record.units or [])[0]
    depth = Depth(cf["tonle_depth"]) if cf.get("tonle_depth") in set(Depth) else Depth.FULL
    return Reservation(
        id=str(record.id),
        rack_id=str(_id(record.rack)),
        span=UnitSpan(low, height, depth),
        ministry_code=str(cf.get("tonle_ministry") or ""),
        order_ref=str(cf.get("tonle_order") or ""),
        device_name=str(cf["tonle_device"]),
        feed_id=str(cf.get("tonle_feed") or ""),
        draw_w=_number(cf.get("tonle_draw_w")),
        weight_kg=_number(cf.get("tonle_weight_kg")),
    )
