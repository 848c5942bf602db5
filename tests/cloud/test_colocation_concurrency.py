"""Co-location placement at order and approval time against the local data centre's Nautobot,
observed through Nautobot's own REST API (plain HTTP, not Tonle's adapter).

The module makes a DCIM site of its own in Nautobot (three 42 U racks in one room, two 230 V /
16 A feeds at 80 % each, 400 kg each, and somebody else's reservation of U22 in every rack), so
that its orders can fill it without touching the racks other tests use, and removes it at the
end. Two API processes (no worker: provisioning is not what this is about) share the test
database and place in that site (TONLE_DCIM_SITE).

* Bad inputs: a device taller than any free run (409, space), a draw above any feed's headroom
  (409, power), heavier than any rack can carry (409, weight), zero or negative sizes (422
  naming the field): nothing reserved, as Nautobot shows.
* Two pending orders of one ministry with one name: the second approval is 409 (their devices
  would share DCIM names).
* 20 orders from four ministries at once (after the tests above: they fill the site),
  alternating between the two API processes, each ordered, then approved by the ministry's head
  and an operator: in Nautobot no unit is held twice on a face of a rack, no feed is promised
  more than it can deliver, no rack carries more than its maximum; every approved order holds
  exactly its devices under their DCIM names, every refused one nothing (its request still
  waiting); every refusal is a 409 naming the device and the reason.
* The capacity view of the site is what Nautobot holds.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from orchestrator.dcim.service import dcim_device_name
from tests.conftest import Database, Platform, Tenant, make_tenant, serving_api

pytestmark = pytest.mark.cloud

RACKS = 3
RACK_MAX_KG = 400
FEED = {"voltage": 230, "amperage": 16, "max_utilization": 80}  # 2944 W a feed
FEED_W = 230 * 16 * 0.8
HELD_UNIT = 22  # somebody else's reservation in every rack: free runs of 21 and 20 units
REASONS = {"space", "power", "weight"}


@dataclass
class Site:
    name: str
    rack_ids: list[str]
    ids: list[tuple[str, str]] = field(default_factory=list)  # (endpoint, id) to delete, newest last


@pytest.fixture(scope="module")
def observer(nautobot_api: httpx.Client) -> httpx.Client:
    return nautobot_api


def _one(observer: httpx.Client, path: str, **params: str) -> str:
    found = observer.get(path, params=params).json()["results"]
    assert len(found) == 1, (path, params, found)
    return str(found[0]["id"])


def _make(observer: httpx.Client, site: Site, path: str, body: dict[str, Any]) -> str:
    made = observer.post(path, json=body)
    assert made.status_code == 201, made.text
    site.ids.append((path, made.json()["id"]))
    return str(made.json()["id"])


@pytest.fixture(scope="module")
def site(observer: httpx.Client) -> Iterator[Site]:
    active = _one(observer, "/extras/statuses/", name="Active")
    made = Site(name=f"test-{uuid.uuid4().hex[:6]}", rack_ids=[])
    try:
        location = _make(
            observer,
            made,
            "/dcim/locations/",
            {
                "name": made.name,
                "location_type": _one(observer, "/dcim/location-types/", name="Site"),
                "status": active,
            },
        )
        room = _make(
            observer,
            made,
            "/dcim/locations/",
            {
                "name": "hall-t",
                "location_type": _one(observer, "/dcim/location-types/", name="Room"),
                "parent": location,
                "status": active,
            },
        )
        panel = _make(observer, made, "/dcim/power-panels/", {"name": f"{made.name}-pp", "location": room})
        for n in range(1, RACKS + 1):
            rack = _make(
                observer,
                made,
                "/dcim/racks/",
                {
                    "name": f"{made.name}-r{n}",
                    "location": room,
                    "status": active,
                    "u_height": 42,
                    "custom_fields": {"tonle_max_weight_kg": RACK_MAX_KG},
                },
            )
            made.rack_ids.append(rack)
            for side, kind in (("A", "primary"), ("B", "redundant")):
                _make(
                    observer,
                    made,
                    "/dcim/power-feeds/",
                    {
                        "name": f"{made.name}-r{n}-{side}",
                        "power_panel": panel,
                        "rack": rack,
                        "status": active,
                        "type": kind,
                        "supply": "ac",
                        "phase": "single-phase",
                        **FEED,
                    },
                )
            _make(
                observer,
                made,
                "/dcim/rack-reservations/",
                {"rack": rack, "units": [HELD_UNIT], "description": "facilities: cable tray works"},
            )
        yield made
    finally:
        for rack_id in made.rack_ids:
            for held in reservations(observer, rack_id):
                observer.delete(f"/dcim/rack-reservations/{held['id']}/")
        for path, obj_id in reversed(made.ids):
            gone = observer.delete(f"{path}{obj_id}/")
            assert gone.status_code in (204, 404), gone.text


def reservations(observer: httpx.Client, rack_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = observer.get(
        "/dcim/rack-reservations/", params={"rack": rack_id, "limit": 1000}
    ).json()["results"]
    return found


def tonle_reservations(observer: httpx.Client, site: Site) -> list[dict[str, Any]]:
    return [r for rack in site.rack_ids for r in reservations(observer, rack) if r["custom_fields"].get("tonle_device")]


@pytest.fixture(scope="module")
def apis(
    database: Database, nautobot: dict[str, str], site: Site, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Two API processes placing in the module's site (one database, so one advisory lock)."""
    settings = {"TONLE_DCIM_CONFIG": nautobot["config"], "TONLE_DCIM_SITE": site.name}
    first_logs, second_logs = tmp_path_factory.mktemp("api-1"), tmp_path_factory.mktemp("api-2")
    with (
        serving_api(database.url, first_logs, **settings) as first,
        serving_api(database.url, second_logs, **settings) as second,
    ):
        yield [first, second]


