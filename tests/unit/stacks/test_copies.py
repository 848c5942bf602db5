"""Copies of a service at the DR site (`tonle:copy`): a drill's copy is isolated and publishes no
DNS; a failover copy publishes no DNS either but keeps ordinary egress; both are named apart
from the service."""

from typing import Any

import pytest

from tests.unit.stacks.harness import MANAGEMENT_CIDR, Case, Run, every_case, run_program

pytestmark = pytest.mark.unit

SEC_GROUP = "openstack:networking/secGroup:SecGroup"
RULE = "openstack:networking/secGroupRule:SecGroupRule"
DNS_TYPES = {"openstack:dns/zone:Zone", "openstack:dns/recordSet:RecordSet"}
S3_RELAY = "172.24.4.1/32"
OWN_SUBNET = "10.100.7.0/24"  # what the harness's mock subnet pool hands out


def case_of(offering_id: str) -> Case:
    return next(case for case in every_case() if case.offering["id"] == offering_id)


def copy_config(case: Case, mode: str, **extra: Any) -> dict[str, str]:
    return case.config(copy=mode, copyId="0a1b2c3d", **extra)


def egress(run: Run) -> list[dict[str, Any]]:
    return [rule.inputs for rule in run.of_type(RULE) if rule.inputs["direction"] == "egress"]


def ingress_sources(run: Run) -> set[str]:
    return {rule.inputs["remoteIpPrefix"] for rule in run.of_type(RULE) if rule.inputs["direction"] == "ingress"}


@pytest.mark.parametrize("offering_id", ["web-hosting", "cms"])
def test_a_drill_copy_reaches_only_its_subnet_and_the_allowed_cidrs(offering_id: str) -> None:
    run = run_program(
        case_of(offering_id).program(), copy_config(case_of(offering_id), "drill", egressAllowed=[S3_RELAY])
    )
    (group,) = run.of_type(SEC_GROUP)
    # Neutron's "anything out" rules go; only the listed destinations come back.
    assert group.inputs["deleteDefaultRules"] is True
    assert sorted(rule["remoteIpPrefix"] for rule in egress(run)) == sorted([OWN_SUBNET, S3_RELAY])
    assert all(rule.get("protocol") is None and rule["ethertype"] == "IPv4" for rule in egress(run))
    # Nobody but the management network reaches a copy of production data, not even on HTTPS.
    assert ingress_sources(run) == {MANAGEMENT_CIDR}


def test_a_drill_copy_publishes_no_dns_but_names_the_domain_it_serves() -> None:
    case = case_of("web-hosting")
    run = run_program(case.program(), copy_config(case, "drill"))
    assert not run.type_tokens() & DNS_TYPES
    endpoints = run.outputs["endpoints"].value
    assert endpoints["url"] == "https://portal.health.gov.example/"
    assert endpoints["dns_names"] == ["portal.health.gov.example", "www.health.gov.example"]
    assert endpoints["public_address"]


def test_a_drill_copy_with_no_allowed_cidrs_reaches_its_subnet_alone() -> None:
    case = case_of("web-hosting")
    run = run_program(case.program(), copy_config(case, "drill"))
    assert [rule["remoteIpPrefix"] for rule in egress(run)] == [OWN_SUBNET]


def test_a_failover_copy_keeps_ordinary_egress_and_public_ports_and_makes_no_dns() -> None:
    case = case_of("web-hosting")
    run = run_program(case.program(), copy_config(case, "failover"))
    (group,) = run.of_type(SEC_GROUP)
    assert not group.inputs.get("deleteDefaultRules")
    assert egress(run) == []
    assert "0.0.0.0/0" in ingress_sources(run)
    assert not run.type_tokens() & DNS_TYPES


def test_the_service_itself_is_unchanged_by_the_copy_keys_absence() -> None:
    case = case_of("web-hosting")
    run = run_program(case.program(), case.config())
    (group,) = run.of_type(SEC_GROUP)
    assert not group.inputs.get("deleteDefaultRules") and egress(run) == []
    assert run.type_tokens() & DNS_TYPES
    assert group.inputs["name"] == "health-health-portal-6f1c2a4e-sg"


def test_every_name_and_tag_of_a_copy_carries_the_copy() -> None:
    case = case_of("cms")
    run = run_program(case.program(), copy_config(case, "drill"))
    named = [resource for resource in run.resources if "name" in resource.inputs]
    assert named and all("-6f1c2a4e-drill-0a1b2c3d-" in r.inputs["name"] for r in named)
    tagged = [resource for resource in run.resources if "tags" in resource.inputs]
    assert tagged and all("copy=drill-0a1b2c3d" in r.inputs["tags"] for r in tagged)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"egressAllowed": ["0.0.0.0/0"]}, "would let the copy reach everything"),
        ({"copy": "sandbox"}, "tonle:copy must be one of"),
    ],
)
def test_a_copy_that_would_not_be_isolated_or_is_unknown_is_refused(extra: dict[str, Any], message: str) -> None:
    case = case_of("web-hosting")
    config = {**copy_config(case, "drill"), **case.config(**extra)}
    with pytest.raises(Exception, match=message):
        run_program(case.program(), config)
