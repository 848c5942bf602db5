"""Checkpoint bookkeeping that needs no database: ordering, URNs, secrets at rest, export."""

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pulumi_embedded.export import deployment_v3
from pulumi_embedded.protocol import SECRET_SIG, SIG_KEY, make_urn, reveal, secret
from pulumi_embedded.secrets import SecretBox, load_or_create_key
from pulumi_embedded.state import ResourceState, Snapshot, deletion_order

pytestmark = pytest.mark.unit

STACK = "urn:pulumi:s::tonle::pulumi:pulumi:Stack::tonle-s"
PROVIDER = "urn:pulumi:s::tonle::pulumi:providers:openstack::default"


def res(name: str, *, needs: tuple[str, ...] = (), type_: str = "openstack:x/y:Z") -> ResourceState:
    return ResourceState(
        urn=f"urn:pulumi:s::tonle::{type_}::{name}",
        type=type_,
        custom=True,
        id=f"id-{name}",
        parent=STACK,
        provider=f"{PROVIDER}::p1",
        dependencies=[f"urn:pulumi:s::tonle::openstack:x/y:Z::{n}" for n in needs],
    )


def test_urns_qualify_children_of_components_but_not_of_the_stack() -> None:
    assert make_urn("s", "tonle", STACK, "openstack:x/y:Z", "a") == "urn:pulumi:s::tonle::openstack:x/y:Z::a"
    parent = "urn:pulumi:s::tonle::tonle:web:Site::site"
    assert (
        make_urn("s", "tonle", parent, "openstack:x/y:Z", "a")
        == "urn:pulumi:s::tonle::tonle:web:Site$openstack:x/y:Z::a"
    )


def test_deletion_waves_put_dependents_first_and_independents_together() -> None:
    net, subnet, router = res("net"), res("subnet", needs=("net",)), res("router")
    iface = res("iface", needs=("subnet", "router"))
    waves = [[r.urn.rsplit("::", 1)[1] for r in wave] for wave in deletion_order([net, subnet, router, iface])]
    assert waves == [["iface"], ["router", "subnet"], ["net"]]


def test_the_secret_box_seals_only_secrets_and_opens_them_again() -> None:
    box = SecretBox(Fernet.generate_key())
    value = {"name": "a", "password": secret("hunter2"), "list": [secret({"k": 1})]}
    sealed = box.seal(value)
    assert sealed["name"] == "a" and "hunter2" not in repr(sealed)
    assert sealed["password"][SIG_KEY] == SECRET_SIG and "ciphertext" in sealed["password"]
    assert box.open(sealed) == value
    with pytest.raises(ValueError, match="cannot decrypt"):
        SecretBox(Fernet.generate_key()).open(sealed)


def test_the_key_file_is_created_once_with_owner_only_access(tmp_path: Path) -> None:
    path = tmp_path / "engine" / "key"
    key = load_or_create_key(path)
    assert load_or_create_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600
    SecretBox(key)  # a valid Fernet key


def test_export_is_deployment_v3_in_dependency_order_with_secrets_sealed() -> None:
    box = SecretBox(Fernet.generate_key())
    stack = ResourceState(urn=STACK, type="pulumi:pulumi:Stack", custom=False)
    provider = ResourceState(
        urn=PROVIDER, type="pulumi:providers:openstack", custom=True, id="p1", inputs={"cloud": "c"}
    )
    subnet = res("subnet", needs=("net",))
    # Long and distinctive: a two-letter secret turns up by chance inside random ciphertext.
    subnet.inputs = {"password": secret("plaintext-password-never-exported")}
    net = res("net")
    old = net.evolve(condemned=True, key="old")
    snapshot = Snapshot(stack="s", resources=[subnet, old, net, provider, stack], outputs={"k": secret("v")})
    exported = deployment_v3(snapshot, project="tonle", seal=box.seal)
    assert exported["version"] == 3
    resources = exported["deployment"]["resources"]
    urns = [r["urn"] for r in resources]
    assert urns[0] == STACK
    assert urns.index(PROVIDER) < urns.index(subnet.urn)
    assert urns.index(net.urn) < urns.index(subnet.urn)
    assert [r.get("delete", False) for r in resources if r["urn"] == net.urn] == [True, False]
    assert "plaintext-password-never-exported" not in repr(resources) and "ciphertext" in repr(resources)
    assert reveal(box.open(resources[0]["outputs"])) == {"k": "v"}


def test_a_missing_stack_program_is_named() -> None:
    from orchestrator.engines.embedded import load_stack_program
    from orchestrator.ports import StepFailed

    with pytest.raises(StepFailed, match=r"stack program 'no_such_offering' does not exist"):
        load_stack_program("no_such_offering")
    assert callable(load_stack_program("web_hosting"))