def device(name: str, units: int, watts: int, kg: float, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "model": "Dell PowerEdge R760",
        "rack_units": units,
        "power_watts": watts,
        "weight_kg": kg,
        **extra,
    }


def order(name: str, *devices: dict[str, object]) -> dict[str, Any]:
    return {
        "offering_id": "colocation",
        "plan": "full-rack",  # 42 U and 8 kW: what a device may not exceed is the racks' to say
        "parameters": {
            "name": name,
            "contact_name": "Sokha Chan",
            "contact_phone": "+855 23 000 000",
            "devices": list(devices),
        },
    }


def ministry() -> Tenant:
    return make_tenant(rack_units=500, public_ips=100)


@pytest.mark.parametrize(
    ("devices", "status", "reason", "field_at_fault"),
    [
        ([device("big-1", 21, 500, 30)], 201, None, None),  # the tallest free run is 21 units: fits
        ([device("app-1", 1, 300, 10), device("big-1", 22, 500, 30)], 409, "space", None),
        ([device("gpu-1", 4, 3000, 40)], 409, "power", None),
        ([device("ups-1", 3, 500, RACK_MAX_KG + 1)], 409, "weight", None),
        ([device("app-1", 0, 300, 10)], 422, None, "parameters.devices.0.rack_units"),
        ([device("app-1", -1, 300, 10)], 422, None, "parameters.devices.0.rack_units"),
        ([device("app-1", 1, 0, 10)], 422, None, "parameters.devices.0.power_watts"),
        ([device("app-1", 1, -50, 10)], 422, None, "parameters.devices.0.power_watts"),
        ([device("app-1", 1, 300, 0)], 422, None, "parameters.devices.0.weight_kg"),
        ([device("app-1", 1, 300, -3)], 422, None, "parameters.devices.0.weight_kg"),
    ],
)
def test_bad_inputs_are_refused_and_nothing_is_reserved(
    apis: list[str],
    observer: httpx.Client,
    site: Site,
    devices: list[dict[str, object]],
    status: int,
    reason: str | None,
    field_at_fault: str | None,
) -> None:
    tenant = ministry()
    before = tonle_reservations(observer, site)
    with httpx.Client(base_url=apis[0], timeout=120) as client:
        response = client.post(
            "/v1/requests", json=order(f"bad-{uuid.uuid4().hex[:6]}", *devices), headers=tenant.requester.headers
        )
        assert response.status_code == status, response.text
        problem = response.json()
        if reason is not None:
            assert problem["reason"] == reason and reason in problem["detail"], problem
            assert problem["device"] in {d["name"] for d in devices} and problem["device"] in problem["detail"]
            assert "nothing was reserved" in problem["detail"]
        if field_at_fault is not None:
            assert problem["field"] == field_at_fault, problem
        if status != 201:
            assert client.get("/v1/requests", headers=tenant.requester.headers).json()["total"] == 0
        else:  # a dry run: nothing is held before the last approval
            client.post(f"/v1/requests/{problem['id']}/cancel", json={}, headers=tenant.requester.headers)
    assert tonle_reservations(observer, site) == before


