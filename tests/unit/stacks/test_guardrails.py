"""Guardrails every stack program keeps, checked on each offering's example order on every plan."""

import json
from collections import Counter
from functools import cache
from typing import Any

import pytest
import yaml

import stacks
from tests.unit.stacks.harness import (
    EXTERNAL_NETWORK,
    MANAGEMENT_CIDR,
    MINISTRY,
    MOCK_S3_SECRET,
    REQUEST_ID,
    SERVICE_ID,
    SSH_PUBLIC_KEY,
    Case,
    Run,
    every_case,
    mock_fixed_address,
    mock_floating_address,
    mock_lookup_id,
    run_program,
)

pytestmark = pytest.mark.unit

CASES = every_case()
CASE_IDS = [case.id for case in CASES]

#: What each offering may serve to the whole internet, written down here independently of the
#: programs, so a program that opens more fails.
PUBLIC_PORTS: dict[str, set[tuple[str, int]]] = {
    "web-hosting": {("tcp", 80), ("tcp", 443)},
    "cms": {("tcp", 80), ("tcp", 443)},
    "email": {("tcp", 25), ("tcp", 587), ("tcp", 993), ("tcp", 80), ("tcp", 443)},
    "colocation": set(),
    "dr-backup": set(),
}
ANYWHERE = {"0.0.0.0/0", "::/0"}
#: The only ingress the management network gets: SSH for Ansible, ping for health checks.
MANAGEMENT_INGRESS = {("tcp", 22), ("icmp", None)}
#: Plan sizes that become block storage.
VOLUME_SIZE_KEYS = ("volume_gb", "db_volume_gb")
#: Types with no name, tags, metadata or description in OpenStack (see stacks/__init__.py).
UNLABELLED_TYPES = {
    "openstack:networking/routerInterface:RouterInterface",
    "openstack:compute/volumeAttach:VolumeAttach",
}
LABEL_FIELDS = ("name", "tags", "metadata", "description")
DESIGNATE_TYPES = {"openstack:dns/zone:Zone", "openstack:dns/recordSet:RecordSet"}
DESIGNATE_DESCRIPTION_MAX = 160
#: The cloud-init keys both cloud-init and the local data centre's stand-in apply.
PORTABLE_CLOUD_CONFIG = {
    "hostname",
    "fqdn",
    "manage_etc_hosts",
    "ssh_authorized_keys",
    "ssh_pwauth",
    "disable_root",
    "users",
    "write_files",
    "runcmd",
    "bootcmd",
    "packages",
}

SECGROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
PORT = "openstack:networking/port:Port"
INSTANCE = "openstack:compute/instance:Instance"
VOLUME = "openstack:blockstorage/volume:Volume"
VOLUME_ATTACH = "openstack:compute/volumeAttach:VolumeAttach"
FLOATING_IP = "openstack:networking/floatingIp:FloatingIp"
GET_FLAVOR = "openstack:compute/getFlavor:getFlavor"
EC2_CREDENTIAL = "openstack:identity/ec2CredentialV3:Ec2CredentialV3"


@cache
def run_case(case_id: str) -> Run:
    case = case_by_id(case_id)
    return run_program(case.program(), case.config())


def case_by_id(case_id: str) -> Case:
    return next(case for case in CASES if case.id == case_id)


def ingress_rules(run: Run) -> list[dict[str, Any]]:
    rules = [rule.inputs for rule in run.of_type(SECGROUP_RULE)]
    assert all(rule["direction"] in {"ingress", "egress"} for rule in rules)
    return [rule for rule in rules if rule["direction"] == "ingress"]


def port_of(rule: dict[str, Any]) -> tuple[str, int | None]:
    """(protocol, port) of a single-port rule; a rule over a range of ports is itself a finding."""
    low, high = rule.get("portRangeMin"), rule.get("portRangeMax")
    assert low == high, f"rule opens a port range {low}-{high}: {rule}"
    return rule["protocol"], None if low is None else int(low)


def label_text(inputs: dict[str, Any]) -> str:
    return json.dumps([inputs.get(field) for field in LABEL_FIELDS])


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_programs_use_only_the_type_tokens_and_invokes_the_contract_lists(case_id: str) -> None:
    run = run_case(case_id)
    # An `s3_bucket` offering's bucket is the orchestrator's (stacks/__init__.py); every other
    # program builds something.
    if not case_by_id(case_id).offering.get("s3_bucket"):
        assert run.resources, "the program declared nothing"
    assert run.type_tokens() <= stacks.RESOURCE_TYPES
    assert run.invoke_tokens() <= stacks.INVOKES


