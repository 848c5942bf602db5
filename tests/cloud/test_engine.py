"""The embedded engine and its OpenStack provider layer against the local data centre.

Real Pulumi program, real SDK, real PostgreSQL checkpoints, real OpenStack APIs. What the
engine did is checked from outside with openstacksdk (the `devcloud` fixture's connection).
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pulumi
import pulumi_openstack as openstack
import pytest
from cryptography.fernet import Fernet

from orchestrator.engines.checkpoints import PostgresCheckpointStore
from pulumi_embedded import EmbeddedEngine, ProgressEvent, RunStats, StackSpec
from pulumi_embedded.openstack.provider import OpenStackProvider
from tests.cloud.conftest import DEVCLOUD_DIR, DevCloud
from tests.conftest import Database

pytestmark = pytest.mark.cloud

CLOUDS_YAML = DEVCLOUD_DIR / "clouds.yaml"
REPO = Path(__file__).resolve().parents[2]


def small_stack() -> None:
    """Network, subnet, security group with a rule, a port, a server on it, a volume attached."""
    cfg = pulumi.Config("tonle")
    prefix = cfg.require("prefix")
    network = openstack.networking.Network("net", name=f"{prefix}-net", tags=["tonle-engine-test"])
    subnet = openstack.networking.Subnet(
        "subnet", name=f"{prefix}-subnet", network_id=network.id, cidr=cfg.require("cidr"), ip_version=4
    )
    group = openstack.networking.SecGroup("sg", name=f"{prefix}-sg", description=cfg.get("sgDescription") or "test")
    openstack.networking.SecGroupRule(
        "ssh",
        security_group_id=group.id,
        direction="ingress",
        ethertype="IPv4",
        protocol="tcp",
        port_range_min=22,
        port_range_max=22,
        remote_ip_prefix="10.0.0.0/8",
    )
    port = openstack.networking.Port(
        "port",
        name=f"{prefix}-port",
        network_id=network.id,
        fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=subnet.id)],
        security_group_ids=[group.id],
    )
    image = openstack.images.get_image_output(name="debian-12", most_recent=True)
    server = openstack.compute.Instance(
        "server",
        name=f"{prefix}-server",
        image_id=image.id,
        flavor_name=cfg.get("flavor") or "m1.tiny",
        availability_zone="primary",
        networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
        metadata={"tonle_test": prefix},
    )
    if cfg.get_bool("withVolume") is not False:
        volume = openstack.blockstorage.Volume("data", name=f"{prefix}-data", size=1, availability_zone="primary")
        openstack.compute.VolumeAttach("data-attach", instance_id=server.id, volume_id=volume.id)
    pulumi.export("address", port.all_fixed_ips[0])
    pulumi.export("server", server.id)


@pytest.fixture(scope="module")
def cloud(request: pytest.FixtureRequest) -> DevCloud:
    if not CLOUDS_YAML.exists():
        pytest.skip(f"no local data centre: {CLOUDS_YAML} is absent (start it with `python -m devcloud up`)")
    fixture: DevCloud = request.getfixturevalue("devcloud")
    return fixture


@pytest.fixture
def runs() -> list[RunStats]:
    """Figures of every operation the `engine` fixture finished, oldest first."""
    return []


@pytest.fixture
def engine(database: Database, cloud: DevCloud, runs: list[RunStats]) -> Iterator[EmbeddedEngine]:
    eng = EmbeddedEngine(
        store=PostgresCheckpointStore(database.url),
        secrets_key=KEY,
        provider_factory=OpenStackProvider.factory(CLOUDS_YAML),
        parallel=8,
        load_program=lambda name: small_stack,
        on_run=runs.append,
    )
    yield eng
    eng.close()


KEY = Fernet.generate_key()


def stack(prefix: str, cidr: str, **config: Any) -> StackSpec:
    return StackSpec(
        name=prefix,
        program="small",
        config={"tonle:prefix": prefix, "tonle:cidr": cidr, "openstack:cloud": "tonle-primary", **config},
    )


def fresh(cidr_octet: int) -> tuple[str, str]:
    return f"eng-{uuid.uuid4().hex[:6]}", f"10.231.{cidr_octet}.0/24"


def observed(conn: Any, prefix: str) -> dict[str, list[Any]]:
    """Everything in the cloud whose name carries the stack's prefix, by kind."""
    return {
        "networks": [n for n in conn.network.networks() if (n.name or "").startswith(prefix)],
        "subnets": [s for s in conn.network.subnets() if (s.name or "").startswith(prefix)],
        "security_groups": [g for g in conn.network.security_groups() if (g.name or "").startswith(prefix)],
        "ports": [p for p in conn.network.ports() if (p.name or "").startswith(prefix)],
        "servers": [s for s in conn.compute.servers() if (s.name or "").startswith(prefix)],
        "volumes": [v for v in conn.block_storage.volumes() if (v.name or "").startswith(prefix)],
    }


