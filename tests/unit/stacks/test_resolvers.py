"""The tenant subnet hands its servers the data centre's DNS (`tonle:dnsResolvers`), for every
offering, and the orchestrator projects its setting into that key."""

import dataclasses
import uuid

import pytest

from orchestrator.catalog import service as catalog
from orchestrator.config import Settings
from orchestrator.workflows.inputs import Platform, ServiceInputs
from tests.unit.stacks.harness import Case, every_case, run_program

pytestmark = pytest.mark.unit

SUBNET = "openstack:networking/subnet:Subnet"
RESOLVER = "172.24.4.1"


def with_servers() -> list[Case]:
    """The offerings whose stacks build a tenant network (a backup target has none)."""
    return [case for case in every_case() if run_program(case.program(), case.config()).of_type(SUBNET)]


def test_the_offerings_with_servers_include_web_and_mail() -> None:
    assert {"web-hosting", "email"} <= {case.offering["id"] for case in with_servers()}


@pytest.mark.parametrize("case", with_servers(), ids=lambda case: case.id)
def test_every_stacks_subnet_names_the_configured_resolvers(case: Case) -> None:
    run = run_program(case.program(), case.config(dnsResolvers=[RESOLVER, "10.0.0.53"]))
    (subnet,) = run.of_type(SUBNET)
    assert subnet.inputs["dnsNameservers"] == [RESOLVER, "10.0.0.53"]


def test_without_resolvers_the_subnet_names_none() -> None:
    case = every_case()[0]
    run = run_program(case.program(), case.config())
    (subnet,) = run.of_type(SUBNET)
    assert "dnsNameservers" not in subnet.inputs


def test_a_resolver_that_is_not_an_address_fails_the_program() -> None:
    case = every_case()[0]
    with pytest.raises(Exception, match="does not appear to be an IPv4 or IPv6 address"):
        run_program(case.program(), case.config(dnsResolvers=["ns1.example"]))


def test_settings_read_resolvers_comma_separated_and_project_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TONLE_DNS_RESOLVERS", f"{RESOLVER}, 10.0.0.53")
    monkeypatch.setenv("TONLE_DNS_SERVER", "127.0.0.1:15353")
    settings = Settings()
    assert settings.dns_resolvers == [RESOLVER, "10.0.0.53"]
    assert settings.dns_server == "127.0.0.1:15353"
    offering = catalog.get_offering("web-hosting")
    inputs = ServiceInputs(
        ministry_id=uuid.UUID(int=1),
        ministry_code="health",
        ministry_name="Ministry of Health",
        service_id=uuid.UUID(int=2),
        request_id=uuid.UUID(int=3),
        stack_name="health-portal",
        offering=offering,
        plan=catalog.get_plan(offering, "small"),
        parameters={"name": "portal", "domain": "portal.health.gov.example"},
        platform=Platform.from_settings(settings),
    )
    assert inputs.stack_config()["tonle:dnsResolvers"] == [RESOLVER, "10.0.0.53"]
    monkeypatch.delenv("TONLE_DNS_RESOLVERS")
    unset = dataclasses.replace(inputs, platform=Platform.from_settings(Settings()))
    assert "tonle:dnsResolvers" not in unset.stack_config()
