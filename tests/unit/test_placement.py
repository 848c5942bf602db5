"""Automatic rack placement (orchestrator/dcim/placement.py).

The property-style checks at the end judge random data centres and orders with an oracle of
their own (per-unit sets, summed draws), not with the module's bit masks.
"""

import random
from collections import defaultdict

import pytest

from orchestrator.dcim.placement import (
    THREE_PHASE,
    DeviceRequest,
    Placement,
    PlacementResult,
    Reason,
    available_power_w,
    place,
)
from orchestrator.errors import InvalidInput
from orchestrator.ports import Depth, PowerFeed, RackInfo, UnitSpan

pytestmark = pytest.mark.unit


def feed(
    fid: str, *, volts: int = 230, amps: int = 16, util: int = 80, allocated: float = 0.0, phase: str = "single-phase"
) -> PowerFeed:
    return PowerFeed(
        id=fid, name=fid, voltage=volts, amperage=amps, phase=phase, max_utilization=util, allocated_w=allocated
    )


def rack(
    rid: str,
    *,
    site: str = "primary",
    room: str = "hall-a",
    occupied: tuple[UnitSpan, ...] = (),
    max_weight: float = 1000.0,
    weight: float = 0.0,
    feeds: tuple[PowerFeed, ...] | None = None,
    u_height: int = 42,
) -> RackInfo:
    return RackInfo(
        id=rid,
        name=rid,
        site=site,
        room=room,
        u_height=u_height,
        max_weight_kg=max_weight,
        weight_kg=weight,
        feeds=feeds if feeds is not None else (feed(f"{rid}-a"), feed(f"{rid}-b")),
        occupied=occupied,
    )


def dev(name: str, height: int = 1, draw: float = 300, weight: float = 15, *, full: bool = True) -> DeviceRequest:
    return DeviceRequest(name=name, height_u=height, draw_w=draw, weight_kg=weight, nic_count=2, full_depth=full)


def only(result: PlacementResult) -> Placement:
    assert result.ok and len(result.placements) == 1, result
    return result.placements[0]


# --- power -----------------------------------------------------------------------------------


def test_available_power_is_volts_amps_utilisation_and_root_three_for_three_phase() -> None:
    assert available_power_w(feed("a", volts=230, amps=16, util=80)) == pytest.approx(2944.0)
    assert available_power_w(feed("b", volts=400, amps=32, util=80, phase=THREE_PHASE)) == pytest.approx(
        400 * 32 * 0.8 * 1.732
    )
    assert available_power_w(feed("c", volts=230, amps=16, util=0)) == 0


def test_a_device_goes_on_the_feed_with_headroom_and_the_least_utilised_one() -> None:
    racks = [rack("r1", feeds=(feed("a", allocated=2000), feed("b", allocated=500)))]
    assert only(place(racks=racks, devices=[dev("web", draw=400)])).feed_id == "b"
    # b is nearly full: a is the only one that can take 1500 W
    racks = [rack("r1", feeds=(feed("a", allocated=1000), feed("b", allocated=2800)))]
    assert only(place(racks=racks, devices=[dev("db", draw=1500)])).feed_id == "a"


def test_feeds_are_balanced_within_an_order() -> None:
    racks = [rack("r1")]
    result = place(racks=racks, devices=[dev(f"d{i}", draw=500) for i in range(4)])
    assert result.ok
    per_feed: dict[str, int] = defaultdict(int)
    for p in result.placements:
        per_feed[p.feed_id] += 1
    assert dict(per_feed) == {"r1-a": 2, "r1-b": 2}


def test_power_refusal_names_power_and_the_largest_headroom() -> None:
    racks = [rack("r1", feeds=(feed("a", allocated=2644),)), rack("r2", feeds=(feed("b", allocated=2900),))]
    result = place(racks=racks, devices=[dev("big", draw=400)])
    assert not result.ok and not result.placements
    (refusal,) = result.refusals
    assert refusal.reason is Reason.POWER
    assert "400 W" in refusal.detail and "300 W" in refusal.detail


def test_a_rack_without_feeds_takes_nothing() -> None:
    result = place(racks=[rack("dark", feeds=())], devices=[dev("x")])
    assert [r.reason for r in result.refusals] == [Reason.POWER]