def counts(conn: Any, prefix: str) -> dict[str, int]:
    return {kind: len(items) for kind, items in observed(conn, prefix).items()}


def fingerprint(conn: Any, prefix: str) -> dict[str, list[tuple[str, str]]]:
    """Ids and last-update times: any change the engine made would show here."""
    return {
        kind: sorted((item.id, str(getattr(item, "updated_at", ""))) for item in items)
        for kind, items in observed(conn, prefix).items()
    }


EXPECTED = {"networks": 1, "subnets": 1, "security_groups": 1, "ports": 1, "servers": 1, "volumes": 1}
NOTHING = dict.fromkeys(EXPECTED, 0)


def sink(events: list[ProgressEvent]) -> Any:
    return events.append


def test_up_noop_update_replace_remove_and_destroy(
    engine: EmbeddedEngine, cloud: DevCloud, runs: list[RunStats]
) -> None:
    prefix, cidr = fresh(11)
    conn = cloud.primary
    try:
        outputs = engine.up(stack(prefix, cidr), sink([]))
        assert counts(conn, prefix) == EXPECTED
        server = observed(conn, prefix)["servers"][0]
        assert outputs["server"] == server.id and outputs["address"].startswith("10.231.11.")
        volume = observed(conn, prefix)["volumes"][0]
        assert [a["server_id"] for a in conn.block_storage.get_volume(volume.id).attachments] == [server.id]

        # A second up changes nothing in the cloud.
        before = fingerprint(conn, prefix)
        events: list[ProgressEvent] = []
        engine.up(stack(prefix, cidr), sink(events))
        assert runs[-1].mutating_calls == 0
        assert not [e for e in events if e.type == "resource.pre"]
        assert fingerprint(conn, prefix) == before

        # An in-place update (security group description) keeps the id; a CIDR change replaces the subnet.
        group_id = observed(conn, prefix)["security_groups"][0].id
        engine.up(stack(prefix, cidr, **{"tonle:sgDescription": "changed"}), sink([]))
        group = conn.network.get_security_group(group_id)
        assert group.description == "changed"
        subnet_id = observed(conn, prefix)["subnets"][0].id
        new_cidr = "10.231.12.0/24"
        events = []
        engine.up(stack(prefix, new_cidr, **{"tonle:sgDescription": "changed"}), sink(events))
        subnets = observed(conn, prefix)["subnets"]
        assert len(subnets) == 1 and subnets[0].id != subnet_id and subnets[0].cidr == new_cidr
        assert counts(conn, prefix) == EXPECTED

        # Removing the volume from the program deletes it (and its attachment).
        engine.up(stack(prefix, new_cidr, **{"tonle:sgDescription": "changed", "tonle:withVolume": False}), sink([]))
        assert counts(conn, prefix) == {**EXPECTED, "volumes": 0}

        engine.destroy(prefix, sink([]))
        assert counts(conn, prefix) == NOTHING
        assert engine.export_state(prefix)["deployment"]["resources"] == []
    finally:
        engine.destroy(prefix, sink([]))