def test_a_ministry_cannot_have_two_live_colocations_of_one_name(
    apis: list[str], observer: httpx.Client, site: Site, platform: Platform
) -> None:
    """Devices are named `<ministry>-<service>-<device>` in the DCIM: the name must stay unique."""
    tenant = ministry()
    name = f"dup-{uuid.uuid4().hex[:6]}"
    body = order(name, device("app-1", 1, 200, 10))
    with httpx.Client(base_url=apis[0], timeout=120) as client:
        first, second = (client.post("/v1/requests", json=body, headers=tenant.requester.headers) for _ in range(2))
        assert first.status_code == second.status_code == 201, (first.text, second.text)
        outcomes = []
        for request in (first.json(), second.json()):
            client.post(
                f"/v1/requests/{request['id']}/approvals",
                json={"decision": "approve", "reference": "MEMO-DUP"},
                headers=tenant.approver.headers,
            ).raise_for_status()
            outcomes.append(
                client.post(
                    f"/v1/requests/{request['id']}/approvals",
                    json={"decision": "approve"},
                    headers=platform.operator.headers,
                )
            )
        assert outcomes[0].status_code == 200, outcomes[0].text
        assert outcomes[1].status_code == 409 and outcomes[1].json()["field"] == "parameters.name", outcomes[1].text
        third = client.post("/v1/requests", json=body, headers=tenant.requester.headers)
        assert third.status_code == 409 and third.json()["field"] == "parameters.name", third.text
    held = [r for r in tonle_reservations(observer, site) if r["custom_fields"]["tonle_ministry"] == tenant.code]
    assert [r["custom_fields"]["tonle_order"] for r in held] == [outcomes[0].json()["service_id"]]


def concurrent_orders(tenants: list[Tenant]) -> list[tuple[Tenant, dict[str, Any]]]:
    """20 orders of one to three devices, 1-4 U, 300-1,000 W, 12-60 kg (a 110 kg storage shelf in
    every fourth), some half depth: more than the site can hold (123 free U, 17.7 kW, 1,200 kg),
    so power or weight runs out, whichever order the approvals come in."""
    out = []
    for i in range(20):
        devices = [
            device(
                f"srv-{j}",
                1 + (i + j) % 4,
                300 + 100 * ((3 * i + j) % 8),
                110.0 if i % 4 == 3 and j == 0 else 12.0 + 8 * ((i + 2 * j) % 7),
                nic_count=1 + j % 2,
                depth="half" if (i + j) % 5 == 0 else "full",
            )
            for j in range(1 + i % 3)
        ]
        out.append((tenants[i % len(tenants)], order(f"rack-{i:02d}-{uuid.uuid4().hex[:4]}", *devices)))
    return out