def test_the_contract_lists_no_type_token_or_invoke_that_no_program_uses() -> None:
    runs = [run_case(case_id) for case_id in CASE_IDS]
    assert set().union(*(run.type_tokens() for run in runs)) == stacks.RESOURCE_TYPES
    assert set().union(*(run.invoke_tokens() for run in runs)) == stacks.INVOKES


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_ingress_from_anywhere_only_on_the_offerings_public_ports(case_id: str) -> None:
    run = run_case(case_id)
    allowed = PUBLIC_PORTS[case_by_id(case_id).offering["id"]]
    for rule in ingress_rules(run):
        # No remote prefix and no remote group means "from anywhere" to Neutron.
        assert rule.get("remoteIpPrefix") or rule.get("remoteGroupId"), f"rule open to anyone: {rule}"
        if rule.get("remoteIpPrefix") in ANYWHERE:
            assert port_of(rule) in allowed, f"public rule not in the offering's public ports: {rule}"


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_ssh_and_everything_not_public_only_from_the_management_network(case_id: str) -> None:
    run = run_case(case_id)
    non_public = [rule for rule in ingress_rules(run) if rule.get("remoteIpPrefix") not in ANYWHERE]
    for rule in non_public:
        assert rule.get("remoteIpPrefix") == MANAGEMENT_CIDR, f"ingress from elsewhere: {rule}"
        assert port_of(rule) in MANAGEMENT_INGRESS, f"management ingress beyond SSH and ping: {rule}"
    for rule in ingress_rules(run):
        if port_of(rule) == ("tcp", 22):
            assert rule["remoteIpPrefix"] == MANAGEMENT_CIDR
    groups = run.of_type("openstack:networking/secGroup:SecGroup")
    ssh_rules = [rule for rule in non_public if port_of(rule) == ("tcp", 22)]
    assert len(ssh_rules) == len(groups), "each hardened group lets the management network in on SSH"


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_every_port_sits_behind_a_security_group(case_id: str) -> None:
    for port in run_case(case_id).of_type(PORT):
        assert port.inputs.get("securityGroupIds"), f"port {port.name} has no security group"
        assert port.inputs.get("portSecurityEnabled") is not False


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_servers_get_the_plans_flavor_at_the_site(case_id: str) -> None:
    case, run = case_by_id(case_id), run_case(case_id)
    instances = run.of_type(INSTANCE)
    if "flavor" not in case.sizes:
        assert not instances
        return
    assert instances
    flavor = case.sizes["flavor"]
    assert {invoke.args.get("name") for invoke in run.invokes if invoke.token == GET_FLAVOR} == {flavor}
    for instance in instances:
        assert instance.inputs["flavorId"] == mock_lookup_id("flavor", flavor)
        assert instance.inputs["availabilityZone"] == "primary"


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_volumes_are_sized_from_the_plan_and_attached(case_id: str) -> None:
    case, run = case_by_id(case_id), run_case(case_id)
    volumes = run.of_type(VOLUME)
    expected = Counter(int(case.sizes[key]) for key in VOLUME_SIZE_KEYS if key in case.sizes)
    assert Counter(int(volume.inputs["size"]) for volume in volumes) == expected
    attached = {attach.inputs["volumeId"] for attach in run.of_type(VOLUME_ATTACH)}
    assert attached == {f"{volume.name}-id" for volume in volumes}
    assert all(volume.inputs["availabilityZone"] == "primary" for volume in volumes)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_every_resource_carries_ministry_service_and_request(case_id: str) -> None:
    for resource in run_case(case_id).resources:
        if resource.type in UNLABELLED_TYPES:
            continue
        text = label_text(resource.inputs)
        for fact in (MINISTRY, SERVICE_ID, REQUEST_ID):
            assert fact in text, f"{resource.type} {resource.name} does not carry {fact}"
        if "name" in resource.inputs and resource.type not in DESIGNATE_TYPES:
            assert resource.inputs["name"].startswith(f"{MINISTRY}-"), resource.inputs["name"]
            assert SERVICE_ID.replace("-", "")[:8] in resource.inputs["name"]
        if resource.type in DESIGNATE_TYPES:
            assert len(resource.inputs["description"]) <= DESIGNATE_DESCRIPTION_MAX


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_outputs_are_shaped_as_the_contract_says(case_id: str) -> None:
    case, run = case_by_id(case_id), run_case(case_id)
    assert set(run.outputs) == {"hosts", "endpoints", "credentials"}
    assert run.outputs["credentials"].secret
    assert isinstance(run.outputs["credentials"].value, dict)
    assert not run.outputs["hosts"].secret and not run.outputs["endpoints"].secret
    assert isinstance(run.outputs["endpoints"].value, dict) and run.outputs["endpoints"].value

    hosts = run.outputs["hosts"].value
    # Offerings that Ansible configures get an inventory; the others have nothing to configure.
    assert bool(hosts) == bool(case.offering["playbooks"])
    floating_addresses = {mock_floating_address(fip.name) for fip in run.of_type(FLOATING_IP)}
    assert len(floating_addresses) == len(hosts)
    volume_ids: set[str] = set()
    for host in hosts.values():
        assert set(host) == {"address", "private_address", "server_id", "groups", "user", "volumes"}
        assert host["server_id"] in {f"{instance.name}-id" for instance in run.of_type(INSTANCE)}
        assert host["address"] in floating_addresses
        assert host["private_address"] in {mock_fixed_address(port.name) for port in run.of_type(PORT)}
        assert host["groups"] and all(isinstance(group, str) for group in host["groups"])
        assert host["user"] == "debian"
        for volume in host["volumes"].values():
            assert set(volume) == {"id", "device"}
            volume_ids.add(volume["id"])
    assert volume_ids == {f"{volume.name}-id" for volume in run.of_type(VOLUME)}


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_a_secret_the_cloud_makes_reaches_the_secret_output_only(case_id: str) -> None:
    """The only secret a cloud answers with is an EC2 credential's key (the mocks answer with
    MOCK_S3_SECRET): a program that makes one hands it over as a secret output and nowhere else;
    a program that makes none exports no credentials."""
    run = run_case(case_id)
    in_the_clear = json.dumps([run.outputs["hosts"].value, run.outputs["endpoints"].value])
    assert MOCK_S3_SECRET not in in_the_clear
    credentials = run.outputs["credentials"]
    if run.of_type(EC2_CREDENTIAL):
        assert credentials.secret and MOCK_S3_SECRET in json.dumps(credentials.value)
    else:
        assert credentials.value == {}


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_user_data_holds_the_service_key_and_nothing_that_changes(case_id: str) -> None:
    for instance in run_case(case_id).of_type(INSTANCE):
        user_data = instance.inputs["userData"]
        assert user_data.startswith("#cloud-config\n")
        config = yaml.safe_load(user_data)
        assert set(config) <= PORTABLE_CLOUD_CONFIG
        assert config["ssh_authorized_keys"] == [SSH_PUBLIC_KEY]
        assert config["ssh_pwauth"] is False and config["disable_root"] is True
        assert len(config["hostname"]) <= 63
        # Nova replaces a server whose user data changes: the plan and request must not be in it.
        assert REQUEST_ID not in user_data
        assert case_by_id(case_id).plan["id"] not in user_data


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_a_second_run_declares_exactly_the_same_resources(case_id: str) -> None:
    """No randomness or clock in a program: a rerun must be a no-op for the engine."""
    case = case_by_id(case_id)
    again = run_program(case.program(), case.config())
    # Registrations arrive concurrently, so compare them in a fixed order.
    assert sorted(again.resources, key=repr) == sorted(run_case(case_id).resources, key=repr)
    assert {name: exported.value for name, exported in again.outputs.items()} == {
        name: exported.value for name, exported in run_case(case_id).outputs.items()
    }


