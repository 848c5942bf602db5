"""A co-location order's devices, their DCIM names, the 422s naming the order's fields, the dry-run
fit's refusals (orchestrator/dcim/service.py) and the capacity summary (orchestrator/dcim/capacity.py).

The DCIM is an in-memory double here (tests/integration/dcim_double.py): these tests are about
what Tonle asks and answers, not about Nautobot (the cloud tier is)."""

import pytest

from orchestrator.catalog import service as catalog
from orchestrator.dcim import capacity, service
from orchestrator.dcim.placement import DeviceRequest
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.ports import Depth, PowerFeed, RackInfo, UnitSpan
from tests.integration.dcim_double import DcimDouble, small_site

pytestmark = pytest.mark.unit


def device(name: str = "app-1", **overrides: object) -> dict[str, object]:
    item: dict[str, object] = {"name": name, "model": "Dell R650", "rack_units": 1, "power_watts": 500, "weight_kg": 18}
    item.update(overrides)
    return item


def test_order_devices_become_placement_requests() -> None:
    offering = catalog.get_offering("colocation")
    params = {"devices": [device("app-1", nic_count=2), device("nas-1", rack_units=2, depth="half", weight_kg=7.5)]}
    assert service.device_requests(params, offering) == [
        DeviceRequest(name="app-1", height_u=1, draw_w=500.0, weight_kg=18.0, nic_count=2, full_depth=True),
        DeviceRequest(name="nas-1", height_u=2, draw_w=500.0, weight_kg=7.5, nic_count=1, full_depth=False),
    ]
    assert service.device_requests(params, catalog.get_offering("web-hosting")) == []


def test_dcim_names_are_unique_stable_and_fit_the_dcim() -> None:
    assert service.dcim_device_name(ministry_code="health", service_name="lab", device="app-1") == "health-lab-app-1"
    long_a = service.dcim_device_name(ministry_code="m" * 32, service_name="s" * 31, device="a" * 31)
    long_b = service.dcim_device_name(ministry_code="m" * 32, service_name="s" * 31, device="a" * 30 + "b")
    assert len(long_a) == len(long_b) == service.DCIM_NAME_MAX
    assert long_a != long_b
    assert long_a == service.dcim_device_name(ministry_code="m" * 32, service_name="s" * 31, device="a" * 31)


@pytest.mark.parametrize(
    ("devices", "field"),
    [
        ([device(rack_units=0)], "parameters.devices.0.rack_units"),
        ([device(), device("b", rack_units=-2)], "parameters.devices.1.rack_units"),
        ([device(power_watts=0)], "parameters.devices.0.power_watts"),
        ([device(weight_kg=-1)], "parameters.devices.0.weight_kg"),
        ([device("twin"), device("twin")], "parameters.devices.1.name"),
        ([], "parameters.devices"),
    ],
)
def test_impossible_sizes_are_422_naming_the_order_field(devices: list[dict[str, object]], field: str) -> None:
    offering = catalog.get_offering("colocation")
    with pytest.raises(InvalidInput) as refused:
        service.validate(offering=offering, devices=service.device_requests({"devices": devices}, offering))
    assert refused.value.field == field
    assert refused.value.errors[0]["field"] == field


def test_a_device_taller_than_any_free_run_is_refused_for_space() -> None:
    racks = [
        RackInfo(**{**vars(r), "occupied": tuple(UnitSpan(u, 1) for u in range(1, 43, 3))}) for r in small_site(2)
    ]  # free runs of 2 U everywhere
    dcim = DcimDouble(racks)
    with pytest.raises(Conflict) as refused:
        service.check_fits(
            dcim=dcim, ministry_code="health", devices=[DeviceRequest("db-1", 3, 400, 20)], site="primary"
        )
    assert refused.value.extra["reason"] == "space"
    assert refused.value.extra["device"] == "db-1"
    assert "db-1" in refused.value.detail and "space" in refused.value.detail
    assert dcim.reservations() == []
    service.check_fits(dcim=dcim, ministry_code="health", devices=[DeviceRequest("db-1", 2, 400, 20)], site="primary")