@dataclass
class Outcome:
    tenant: Tenant
    body: dict[str, Any]
    request_id: str | None = None
    service_id: str | None = None
    refusal: dict[str, Any] | None = None  # the 409 problem, at submission or at the last approval
    refused_at: str = ""


def place_order(api: str, tenant: Tenant, platform: Platform, body: dict[str, Any]) -> Outcome:
    outcome = Outcome(tenant=tenant, body=body)
    with httpx.Client(base_url=api, timeout=300) as client:
        submitted = client.post("/v1/requests", json=body, headers=tenant.requester.headers)
        if submitted.status_code == 409:
            outcome.refusal, outcome.refused_at = submitted.json(), "submission"
            return outcome
        assert submitted.status_code == 201, submitted.text
        outcome.request_id = submitted.json()["id"]
        head = client.post(
            f"/v1/requests/{outcome.request_id}/approvals",
            json={"decision": "approve", "reference": "MEMO-RACK"},
            headers=tenant.approver.headers,
        )
        assert head.status_code == 200, head.text
        last = client.post(
            f"/v1/requests/{outcome.request_id}/approvals",
            json={"decision": "approve"},
            headers=platform.operator.headers,
        )
        if last.status_code == 409:
            outcome.refusal, outcome.refused_at = last.json(), "approval"
            return outcome
        assert last.status_code == 200 and last.json()["status"] == "approved", last.text
        outcome.service_id = last.json()["service_id"]
    return outcome


def test_twenty_concurrent_orders_never_overlap_or_overdraw_a_rack(
    apis: list[str], observer: httpx.Client, site: Site, platform: Platform
) -> None:
    tenants = [ministry() for _ in range(4)]
    wanted = concurrent_orders(tenants)
    outcomes: list[Outcome | None] = [None] * len(wanted)
    barrier = threading.Barrier(len(wanted))
    failures: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = place_order(apis[i % 2], wanted[i][0], platform, wanted[i][1])
        except Exception as exc:  # noqa: BLE001 - raised in the test's thread below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(wanted))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    assert not failures, failures
    done = [o for o in outcomes if o is not None]
    assert len(done) == len(wanted)

    # Nautobot as the outside observer: every reservation in the site's racks
    held_by_rack = {rack: reservations(observer, rack) for rack in site.rack_ids}
    faces: dict[tuple[str, str, int], str] = {}
    draw: dict[str, float] = defaultdict(float)
    for rack, held in held_by_rack.items():
        weight = 0.0
        for r in held:
            cf = r["custom_fields"]
            depth = cf.get("tonle_depth") or "full"
            for unit in r["units"]:
                for face in ("front", "rear") if depth == "full" else (depth,):
                    assert (rack, face, unit) not in faces, (
                        f"unit {unit} ({face}) held by {faces[(rack, face, unit)]} and {r['description']}"
                    )
                    faces[(rack, face, unit)] = r["description"]
            weight += float(cf.get("tonle_weight_kg") or 0)
            if cf.get("tonle_feed"):
                draw[cf["tonle_feed"]] += float(cf.get("tonle_draw_w") or 0)
        limit = observer.get(f"/dcim/racks/{rack}/").json()["custom_fields"]["tonle_max_weight_kg"]
        assert weight <= limit, f"rack {rack} carries {weight} kg of {limit}"
    feeds = observer.get("/dcim/power-feeds/", params={"rack": site.rack_ids, "limit": 100}).json()["results"]
    assert len(feeds) == 2 * RACKS
    for feed in feeds:
        available = feed["voltage"] * feed["amperage"] * feed["max_utilization"] / 100
        assert draw[feed["id"]] <= available, f"feed {feed['name']} promised {draw[feed['id']]} W of {available}"
    assert set(draw) <= {f["id"] for f in feeds}

    # all or nothing per order, under the names the DCIM knows them by
    ministry_codes = {t.ministry_id: t.code for t in tenants}
    by_order: dict[str, set[str]] = defaultdict(set)
    for held in held_by_rack.values():
        for r in held:
            if r["custom_fields"].get("tonle_ministry") in ministry_codes.values():
                by_order[r["custom_fields"]["tonle_order"]].add(r["custom_fields"]["tonle_device"])
    approved = [o for o in done if o.service_id is not None]
    refused = [o for o in done if o.refusal is not None]
    for o in approved:
        names = {
            dcim_device_name(
                ministry_code=ministry_codes[o.tenant.ministry_id],
                service_name=o.body["parameters"]["name"],
                device=str(d["name"]),
            )
            for d in o.body["parameters"]["devices"]
        }
        assert by_order.pop(str(o.service_id)) == names
    assert by_order == {}, f"reservations of no approved order: {by_order}"
    with httpx.Client(base_url=apis[0], timeout=60) as client:
        for o in refused:
            assert o.refusal is not None
            assert o.refusal["status"] == 409 and o.refusal["reason"] in REASONS, o.refusal
            assert o.refusal["reason"] in o.refusal["detail"] and o.refusal["device"] in o.refusal["detail"]
            assert o.refusal["device"] in {d["name"] for d in o.body["parameters"]["devices"]}
            if o.refused_at == "approval":
                request = client.get(f"/v1/requests/{o.request_id}", headers=o.tenant.requester.headers).json()
                assert request["status"] == "pending_approval" and request["service_id"] is None, request
    assert approved, "some orders fit"
    assert refused, "the site is too small for all 20: some are refused"
    reasons = sorted({str(o.refusal["reason"]) for o in refused if o.refusal})
    print(
        f"\n20 concurrent orders: {len(approved)} approved, "
        f"{sum(o.refused_at == 'submission' for o in refused)} refused at submission, "
        f"{sum(o.refused_at == 'approval' for o in refused)} at approval; reasons {reasons}; "
        f"{sum(len(h) for h in held_by_rack.values())} reservations in the site"
    )