def test_refresh_reports_a_change_made_behind_its_back(engine: EmbeddedEngine, cloud: DevCloud) -> None:
    prefix, cidr = fresh(13)
    conn = cloud.primary
    try:
        engine.up(stack(prefix, cidr, **{"tonle:withVolume": False}), sink([]))
        group = observed(conn, prefix)["security_groups"][0]
        conn.network.update_security_group(group, description="edited by hand")
        events: list[ProgressEvent] = []
        summary = engine.refresh(prefix, sink(events))
        drift = [e for e in events if e.type == "resource.drift"]
        assert summary.changes.get("update") == 1
        assert [e.data["changed"] for e in drift] == [["description"]]
        engine.up(stack(prefix, cidr, **{"tonle:withVolume": False}), sink([]))
        assert conn.network.get_security_group(group.id).description == "test"
    finally:
        engine.destroy(prefix, sink([]))


def _child() -> None:
    """Entry point of the engine process the crash test kills (see below)."""
    spec = json.loads(os.environ["TONLE_TEST_ENGINE_SPEC"])
    eng = EmbeddedEngine(
        store=PostgresCheckpointStore(spec["database_url"]),
        secrets_key=spec["key"].encode(),
        provider_factory=OpenStackProvider.factory(Path(spec["clouds_yaml"])),
        load_program=lambda name: small_stack,
    )
    eng.up(stack(spec["prefix"], spec["cidr"]), lambda event: print(event.message, flush=True))


