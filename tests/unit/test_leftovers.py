"""Cleanup verification's matching: what of a copy is found among a project's resources, against a
stand-in for the cloud's listings (the real APIs are asked in tests/cloud/test_drill.py)."""

from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator.cloud import leftovers
from orchestrator.cloud.sites import Site
from orchestrator.config import Settings

pytestmark = pytest.mark.unit

SERVICE = "6f1c2a4e-0d3b-4c55-9e21-7a8b9c0d1e2f"
COPY = "drill-0a1b2c3d"
TAGS = ["tonle", "ministry=health", f"service={SERVICE}", f"copy={COPY}"]
PRODUCTION_TAGS = ["tonle", "ministry=health", f"service={SERVICE}"]


def thing(id_: str, name: str = "", *, tags: list[str] | None = None, metadata: dict[str, str] | None = None) -> Any:
    return SimpleNamespace(id=id_, name=name, tags=tags or [], metadata=metadata or {}, floating_ip_address=None)


class Listings:
    """The cloud's list calls, answering what the test put in the project."""

    def __init__(self, **found: list[Any]) -> None:
        self.found = found
        self.closed = False
        self.compute = SimpleNamespace(servers=lambda: found.get("servers", []))
        self.block_storage = SimpleNamespace(volumes=lambda: found.get("volumes", []))
        self.network = SimpleNamespace(
            **{kind: (lambda kind=kind: found.get(kind, [])) for kind in
               ("ips", "ports", "routers", "subnets", "networks", "security_groups")}
        )  # fmt: skip

    def close(self) -> None:
        self.closed = True


def find(monkeypatch: pytest.MonkeyPatch, listings: Listings) -> list[str]:
    monkeypatch.setattr(leftovers, "site", lambda settings, name: Site(name, "tonle-dr", "dr", None, "tonle"))
    monkeypatch.setattr(leftovers, "connect", lambda settings, cloud, **overrides: listings)
    found = leftovers.OpenStackLeftovers(Settings()).find(
        ministry_code="health", site_name="dr", service_id=SERVICE, copy=COPY
    )
    assert listings.closed
    return found


def test_nothing_of_the_copy_is_found_among_production_and_other_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    listings = Listings(
        servers=[thing("s1", "health-portal-6f1c2a4e-web", metadata={"tonle_service": SERVICE})],
        networks=[
            thing("n1", "health-portal-6f1c2a4e-net", tags=PRODUCTION_TAGS),
            thing("n2", "health-portal-6f1c2a4e-drill-99999999-net", tags=[*PRODUCTION_TAGS, "copy=drill-99999999"]),
        ],
    )
    assert find(monkeypatch, listings) == []


def test_every_kind_the_copy_left_is_named_by_its_tags_metadata_or_name(monkeypatch: pytest.MonkeyPatch) -> None:
    listings = Listings(
        servers=[thing("s1", "x-web", metadata={"tonle_copy": COPY, "tonle_service": SERVICE})],
        volumes=[thing("v1", "health-portal-6f1c2a4e-drill-0a1b2c3d-web-data")],  # untagged: a crash before tagging
        ips=[thing("f1", tags=TAGS)],
        ports=[thing("p1", "health-portal-6f1c2a4e-drill-0a1b2c3d-web-port", tags=TAGS)],
        routers=[thing("r1", "router", tags=TAGS)],
        subnets=[thing("u1", "subnet", tags=TAGS)],
        networks=[thing("n1", "net", tags=TAGS)],
        security_groups=[thing("g1", "sg", tags=TAGS)],
    )
    assert find(monkeypatch, listings) == [
        "server x-web (s1)",
        "volume health-portal-6f1c2a4e-drill-0a1b2c3d-web-data (v1)",
        "floating ip f1",
        "port health-portal-6f1c2a4e-drill-0a1b2c3d-web-port (p1)",
        "router router (r1)",
        "subnet subnet (u1)",
        "network net (n1)",
        "security group sg (g1)",
    ]
