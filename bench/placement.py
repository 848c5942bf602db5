"""Automatic rack placement at data-centre scale: one order, and concurrent orders at approval.

A synthetic data centre of `--racks` racks of 42 U (two single-phase 230 V / 32 A feeds at 80 %,
1,000 kg) already holding `--devices` devices of 1-4 U, half of them half-depth, packed bottom-up
with random gaps, as the DCIM would report them (devices and reservations as occupied units).
Measures:

* one order (`--order-size` devices) against it, repeated (nothing is written, so each run sees
  the same racks): the pure placement (`orchestrator/dcim/placement.py`), and the placement an
  approval makes (`orchestrator/dcim/service.py`: racks and reservations read from the DCIM,
  reservations as full depth, devices one by one); median and 95th percentile;
* throughput of concurrent orders: `--orders` orders of 1-6 devices from 20 ministries, submitted
  by `--threads` threads at once, each through `service.reserve` in its own transaction on a real
  PostgreSQL (the embedded server), so they queue on the site's advisory lock exactly as approvals
  in several API processes do, until the data centre fills; orders and devices per second, order
  latency, how many were refused and why, and a check that no unit is held twice.

The DCIM is in memory here (no Nautobot round trips: against devcloud's Nautobot, reading the
racks takes about 1.7 s and each reservation one HTTP write; the cloud tier measures those). The
last lines are the figures.
"""

import argparse
import random
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.setup import fresh_database  # noqa: E402
from orchestrator.dcim import service as colocation  # noqa: E402
from orchestrator.dcim.placement import DeviceRequest, place  # noqa: E402
from orchestrator.errors import Conflict  # noqa: E402
from orchestrator.ports import Depth, PowerFeed, RackInfo, UnitSpan  # noqa: E402

# The in-memory DCIM the integration tests use (it refuses units already reserved, as Nautobot does).
from tests.integration.dcim_double import DcimDouble  # noqa: E402


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


def timed(run: object, repeat: int) -> tuple[float, float]:
    """Median and 95th percentile of `repeat` calls, in milliseconds."""
    assert callable(run)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    timings.sort()
    return statistics.median(timings) * 1000, timings[max(int(len(timings) * 0.95) - 1, 0)] * 1000


def concurrent_orders(
    dcim: DcimDouble, rng: random.Random, n_orders: int, n_threads: int
) -> tuple[float, int, int, Counter[str], list[float]]:
    """`n_orders` orders through `service.reserve`, `n_threads` at a time, each in its own
    transaction under the site's advisory lock; (seconds, accepted, devices placed, refusals by
    reason, per-order latencies)."""
    from orchestrator.database.unit_of_work import unit_of_work

    work = [(f"m{n % 20}", f"order-{n}", order(rng, rng.randint(1, 6), f"o{n}")) for n in range(n_orders)]
    lock = threading.Lock()
    reasons: Counter[str] = Counter()
    latencies: list[float] = []
    accepted = placed = 0
    barrier = threading.Barrier(n_threads)

    def worker() -> None:
        nonlocal accepted, placed
        barrier.wait()
        while True:
            with lock:
                if not work:
                    return
                ministry, ref, devices = work.pop()
            started = time.perf_counter()
            with unit_of_work() as uow:
                try:
                    made = colocation.reserve(
                        session=uow.session,
                        dcim=dcim,
                        ministry_code=ministry,
                        order_ref=ref,
                        devices=devices,
                        site="primary",
                    )
                    uow.commit()
                except Conflict as refused:
                    with lock:
                        reasons[str(refused.extra["reason"])] += 1
                    made = []
            with lock:
                latencies.append(time.perf_counter() - started)
                if made:
                    accepted += 1
                    placed += len(made)

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, accepted, placed, reasons, latencies


def double_booked(racks: list[RackInfo]) -> int:
    """Units held twice on one face of one rack (devices and reservations together)."""
    clashes = 0
    for rack in racks:
        seen: set[tuple[str, int]] = set()
        for span in rack.occupied:
            faces = ("front", "rear") if span.depth is Depth.FULL else (span.depth.value,)
            for unit in range(span.position, span.top + 1):
                for face in faces:
                    clashes += (face, unit) in seen
                    seen.add((face, unit))
    return clashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--racks", type=int, default=200)
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--order-size", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    racks = data_centre(rng, args.racks, args.devices)
    existing = sum(len(r.occupied) for r in racks)
    free_units = sum(42 - len({u for s in r.occupied for u in range(s.position, s.top + 1)}) for r in racks)
    before = double_booked(racks)

    one = order(rng, args.order_size, "one")
    dcim = DcimDouble(racks)
    ministry_racks = {racks[7].id, racks[90].id}
    result = place(racks=racks, devices=one, ministry_rack_ids=ministry_racks, site="primary")
    pure = timed(lambda: place(racks=racks, devices=one, ministry_rack_ids=ministry_racks, site="primary"), args.repeat)
    as_approval = timed(
        lambda: colocation.check_fits(dcim=dcim, ministry_code="m0", devices=one, site="primary"), args.repeat
    )

    fresh_database(ROOT / ".tonle" / "bench", "bench_placement")
    elapsed, accepted, placed, reasons, latencies = concurrent_orders(dcim, rng, args.orders, args.threads)
    latencies.sort()
    after = double_booked(dcim.racks())

    print(
        f"data centre: {args.racks} racks of 42 U, {existing} devices, {free_units} free units; "
        f"one order of {args.order_size} devices: {len(result.placements)} placed, {len(result.refusals)} refused"
    )
    print(f"one order of {args.order_size} devices, pure placement: median {pure[0]:.1f} ms, p95 {pure[1]:.1f} ms")
    print(
        f"one order of {args.order_size} devices as an approval places it (DCIM read in memory, devices one by one): "
        f"median {as_approval[0]:.1f} ms, p95 {as_approval[1]:.1f} ms"
    )
    print(
        f"{args.orders} orders from {args.threads} threads at once through service.reserve (PostgreSQL advisory lock): "
        f"{args.orders / elapsed:.1f} orders/s, {placed / elapsed:.0f} placed devices/s, order latency median "
        f"{statistics.median(latencies) * 1000:.0f} ms, p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f} ms; "
        f"{accepted} accepted, {args.orders - accepted} refused (by reason: {dict(sorted(reasons.items()))}); "
        f"units held twice: {after - before}"
    )


if __name__ == "__main__":
    main()
