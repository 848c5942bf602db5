"""Automatic rack placement for co-location orders. Pure: no I/O, no clock, no randomness.

Input: the racks as the DCIM reports them (`ports.RackInfo`: units taken by devices and
reservations, weight, power feeds), an order's devices and the racks where the ministry already
has devices. Output: for each device either a placement (rack, lowest unit, face, feed) or a
refusal naming the reason (no contiguous space, power, weight). The caller writes placements to
the DCIM as reservations only when the whole order fits.

Rules:

* Units: a device of height h takes units p .. p+h-1 (1 = bottom), all free on the faces it
  needs: a full-depth device both faces, a half-depth one the front or the rear (front when
  both are possible at the same unit). The lowest such p is chosen in the chosen rack.
* Power: a feed can deliver volts x amps x max utilisation (x 1.732 for three-phase: NetBox's
  and Nautobot's rule); a device's draw goes on one feed, which must have the headroom. Of the
  rack's feeds that can take it, the one least utilised afterwards (this balances A and B).
* Weight: the rack's current weight plus the device's stays within its maximum.
* Choice of rack among those where all three fit, in this order: the ministry's own racks (those
  it had, and those this order has just used: a ministry's devices stay together), then racks in
  the same room as those, then any other; then the rack whose busiest feed would be least
  utilised afterwards (whole percent: balances feeds across racks); then the least-loaded rack
  (most free units); then the lowest position and the rack's name, so the result is
  deterministic.
* Devices of an order are placed tallest first (then highest draw, then heaviest), each against
  the racks as the earlier ones left them, so an order never overlaps itself. Results come back
  in the order's own order.
* A refusal names the first constraint no rack meets: space (no rack has the contiguous run),
  then weight (no rack with the run can carry it), then power (no rack with the run and the
  weight headroom has a feed with the headroom).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from orchestrator.errors import InvalidInput
from orchestrator.ports import Depth, PowerFeed, RackInfo

#: NetBox and Nautobot: available power of a three-phase feed = V x A x utilisation x sqrt(3).
THREE_PHASE_FACTOR = 1.732
THREE_PHASE = "three-phase"


class Reason(StrEnum):
    SPACE = "space"
    POWER = "power"
    WEIGHT = "weight"


@dataclass(frozen=True)
class DeviceRequest:
    """One device of a co-location order."""

    name: str
    height_u: int
    draw_w: float
    weight_kg: float
    nic_count: int = 1
    full_depth: bool = True


@dataclass(frozen=True)
class Placement:
    device: str
    rack_id: str
    rack_name: str
    site: str
    room: str
    position: int  # lowest unit
    height_u: int
    depth: Depth
    feed_id: str
    feed_name: str
    draw_w: float
    weight_kg: float

    @property
    def units(self) -> range:
        return range(self.position, self.position + self.height_u)


@dataclass(frozen=True)
class Refusal:
    device: str
    reason: Reason
    detail: str


@dataclass(frozen=True)
class PlacementResult:
    placements: tuple[Placement, ...]
    refusals: tuple[Refusal, ...]

    @property
    def ok(self) -> bool:
        """The whole order fits: only then is anything reserved."""
        return not self.refusals


def available_power_w(feed: PowerFeed) -> float:
    """What a feed may deliver: V x A x max utilisation (x 1.732 for three-phase)."""
    watts = feed.voltage * feed.amperage * feed.max_utilization / 100
    return watts * THREE_PHASE_FACTOR if feed.phase == THREE_PHASE else watts


def validate(devices: Sequence[DeviceRequest]) -> None:
    """Refuse sizes no rack could ever mean (InvalidInput, i.e. 422, naming the field)."""
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    if not devices:
        errors.append({"field": "devices", "message": "an order needs at least one device"})
    for i, device in enumerate(devices):
        checks = (
            ("name", bool(device.name.strip()), "must not be empty"),
            ("name", device.name not in seen, f"{device.name!r} is named twice"),
            ("height_u", device.height_u >= 1, "must be at least 1 U"),
            ("draw_w", device.draw_w > 0, "must be more than 0 W"),
            ("weight_kg", device.weight_kg > 0, "must be more than 0 kg"),
            ("nic_count", device.nic_count >= 0, "must not be negative"),
        )
        errors += [{"field": f"devices.{i}.{name}", "message": msg} for name, good, msg in checks if not good]
        seen.add(device.name)
    if errors:
        first = errors[0]
        raise InvalidInput(f"{first['field']}: {first['message']}", field=first["field"], errors=errors)


class _Rack:
    """A rack's state while one order is placed: taken units as bit masks (bit u-1 = unit u)."""

    __slots__ = ("allocated", "available", "feeds", "front", "info", "rear", "used_units", "weight_kg")

    def __init__(self, info: RackInfo) -> None:
        self.info = info
        self.front = 0
        self.rear = 0
        for span in info.occupied:
            if span.height < 1 or span.position < 1:
                continue
            bits = ((1 << span.height) - 1) << (span.position - 1)
            if span.depth in (Depth.FULL, Depth.FRONT):
                self.front |= bits
            if span.depth in (Depth.FULL, Depth.REAR):
                self.rear |= bits
        self.weight_kg = info.weight_kg
        self.feeds = info.feeds
        self.available = {feed.id: available_power_w(feed) for feed in info.feeds}
        self.allocated = {feed.id: feed.allocated_w for feed in info.feeds}
        self.used_units = _units_used(self.front | self.rear, info.u_height)

    def lowest_free(self, height: int, full_depth: bool) -> tuple[int, Depth] | None:
        """The lowest unit where `height` units are free on the faces the device needs."""
        if height > self.info.u_height:
            return None
        if full_depth:
            position = _lowest_run(self.front | self.rear, height, self.info.u_height)
            return (position, Depth.FULL) if position else None
        front = _lowest_run(self.front, height, self.info.u_height)
        rear = _lowest_run(self.rear, height, self.info.u_height)
        if front and (not rear or front <= rear):
            return front, Depth.FRONT
        return (rear, Depth.REAR) if rear else None

    def best_feed(self, draw_w: float) -> tuple[PowerFeed, float] | None:
        """The feed least utilised after taking `draw_w`, with the rack's busiest feed
        utilisation afterwards; None when no feed has the headroom."""
        best: tuple[float, str, PowerFeed] | None = None
        for feed in self.feeds:
            available = self.available[feed.id]
            after = self.allocated[feed.id] + draw_w
            if available <= 0 or after > available:
                continue
            key = (after / available, feed.name, feed)
            if best is None or key[:2] < best[:2]:
                best = key
        if best is None:
            return None
        chosen = best[2]
        peak = max(
            (self.allocated[f.id] + (draw_w if f.id == chosen.id else 0)) / self.available[f.id]
            for f in self.feeds
            if self.available[f.id] > 0
        )
        return chosen, peak

    def headroom_w(self) -> float:
        return max((self.available[f.id] - self.allocated[f.id] for f in self.feeds), default=0.0)

    def take(self, position: int, height: int, depth: Depth, feed_id: str, draw_w: float, weight_kg: float) -> None:
        bits = ((1 << height) - 1) << (position - 1)
        if depth in (Depth.FULL, Depth.FRONT):
            self.front |= bits
        if depth in (Depth.FULL, Depth.REAR):
            self.rear |= bits
        self.allocated[feed_id] += draw_w
        self.weight_kg += weight_kg
        self.used_units = _units_used(self.front | self.rear, self.info.u_height)


