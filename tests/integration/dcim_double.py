"""An in-memory DCIM (`ports.Dcim`): a double of the data centre's Nautobot for tests that are
about Tonle's side of placement (the lock, all-or-nothing writes, refusals), not about Nautobot.

Like Nautobot, it refuses a reservation of units another reservation of the rack holds (whatever
the faces: "The following units have already been reserved") and knows nothing of power or weight
budgets: those only the caller's serialisation keeps. `read_delay` widens the window between
reading the racks and writing reservations, as a real DCIM's round trips do; `fail_after` makes
the n-th write fail.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import replace

from orchestrator.ports import InstalledDevice, PowerFeed, RackedDevice, RackInfo, Reservation, UnitSpan


class UnitsAlreadyReserved(Exception):
    """What Nautobot answers (400) to a reservation of units already reserved."""


class DcimDouble:
    def __init__(self, racks: Iterable[RackInfo], *, read_delay: float = 0.0, fail_after: int | None = None) -> None:
        self._racks = {r.id: r for r in racks}
        self._reservations: dict[str, Reservation] = {}
        self._guard = threading.Lock()  # the dicts' own integrity, not the racks'
        self.read_delay = read_delay
        self.fail_after = fail_after
        self.writes = 0

    def racks(self, *, site: str | None = None) -> list[RackInfo]:
        with self._guard:
            held = list(self._reservations.values())
            racks = [r for r in self._racks.values() if site is None or r.site == site]
        out = []
        for rack in racks:
            mine = [r for r in held if r.rack_id == rack.id]
            feeds = tuple(
                replace(f, allocated_w=f.allocated_w + sum(r.draw_w for r in mine if r.feed_id == f.id))
                for f in rack.feeds
            )
            out.append(
                replace(
                    rack,
                    weight_kg=rack.weight_kg + sum(r.weight_kg for r in mine),
                    feeds=feeds,
                    occupied=(*rack.occupied, *(r.span for r in mine)),
                )
            )
        time.sleep(self.read_delay)
        return out

    def reservations(self, *, ministry_code: str | None = None, order_ref: str | None = None) -> list[Reservation]:
        with self._guard:
            return [
                r
                for r in self._reservations.values()
                if (ministry_code is None or r.ministry_code == ministry_code)
                and (order_ref is None or r.order_ref == order_ref)
            ]

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
        with self._guard:
            self.writes += 1
            if self.fail_after is not None and self.writes > self.fail_after:
                raise ConnectionError(f"the DCIM double refuses write {self.writes}")
            held = {
                u
                for r in self._reservations.values()
                if r.rack_id == rack_id
                for u in range(r.span.position, r.span.top + 1)
            }
            clash = sorted(held.intersection(range(span.position, span.top + 1)))
            if clash:
                raise UnitsAlreadyReserved(f"The following units have already been reserved: {clash}")
            made = Reservation(
                id=uuid.uuid4().hex,
                rack_id=rack_id,
                span=span,
                ministry_code=ministry_code,
                order_ref=order_ref,
                device_name=device_name,
                feed_id=feed_id,
                draw_w=draw_w,
                weight_kg=weight_kg,
            )
            self._reservations[made.id] = made
            return made

    def release(self, *, reservation_id: str) -> None:
        with self._guard:
            self._reservations.pop(reservation_id, None)

    def install(self, *, device: InstalledDevice) -> str:
        raise NotImplementedError("installation is not what the tests using this double are about")

    def installed(self, *, order_ref: str) -> list[RackedDevice]:
        return []  # nothing is ever installed in the double

    def remove(self, *, device_id: str) -> None:
        raise NotImplementedError("removal is not what the tests using this double are about")

    def free_patch_ports(self, *, rack_id: str) -> list[str]:
        return []

    def move(self, *, device_id: str, reservation: Reservation) -> None:
        raise NotImplementedError("moving a device is not what this double is for")


def small_site(n_racks: int = 4, *, site: str = "primary", max_weight: float = 600.0, amps: int = 16) -> list[RackInfo]:
    """Empty 42 U racks of one site, two single-phase 230 V feeds at 80 % each."""
    return [
        RackInfo(
            id=f"{site}-r{i}",
            name=f"{site.upper()}-R{i:02d}",
            site=site,
            room="hall-a" if i < n_racks // 2 or n_racks == 1 else "hall-b",
            u_height=42,
            max_weight_kg=max_weight,
            weight_kg=0.0,
            feeds=tuple(
                PowerFeed(f"{site}-r{i}-{side}", f"R{i:02d}-{side.upper()}", 230, amps, "single-phase", 80)
                for side in "ab"
            ),
        )
        for i in range(n_racks)
    ]
