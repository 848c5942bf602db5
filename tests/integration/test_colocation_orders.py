"""Co-location orders before any rack is touched, and the placement lock.

Through the API (no DCIM is configured for the integration tier's API): impossible sizes are 422
naming the field, an order without a DCIM is 409 saying so, the capacity view is for operators
and 409 without a DCIM; nothing is reserved or queued.

In this process, on the real PostgreSQL: `orchestrator.dcim.service.reserve` under the site's
advisory lock with 20 concurrent orders against an in-memory DCIM (tests/integration/dcim_double.py,
which like Nautobot does not enforce reservations): no overlapping units, no feed or rack over
budget, all or nothing per order; and, as a control, the same orders without the lock do
overlap. Placement against the real Nautobot is the cloud tier's (tests/cloud/test_colocation_concurrency.py).
"""

import socket
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from orchestrator.dcim import placement
from orchestrator.dcim import service as colocation
from orchestrator.dcim.placement import DeviceRequest, available_power_w
from orchestrator.errors import Conflict
from orchestrator.ports import Depth, RackInfo, Reservation, UnitSpan
from tests.conftest import Database, Platform, Tenant, make_tenant, serving_api
from tests.integration.dcim_double import DcimDouble, UnitsAlreadyReserved, small_site

pytestmark = pytest.mark.integration


@pytest.fixture
def rack_tenant(database: Database) -> Tenant:
    return make_tenant(rack_units=84, public_ips=16)


def device(name: str = "app-1", **overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "name": name,
        "model": "Dell PowerEdge R650",
        "rack_units": 1,
        "power_watts": 700,
        "weight_kg": 18,
    }
    item.update(overrides)
    return item


def colocation_order(*devices: dict[str, object], name: str = "land-registry") -> dict[str, Any]:
    return {
        "offering_id": "colocation",
        "plan": "quarter-rack",
        "parameters": {
            "name": name,
            "contact_name": "Sokha Chan",
            "contact_phone": "+855 23 000 000",
            "devices": list(devices) or [device()],
        },
    }


def nothing_reserved(client: httpx.Client, tenant: Tenant, before: dict[str, Any]) -> None:
    after = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()
    assert after["quota_used"] == before["quota_used"], "no quota is reserved"
    assert client.get("/v1/requests", headers=tenant.requester.headers).json()["total"] == 0, "nothing is queued"