def test_killing_the_engine_mid_up_then_up_again_converges_without_duplicates(
    engine: EmbeddedEngine, cloud: DevCloud, database: Database, runs: list[RunStats]
) -> None:
    """First proves the kill landed mid-create (Nova has the server, the checkpoint still holds
    its create as pending), then that the next up finishes the stack without a second server."""
    prefix, cidr = fresh(14)
    conn = cloud.primary
    env = {
        **os.environ,
        "TONLE_TEST_ENGINE_SPEC": json.dumps(
            {
                "database_url": database.url,
                "key": KEY.decode(),
                "clouds_yaml": str(CLOUDS_YAML),
                "prefix": prefix,
                "cidr": cidr,
            }
        ),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", "from tests.cloud.test_engine import _child; _child()"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Kill it while the server is being created: as soon as Nova has it, before it is active
        # and the engine records the create as done.
        assert child.stdout is not None
        for line in child.stdout:
            if "creating openstack:compute/instance:Instance" in line:
                break
        deadline = time.monotonic() + 60
        while not observed(conn, prefix)["servers"]:
            assert child.poll() is None and time.monotonic() < deadline, "the server create never reached Nova"
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        with psycopg.connect(database.url) as db:
            pending = db.execute(
                "SELECT state->>'pending', coalesce(state->>'id', '') FROM engine_resource "
                "WHERE stack = %s AND state->>'type' = 'openstack:compute/instance:Instance'",
                (prefix,),
            ).fetchall()
        assert pending == [("creating", "")], f"the kill did not land mid-create of the server: {pending}"
        assert len(observed(conn, prefix)["servers"]) == 1
        events: list[ProgressEvent] = []
        engine.up(stack(prefix, cidr), sink(events))
        assert counts(conn, prefix) == EXPECTED
        engine.up(stack(prefix, cidr), sink([]))
        assert runs[-1].mutating_calls == 0
    finally:
        if child.poll() is None:
            child.kill()
        engine.destroy(prefix, sink([]))
        assert counts(conn, prefix) == NOTHING


def _first_plan_of_each_offering() -> list[Any]:
    """Offerings whose stack program builds something: an `s3_bucket` offering's bucket is made by
    the orchestrator at the DR site (tests/cloud/test_dr_backup.py), its stack holds no resource."""
    from tests.unit.stacks.harness import every_case

    cases: dict[str, Any] = {}
    for case in every_case():
        if not case.offering.get("s3_bucket"):
            cases.setdefault(case.offering["id"], case)
    return list(cases.values())


def named(conn: Any, part: str) -> dict[str, list[str]]:
    """Names of the cloud resources whose name contains `part` (a service's short id)."""
    kinds = {
        "networks": conn.network.networks(),
        "subnets": conn.network.subnets(),
        "routers": conn.network.routers(),
        "security_groups": conn.network.security_groups(),
        "ports": conn.network.ports(),
        "servers": conn.compute.servers(),
        "volumes": conn.block_storage.volumes(),
        "containers": conn.object_store.containers(),
    }
    return {kind: [r.name for r in items if part in (r.name or "")] for kind, items in kinds.items()}


@pytest.mark.parametrize("case", _first_plan_of_each_offering(), ids=lambda case: case.id)
def test_every_offering_builds_converges_and_goes_away(database: Database, cloud: DevCloud, case: Any) -> None:
    """Each real stack program of stacks/, as the pipeline would run it, on the real cloud."""
    service_id = str(uuid.uuid4())
    short = service_id.replace("-", "")[:8]
    config = {
        **case.config(serviceId=service_id, externalNetwork="public", managementCidr="172.24.4.0/24"),
        "openstack:cloud": "tonle-primary",
    }
    runs: list[RunStats] = []
    engine = EmbeddedEngine(
        store=PostgresCheckpointStore(database.url),
        secrets_key=KEY,
        provider_factory=OpenStackProvider.factory(CLOUDS_YAML),
        load_program=lambda name: case.program(),
        on_run=runs.append,
    )
    spec = StackSpec(name=f"offering-{short}", program=case.offering["stack_program"], config=config)
    try:
        planned = engine.preview(spec, sink([]))
        outputs = engine.up(spec, sink([]))
        assert "endpoints" in outputs
        resources = [r for r in engine.export_state(spec.name)["deployment"]["resources"] if r["custom"]]
        assert len([r for r in resources if not r["type"].startswith("pulumi:providers:")]) == planned.changes["create"]
        made = named(cloud.primary, short)
        assert any(made.values()), f"nothing named after service {short} in the cloud"
        engine.up(spec, sink([]))
        assert runs[-1].mutating_calls == 0
        assert engine.refresh(spec.name, sink([])).changes.keys() <= {"same"}
    finally:
        engine.destroy(spec.name, sink([]))
        engine.close()
    leftovers = {kind: names for kind, names in named(cloud.primary, short).items() if names}
    assert not leftovers, f"destroy left {leftovers}"


def test_a_plan_change_resizes_the_server_and_grows_its_volume_in_place(database: Database, cloud: DevCloud) -> None:
    """`modify`: web hosting small -> medium is an update (resize, extend), never a replacement."""
    from tests.unit.stacks.harness import every_case

    small, medium = [case for case in every_case() if case.offering["id"] == "web-hosting"][:2]
    service_id = str(uuid.uuid4())
    short = service_id.replace("-", "")[:8]

    def config(case: Any) -> dict[str, Any]:
        values = case.config(serviceId=service_id, externalNetwork="public", managementCidr="172.24.4.0/24")
        return {**values, "openstack:cloud": "tonle-primary"}

    engine = EmbeddedEngine(
        store=PostgresCheckpointStore(database.url),
        secrets_key=KEY,
        provider_factory=OpenStackProvider.factory(CLOUDS_YAML),
        load_program=lambda name: small.program(),
    )
    name = f"modify-{short}"
    conn = cloud.primary
    try:
        engine.up(StackSpec(name=name, program="web_hosting", config=config(small)), sink([]))
        server = next(s for s in conn.compute.servers() if short in s.name)
        volume = next(v for v in conn.block_storage.volumes() if short in (v.name or ""))
        planned = engine.preview(StackSpec(name=name, program="web_hosting", config=config(medium)), sink([]))
        assert planned.changes.get("update") == 2 and "replace" not in planned.changes
        engine.up(StackSpec(name=name, program="web_hosting", config=config(medium)), sink([]))
        resized = conn.compute.get_server(server.id)
        assert resized.flavor["original_name"] == medium.sizes["flavor"]
        assert conn.block_storage.get_volume(volume.id).size == medium.sizes["volume_gb"]
    finally:
        engine.destroy(name, sink([]))
        engine.close()
