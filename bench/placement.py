"""Automatic rack placement (orchestrator/dcim/placement.py) at data-centre scale.

A synthetic data centre of `--racks` racks of 42 U (two single-phase 230 V / 32 A feeds at 80 %,
1,000 kg) already holding `--devices` devices of 1-4 U, half of them half-depth, packed bottom-up
with random gaps, as the DCIM would report them (devices and reservations as occupied units).
Measures:

* one order (`--order-size` devices) against it: the median and 95th percentile of repeated
  placements of the same order (placement is pure, so repeating it changes nothing);
* throughput: `--orders` orders of 1-6 devices from 20 ministries placed one after another, each
  against the racks as the earlier ones left them (as reservations serialise concurrent orders in
  the DCIM), until the data centre fills; orders and devices per second, and how many were refused
  and why.

Placement only: no DCIM round trips (those are the adapter's, measured in the cloud tier).
The last lines are the figures.
"""

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.dcim.placement import DeviceRequest, Placement, place  # noqa: E402
from orchestrator.ports import Depth, PowerFeed, RackInfo, UnitSpan  # noqa: E402


def data_centre(rng: random.Random, n_racks: int, n_devices: int) -> list[RackInfo]:
    per_rack = [n_devices // n_racks + (1 if i < n_devices % n_racks else 0) for i in range(n_racks)]
    racks = []
    carry = 0  # devices a full rack could not hold go to the next one
    for i, wanted in enumerate(per_rack):
        count = wanted + carry
        spans: list[UnitSpan] = []
        weight = 0.0
        draw = [0.0, 0.0]
        u = 1
        placed = 0
        while placed < count and u <= 42:
            height = min(rng.choice([1, 1, 1, 2, 2, 4]), 43 - u)
            if count - placed >= 2 and rng.random() < 0.5:  # a pair of half-depth devices sharing units
                spans += [UnitSpan(u, height, Depth.FRONT), UnitSpan(u, height, Depth.REAR)]
                placed += 2
            else:
                spans.append(UnitSpan(u, height, Depth.FULL))
                placed += 1
            weight += 12 * height
            draw[placed % 2] += 110 * height
            u += height + (1 if rng.random() < 0.15 else 0)
        carry = count - placed
        feeds = tuple(
            PowerFeed(f"r{i}-{side}", f"R{i}-{side.upper()}", 230, 32, "single-phase", 80, draw[k])
            for k, side in enumerate("ab")
        )
        racks.append(
            RackInfo(
                id=f"r{i}",
                name=f"R{i:03d}",
                site="primary" if i < n_racks * 3 // 4 else "dr",
                room=f"hall-{i // 25}",
                u_height=42,
                max_weight_kg=1000,
                weight_kg=weight,
                feeds=feeds,
                occupied=tuple(spans),
            )
        )
    return racks


def order(rng: random.Random, n: int, tag: str) -> list[DeviceRequest]:
    return [
        DeviceRequest(
            name=f"{tag}-{j}",
            height_u=rng.choice([1, 1, 2, 2, 4]),
            draw_w=rng.uniform(150, 900),
            weight_kg=rng.uniform(8, 45),
            nic_count=2,
            full_depth=rng.random() < 0.7,
        )
        for j in range(n)
    ]


def apply(racks: list[RackInfo], placements: tuple[Placement, ...]) -> list[RackInfo]:
    """The racks as the DCIM reports them once the placements are reservations."""
    touched = {p.rack_id for p in placements}
    out = []
    for r in racks:
        if r.id not in touched:
            out.append(r)
            continue
        mine = [p for p in placements if p.rack_id == r.id]
        feeds = tuple(
            PowerFeed(
                f.id,
                f.name,
                f.voltage,
                f.amperage,
                f.phase,
                f.max_utilization,
                f.allocated_w + sum(p.draw_w for p in mine if p.feed_id == f.id),
            )
            for f in r.feeds
        )
        out.append(
            RackInfo(
                r.id,
                r.name,
                r.site,
                r.room,
                r.u_height,
                r.max_weight_kg,
                r.weight_kg + sum(p.weight_kg for p in mine),
                feeds,
                (*r.occupied, *(UnitSpan(p.position, p.height_u, p.depth) for p in mine)),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--racks", type=int, default=200)
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--order-size", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    racks = data_centre(rng, args.racks, args.devices)
    existing = sum(len(r.occupied) for r in racks)
    free_units = sum(42 - len({u for s in r.occupied for u in range(s.position, s.top + 1)}) for r in racks)

    one = order(rng, args.order_size, "one")
    ministry_racks = {racks[7].id, racks[90].id}
    timings = []
    result = place(racks=racks, devices=one, ministry_rack_ids=ministry_racks)
    for _ in range(args.repeat):
        started = time.perf_counter()
        place(racks=racks, devices=one, ministry_rack_ids=ministry_racks)
        timings.append(time.perf_counter() - started)
    timings.sort()
    one_median = statistics.median(timings) * 1000
    one_p95 = timings[int(len(timings) * 0.95) - 1] * 1000

    state = racks
    ministries: dict[str, set[str]] = {f"m{k}": set() for k in range(20)}
    reasons: Counter[str] = Counter()
    placed_devices = accepted = 0
    started = time.perf_counter()
    for n in range(args.orders):
        ministry = f"m{n % 20}"
        devices = order(rng, rng.randint(1, 6), f"o{n}")
        outcome = place(racks=state, devices=devices, ministry_rack_ids=ministries[ministry], site="primary")
        if outcome.ok:  # all or nothing, as at approval
            accepted += 1
            placed_devices += len(outcome.placements)
            ministries[ministry].update(p.rack_id for p in outcome.placements)
            state = apply(state, outcome.placements)
        else:
            reasons.update(r.reason.value for r in outcome.refusals)
    elapsed = time.perf_counter() - started

    print(
        f"data centre: {args.racks} racks of 42 U, {existing} devices, {free_units} free units; "
        f"one order of {args.order_size} devices: {len(result.placements)} placed, {len(result.refusals)} refused"
    )
    print(f"one order of {args.order_size} devices: median {one_median:.1f} ms, p95 {one_p95:.1f} ms")
    print(
        f"{args.orders} orders one after another: {args.orders / elapsed:.0f} orders/s, "
        f"{placed_devices / elapsed:.0f} placed devices/s; {accepted} accepted, "
        f"{args.orders - accepted} refused (device refusals by reason: {dict(sorted(reasons.items())) or 'none'})"
    )


if __name__ == "__main__":
    main()
