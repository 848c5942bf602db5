"""The data centre's capacity as the DCIM reports it: per site, room and rack, what is free
(units, the longest contiguous run, weight) and each power feed's budget, with the racks near
their limits flagged. Read-only; the same arithmetic placement uses."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pydantic import BaseModel

from orchestrator.dcim.placement import available_power_w
from orchestrator.ports import Dcim, RackInfo

#: A rack is near its limit once units, any feed or weight reach this share of the budget.
NEAR_LIMIT_PCT = 80.0


class FeedCapacity(BaseModel):
    name: str
    available_w: float  # volts x amps x max utilisation (x 1.732 three-phase)
    allocated_w: float  # promised to installed and reserved devices
    headroom_w: float
    utilisation_pct: float


class NearLimit(BaseModel):
    units: bool
    power: bool
    weight: bool


class RackCapacity(BaseModel):
    id: str
    name: str
    u_height: int
    free_units: int  # free on both faces
    largest_free_run: int  # contiguous units free on both faces: the tallest full-depth device that fits
    units_used_pct: float
    max_weight_kg: float
    weight_kg: float
    weight_headroom_kg: float
    feeds: list[FeedCapacity]
    near_limit: NearLimit

    @property
    def is_near_limit(self) -> bool:
        return self.near_limit.units or self.near_limit.power or self.near_limit.weight


class RoomCapacity(BaseModel):
    room: str
    racks: list[RackCapacity]
    free_units: int
    largest_free_run: int
    near_limit: list[str]  # names of the room's racks near a limit


class SiteCapacity(BaseModel):
    site: str
    rooms: list[RoomCapacity]
    free_units: int
    largest_free_run: int
    power_headroom_w: float


class Capacity(BaseModel):
    sites: list[SiteCapacity]
    near_limit_pct: float = NEAR_LIMIT_PCT


def capacity(*, dcim: Dcim, site: str | None = None) -> Capacity:
    """Every rack of the DCIM (or of one site), grouped by site and room."""
    return summarise(dcim.racks(site=site))


def summarise(racks: Sequence[RackInfo]) -> Capacity:
    rooms: dict[str, dict[str, list[RackCapacity]]] = defaultdict(lambda: defaultdict(list))
    for rack in sorted(racks, key=lambda r: (r.site, r.room, r.name)):
        rooms[rack.site][rack.room].append(rack_capacity(rack))
    sites = []
    for site, by_room in rooms.items():
        summaries = [
            RoomCapacity(
                room=room,
                racks=members,
                free_units=sum(r.free_units for r in members),
                largest_free_run=max((r.largest_free_run for r in members), default=0),
                near_limit=[r.name for r in members if r.is_near_limit],
            )
            for room, members in by_room.items()
        ]
        sites.append(
            SiteCapacity(
                site=site,
                rooms=summaries,
                free_units=sum(r.free_units for r in summaries),
                largest_free_run=max((r.largest_free_run for r in summaries), default=0),
                power_headroom_w=round(sum(f.headroom_w for r in summaries for k in r.racks for f in k.feeds), 1),
            )
        )
    return Capacity(sites=sites)


def rack_capacity(rack: RackInfo) -> RackCapacity:
    taken = [False] * (rack.u_height + 1)  # index = unit; a unit taken on either face is not free
    for span in rack.occupied:
        for unit in range(max(span.position, 1), min(span.top, rack.u_height) + 1):
            taken[unit] = True
    free = [u for u in range(1, rack.u_height + 1) if not taken[u]]
    feeds = [_feed(f.name, available_power_w(f), f.allocated_w) for f in rack.feeds]
    units_used_pct = _pct(rack.u_height - len(free), rack.u_height)
    weight_pct = _pct(rack.weight_kg, rack.max_weight_kg)
    return RackCapacity(
        id=rack.id,
        name=rack.name,
        u_height=rack.u_height,
        free_units=len(free),
        largest_free_run=_longest_run(free),
        units_used_pct=units_used_pct,
        max_weight_kg=rack.max_weight_kg,
        weight_kg=round(rack.weight_kg, 1),
        weight_headroom_kg=round(max(rack.max_weight_kg - rack.weight_kg, 0.0), 1),
        feeds=feeds,
        near_limit=NearLimit(
            units=units_used_pct >= NEAR_LIMIT_PCT,
            power=any(f.utilisation_pct >= NEAR_LIMIT_PCT for f in feeds),
            weight=weight_pct >= NEAR_LIMIT_PCT,
        ),
    )


def _feed(name: str, available: float, allocated: float) -> FeedCapacity:
    return FeedCapacity(
        name=name,
        available_w=round(available, 1),
        allocated_w=round(allocated, 1),
        headroom_w=round(max(available - allocated, 0.0), 1),
        utilisation_pct=_pct(allocated, available),
    )


def _pct(used: float, budget: float) -> float:
    """Share of a budget in percent; a budget of nothing (unset, or a dead feed) counts as full."""
    return round(100.0 * used / budget, 1) if budget > 0 else 100.0


def _longest_run(units: list[int]) -> int:
    longest = current = 0
    previous = None
    for unit in units:
        current = current + 1 if previous is not None and unit == previous + 1 else 1
        longest = max(longest, current)
        previous = unit
    return longest
