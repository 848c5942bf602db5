"""The Nautobot adapter of the DCIM port (orchestrator/dcim/nautobot.py) against the local data
centre's Nautobot (devcloud/dcim), checked through Nautobot's own REST API as an outside
observer (plain HTTP, not the adapter).

Needs a running Nautobot: `python -m devcloud up` starts it in the background; this module waits
for it (the `nautobot` fixture of tests/cloud/conftest.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from orchestrator.dcim import work_orders
from orchestrator.dcim.nautobot import NautobotDcim
from orchestrator.dcim.placement import DeviceRequest, available_power_w, place
from orchestrator.health import dcim as health
from orchestrator.ports import Depth, InstalledDevice, UnitSpan

pytestmark = pytest.mark.cloud


@pytest.fixture(scope="module")
def observer(nautobot_api: httpx.Client) -> httpx.Client:
    return nautobot_api


@pytest.fixture(scope="module")
def dcim(nautobot: dict[str, str]) -> NautobotDcim:
    return NautobotDcim(url=nautobot["url"], token=nautobot["token"])


@pytest.fixture
def order_ref(dcim: NautobotDcim) -> Iterator[str]:
    """A fresh order reference; its reservations are released afterwards, whatever happened."""
    ref = f"test-{uuid.uuid4().hex[:8]}"
    yield ref
    for reservation in dcim.reservations(order_ref=ref):
        dcim.release(reservation_id=reservation.id)


def test_racks_are_the_seeded_data_centre(dcim: NautobotDcim, observer: httpx.Client) -> None:
    # Other tests add sites of their own (and a run cut short may leave one): the seeded two count.
    racks = [r for r in dcim.racks() if r.site in ("primary", "dr")]
    seen = observer.get("/dcim/racks/", params={"limit": 1000}).json()
    assert {r.id for r in racks} <= {r["id"] for r in seen["results"]} and len(racks) == 14
    primary = [r for r in racks if r.site == "primary"]
    assert len(primary) == 10 and {r.room for r in primary} == {"hall-a", "hall-b"}
    assert len(dcim.racks(site="dr")) == 4
    for rack in racks:
        assert rack.u_height == 42 and rack.max_weight_kg == 1000
        assert [f.name for f in rack.feeds] == [f"{rack.name}-A", f"{rack.name}-B"]
        assert all(available_power_w(f) == pytest.approx(230 * 32 * 0.8) for f in rack.feeds)
        # the patch panel: U42, front only (half depth)
        assert UnitSpan(42, 1, Depth.FRONT) in rack.occupied


def test_reserve_is_seen_by_nautobot_and_counted_then_released(
    dcim: NautobotDcim, observer: httpx.Client, order_ref: str
) -> None:
    before = {r.id: r for r in dcim.racks(site="primary")}
    result = place(
        racks=list(before.values()),
        devices=[DeviceRequest("db1", 2, 650, 28), DeviceRequest("sw1", 1, 90, 4, full_depth=False)],
        site="primary",
    )
    assert result.ok, result.refusals
    made = [
        dcim.reserve(
            rack_id=p.rack_id,
            span=UnitSpan(p.position, p.height_u, p.depth),
            ministry_code="health",
            order_ref=order_ref,
            device_name=p.device,
            feed_id=p.feed_id,
            draw_w=p.draw_w,
            weight_kg=p.weight_kg,
        )
        for p in result.placements
    ]
    # Nautobot's own API shows the units, on the racks placement chose
    for reservation, placement in zip(made, result.placements, strict=True):
        seen = observer.get(f"/dcim/rack-reservations/{reservation.id}/").json()
        assert seen["rack"]["id"] == placement.rack_id
        assert seen["units"] == list(placement.units)
        assert seen["custom_fields"]["tonle_order"] == order_ref
    assert {r.device_name for r in dcim.reservations(order_ref=order_ref)} == {"db1", "sw1"}
    assert dcim.reservations(order_ref=order_ref, ministry_code="finance") == []

    after = {r.id: r for r in dcim.racks(site="primary")}
    for p in result.placements:
        rack = after[p.rack_id]
        assert UnitSpan(p.position, p.height_u, p.depth) in rack.occupied
        feed = next(f for f in rack.feeds if f.id == p.feed_id)
        old = next(f for f in before[p.rack_id].feeds if f.id == p.feed_id)
        assert feed.allocated_w >= old.allocated_w + p.draw_w
    assert sum(r.weight_kg for r in after.values()) == pytest.approx(sum(r.weight_kg for r in before.values()) + 32)

    # the same order again, against the racks as they are now, never lands on the same units
    again = place(racks=list(after.values()), devices=[DeviceRequest("db1", 2, 650, 28)], site="primary")
    first = next(p for p in result.placements if p.device == "db1")
    second = again.placements[0]
    assert (second.rack_id, set(second.units)) != (first.rack_id, set(first.units))
    if second.rack_id == first.rack_id:
        assert not set(second.units) & set(first.units)

    for reservation in made:
        dcim.release(reservation_id=reservation.id)
        assert observer.get(f"/dcim/rack-reservations/{reservation.id}/").status_code == 404
    dcim.release(reservation_id=made[0].id)  # again: nothing to do
    assert dcim.reservations(order_ref=order_ref) == []
    assert {r.id: r.occupied for r in dcim.racks(site="primary")} == {r.id: r.occupied for r in before.values()}


def test_install_racks_the_device_cables_both_feeds_and_its_nics_then_remove_frees_everything(
    dcim: NautobotDcim, observer: httpx.Client, order_ref: str
) -> None:
    racks = dcim.racks(site="dr")
    p = place(racks=racks, devices=[DeviceRequest("app1", 1, 400, 18, nic_count=2)], site="dr").placements[0]
    rack = next(r for r in racks if r.id == p.rack_id)
    reserved_feed = next(f for f in rack.feeds if f.id == p.feed_id)
    other_feed = next(f for f in rack.feeds if f.id != p.feed_id)
    free_before = dcim.free_patch_ports(rack_id=p.rack_id)
    reservation = dcim.reserve(
        rack_id=p.rack_id,
        span=UnitSpan(p.position, 1, p.depth),
        ministry_code="health",
        order_ref=order_ref,
        device_name=f"{order_ref}-app1",
        feed_id=p.feed_id,
        draw_w=400,
        weight_kg=18,
    )
    # a subnet Nautobot does not know yet: the adapter records it, then the addresses in it
    third = int(order_ref[-2:], 16)
    prefix = f"10.199.{third}.0/24"
    installed = InstalledDevice(
        reservation=reservation,
        serial="SN-TEST-1",
        model="Dell R650",
        nic_count=2,
        ip_addresses=(f"10.199.{third}.11/24", f"10.199.{third}.12/24"),
        prefix=prefix,
    )
    assert health.problems(dcim=dcim, order_ref=order_ref, expected=1) == ["0 of 1 devices are in the DCIM"]
    device_id = dcim.install(device=installed)
    try:
        # the `dcim` health kind: Active, with its serial, powered
        assert health.problems(dcim=dcim, order_ref=order_ref, expected=1) == []
        seen: dict[str, Any] = observer.get(f"/dcim/devices/{device_id}/").json()
        assert (seen["rack"]["id"], seen["position"], seen["serial"]) == (p.rack_id, p.position, "SN-TEST-1")
        # placement keeps the ministry's next devices near this one
        assert "health" in next(r for r in dcim.racks() if r.id == p.rack_id).ministries
        assert observer.get(f"/dcim/rack-reservations/{reservation.id}/").status_code == 404
        # PSU1 on the reserved feed, PSU2 on the rack's other (B or A) feed
        ports = observer.get("/dcim/power-ports/", params={"device": device_id}).json()["results"]
        assert sorted(port["name"] for port in ports) == ["PSU1", "PSU2"]
        assert all(port["cable"] is not None for port in ports)
        # each through the feed's PDU in the rack (a feed takes one cable in Nautobot)
        cables = {port["name"]: port["cable"]["id"] for port in ports}
        for psu, feed in (("PSU1", reserved_feed), ("PSU2", other_feed)):
            pdu = observer.get("/dcim/devices/", params={"name": f"{feed.name}-pdu"}).json()["results"][0]
            inlet = observer.get("/dcim/power-ports/", params={"device": pdu["id"]}).json()["results"][0]
            assert observer.get(f"/dcim/power-feeds/{feed.id}/").json()["cable"]["id"] == inlet["cable"]["id"]
            outlets = observer.get("/dcim/power-outlets/", params={"device": pdu["id"], "limit": 100}).json()
            assert cables[psu] in {o["cable"]["id"] for o in outlets["results"] if o["cable"]}
        # each NIC cabled to a free front port of the rack's patch panel, with its address
        nics = observer.get("/dcim/interfaces/", params={"device": device_id}).json()["results"]
        assert sorted(n["name"] for n in nics) == ["nic1", "nic2"] and all(n["cable"] for n in nics)
        front = observer.get("/dcim/front-ports/", params={"device": f"{rack.name}-patch", "limit": 100}).json()
        cabled = {port["name"] for port in front["results"] if port["cable"] is not None}
        assert set(free_before[:2]) <= cabled
        assert dcim.free_patch_ports(rack_id=p.rack_id) == free_before[2:]
        ips = observer.get("/ipam/ip-addresses/", params={"device_id": device_id}).json()["results"]
        assert sorted(ip["address"] for ip in ips) == sorted(installed.ip_addresses)
        assert observer.get("/ipam/prefixes/", params={"prefix": prefix}).json()["count"] == 1
        # what the orchestrator reads back
        (racked,) = dcim.installed(order_ref=order_ref)
        assert (racked.id, racked.rack_id, racked.span.position, racked.serial) == (
            device_id,
            p.rack_id,
            p.position,
            "SN-TEST-1",
        )
        assert racked.status == "Active"
        assert racked.power_feeds == (reserved_feed.name, other_feed.name)
        assert [s.split(" ")[0] for s in racked.power_sockets] == [
            f"{reserved_feed.name}-pdu",
            f"{other_feed.name}-pdu",
        ]
        assert racked.patch_ports == tuple(free_before[:2])
        assert racked.ip_addresses == tuple(sorted(installed.ip_addresses))
        # the installed device still counts: units, weight and draw
        now = next(r for r in dcim.racks(site="dr") if r.id == p.rack_id)
        assert UnitSpan(p.position, 1, Depth.FULL) in now.occupied
        assert next(f for f in now.feeds if f.id == p.feed_id).allocated_w >= 400
        # a retry (the worker died after the call) finds what is there and adds nothing
        assert dcim.install(device=installed) == device_id
        assert len(observer.get("/dcim/power-ports/", params={"device": device_id}).json()["results"]) == 2
        assert len(observer.get("/dcim/cables/", params={"device_id": device_id}).json()["results"]) == 4
    finally:
        dcim.remove(device_id=device_id)
    # removed: the device, its cables, its addresses and the prefix Tonle made are gone
    assert observer.get(f"/dcim/devices/{device_id}/").status_code == 404
    assert dcim.installed(order_ref=order_ref) == []
    for socket in racked.power_sockets:  # the PDU outlets are free again (the PDUs stay)
        pdu, outlet = socket.split(" ")
        seen_outlet = observer.get("/dcim/power-outlets/", params={"device": pdu, "name": outlet}).json()
        assert seen_outlet["results"][0]["cable"] is None
    assert dcim.free_patch_ports(rack_id=p.rack_id) == free_before
    assert observer.get("/ipam/ip-addresses/", params={"address": installed.ip_addresses[0]}).json()["count"] == 0
    assert observer.get("/ipam/prefixes/", params={"prefix": prefix}).json()["count"] == 0
    after = next(r for r in dcim.racks(site="dr") if r.id == p.rack_id)
    assert after.occupied == rack.occupied and after.weight_kg == rack.weight_kg
    dcim.remove(device_id=device_id)  # again: nothing to do


def test_devices_of_one_rack_share_its_feeds_through_the_pdus(
    dcim: NautobotDcim, observer: httpx.Client, order_ref: str
) -> None:
    """A feed takes one cable: the second device of a rack on the same feed must still be
    powered (through another outlet of that feed's PDU)."""
    rack = dcim.racks(site="dr")[-1]
    result = place(
        racks=[rack],
        devices=[DeviceRequest(f"{order_ref}-a", 1, 200, 10), DeviceRequest(f"{order_ref}-b", 1, 200, 10)],
        site="dr",
    )
    assert result.ok, result.refusals
    made = []
    try:
        for spot in result.placements:
            reservation = dcim.reserve(
                rack_id=spot.rack_id,
                span=UnitSpan(spot.position, spot.height_u, spot.depth),
                ministry_code="health",
                order_ref=order_ref,
                device_name=spot.device,
                feed_id=spot.feed_id,
                draw_w=spot.draw_w,
                weight_kg=spot.weight_kg,
            )
            racking = InstalledDevice(reservation=reservation, serial=spot.device, model="X1", nic_count=1)
            made.append(dcim.install(device=racking))
        racked = dcim.installed(order_ref=order_ref)
        assert len(racked) == 2 and all(len(d.power_feeds) == 2 for d in racked)
        sockets = [socket for d in racked for socket in d.power_sockets]
        assert len(set(sockets)) == 4, sockets
        assert {feed for d in racked for feed in d.power_feeds} == {f.name for f in rack.feeds}
    finally:
        for device_id in made:
            dcim.remove(device_id=device_id)
    assert dcim.installed(order_ref=order_ref) == []


def test_the_colocation_networks_are_seeded(observer: httpx.Client) -> None:
    """devcloud/dcim/seed.py: the co-location VLANs per site, each with its /24 in the site's
    container, and the custom fields the adapter relies on."""
    vlans = observer.get("/ipam/vlans/", params={"limit": 100, "depth": 1}).json()["results"]
    by_group: dict[str, set[int]] = {}
    for vlan in vlans:
        by_group.setdefault(vlan["vlan_group"]["name"], set()).add(vlan["vid"])
    assert by_group["colocation-primary"] == {3001, 3002, 3003, 3004}
    assert by_group["colocation-dr"] == {3101, 3102}
    prefixes = observer.get("/ipam/prefixes/", params={"limit": 100, "depth": 1}).json()["results"]
    networks = {p["prefix"]: p for p in prefixes}
    assert networks["10.210.0.0/16"]["type"]["value"] == "container"
    assert networks["10.210.1.0/24"]["vlan"]["vid"] == 3001
    assert networks["10.220.2.0/24"]["vlan"]["vid"] == 3102
    fields = {f["key"] for f in observer.get("/extras/custom-fields/", params={"limit": 100}).json()["results"]}
    assert {"tonle_max_weight_kg", "tonle_weight_kg", "tonle_draw_w", "tonle_feed", "tonle_depth"} <= fields


def test_the_work_order_shows_what_nautobot_holds_before_and_after_installation(
    dcim: NautobotDcim, observer: httpx.Client, order_ref: str
) -> None:
    """orchestrator/dcim/work_orders.py against the real DCIM: the reserved rack and units, the
    feeds and proposed patch ports; after install, the device's real cabling and serial."""
    subject = work_orders.Subject(
        service_id=order_ref,
        service_name="registry",
        ministry_code="health",
        ministry_name="Ministry of Health",
        parameters={
            "contact_name": "Sokha Chan",
            "contact_phone": "+855 23 000 000",
            "devices": [
                {"name": "app-1", "model": "Dell R650", "nic_count": 2},
                {"name": "db-1", "model": "Dell R750"},
            ],
        },
        endpoints={"gateway": "10.199.0.1", "devices": [{"name": "app-1", "ip_addresses": ["10.199.0.11"]}]},
        devices_from="devices",
    )
    names = {d.name: d.dcim_name for d in work_orders.order_devices(subject)}
    result = place(
        racks=dcim.racks(site="dr"),
        devices=[DeviceRequest(names["app-1"], 1, 300, 15, nic_count=2), DeviceRequest(names["db-1"], 2, 500, 30)],
        site="dr",
    )
    held = [
        dcim.reserve(
            rack_id=p.rack_id,
            span=UnitSpan(p.position, p.height_u, p.depth),
            ministry_code="health",
            order_ref=order_ref,
            device_name=p.device,
            feed_id=p.feed_id,
            draw_w=p.draw_w,
            weight_kg=p.weight_kg,
        )
        for p in result.placements
    ]
    order = work_orders.build(dcim=dcim, subject=subject, kind="installation")
    by_name = {d["name"]: d for d in order["devices"]}
    for reservation in held:
        device = next(d for d in by_name.values() if d["dcim_name"] == reservation.device_name)
        seen = observer.get(f"/dcim/rack-reservations/{reservation.id}/", params={"depth": 1}).json()
        assert device["rack"] == seen["rack"]["name"] and device["site"] == "dr"
        assert list(range(device["position"], device["position"] + device["height"])) == seen["units"]
        assert device["status"] == "reserved"
        feed = observer.get(f"/dcim/power-feeds/{reservation.feed_id}/").json()
        assert device["power_feeds"][0] == {"name": feed["name"], "psu": "PSU1"}
    assert by_name["app-1"]["ip_addresses"] == ["10.199.0.11"] and by_name["app-1"]["gateway"] == "10.199.0.1"
    assert len(by_name["app-1"]["patch_ports"]) == 2

    app = next(r for r in held if r.device_name == names["app-1"])
    device_id = dcim.install(device=InstalledDevice(reservation=app, serial="SN-WO-1", model="Dell R650", nic_count=2))
    try:
        after = {d["name"]: d for d in work_orders.build(dcim=dcim, subject=subject, kind="removal")["devices"]}
        assert (after["app-1"]["status"], after["app-1"]["serial"]) == ("installed", "SN-WO-1")
        assert after["app-1"]["position"] == app.span.position and after["db-1"]["status"] == "reserved"
        nics = observer.get("/dcim/interfaces/", params={"device": device_id}).json()["results"]
        cables = {nic["cable"]["id"] for nic in nics}
        panel = f"{after['app-1']['rack']}-patch"
        front = observer.get("/dcim/front-ports/", params={"device": panel, "limit": 100}).json()["results"]
        linked = {port["name"] for port in front if port["cable"] and port["cable"]["id"] in cables}
        assert set(after["app-1"]["patch_ports"]) == linked and len(linked) == 2
        assert len(after["app-1"]["power_feeds"]) == 2
    finally:
        dcim.remove(device_id=device_id)


def test_move_takes_a_device_to_another_rack_recabled_there_keeping_its_serial_and_addresses(
    dcim: NautobotDcim, observer: httpx.Client, order_ref: str
) -> None:
    racks = dcim.racks(site="dr")
    spot = place(racks=racks, devices=[DeviceRequest("web1", 1, 300, 12, nic_count=2)], site="dr").placements[0]
    others = [r for r in racks if r.id != spot.rack_id]
    to = place(racks=others, devices=[DeviceRequest("web1", 1, 300, 12, nic_count=2)], site="dr").placements[0]
    old, new = (next(r for r in racks if r.id == rack_id) for rack_id in (spot.rack_id, to.rack_id))
    free_old, free_new = dcim.free_patch_ports(rack_id=old.id), dcim.free_patch_ports(rack_id=new.id)
    name = f"{order_ref}-web1"
    reservation = dcim.reserve(
        rack_id=spot.rack_id,
        span=UnitSpan(spot.position, 1, spot.depth),
        ministry_code="health",
        order_ref=order_ref,
        device_name=name,
        feed_id=spot.feed_id,
        draw_w=300,
        weight_kg=12,
    )
    third = int(order_ref[-2:], 16)
    addresses = (f"10.198.{third}.21/24", f"10.198.{third}.22/24")
    device_id = dcim.install(
        device=InstalledDevice(
            reservation=reservation,
            serial="SN-MOVE-1",
            model="Dell R350",
            nic_count=2,
            ip_addresses=addresses,
            prefix=f"10.198.{third}.0/24",
        )
    )
    try:
        target = dcim.reserve(
            rack_id=to.rack_id,
            span=UnitSpan(to.position, 1, Depth.FULL),
            ministry_code="health",
            order_ref=order_ref,
            device_name=name,
            feed_id=to.feed_id,
            draw_w=300,
            weight_kg=12,
        )
        dcim.move(device_id=device_id, reservation=target)
        # Nautobot's own view: the same device (id, serial, addresses) at the reserved units
        seen: dict[str, Any] = observer.get(f"/dcim/devices/{device_id}/").json()
        assert (seen["rack"]["id"], seen["position"], seen["serial"]) == (new.id, to.position, "SN-MOVE-1")
        assert seen["custom_fields"]["tonle_feed"] == to.feed_id
        assert observer.get(f"/dcim/rack-reservations/{target.id}/").status_code == 404
        ips = observer.get("/ipam/ip-addresses/", params={"device_id": device_id}).json()["results"]
        assert sorted(ip["address"] for ip in ips) == sorted(addresses)
        # re-patched in the new rack: its patch panel's first free ports, the old rack's given back
        front = observer.get("/dcim/front-ports/", params={"device": f"{new.name}-patch", "limit": 100}).json()
        assert set(free_new[:2]) <= {p["name"] for p in front["results"] if p["cable"] is not None}
        assert dcim.free_patch_ports(rack_id=old.id) == free_old
        assert dcim.free_patch_ports(rack_id=new.id) == free_new[2:]
        # powered by the new rack's feeds (PSU1 on the reserved one), through its PDUs
        (racked,) = dcim.installed(order_ref=order_ref)
        reserved_feed = next(f.name for f in new.feeds if f.id == to.feed_id)
        assert racked.power_feeds[0] == reserved_feed and set(racked.power_feeds) == {f.name for f in new.feeds}
        assert all(s.startswith(new.name) for s in racked.power_sockets), racked.power_sockets
        assert (racked.rack_id, racked.span.position, racked.patch_ports) == (new.id, to.position, tuple(free_new[:2]))
        assert (
            UnitSpan(spot.position, 1, Depth.FULL)
            not in next(r for r in dcim.racks(site="dr") if r.id == old.id).occupied
        )
        # a retry (the report came twice) changes nothing
        dcim.move(device_id=device_id, reservation=target)
        assert len(observer.get("/dcim/cables/", params={"device_id": device_id}).json()["results"]) == 4
    finally:
        dcim.remove(device_id=device_id)
    assert dcim.installed(order_ref=order_ref) == []
    assert dcim.free_patch_ports(rack_id=new.id) == free_new