def test_capacity_is_what_nautobot_holds(
    apis: list[str], observer: httpx.Client, site: Site, platform: Platform
) -> None:
    tenant = ministry()
    with httpx.Client(base_url=apis[1], timeout=120) as client:
        assert client.get("/v1/dcim/capacity", headers=tenant.requester.headers).status_code == 403
        response = client.get("/v1/dcim/capacity", params={"site": site.name}, headers=platform.operator.headers)
    assert response.status_code == 200, response.text
    (seen,) = response.json()["sites"]
    assert seen["site"] == site.name
    (room,) = seen["rooms"]
    assert len(room["racks"]) == RACKS
    for rack in room["racks"]:
        held = reservations(observer, rack["id"])
        taken = {u for r in held for u in r["units"]}
        assert rack["free_units"] == 42 - len(taken)
        assert rack["weight_headroom_kg"] == pytest.approx(
            RACK_MAX_KG - sum(float(r["custom_fields"].get("tonle_weight_kg") or 0) for r in held), abs=0.1
        )
        for feed in rack["feeds"]:
            feed_id = _one(observer, "/dcim/power-feeds/", name=feed["name"])
            drawn = sum(
                float(r["custom_fields"].get("tonle_draw_w") or 0)
                for r in held
                if r["custom_fields"].get("tonle_feed") == feed_id
            )
            assert feed["available_w"] == pytest.approx(FEED_W)
            assert feed["allocated_w"] == pytest.approx(drawn, abs=0.1)
            assert feed["headroom_w"] == pytest.approx(max(FEED_W - drawn, 0), abs=0.1)
        assert rack["near_limit"]["units"] == (100 * (42 - rack["free_units"]) / 42 >= 80)
        assert rack["name"] in room["near_limit"] or not any(rack["near_limit"].values())
