"""What each offering declares beyond the common guardrails: DNS, co-location work orders,
the DR backup target, and config that programs must refuse."""

from typing import Any

import pytest

from tests.unit.stacks.harness import (
    MANAGEMENT_CIDR,
    Case,
    Run,
    every_case,
    mock_floating_address,
    run_program,
)

pytestmark = pytest.mark.unit

ZONE = "openstack:dns/zone:Zone"
RECORD = "openstack:dns/recordSet:RecordSet"
PORT = "openstack:networking/port:Port"
FLOATING_IP = "openstack:networking/floatingIp:FloatingIp"


def first_case(offering_id: str) -> Case:
    return next(case for case in every_case() if case.offering["id"] == offering_id)


def with_parameters(case: Case, **changes: Any) -> dict[str, str]:
    return case.config(parameters={**case.parameters, **changes})


def records(run: Run) -> dict[tuple[str, str], list[str]]:
    return {(r.inputs["type"], r.inputs["name"]): r.inputs["records"] for r in run.of_type(RECORD)}


def zone_names(run: Run) -> set[str]:
    return {zone.inputs["name"] for zone in run.of_type(ZONE)}


def public_address(run: Run) -> str:
    (fip,) = run.of_type(FLOATING_IP)
    return mock_floating_address(fip.name)


def test_web_hosting_points_the_domain_and_its_aliases_at_the_public_address() -> None:
    case = first_case("web-hosting")
    run = run_program(case.program(), case.config())
    address = public_address(run)
    # The example's alias (www.health.gov.example) is outside the domain, so it gets its own zone.
    assert zone_names(run) == {"portal.health.gov.example.", "www.health.gov.example."}
    assert records(run) == {
        ("A", "portal.health.gov.example."): [address],
        ("A", "www.health.gov.example."): [address],
    }
    assert all(zone.inputs["email"] == case.parameters["admin_email"] for zone in run.of_type(ZONE))
    endpoints = run.outputs["endpoints"].value
    assert endpoints["url"] == "https://portal.health.gov.example/"
    assert endpoints["public_address"] == address
    assert endpoints["dns_names"] == ["portal.health.gov.example", "www.health.gov.example"]


def test_an_alias_under_the_domain_goes_into_the_domains_zone() -> None:
    case = first_case("web-hosting")
    run = run_program(case.program(), with_parameters(case, aliases=["www.portal.health.gov.example"]))
    assert zone_names(run) == {"portal.health.gov.example."}
    assert ("A", "www.portal.health.gov.example.") in records(run)


def test_web_hosting_without_aliases_serves_the_domain_alone() -> None:
    case = first_case("web-hosting")
    parameters = {key: value for key, value in case.parameters.items() if key != "aliases"}
    run = run_program(case.program(), case.config(parameters=parameters))
    assert run.outputs["endpoints"].value["dns_names"] == ["portal.health.gov.example"]


def test_cms_keeps_its_database_on_its_own_volume_sized_by_the_plan() -> None:
    case = first_case("cms")
    run = run_program(case.program(), case.config())
    (host,) = run.outputs["hosts"].value.values()
    assert set(host["volumes"]) == {"data", "db"}
    sizes = {
        volume.inputs["metadata"]["tonle_purpose"]: volume.inputs["size"]
        for volume in run.of_type("openstack:blockstorage/volume:Volume")
    }
    assert sizes == {"data": case.sizes["volume_gb"], "db": case.sizes["db_volume_gb"]}
    assert {"web", "cms"} <= set(host["groups"])
    assert run.outputs["endpoints"].value["admin_url"] == "https://news.education.gov.example/wp-admin/"


def test_email_publishes_mx_spf_and_dmarc_for_its_domain() -> None:
    case = first_case("email")
    run = run_program(case.program(), case.config())
    domain = "finance.gov.example."
    assert zone_names(run) == {domain}
    # The whole record set (DKIM, MTA-STS, TLS-RPT, autoconfig names) is tests/unit/test_stack_email.py's.
    assert {
        key: value
        for key, value in records(run).items()
        if key in {("A", f"mail.{domain}"), ("MX", domain), ("TXT", domain), ("TXT", f"_dmarc.{domain}")}
    } == {
        ("A", f"mail.{domain}"): [public_address(run)],
        ("MX", domain): [f"10 mail.{domain}"],
        ("TXT", domain): ['"v=spf1 mx -all"'],
        ("TXT", f"_dmarc.{domain}"): ['"v=DMARC1; p=quarantine; rua=mailto:postmaster@finance.gov.example"'],
    }
    (zone,) = run.of_type(ZONE)
    assert zone.inputs["email"] == case.parameters["postmaster"]