def _units_used(mask: int, u_height: int) -> int:
    return (mask & ((1 << u_height) - 1)).bit_count()


def _lowest_run(taken: int, height: int, u_height: int) -> int:
    """Lowest unit starting `height` free units within the rack (0: none)."""
    free = ~taken & ((1 << u_height) - 1)
    run = free
    for shift in range(1, height):
        run &= free >> shift
        if not run:
            return 0
    return (run & -run).bit_length() if run else 0


def place(
    *,
    racks: Sequence[RackInfo],
    devices: Sequence[DeviceRequest],
    ministry_rack_ids: Collection[str] = (),
    site: str | None = None,
) -> PlacementResult:
    """Place an order's devices (see the module's rules). Raises InvalidInput for impossible
    sizes; a device that is possible but does not fit now is a Refusal in the result."""
    validate(devices)
    states = [_Rack(rack) for rack in racks if site is None or rack.site == site]
    ours: set[str] = set(ministry_rack_ids)
    our_rooms = {(s.info.site, s.info.room) for s in states if s.info.id in ours}
    order = sorted(range(len(devices)), key=lambda i: (-devices[i].height_u, -devices[i].draw_w, -devices[i].weight_kg))
    placed: dict[int, Placement] = {}
    refused: dict[int, Refusal] = {}
    for i in order:
        device = devices[i]
        best: tuple[tuple[int, int, int, int, str], _Rack, int, Depth, PowerFeed] | None = None
        with_space = with_weight = 0
        for rack in states:
            spot = rack.lowest_free(device.height_u, device.full_depth)
            if spot is None:
                continue
            with_space += 1
            if rack.weight_kg + device.weight_kg > rack.info.max_weight_kg:
                continue
            with_weight += 1
            fit = rack.best_feed(device.draw_w)
            if fit is None:
                continue
            position, depth = spot
            chosen, peak = fit
            tier = 0 if rack.info.id in ours else 1 if (rack.info.site, rack.info.room) in our_rooms else 2
            key = (tier, round(peak * 100), rack.used_units, position, rack.info.name)
            if best is None or key < best[0]:
                best = (key, rack, position, depth, chosen)
        if best is None:
            refused[i] = _refusal(device, states, with_space, with_weight)
            continue
        _, rack, position, depth, on = best
        rack.take(position, device.height_u, depth, on.id, device.draw_w, device.weight_kg)
        ours.add(rack.info.id)
        our_rooms.add((rack.info.site, rack.info.room))
        placed[i] = Placement(
            device=device.name,
            rack_id=rack.info.id,
            rack_name=rack.info.name,
            site=rack.info.site,
            room=rack.info.room,
            position=position,
            height_u=device.height_u,
            depth=depth,
            feed_id=on.id,
            feed_name=on.name,
            draw_w=device.draw_w,
            weight_kg=device.weight_kg,
        )
    return PlacementResult(
        placements=tuple(placed[i] for i in range(len(devices)) if i in placed),
        refusals=tuple(refused[i] for i in range(len(devices)) if i in refused),
    )


def _refusal(device: DeviceRequest, states: Sequence[_Rack], with_space: int, with_weight: int) -> Refusal:
    depth = "full depth" if device.full_depth else "half depth"
    if not with_space:
        return Refusal(
            device.name,
            Reason.SPACE,
            f"no rack has {device.height_u} contiguous free units ({depth}) among {len(states)} racks",
        )
    if not with_weight:
        return Refusal(
            device.name,
            Reason.WEIGHT,
            f"none of the {with_space} racks with {device.height_u} free units can carry {device.weight_kg:g} kg more",
        )
    headroom = max(
        (
            r.headroom_w()
            for r in states
            if r.lowest_free(device.height_u, device.full_depth)
            and r.weight_kg + device.weight_kg <= r.info.max_weight_kg
        ),
        default=0.0,
    )
    return Refusal(
        device.name,
        Reason.POWER,
        f"no feed of the {with_weight} racks with space and weight headroom has {device.draw_w:g} W free "
        f"(the most any has: {headroom:.0f} W)",
    )