# --- units -----------------------------------------------------------------------------------


def test_lowest_contiguous_run_above_what_is_taken() -> None:
    racks = [rack("r1", occupied=(UnitSpan(1, 2), UnitSpan(4, 1), UnitSpan(7, 3)))]
    assert only(place(racks=racks, devices=[dev("one", 1)])).position == 3
    assert only(place(racks=racks, devices=[dev("two", 2)])).position == 5
    assert only(place(racks=racks, devices=[dev("four", 4)])).position == 10


def test_a_device_as_tall_as_the_rack_fits_an_empty_rack_only() -> None:
    assert only(place(racks=[rack("r1")], devices=[dev("cabinet", 42, weight=300)])).position == 1
    result = place(racks=[rack("r1", occupied=(UnitSpan(42, 1),))], devices=[dev("cabinet", 42, weight=300)])
    assert [r.reason for r in result.refusals] == [Reason.SPACE]
    assert "42 contiguous free units" in result.refusals[0].detail


def test_free_units_in_pieces_are_not_contiguous_space() -> None:
    # every other unit taken: 21 free units, no run of 2
    racks = [rack("r1", occupied=tuple(UnitSpan(u, 1) for u in range(1, 43, 2)))]
    result = place(racks=racks, devices=[dev("two", 2)])
    assert [r.reason for r in result.refusals] == [Reason.SPACE]


def test_half_depth_devices_share_a_unit_front_and_rear() -> None:
    racks = [rack("r1", occupied=(UnitSpan(1, 41),))]  # only U42 free
    result = place(racks=racks, devices=[dev("switch", 1, full=False), dev("pdu-ctl", 1, full=False)])
    assert result.ok
    assert {(p.position, p.depth) for p in result.placements} == {(42, Depth.FRONT), (42, Depth.REAR)}
    # a full-depth device cannot take a unit whose rear is taken
    racks = [rack("r1", occupied=(UnitSpan(1, 41), UnitSpan(42, 1, Depth.REAR)))]
    assert [r.reason for r in place(racks=racks, devices=[dev("srv")]).refusals] == [Reason.SPACE]
    assert only(place(racks=racks, devices=[dev("patch", full=False)])).depth is Depth.FRONT


def test_a_half_depth_device_uses_the_rear_when_only_the_rear_is_free_lower() -> None:
    racks = [rack("r1", occupied=(UnitSpan(1, 5, Depth.FRONT),))]
    p = only(place(racks=racks, devices=[dev("switch", 2, full=False)]))
    assert (p.position, p.depth) == (1, Depth.REAR)


def test_an_order_never_overlaps_itself() -> None:
    result = place(racks=[rack("r1")], devices=[dev(f"s{i}", 3, draw=100, weight=10) for i in range(14)])
    assert result.ok
    units = [u for p in result.placements for u in p.units]
    assert len(units) == len(set(units)) == 42
    # one more unit than the rack has
    result = place(racks=[rack("r1")], devices=[dev(f"s{i}", 3, draw=100, weight=10) for i in range(15)])
    assert len(result.placements) == 14 and [r.reason for r in result.refusals] == [Reason.SPACE]


def test_tall_devices_are_placed_first_so_small_ones_do_not_split_the_rack() -> None:
    # 10 free units at the bottom, 10 at the top, 22 taken in between
    racks = [rack("r1", occupied=(UnitSpan(11, 22),))]
    result = place(racks=racks, devices=[dev("small", 1), dev("tall", 10), dev("mid", 9)])
    assert result.ok, result.refusals
    where = {p.device: p.position for p in result.placements}
    assert where == {"tall": 1, "mid": 33, "small": 42}
    assert [p.device for p in result.placements] == ["small", "tall", "mid"]  # the order's own order


# --- weight ----------------------------------------------------------------------------------


def test_weight_limit_is_enforced_and_named() -> None:
    racks = [rack("r1", max_weight=500, weight=480)]
    assert only(place(racks=racks, devices=[dev("light", weight=20)])).rack_id == "r1"
    result = place(racks=racks, devices=[dev("heavy", weight=21)])
    assert [r.reason for r in result.refusals] == [Reason.WEIGHT]
    assert "21 kg" in result.refusals[0].detail