def test_colocation_reserves_one_address_per_device_on_a_routed_segment() -> None:
    case = first_case("colocation")
    run = run_program(case.program(), case.config())
    ports = run.of_type(PORT)
    # one port per NIC (issue 12): a device with `nic_count` NICs has that many addresses
    assert len(ports) == sum(int(d.get("nic_count", 1)) for d in case.parameters["devices"])
    assert not run.of_type("openstack:compute/instance:Instance")
    assert not run.of_type(FLOATING_IP)
    assert len(run.of_type("openstack:networking/routerInterface:RouterInterface")) == 1
    endpoints = run.outputs["endpoints"].value
    assert [device["model"] for device in endpoints["devices"]] == [d["model"] for d in case.parameters["devices"]]
    assert all(device["address"].startswith("10.100.7.") for device in endpoints["devices"])
    assert [len(device["ip_addresses"]) for device in endpoints["devices"]] == [
        int(d.get("nic_count", 1)) for d in case.parameters["devices"]
    ]
    assert endpoints["rack_units"] == case.sizes["rack_units"]
    assert endpoints["power_kw"] == case.sizes["power_kw"]
    assert run.outputs["hosts"].value == {}


def test_adding_a_device_leaves_the_other_devices_ports_alone() -> None:
    case = first_case("colocation")
    before = run_program(case.program(), case.config())
    extra = {"model": "Dell PowerEdge R650", "rack_units": 1, "power_watts": 700}
    after = run_program(case.program(), with_parameters(case, devices=[*case.parameters["devices"], extra]))
    before_ports = {port.name for port in before.of_type(PORT)}
    after_ports = {port.name for port in after.of_type(PORT)}
    assert before_ports < after_ports
    assert len(after_ports - before_ports) == 1


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ({"model": "Storage array", "rack_units": 42, "power_watts": 100}, "U, the plan has 10 U"),
        ({"model": "GPU server", "rack_units": 4, "power_watts": 3000}, "W, the plan has 2 kW"),
    ],
)
def test_colocation_refuses_devices_that_do_not_fit_the_plan(device: dict[str, Any], message: str) -> None:
    case = first_case("colocation")
    assert case.plan["id"] == "quarter-rack"
    with pytest.raises(ValueError, match=message):
        run_program(case.program(), with_parameters(case, devices=[*case.parameters["devices"], device]))


def test_dr_backup_states_the_plans_terms_and_leaves_the_bucket_and_its_keys_to_the_orchestrator() -> None:
    """The bucket, its own user and that user's S3 keys need the admin entry of clouds.yaml and
    the DR site; the orchestrator adds them (`s3_bucket: true`), never a stack's provider user."""
    case = first_case("dr-backup")
    assert case.offering["s3_bucket"] is True
    run = run_program(case.program(), case.config())
    assert run.resources == []
    assert run.outputs["endpoints"].value == {
        "quota_gb": case.sizes["object_gb"],
        "retention_days": case.sizes["retention_days"],
    }
    assert run.outputs["credentials"].value == {}


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_a_management_network_of_the_whole_internet_is_refused(cidr: str) -> None:
    case = first_case("web-hosting")
    with pytest.raises(ValueError, match="would open SSH to everyone"):
        run_program(case.program(), case.config(managementCidr=cidr))


def test_a_missing_config_key_fails_naming_it() -> None:
    case = first_case("web-hosting")
    config = {key: value for key, value in case.config().items() if key != "tonle:sshPublicKey"}
    with pytest.raises(Exception, match="sshPublicKey"):
        run_program(case.program(), config)


def test_a_plan_without_the_size_a_program_needs_fails_naming_it() -> None:
    case = first_case("cms")
    sizes = {key: value for key, value in case.sizes.items() if key != "db_volume_gb"}
    with pytest.raises(ValueError, match="db_volume_gb"):
        run_program(case.program(), case.config(sizes=sizes))


def test_the_management_cidr_reaches_the_rules_as_given() -> None:
    case = first_case("email")
    run = run_program(case.program(), case.config())
    sources = {rule.inputs["remoteIpPrefix"] for rule in run.of_type("openstack:networking/secGroupRule:SecGroupRule")}
    assert MANAGEMENT_CIDR in sources


def test_every_catalogued_stack_program_exists() -> None:
    for case in every_case():
        assert callable(case.program())
