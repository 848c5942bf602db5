"""The orchestrator's adapter to `pulumi_embedded`: our StackSpec in, our ProgressEvents out, the
engine's failures as StepFailed / TransientError.

The engine behind it is the real one (real Pulumi SDK, in-process); its checkpoints are in the
package's in-memory store and its cloud is `CloudDouble`, a double of the provider boundary:
what is checked here is the translation at our border, not the cloud.
"""

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_openstack as openstack
import pytest
from cryptography.fernet import Fernet

import pulumi_embedded
from orchestrator.engines.embedded import EmbeddedEngine
from orchestrator.ports import ProgressEvent, StackSpec, StepFailed, TransientError
from pulumi_embedded.cloud_double import CloudDouble

pytestmark = pytest.mark.unit


def network() -> None:
    openstack.networking.Network("net", name=pulumi.Config("tonle").require("name"))
    pulumi.export("endpoints", {"url": "https://example"})
    pulumi.export("credentials", pulumi.Output.secret({"password": pulumi.Config("tonle").require_secret("pw")}))


def load_balancer() -> None:
    openstack.loadbalancer.LoadBalancer("lb", vip_subnet_id="x")


PROGRAMS: dict[str, Callable[[], None]] = {"network": network, "lb": load_balancer}


@pytest.fixture
def store() -> pulumi_embedded.InMemoryCheckpointStore:
    return pulumi_embedded.InMemoryCheckpointStore()


@pytest.fixture
def adapter(store: pulumi_embedded.InMemoryCheckpointStore) -> EmbeddedEngine:
    engine = pulumi_embedded.EmbeddedEngine(
        store=store,
        secrets_key=Fernet.generate_key(),
        load_program=PROGRAMS.__getitem__,
        provider_factory=CloudDouble().factory,
        lock_wait_seconds=0.2,
    )
    return EmbeddedEngine(engine)


def spec(program: str = "network") -> StackSpec:
    return StackSpec(
        name="health-net-1",
        program=program,
        config={"tonle:name": "n1", "tonle:pw": "hunter2", "openstack:cloud": "tonle-primary"},
        secret_keys=frozenset({"tonle:pw"}),
        tags={"ministry": "health"},
    )


def test_up_reports_our_progress_events_and_returns_revealed_outputs(adapter: EmbeddedEngine) -> None:
    events: list[Any] = []
    outputs = adapter.up(spec(), events.append)
    assert outputs == {"endpoints": {"url": "https://example"}, "credentials": {"password": "hunter2"}}
    assert events and all(type(e) is ProgressEvent for e in events)
    assert [e.data["op"] for e in events if e.type == "resource.pre"] == ["create"]
    assert events[-1].type == "summary" and events[-1].data["changes"] == {"create": 1}
    assert "hunter2" not in repr(events)
    assert adapter.preview(spec(), events.append).changes == {"same": 1}
    assert adapter.outputs("health-net-1")["endpoints"] == {"url": "https://example"}


def test_a_permanent_engine_failure_is_a_step_failure_naming_the_cause(adapter: EmbeddedEngine) -> None:
    with pytest.raises(StepFailed, match="openstack:loadbalancer/loadBalancer:LoadBalancer") as caught:
        adapter.up(spec("lb"), lambda event: None)
    assert isinstance(caught.value.__cause__, pulumi_embedded.OperationFailed)


def test_a_locked_stack_is_a_transient_error(
    adapter: EmbeddedEngine, store: pulumi_embedded.InMemoryCheckpointStore
) -> None:
    with store.lock("health-net-1", wait_seconds=0), pytest.raises(TransientError, match="locked"):
        adapter.up(spec(), lambda event: None)