def test_weight_accumulates_over_an_order() -> None:
    result = place(racks=[rack("r1", max_weight=100)], devices=[dev(f"d{i}", weight=30) for i in range(4)])
    assert len(result.placements) == 3
    assert [r.reason for r in result.refusals] == [Reason.WEIGHT]


def test_the_reason_is_the_first_constraint_no_rack_meets() -> None:
    # r1: no space; r2: space but too heavy; r3: space and weight but no power
    racks = [
        rack("r1", occupied=(UnitSpan(1, 42),)),
        rack("r2", max_weight=10),
        rack("r3", feeds=(feed("x", allocated=2944),)),
    ]
    assert [r.reason for r in place(racks=racks, devices=[dev("d")]).refusals] == [Reason.POWER]
    assert [r.reason for r in place(racks=racks[:2], devices=[dev("d")]).refusals] == [Reason.WEIGHT]
    assert [r.reason for r in place(racks=racks[:1], devices=[dev("d")]).refusals] == [Reason.SPACE]


# --- preferences -----------------------------------------------------------------------------


def test_the_ministrys_racks_come_first_even_when_fuller() -> None:
    racks = [rack("empty"), rack("theirs", occupied=(UnitSpan(1, 30),), weight=400)]
    p = only(place(racks=racks, devices=[dev("srv")], ministry_rack_ids={"theirs"}))
    assert (p.rack_id, p.position) == ("theirs", 31)
    assert only(place(racks=racks, devices=[dev("srv")])).rack_id == "empty"


def test_then_racks_in_the_ministrys_room() -> None:
    racks = [
        rack("a1", room="hall-a"),
        rack("b1", room="hall-b", occupied=(UnitSpan(1, 42),)),  # theirs, full
        rack("b2", room="hall-b", occupied=(UnitSpan(1, 20),)),
    ]
    assert only(place(racks=racks, devices=[dev("srv")], ministry_rack_ids={"b1"})).rack_id == "b2"


def test_an_orders_devices_stay_together() -> None:
    racks = [rack(f"r{i}") for i in range(5)]
    result = place(racks=racks, devices=[dev(f"d{i}", 2) for i in range(6)])
    assert result.ok and {p.rack_id for p in result.placements} == {"r0"}


def test_least_utilised_feeds_then_least_loaded_rack() -> None:
    busy_power = rack("hot", feeds=(feed("h-a", allocated=2000), feed("h-b", allocated=2000)))
    busy_units = rack("full-ish", occupied=(UnitSpan(1, 30),))
    calm = rack("calm")
    assert only(place(racks=[busy_power, busy_units, calm], devices=[dev("srv")])).rack_id == "calm"
    assert only(place(racks=[busy_power, busy_units], devices=[dev("srv")])).rack_id == "full-ish"


def test_site_restricts_the_racks() -> None:
    racks = [rack("p1", site="primary"), rack("d1", site="dr")]
    assert only(place(racks=racks, devices=[dev("srv")], site="dr")).site == "dr"
    result = place(racks=racks, devices=[dev("srv")], site="nowhere")
    assert [r.reason for r in result.refusals] == [Reason.SPACE]