#: Types whose replacement must free what the new one needs (a port, a volume, a unique rule).
DELETE_BEFORE_REPLACE = {INSTANCE, VOLUME_ATTACH, SECGROUP_RULE}
ROUTER_INTERFACE = "openstack:networking/routerInterface:RouterInterface"


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_replacements_free_what_their_successor_needs(case_id: str) -> None:
    run = run_case(case_id)
    for resource in run.resources:
        expected = resource.type in DELETE_BEFORE_REPLACE
        assert run.options_of(resource).delete_before_replace == expected, f"{resource.type} {resource.name}"


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_servers_are_never_rebuilt_for_a_new_image_or_key(case_id: str) -> None:
    run = run_case(case_id)
    for instance in run.of_type(INSTANCE):
        assert set(run.options_of(instance).ignore_changes) == {"imageId", "userData"}
    others = [resource for resource in run.resources if resource.type != INSTANCE]
    assert not any(run.options_of(resource).ignore_changes for resource in others)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_floating_ips_wait_for_the_subnet_to_be_routed(case_id: str) -> None:
    run = run_case(case_id)
    interfaces = {run.options_of(interface).urn for interface in run.of_type(ROUTER_INTERFACE)}
    for fip in run.of_type(FLOATING_IP):
        assert interfaces & set(run.options_of(fip).dependencies)
        assert fip.inputs["pool"] == EXTERNAL_NETWORK