def test_a_draw_above_every_feeds_headroom_is_refused_for_power() -> None:
    dcim = DcimDouble(small_site(2))  # 230 V x 16 A x 80 % = 2944 W per feed
    with pytest.raises(Conflict) as refused:
        service.check_fits(
            dcim=dcim, ministry_code="health", devices=[DeviceRequest("gpu-1", 4, 3000, 40)], site="primary"
        )
    assert refused.value.extra["reason"] == "power"
    assert "2944 W" in refused.value.detail


def test_weight_above_every_racks_headroom_is_refused_for_weight() -> None:
    dcim = DcimDouble(small_site(2, max_weight=100))
    with pytest.raises(Conflict) as refused:
        service.check_fits(
            dcim=dcim, ministry_code="health", devices=[DeviceRequest("ups-1", 4, 300, 120)], site="primary"
        )
    assert refused.value.extra["reason"] == "weight"


def test_other_sites_racks_do_not_count() -> None:
    dcim = DcimDouble([*small_site(1, site="dr"), *small_site(1, site="primary", max_weight=10)])
    with pytest.raises(Conflict):
        service.check_fits(dcim=dcim, ministry_code="health", devices=[DeviceRequest("a", 1, 100, 20)], site="primary")
    service.check_fits(dcim=dcim, ministry_code="health", devices=[DeviceRequest("a", 1, 100, 20)], site="dr")


def test_rack_capacity_counts_free_units_runs_headroom_and_limits() -> None:
    rack = RackInfo(
        id="r1",
        name="R1",
        site="primary",
        room="hall-a",
        u_height=10,
        max_weight_kg=100,
        weight_kg=85,
        feeds=(
            PowerFeed("a", "A", 230, 10, "single-phase", 100, allocated_w=1900),
            PowerFeed("b", "B", 400, 16, "three-phase", 80, allocated_w=0),
        ),
        occupied=(UnitSpan(1, 2), UnitSpan(5, 1, Depth.FRONT), UnitSpan(5, 1, Depth.REAR)),
    )
    got = capacity.rack_capacity(rack)
    assert (got.free_units, got.largest_free_run, got.units_used_pct) == (7, 5, 30.0)
    assert got.weight_headroom_kg == 15
    a, b = got.feeds
    assert (a.available_w, a.allocated_w, a.headroom_w, a.utilisation_pct) == (2300, 1900, 400, 82.6)
    assert b.available_w == round(400 * 16 * 0.8 * 1.732, 1)
    assert got.near_limit.model_dump() == {"units": False, "power": True, "weight": True}


def test_capacity_groups_sites_and_rooms_and_names_racks_near_limits() -> None:
    racks = small_site(4)
    full = RackInfo(**{**vars(racks[0]), "occupied": (UnitSpan(1, 40),)})
    summary = capacity.summarise([full, *racks[1:], *small_site(1, site="dr")])
    assert [s.site for s in summary.sites] == ["dr", "primary"]
    primary = summary.sites[1]
    assert [r.room for r in primary.rooms] == ["hall-a", "hall-b"]
    assert primary.rooms[0].near_limit == [full.name]
    assert primary.free_units == 2 + 3 * 42
    assert primary.largest_free_run == 42
    assert primary.power_headroom_w == 4 * 2 * 2944


def test_a_ministrys_racks_are_those_with_its_installed_devices_or_its_reservations() -> None:
    from orchestrator.dcim.service import ministry_racks
    from orchestrator.ports import RackInfo, Reservation, UnitSpan

    def rack(rack_id: str, *ministries: str) -> RackInfo:
        return RackInfo(
            id=rack_id,
            name=rack_id,
            site="primary",
            room="hall-a",
            u_height=42,
            max_weight_kg=1000,
            weight_kg=0,
            feeds=(),
            ministries=frozenset(ministries),
        )

    held = [Reservation("r1", "c", UnitSpan(1, 1), "mof", "order-1", "mof-x-a", "feed", 100, 10)]
    racks = [rack("a", "moh"), rack("b", "mof", "moh"), rack("c"), rack("d")]
    assert ministry_racks(racks=racks, held=held, ministry_code="mof") == {"b", "c"}
    assert ministry_racks(racks=racks, held=held, ministry_code="moh") == {"a", "b"}
    assert ministry_racks(racks=racks, held=held, ministry_code="moe") == set()