@pytest.mark.parametrize(
    ("devices", "field"),
    [
        ([device(rack_units=0)], "parameters.devices.0.rack_units"),
        ([device(), device("db-1", rack_units=-1)], "parameters.devices.1.rack_units"),
        ([device(power_watts=0)], "parameters.devices.0.power_watts"),
        ([device(power_watts=-300)], "parameters.devices.0.power_watts"),
        ([device(weight_kg=0)], "parameters.devices.0.weight_kg"),
        ([device(weight_kg=-2.5)], "parameters.devices.0.weight_kg"),
        ([device(nic_count=0)], "parameters.devices.0.nic_count"),
        ([device(rack_units=43)], "parameters.devices.0.rack_units"),
        ([device("twin"), device("twin", rack_units=2)], "parameters.devices.1.name"),
        # More than the plan (quarter rack: 10 U, 2 kW) sells, though each device would fit.
        ([device(rack_units=6), device("db-1", rack_units=5)], "parameters.devices"),
        ([device(), device("db-1"), device("db-2")], "parameters.devices"),
    ],
)
def test_impossible_sizes_are_422_naming_the_field(
    client: httpx.Client, rack_tenant: Tenant, devices: list[dict[str, object]], field: str
) -> None:
    before = client.get(f"/v1/ministries/{rack_tenant.ministry_id}", headers=rack_tenant.requester.headers).json()
    response = client.post("/v1/requests", json=colocation_order(*devices), headers=rack_tenant.requester.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field, response.json()
    nothing_reserved(client, rack_tenant, before)


def test_an_order_without_a_dcim_is_409_saying_so(client: httpx.Client, rack_tenant: Tenant) -> None:
    before = client.get(f"/v1/ministries/{rack_tenant.ministry_id}", headers=rack_tenant.requester.headers).json()
    response = client.post("/v1/requests", json=colocation_order(), headers=rack_tenant.requester.headers)
    assert response.status_code == 409, response.text
    assert "DCIM" in response.json()["detail"] and "TONLE_DCIM" in response.json()["detail"], response.json()
    nothing_reserved(client, rack_tenant, before)


def test_an_order_while_the_dcim_is_down_is_503_saying_so(
    database: Database, rack_tenant: Tenant, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the DCIM is down
        probe.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with (
        serving_api(
            database.url, tmp_path_factory.mktemp("api-dcim-down"), TONLE_DCIM_URL=down, TONLE_DCIM_TOKEN="t"
        ) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        before = client.get(f"/v1/ministries/{rack_tenant.ministry_id}", headers=rack_tenant.requester.headers)
        response = client.post("/v1/requests", json=colocation_order(), headers=rack_tenant.requester.headers)
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "DCIM cannot be reached" in response.json()["detail"], response.json()
        nothing_reserved(client, rack_tenant, before.json())


def test_capacity_is_for_operators_and_409_without_a_dcim(
    client: httpx.Client, rack_tenant: Tenant, platform: Platform
) -> None:
    assert client.get("/v1/dcim/capacity", headers=rack_tenant.requester.headers).status_code == 403
    assert client.get("/v1/dcim/capacity").status_code == 401
    response = client.get("/v1/dcim/capacity", headers=platform.operator.headers)
    assert response.status_code == 409, response.text
    assert "DCIM" in response.json()["detail"]


# --- the site lock, on the real PostgreSQL, against the in-memory DCIM ---------------------------


def orders(n: int) -> list[tuple[str, str, list[DeviceRequest]]]:
    """(ministry, order, devices): 1 to 4 devices of 1 to 4 U, some half depth, heavy enough that
    space, weight and power all run out in the small site."""
    out = []
    for i in range(n):
        devices = [
            DeviceRequest(
                name=f"o{i}-d{j}",
                height_u=1 + (i + j) % 4,
                draw_w=350.0 + 150 * ((i * j) % 5),
                weight_kg=20.0 + 5 * (j % 3),
                nic_count=2,
                full_depth=(i + j) % 3 != 0,
            )
            for j in range(1 + i % 4)
        ]
        out.append((f"m{i % 5}", f"order-{i}", devices))
    return out


def run_together(jobs: list[Callable[[], None]]) -> list[Exception]:
    """Start every job at the same instant, each in its own thread; wait for all; what they raised."""
    barrier = threading.Barrier(len(jobs))
    errors: list[Exception] = []

    def go(job: Callable[[], None]) -> None:
        barrier.wait()
        try:
            job()
        except Exception as exc:  # noqa: BLE001 - collected and raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def overlaps(racks: list[RackInfo], held: list[Reservation]) -> list[str]:
    """Units taken twice on one face of one rack (a full-depth span takes both faces)."""
    taken: dict[tuple[str, str, int], str] = {}
    found = []
    for r in held:
        faces = ("front", "rear") if r.span.depth is Depth.FULL else (r.span.depth.value,)
        for unit in range(r.span.position, r.span.top + 1):
            for face in faces:
                key = (r.rack_id, face, unit)
                if key in taken:
                    found.append(f"{r.device_name} and {taken[key]} both hold unit {unit} ({face}) of {r.rack_id}")
                taken[key] = r.device_name
    return found


def over_budget(racks: list[RackInfo], held: list[Reservation]) -> list[str]:
    draw: dict[str, float] = defaultdict(float)
    weight: dict[str, float] = defaultdict(float)
    for r in held:
        draw[r.feed_id] += r.draw_w
        weight[r.rack_id] += r.weight_kg
    found = [f"{rack.id} carries {weight[rack.id]} kg" for rack in racks if weight[rack.id] > rack.max_weight_kg]
    found += [
        f"feed {f.id} draws {draw[f.id]} W of {available_power_w(f)}"
        for rack in racks
        for f in rack.feeds
        if draw[f.id] > available_power_w(f)
    ]
    return found


def test_twenty_concurrent_orders_never_overlap_or_overdraw_under_the_site_lock(database: Database) -> None:
    from orchestrator.database.unit_of_work import unit_of_work

    racks = small_site(3, max_weight=300)
    dcim = DcimDouble(racks, read_delay=0.02)  # a DCIM round trip between reading and writing
    refused: dict[str, Conflict] = {}

    def order(ministry: str, ref: str, devices: list[DeviceRequest]) -> Callable[[], None]:
        def run() -> None:
            with unit_of_work() as uow:
                try:
                    colocation.reserve(
                        session=uow.session, dcim=dcim, ministry_code=ministry, order_ref=ref, devices=devices
                    )
                except Conflict as exc:
                    refused[ref] = exc
                    return
                uow.commit()

        return run

    wanted = orders(20)
    assert run_together([order(*o) for o in wanted]) == []

    held = dcim.reservations()
    assert overlaps(racks, held) == []
    assert over_budget(racks, held) == []
    for _, ref, devices in wanted:
        mine = {r.device_name for r in dcim.reservations(order_ref=ref)}
        if ref in refused:
            assert mine == set(), f"{ref} was refused yet holds {mine}"
            assert refused[ref].extra["reason"] in {"space", "power", "weight"}
            assert refused[ref].extra["device"] in {d.name for d in devices}
            assert refused[ref].extra["reason"] in refused[ref].detail
        else:
            assert mine == {d.name for d in devices}, f"{ref} holds {mine}"
    assert refused, "the site is small enough that some orders must be refused"
    assert len(refused) < len(wanted), "and large enough that some fit"


def test_without_the_lock_the_same_orders_clash_or_overdraw() -> None:
    """The control: without the lock, orders placed against the same reading of the racks either
    collide in the DCIM (which, like Nautobot, refuses units already reserved, and leaves the
    order half written) or promise a feed more than it delivers; the test above passes because
    of the lock."""
    racks = small_site(3, max_weight=300)
    dcim = DcimDouble(racks, read_delay=0.02)

    def unlocked(ministry: str, ref: str, devices: list[DeviceRequest]) -> Callable[[], None]:
        def run() -> None:
            result = placement.place(racks=dcim.racks(site="primary"), devices=devices, site="primary")
            for p in result.placements if result.ok else ():
                dcim.reserve(
                    rack_id=p.rack_id,
                    span=UnitSpan(p.position, p.height_u, p.depth),
                    ministry_code=ministry,
                    order_ref=ref,
                    device_name=p.device,
                    feed_id=p.feed_id,
                    draw_w=p.draw_w,
                    weight_kg=p.weight_kg,
                )

        return run

    clashes = run_together([unlocked(*o) for o in orders(20)])
    assert all(isinstance(e, UnitsAlreadyReserved) for e in clashes), clashes
    assert overlaps(racks, dcim.reservations()) == [], "the DCIM itself never holds a unit twice"
    assert clashes or over_budget(racks, dcim.reservations())


def test_a_failed_write_gives_back_what_the_order_wrote(database: Database) -> None:
    from orchestrator.database.unit_of_work import unit_of_work

    dcim = DcimDouble(small_site(2), fail_after=2)
    devices = [DeviceRequest(f"d{i}", 1, 300, 10) for i in range(4)]
    with unit_of_work() as uow, pytest.raises(ConnectionError):
        colocation.reserve(session=uow.session, dcim=dcim, ministry_code="m", order_ref="o-1", devices=devices)
    assert dcim.writes == 3
    assert dcim.reservations() == []


def test_a_refused_order_writes_nothing_and_release_drops_an_order(database: Database) -> None:
    from orchestrator.database.unit_of_work import unit_of_work

    dcim = DcimDouble(small_site(2))
    with unit_of_work() as uow:
        with pytest.raises(Conflict) as refused:
            colocation.reserve(
                session=uow.session,
                dcim=dcim,
                ministry_code="m",
                order_ref="o-big",
                devices=[DeviceRequest("fits", 2, 300, 10), DeviceRequest("too-hot", 1, 5000, 10)],
            )
        assert refused.value.extra["device"] == "too-hot"
        assert refused.value.extra["reason"] == "power"
        assert dcim.writes == 0
        made = colocation.reserve(
            session=uow.session,
            dcim=dcim,
            ministry_code="m",
            order_ref="o-ok",
            devices=[DeviceRequest("a", 2, 300, 10), DeviceRequest("b", 1, 300, 10, full_depth=False)],
        )
        uow.commit()
    assert {r.device_name for r in made} == {"a", "b"}
    assert colocation.release(dcim=dcim, order_ref="o-ok") == 2
    assert dcim.reservations() == []


def test_half_depth_devices_share_units_with_installed_devices_never_with_reservations(database: Database) -> None:
    """Nautobot refuses a reservation of units another reservation holds, whatever the faces."""
    from orchestrator.database.unit_of_work import unit_of_work

    # One rack: U1 holds an installed half-depth device on the front, U2 is free, U3-U42 are full.
    rack = replace(small_site(1)[0], occupied=(UnitSpan(1, 1, Depth.FRONT), UnitSpan(3, 40)))
    dcim = DcimDouble([rack])
    half = [DeviceRequest(f"h{i}", 1, 200, 5, full_depth=False) for i in range(3)]
    with unit_of_work() as uow:
        first = colocation.reserve(session=uow.session, dcim=dcim, ministry_code="m", order_ref="o-1", devices=half[:2])
        uow.commit()
    assert sorted((r.span.position, r.span.depth) for r in first) == [(1, Depth.REAR), (2, Depth.FRONT)]
    with unit_of_work() as uow, pytest.raises(Conflict) as refused:
        # U2's rear is free, but U2 is reserved: no room for another reservation
        colocation.reserve(session=uow.session, dcim=dcim, ministry_code="m", order_ref="o-2", devices=half[2:])
    assert refused.value.extra["reason"] == "space"
