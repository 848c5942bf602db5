"""The embedded engine's core against a real PostgreSQL, with real Pulumi programs and SDK.

The cloud here is `CloudDouble`, a test double of the provider boundary (the engine's core,
not OpenStack, is under test; tests/cloud/test_engine.py runs the real provider layer against
the local data centre). Everything else is real: pulumi_openstack resource classes, the
Pulumi SDK's runtime talking to our in-process monitor, checkpoints in PostgreSQL.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pulumi
import pulumi_openstack as openstack
import pytest
from cryptography.fernet import Fernet

from orchestrator.engines.checkpoints import PostgresCheckpointStore
from pulumi_embedded import EmbeddedEngine, OperationFailed, ProgressEvent, StackSpec
from pulumi_embedded.cloud_double import CloudDouble, SimulatedCrash
from pulumi_embedded.protocol import SIG_KEY
from tests.conftest import Database

pytestmark = pytest.mark.integration

INSTANCE = "openstack:compute/instance:Instance"
SUBNET = "openstack:networking/subnet:Subnet"
NETWORK = "openstack:networking/network:Network"


def web_program() -> None:
    """A small web stack: network, subnet, router, security group, N servers, outputs."""
    cfg = pulumi.Config("tonle")
    prefix = cfg.require("prefix")
    servers = cfg.get_int("servers") or 1
    net = openstack.networking.Network("net", name=f"{prefix}-net")
    subnet = openstack.networking.Subnet(
        "subnet", name=f"{prefix}-subnet", network_id=net.id, cidr=cfg.get("cidr") or "10.10.0.0/24"
    )
    router = openstack.networking.Router("router", name=f"{prefix}-router", external_network_id="ext-net")
    openstack.networking.RouterInterface("router-if", router_id=router.id, subnet_id=subnet.id)
    sg = openstack.networking.SecGroup("sg", name=f"{prefix}-sg", description="web")
    openstack.networking.SecGroupRule(
        "https",
        security_group_id=sg.id,
        direction="ingress",
        ethertype="IPv4",
        protocol="tcp",
        port_range_min=443,
        port_range_max=443,
        remote_ip_prefix="0.0.0.0/0",
    )
    image = openstack.images.get_image_output(name="debian-12")
    hosts = {}
    for i in range(servers):
        server = openstack.compute.Instance(
            f"web{i}",
            name=f"{prefix}-web{i}",
            flavor_name=cfg.get("flavor") or "m1.small",
            image_id=image.id,
            networks=[{"uuid": net.id}],
            security_groups=[sg.name],
            metadata={"ministry": "health"},
            opts=pulumi.ResourceOptions(depends_on=[subnet]),
        )
        hosts[f"web{i}"] = {"address": server.access_ip_v4, "user": "debian"}
    pulumi.export("hosts", hosts)
    pulumi.export("endpoints", {"url": f"https://{prefix}.example"})
    pulumi.export("credentials", pulumi.Output.secret({"password": cfg.require_secret("dbPassword")}))


def spec(name: str, **config: Any) -> StackSpec:
    base = {"tonle:prefix": name, "tonle:dbPassword": "hunter2", "openstack:cloud": "tonle-primary"}
    return StackSpec(name=name, program="web", config={**base, **config}, secret_keys=frozenset({"tonle:dbPassword"}))


class Recorder:
    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def of(self, type_: str) -> list[ProgressEvent]:
        return [e for e in self.events if e.type == type_]


@pytest.fixture
def cloud() -> CloudDouble:
    return CloudDouble()


@pytest.fixture
def programs() -> dict[str, Callable[[], None]]:
    return {"web": web_program}


@pytest.fixture
def engine(database: Database, cloud: CloudDouble, programs: dict[str, Callable[[], None]]) -> Iterator[EmbeddedEngine]:
    eng = EmbeddedEngine(
        store=PostgresCheckpointStore(database.url),
        secrets_key=Fernet.generate_key(),
        provider_factory=cloud.factory,
        parallel=8,
        load_program=programs.__getitem__,
    )
    yield eng
    eng.close()


def stack_name() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def test_up_creates_the_declared_resources_and_returns_outputs(engine: EmbeddedEngine, cloud: CloudDouble) -> None:
    name = stack_name()
    events = Recorder()
    outputs = engine.up(spec(name, **{"tonle:servers": 2}), events)
    assert len(cloud.of_type(INSTANCE)) == 2
    assert len(cloud.resources) == 8  # net, subnet, router, interface, sg, rule, 2 servers
    assert set(outputs["hosts"]) == {"web0", "web1"}
    assert outputs["hosts"]["web0"]["address"].startswith("10.0.")
    assert outputs["credentials"] == {"password": "hunter2"}
    assert engine.outputs(name)["endpoints"] == {"url": f"https://{name}.example"}
    assert cloud.counts()["invoke"] >= 1  # the image lookup went to the provider
    summary = events.of("summary")[-1]
    assert summary.data["changes"]["create"] == 8
    server = next(r for r in cloud.of_type(INSTANCE))
    assert server.inputs["flavorName"] == "m1.small" and server.inputs["networks"][0]["uuid"]


def test_second_up_is_a_no_op(engine: EmbeddedEngine, cloud: CloudDouble) -> None:
    name = stack_name()
    engine.up(spec(name), Recorder())
    before = cloud.mutating_calls()
    events = Recorder()
    engine.up(spec(name), events)
    assert cloud.mutating_calls() == before
    assert not events.of("resource.pre")
    assert events.of("summary")[-1].data["changes"] == {"same": 7}


def test_preview_shows_changes_and_unknowns_without_touching_the_cloud(
    engine: EmbeddedEngine, cloud: CloudDouble
) -> None:
    name = stack_name()
    events = Recorder()
    summary = engine.preview(spec(name), events)
    assert summary.changes == {"create": 7}
    assert cloud.mutating_calls() == 0
    subnet = next(e for e in events.of("resource.pre") if e.data["urn"].endswith("::subnet"))
    assert subnet.data["unknown"] == ["networkId"] and "known after apply: networkId" in subnet.message
    assert engine.outputs(name) == {}
    engine.up(spec(name), Recorder())
    summary = engine.preview(spec(name, **{"tonle:flavor": "m1.large", "tonle:cidr": "10.20.0.0/24"}), Recorder())
    # subnet cidr replaces; its dependants see an unknown subnet id and change too; flavor resizes
    assert summary.changes["replace"] >= 1 and summary.changes["update"] >= 1
    assert cloud.mutating_calls() == 7


def test_flavor_change_updates_in_place_and_cidr_change_replaces(engine: EmbeddedEngine, cloud: CloudDouble) -> None:
    name = stack_name()
    engine.up(spec(name), Recorder())
    server_id = cloud.of_type(INSTANCE)[0].outputs["id"]
    subnet_id = cloud.of_type(SUBNET)[0].outputs["id"]
    events = Recorder()
    engine.up(spec(name, **{"tonle:flavor": "m1.large"}), events)
    assert [r.outputs["id"] for r in cloud.of_type(INSTANCE)] == [server_id]
    assert cloud.of_type(INSTANCE)[0].inputs["flavorName"] == "m1.large"
    assert events.of("summary")[-1].data["changes"] == {"same": 6, "update": 1}

    events = Recorder()
    engine.up(spec(name, **{"tonle:flavor": "m1.large", "tonle:cidr": "10.30.0.0/24"}), events)
    subnets = cloud.of_type(SUBNET)
    assert len(subnets) == 1 and subnets[0].outputs["id"] != subnet_id and subnets[0].inputs["cidr"] == "10.30.0.0/24"
    replaced = [e for e in events.of("resource.pre") if e.data["op"] == "replace"]
    assert [e.data["replace_keys"] for e in replaced] == [["cidr"], ["subnetId"]]  # subnet, then its interface


def test_removing_a_resource_deletes_it_and_destroy_leaves_nothing(engine: EmbeddedEngine, cloud: CloudDouble) -> None:
    name = stack_name()
    engine.up(spec(name, **{"tonle:servers": 3}), Recorder())
    assert len(cloud.of_type(INSTANCE)) == 3
    engine.up(spec(name, **{"tonle:servers": 1}), Recorder())
    assert [r.inputs["name"] for r in cloud.of_type(INSTANCE)] == [f"{name}-web0"]
    events = Recorder()
    engine.destroy(name, events)
    assert cloud.resources == {}
    deletes = [e.data["urn"].rsplit("::", 1)[-1] for e in events.of("resource.pre")]
    # dependents first: the interface before the subnet and router, servers before the network
    assert deletes.index("router-if") < deletes.index("subnet")
    assert deletes.index("web0") < deletes.index("net")
    assert engine.export_state(name)["deployment"]["resources"] == []


def test_a_create_that_never_reports_back_is_adopted_by_the_next_up_without_duplicates(
    engine: EmbeddedEngine, cloud: CloudDouble
) -> None:
    """In one process: the double raises after its create took effect, as a call cut short would.
    (No process dies here; the SIGKILL test below does that.)"""
    name = stack_name()
    created: list[str] = []

    def crash_on_third_create(op: str, type_: str, inputs: dict[str, Any]) -> None:
        if op == "create":
            created.append(type_)
            if len(created) == 3:
                raise SimulatedCrash("engine process killed")

    cloud.fail = crash_on_third_create
    with pytest.raises(OperationFailed, match="engine process killed"):
        engine.up(spec(name, **{"tonle:servers": 2}), Recorder())
    cloud.fail = None
    assert len(cloud.resources) >= 3  # precondition: the third create happened in the cloud
    # The engine's side: that create is recorded as started, never as finished.
    assert "creating" in {r.pending for r in engine.checkpoints.load(name).resources}
    events = Recorder()
    engine.up(spec(name, **{"tonle:servers": 2}), events)
    assert len(cloud.resources) == 8
    names = [r.inputs.get("name") for r in cloud.resources.values() if r.inputs.get("name")]
    assert len(names) == len(set(names))
    assert any("adopted" in e.message for e in events.of("diagnostic"))
    before = cloud.mutating_calls()
    engine.up(spec(name, **{"tonle:servers": 2}), Recorder())
    assert cloud.mutating_calls() == before


def _crash_child() -> None:
    """The engine process that `test_killing_the_engine_process_mid_up...` kills with SIGKILL."""
    job = json.loads(os.environ["TONLE_TEST_CRASH_JOB"])
    eng = EmbeddedEngine(
        store=PostgresCheckpointStore(job["database_url"]),
        secrets_key=job["key"].encode(),
        # Each call takes a second after its change took effect: the kill lands inside that second.
        provider_factory=CloudDouble.stored_at(Path(job["cloud"]), latency=1.0).factory,
        parallel=8,
        load_program=lambda name: web_program,
    )
    eng.up(spec(job["stack"], **{"tonle:servers": 2}), lambda event: None)


def test_killing_the_engine_process_mid_up_then_up_again_converges_without_duplicates(
    database: Database, tmp_path: Path
) -> None:
    """A real SIGKILL of a real engine process; its "cloud" is a double kept in a file.

    First it proves the kill landed mid-create (a create the cloud carried out, that the
    checkpoint still holds as pending), then that the next up recovers from exactly that."""
    name, key, cloud_file = stack_name(), Fernet.generate_key(), tmp_path / "cloud.json"
    job = {"database_url": database.url, "key": key.decode(), "cloud": str(cloud_file), "stack": name}
    child = subprocess.Popen(
        [sys.executable, "-c", "from tests.integration.test_embedded_engine import _crash_child; _crash_child()"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "TONLE_TEST_CRASH_JOB": json.dumps(job)},
    )
    try:
        deadline = time.monotonic() + 60
        # Kill as soon as three resources exist in the cloud: mid-up, with steps in flight.
        while not (cloud_file.exists() and len(json.loads(cloud_file.read_text() or "{}")) >= 3):
            assert child.poll() is None and time.monotonic() < deadline, "the engine process ended too soon"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    in_cloud = json.loads(cloud_file.read_text())
    assert 3 <= len(in_cloud) < 8
    with psycopg.connect(database.url) as conn:
        pending_creates = conn.execute(
            "SELECT state->>'type', state->'inputs'->>'name' FROM engine_resource WHERE stack = %s "
            "AND state->>'pending' = 'creating' AND coalesce(state->>'id', '') = ''",
            (name,),
        ).fetchall()
    made = {(r["type"], r["inputs"].get("name")) for r in in_cloud.values()}
    # Started and carried out in the cloud, never seen to finish by the killed process.
    cut_short = [(type_, res) for type_, res in pending_creates if res and (type_, res) in made]
    assert cut_short, f"the kill did not land mid-create: pending {pending_creates}, in the cloud {sorted(made)}"

    cloud = CloudDouble.stored_at(cloud_file)
    engine = EmbeddedEngine(
        store=PostgresCheckpointStore(database.url),
        secrets_key=key,
        provider_factory=cloud.factory,
        load_program=lambda n: web_program,
    )
    try:
        events = Recorder()
        engine.up(spec(name, **{"tonle:servers": 2}), events)
        # What the killed process created but never recorded as done is adopted, not made again.
        assert any("adopted" in e.message for e in events.of("diagnostic"))
        assert len(cloud.resources) == 8
        names = [r.inputs["name"] for r in cloud.resources.values() if r.inputs.get("name")]
        assert len(names) == len(set(names)) == 6  # net, subnet, router, sg, 2 servers; no duplicates
        before = cloud.mutating_calls()
        engine.up(spec(name, **{"tonle:servers": 2}), Recorder())
        assert cloud.mutating_calls() == before
    finally:
        engine.close()


def test_an_interrupted_delete_before_replace_is_finished_by_the_next_up(
    engine: EmbeddedEngine, cloud: CloudDouble, programs: dict[str, Callable[[], None]]
) -> None:
    def rule() -> None:
        openstack.networking.SecGroupRule(
            "rule",
            security_group_id="sg",
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=443,
            port_range_max=443,
            remote_ip_prefix=pulumi.Config("tonle").require("source"),
            opts=pulumi.ResourceOptions(delete_before_replace=True),
        )

    programs["rule"] = rule
    name = stack_name()
    engine.up(StackSpec(name=name, program="rule", config={"tonle:source": "10.0.0.0/8"}), Recorder())

    def die_after_delete(op: str, type_: str, inputs: dict[str, Any]) -> None:
        if op == "delete":
            raise SimulatedCrash("engine process killed after the delete")

    cloud.fail = die_after_delete
    with pytest.raises(OperationFailed, match="killed after the delete"):
        engine.up(StackSpec(name=name, program="rule", config={"tonle:source": "10.1.0.0/16"}), Recorder())
    cloud.fail = None
    assert cloud.resources == {}  # the old rule is gone, its replacement not made yet
    # Even going back to the old declaration, the rule must be made again, not assumed to exist.
    engine.up(StackSpec(name=name, program="rule", config={"tonle:source": "10.0.0.0/8"}), Recorder())
    assert [r.inputs["remoteIpPrefix"] for r in cloud.resources.values()] == ["10.0.0.0/8"]


def test_refresh_reports_drift_and_the_next_up_repairs_it(engine: EmbeddedEngine, cloud: CloudDouble) -> None:
    name = stack_name()
    engine.up(spec(name), Recorder())
    server = cloud.of_type(INSTANCE)[0]
    cloud.tamper(server.outputs["id"], flavorName="m1.tiny")
    events = Recorder()
    summary = engine.refresh(name, events)
    assert summary.changes == {"same": 6, "update": 1}
    drift = events.of("resource.drift")
    assert len(drift) == 1 and drift[0].data["changed"] == ["flavorName"]
    before = cloud.mutating_calls()
    engine.up(spec(name), Recorder())
    assert cloud.mutating_calls() == before + 1
    assert cloud.of_type(INSTANCE)[0].inputs["flavorName"] == "m1.small"


def test_secrets_are_encrypted_at_rest_and_exported_as_ciphertext(engine: EmbeddedEngine, database: Database) -> None:
    name = stack_name()
    engine.up(spec(name), Recorder())
    with psycopg.connect(database.url) as conn:
        rows = conn.execute("SELECT outputs::text FROM engine_stack WHERE name = %s", (name,)).fetchall()
        states = conn.execute("SELECT state::text FROM engine_resource WHERE stack = %s", (name,)).fetchall()
    assert "hunter2" not in rows[0][0] and "ciphertext" in rows[0][0]
    assert all("hunter2" not in s[0] for s in states)
    exported = engine.export_state(name)
    assert exported["version"] == 3
    resources = exported["deployment"]["resources"]
    assert resources[0]["type"] == "pulumi:pulumi:Stack"
    assert resources[0]["outputs"]["credentials"][SIG_KEY]
    urns = [r["urn"] for r in resources]
    for r in resources:  # every resource after what it depends on, as Pulumi requires
        for dep in r.get("dependencies", []):
            assert urns.index(dep) < urns.index(r["urn"])
    assert any(r["type"] == "pulumi:providers:openstack" for r in resources)


def test_protect_refuses_replacement_and_ignore_changes_keeps_the_old_value(
    engine: EmbeddedEngine, cloud: CloudDouble, programs: dict[str, Callable[[], None]]
) -> None:
    def guarded() -> None:
        cfg = pulumi.Config("tonle")
        openstack.networking.Network(
            "net",
            name=cfg.require("netName"),
            description=cfg.require("description"),
            opts=pulumi.ResourceOptions(ignore_changes=["description"]),
        )
        openstack.networking.Subnet(
            "subnet",
            network_id="fixed",
            cidr=cfg.require("cidr"),
            opts=pulumi.ResourceOptions(protect=True),
        )

    programs["guarded"] = guarded
    name = stack_name()
    config = {"tonle:netName": "a", "tonle:description": "one", "tonle:cidr": "10.0.0.0/24"}
    engine.up(StackSpec(name=name, program="guarded", config=config), Recorder())
    events = Recorder()
    engine.up(StackSpec(name=name, program="guarded", config={**config, "tonle:description": "two"}), events)
    assert events.of("summary")[-1].data["changes"] == {"same": 2}
    with pytest.raises(OperationFailed, match="protected"):
        engine.up(StackSpec(name=name, program="guarded", config={**config, "tonle:cidr": "10.1.0.0/24"}), Recorder())
    assert cloud.of_type(SUBNET)[0].inputs["cidr"] == "10.0.0.0/24"
    with pytest.raises(OperationFailed, match="protected"):
        engine.destroy(name, Recorder())
    assert len(cloud.resources) == 2


def test_aliases_rename_without_replacing(
    engine: EmbeddedEngine, cloud: CloudDouble, programs: dict[str, Callable[[], None]]
) -> None:
    def before() -> None:
        openstack.networking.Network("old-name", name="n")

    def after() -> None:
        openstack.networking.Network(
            "new-name", name="n", opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old-name")])
        )

    programs["before"], programs["after"] = before, after
    name = stack_name()
    engine.up(StackSpec(name=name, program="before", config={}), Recorder())
    net_id = cloud.of_type(NETWORK)[0].outputs["id"]
    events = Recorder()
    engine.up(StackSpec(name=name, program="after", config={}), events)
    assert [r.outputs["id"] for r in cloud.of_type(NETWORK)] == [net_id]
    assert cloud.counts()["delete"] == 0
    assert events.of("summary")[-1].data["changes"] == {"same": 1}


def test_explicit_providers_get_their_own_configuration_and_a_change_replaces_their_resources(
    engine: EmbeddedEngine, cloud: CloudDouble, programs: dict[str, Callable[[], None]]
) -> None:
    configs: list[dict[str, Any]] = []

    def recording_factory(config: dict[str, Any]) -> Any:
        configs.append(config)
        return cloud

    engine.providers = type(engine.providers)(recording_factory)

    def two_sites() -> None:
        dr = openstack.Provider("dr", cloud=pulumi.Config("tonle").require("drCloud"))
        openstack.networking.Network("primary-net", name="p")
        openstack.networking.Network("dr-net", name="d", opts=pulumi.ResourceOptions(provider=dr))

    programs["sites"] = two_sites
    name = stack_name()
    config = {"openstack:cloud": "tonle-primary", "tonle:drCloud": "tonle-dr"}
    engine.up(StackSpec(name=name, program="sites", config=config), Recorder())
    assert {c.get("cloud") for c in configs} == {"tonle-primary", "tonle-dr"}
    ids = {r.inputs["name"]: r.outputs["id"] for r in cloud.of_type(NETWORK)}
    events = Recorder()
    engine.up(StackSpec(name=name, program="sites", config={**config, "tonle:drCloud": "tonle-dr2"}), events)
    after = {r.inputs["name"]: r.outputs["id"] for r in cloud.of_type(NETWORK)}
    assert after["p"] == ids["p"] and after["d"] != ids["d"]
    replaced = [e.data["urn"].rsplit("::", 1)[1] for e in events.of("resource.pre") if e.data["op"] == "replace"]
    assert replaced == ["dr-net"]


def test_an_unknown_resource_type_fails_naming_it(
    engine: EmbeddedEngine, programs: dict[str, Callable[[], None]]
) -> None:
    def lb() -> None:
        openstack.loadbalancer.LoadBalancer("lb", vip_subnet_id="x")

    programs["lb"] = lb
    with pytest.raises(OperationFailed, match="openstack:loadbalancer/loadBalancer:LoadBalancer"):
        engine.up(StackSpec(name=stack_name(), program="lb", config={}), Recorder())


def test_concurrent_stacks_do_not_share_sdk_state(engine: EmbeddedEngine, cloud: CloudDouble) -> None:
    names = [stack_name() for _ in range(4)]
    results: dict[str, dict[str, Any]] = {}

    def run(name: str) -> None:
        results[name] = engine.up(spec(name, **{"tonle:servers": 1}), Recorder())

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {n: results[n]["endpoints"]["url"] for n in names} == {n: f"https://{n}.example" for n in names}
    assert len(cloud.resources) == 4 * 7


def test_a_stack_is_locked_while_an_operation_runs(engine: EmbeddedEngine, cloud: CloudDouble) -> None:
    from pulumi_embedded import TransientFailure

    name = stack_name()
    engine.lock_wait_seconds = 0.2
    cloud.latency = 0.3
    worker = threading.Thread(target=engine.up, args=(spec(name), Recorder()))
    worker.start()
    try:
        while not cloud.calls:
            threading.Event().wait(0.02)
        with pytest.raises(TransientFailure, match="locked"):
            engine.up(spec(name), Recorder())
    finally:
        worker.join()


def test_cancel_from_another_engine_instance_reaches_the_running_operation(
    engine: EmbeddedEngine, cloud: CloudDouble, database: Database
) -> None:
    """As from the API process while a worker runs the stack: the request goes through PostgreSQL."""
    name = stack_name()
    cloud.latency = 0.2
    engine.cancel_poll_seconds = 0.1
    other = EmbeddedEngine(
        store=PostgresCheckpointStore(database.url),
        secrets_key=Fernet.generate_key(),
        provider_factory=cloud.factory,
        load_program=lambda n: web_program,
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            engine.up(spec(name, **{"tonle:servers": 3}), Recorder())
        except OperationFailed as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        while cloud.counts()["create"] < 2:
            time.sleep(0.02)
        other.cancel(name)
    finally:
        worker.join()
        other.close()
    assert errors and "cancelled" in str(errors[0])
    assert len(cloud.resources) < 9


def test_cancel_stops_starting_new_steps(engine: EmbeddedEngine, cloud: CloudDouble) -> None:
    name = stack_name()
    cloud.latency = 0.2

    def cancel_after_first(op: str, type_: str, inputs: dict[str, Any]) -> None:
        if op == "create":
            engine.cancel(name)

    cloud.fail = cancel_after_first
    with pytest.raises(OperationFailed, match="cancelled"):
        engine.up(spec(name, **{"tonle:servers": 3}), Recorder())
    cloud.fail = None
    made = len(cloud.resources)
    assert 0 < made < 9
    engine.up(spec(name, **{"tonle:servers": 3}), Recorder())
    assert len(cloud.resources) == 9


def _first_plan_of_each_offering() -> list[Any]:
    from tests.unit.stacks.harness import every_case

    seen: set[str] = set()
    cases = []
    for case in every_case():
        if case.offering["id"] not in seen:
            seen.add(case.offering["id"])
            cases.append(case)
    return cases


def _builds_resources(case: Any) -> bool:
    # An `s3_bucket` offering's bucket is made by the orchestrator; its stack only exports terms.
    return not case.offering.get("s3_bucket")


@pytest.mark.parametrize(
    "case", [case for case in _first_plan_of_each_offering() if _builds_resources(case)], ids=lambda case: case.id
)
def test_every_stack_program_runs_on_the_embedded_engine(
    engine: EmbeddedEngine, cloud: CloudDouble, programs: dict[str, Callable[[], None]], case: Any
) -> None:
    """The real programs of stacks/ (components, lookups, secrets, outputs) through the real SDK."""
    programs[case.offering["stack_program"]] = case.program()
    config = {**case.config(), "openstack:cloud": "tonle-primary"}
    spec = StackSpec(name=stack_name(), program=case.offering["stack_program"], config=config)
    planned = engine.preview(spec, Recorder())
    assert cloud.mutating_calls() == 0 and planned.changes.get("create", 0) > 0
    outputs = engine.up(spec, Recorder())
    assert len(cloud.resources) == planned.changes["create"]
    assert "endpoints" in outputs
    before = cloud.mutating_calls()
    assert engine.preview(spec, Recorder()).changes.keys() <= {"same"}
    engine.up(spec, Recorder())
    assert cloud.mutating_calls() == before
    engine.destroy(spec.name, Recorder())
    assert cloud.resources == {}


@pytest.mark.parametrize(
    "case", [case for case in _first_plan_of_each_offering() if not _builds_resources(case)], ids=lambda case: case.id
)
def test_a_bucket_offerings_stack_makes_nothing_in_the_cloud_and_exports_its_terms(
    engine: EmbeddedEngine, cloud: CloudDouble, programs: dict[str, Callable[[], None]], case: Any
) -> None:
    programs[case.offering["stack_program"]] = case.program()
    config = {**case.config(), "openstack:cloud": "tonle-primary"}
    spec = StackSpec(name=stack_name(), program=case.offering["stack_program"], config=config)
    outputs = engine.up(spec, Recorder())
    assert cloud.mutating_calls() == 0 and cloud.resources == {}
    assert outputs["endpoints"]["quota_gb"] == case.sizes["object_gb"]
    engine.destroy(spec.name, Recorder())


def test_a_provider_raising_a_non_exception_fails_the_run_instead_of_hanging_it(
    engine: EmbeddedEngine, cloud: CloudDouble
) -> None:
    class Abort(BaseException):
        pass

    def abort_third_create(op: str, type_: str, inputs: dict[str, Any]) -> None:
        if op == "create" and cloud.counts()["create"] == 3:
            raise Abort("provider thread aborted")

    cloud.fail = abort_third_create
    name = stack_name()
    with pytest.raises(OperationFailed, match="provider thread aborted"):
        engine.up(spec(name), Recorder())
    cloud.fail = None
    engine.up(spec(name), Recorder())
    assert len(cloud.resources) == 7