def test_the_same_input_gives_the_same_placement() -> None:
    racks = [rack(f"r{i}", occupied=(UnitSpan(1 + i, 3),)) for i in range(8)]
    devices = [dev(f"d{i}", 1 + i % 3, draw=200 + 50 * i) for i in range(10)]
    assert place(racks=racks, devices=devices) == place(racks=list(racks), devices=list(devices))


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "field"),
    [
        (DeviceRequest("x", 0, 100, 10), "devices.0.height_u"),
        (DeviceRequest("x", -2, 100, 10), "devices.0.height_u"),
        (DeviceRequest("x", 1, 0, 10), "devices.0.draw_w"),
        (DeviceRequest("x", 1, -5, 10), "devices.0.draw_w"),
        (DeviceRequest("x", 1, 100, 0), "devices.0.weight_kg"),
        (DeviceRequest("x", 1, 100, 10, nic_count=-1), "devices.0.nic_count"),
        (DeviceRequest(" ", 1, 100, 10), "devices.0.name"),
    ],
)
def test_impossible_sizes_are_invalid_input(device: DeviceRequest, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        place(racks=[rack("r1")], devices=[device])
    assert caught.value.field == field


def test_every_bad_field_is_named_and_duplicates_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        place(racks=[rack("r1")], devices=[dev("a"), DeviceRequest("a", 0, -1, 1)])
    assert {e["field"] for e in caught.value.errors} == {"devices.1.name", "devices.1.height_u", "devices.1.draw_w"}
    with pytest.raises(InvalidInput):
        place(racks=[rack("r1")], devices=[])


def test_a_device_taller_than_every_rack_is_refused_for_space() -> None:
    result = place(racks=[rack("r1"), rack("r2")], devices=[dev("tower", 43)])
    assert [r.reason for r in result.refusals] == [Reason.SPACE]


# --- properties over random data centres --------------------------------------------------------


def random_dc(rng: random.Random, n_racks: int) -> list[RackInfo]:
    racks = []
    for i in range(n_racks):
        spans: list[UnitSpan] = []
        u = 1
        while u <= 42:
            h = rng.randint(1, 4)
            if rng.random() < 0.45 and u + h - 1 <= 42:
                spans.append(UnitSpan(u, h, rng.choice([Depth.FULL, Depth.FULL, Depth.FRONT, Depth.REAR])))
            u += h
        feeds = tuple(
            feed(
                f"r{i}-{side}",
                volts=rng.choice([208, 230]),
                amps=rng.choice([16, 32]),
                util=rng.choice([0, 50, 80, 100]) if rng.random() < 0.1 else 80,
                allocated=rng.uniform(0, 4000),
                phase=rng.choice(["single-phase", THREE_PHASE]),
            )
            for side in "ab"[: rng.randint(1, 2)]
        )
        max_weight = rng.choice([500.0, 800.0, 1200.0])
        racks.append(
            rack(
                f"r{i}",
                room=rng.choice(["hall-a", "hall-b"]),
                site=rng.choice(["primary", "dr"]),
                occupied=tuple(spans),
                max_weight=max_weight,
                weight=rng.uniform(0, max_weight),
                feeds=feeds,
            )
        )
    return racks


def random_order(rng: random.Random, n: int) -> list[DeviceRequest]:
    return [
        DeviceRequest(
            name=f"dev{j}",
            height_u=rng.choice([1, 1, 2, 2, 3, 4, 6, 10]),
            draw_w=rng.uniform(50, 1800),
            weight_kg=rng.uniform(5, 120),
            nic_count=rng.randint(0, 4),
            full_depth=rng.random() < 0.8,
        )
        for j in range(n)
    ]


def faces(depth: Depth) -> tuple[str, ...]:
    return {Depth.FULL: ("front", "rear"), Depth.FRONT: ("front",), Depth.REAR: ("rear",)}[depth]


def check_invariants(racks: list[RackInfo], devices: list[DeviceRequest], result: PlacementResult) -> None:
    by_id = {r.id: r for r in racks}
    requested = {d.name: d for d in devices}
    assert sorted([p.device for p in result.placements] + [r.device for r in result.refusals]) == sorted(requested)
    taken: dict[tuple[str, int, str], str] = {}
    for r in racks:
        for span in r.occupied:
            for u in range(span.position, span.top + 1):
                for face in faces(span.depth):
                    taken[(r.id, u, face)] = "existing"
    weight = {r.id: r.weight_kg for r in racks}
    draw = {f.id: f.allocated_w for r in racks for f in r.feeds}
    for p in result.placements:
        d, r = requested[p.device], by_id[p.rack_id]
        assert (p.height_u, p.draw_w, p.weight_kg) == (d.height_u, d.draw_w, d.weight_kg)
        assert (p.depth is Depth.FULL) == d.full_depth
        assert p.position >= 1 and p.position + p.height_u - 1 <= r.u_height
        for u in p.units:
            for face in faces(p.depth):
                assert (p.rack_id, u, face) not in taken, f"{p.device} overlaps {taken[(p.rack_id, u, face)]}"
                taken[(p.rack_id, u, face)] = p.device
        weight[p.rack_id] += p.weight_kg
        assert p.feed_id in {f.id for f in r.feeds}
        draw[p.feed_id] += p.draw_w
    for r in racks:
        # only a rack the order used must stay within its limit (others may be over already)
        if any(p.rack_id == r.id for p in result.placements):
            assert weight[r.id] <= r.max_weight_kg + 1e-9
        for f in r.feeds:
            if any(p.feed_id == f.id for p in result.placements):
                assert (
                    draw[f.id]
                    <= f.voltage * f.amperage * f.max_utilization / 100 * (1.732 if f.phase == THREE_PHASE else 1)
                    + 1e-6
                )


def fits_somewhere_after(racks: list[RackInfo], result: PlacementResult, device: DeviceRequest) -> bool:
    """Brute force, per unit: could `device` go anywhere once the result's placements are taken?"""
    for r in racks:
        taken = set()
        for span in r.occupied:
            taken |= {(u, f) for u in range(span.position, span.top + 1) for f in faces(span.depth)}
        mine = [p for p in result.placements if p.rack_id == r.id]
        for p in mine:
            taken |= {(u, f) for u in p.units for f in faces(p.depth)}
        weight = r.weight_kg + sum(p.weight_kg for p in mine)
        if weight + device.weight_kg > r.max_weight_kg:
            continue
        power_ok = any(
            f.allocated_w + sum(p.draw_w for p in mine if p.feed_id == f.id) + device.draw_w <= available_power_w(f)
            for f in r.feeds
        )
        if not power_ok:
            continue
        options = [("front", "rear")] if device.full_depth else [("front",), ("rear",)]
        for start in range(1, r.u_height - device.height_u + 2):
            for need in options:
                if all((u, f) not in taken for u in range(start, start + device.height_u) for f in need):
                    return True
    return False


@pytest.mark.parametrize("seed", range(60))
def test_random_orders_never_overlap_nor_exceed_budgets(seed: int) -> None:
    rng = random.Random(seed)
    racks = random_dc(rng, rng.randint(1, 12))
    devices = random_order(rng, rng.randint(1, 15))
    result = place(racks=racks, devices=devices, ministry_rack_ids={r.id for r in racks if rng.random() < 0.2})
    check_invariants(racks, devices, result)
    # a refusal is real: the refused device fits nowhere given what the order placed
    for refusal in result.refusals:
        device = next(d for d in devices if d.name == refusal.device)
        assert not fits_somewhere_after(racks, result, device), refusal


@pytest.mark.parametrize("seed", range(10))
def test_orders_one_after_another_never_overlap(seed: int) -> None:
    """Orders placed in turn, each against the racks with the earlier placements as occupied
    units (as reservations make them in the DCIM), fill a data centre without a conflict."""
    rng = random.Random(1000 + seed)
    racks = random_dc(rng, 6)
    initial = list(racks)
    everything: list[Placement] = []
    for n in range(25):
        devices = [
            DeviceRequest(f"o{n}-{d.name}", d.height_u, d.draw_w, d.weight_kg, d.nic_count, d.full_depth)
            for d in random_order(rng, rng.randint(1, 4))
        ]
        result = place(racks=racks, devices=devices)
        check_invariants(racks, devices, result)
        everything += result.placements
        racks = [with_placements(r, [p for p in result.placements if p.rack_id == r.id]) for r in racks]
    all_devices = [
        DeviceRequest(p.device, p.height_u, p.draw_w, p.weight_kg, 1, p.depth is Depth.FULL) for p in everything
    ]
    check_invariants(initial, all_devices, PlacementResult(tuple(everything), ()))


def with_placements(r: RackInfo, placements: list[Placement]) -> RackInfo:
    if not placements:
        return r
    extra = {p.feed_id: 0.0 for p in placements}
    for p in placements:
        extra[p.feed_id] += p.draw_w
    return RackInfo(
        id=r.id,
        name=r.name,
        site=r.site,
        room=r.room,
        u_height=r.u_height,
        max_weight_kg=r.max_weight_kg,
        weight_kg=r.weight_kg + sum(p.weight_kg for p in placements),
        feeds=tuple(
            PowerFeed(
                f.id, f.name, f.voltage, f.amperage, f.phase, f.max_utilization, f.allocated_w + extra.get(f.id, 0)
            )
            for f in r.feeds
        ),
        occupied=(*r.occupied, *(UnitSpan(p.position, p.height_u, p.depth) for p in placements)),
    )
