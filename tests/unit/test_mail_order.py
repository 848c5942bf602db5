"""An order's first mailboxes, checked before anything is reserved; what a run of the stack is told."""

import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.catalog.loader import load_catalog
from orchestrator.catalog.models import Offering
from orchestrator.errors import InvalidInput
from orchestrator.mail import dns_records, domain
from orchestrator.workflows.inputs import MailInputs, Platform, ServiceInputs

pytestmark = pytest.mark.unit

CATALOG = Path(__file__).parents[2] / "catalog"


@pytest.fixture(scope="module")
def email() -> Offering:
    return load_catalog(CATALOG)["email"]


def order(*addresses: str) -> dict[str, Any]:
    return {
        "name": "mail",
        "mail_domain": "finance.gov.example",
        "postmaster": "postmaster@finance.gov.example",
        "initial_mailboxes": [{"address": a, "full_name": a.split("@")[0]} for a in addresses],
    }


def test_addresses_of_the_domain_are_accepted_lower_case(email: Offering) -> None:
    plan = email.plans[0]
    wanted = domain.check_order(
        offering=email, plan=plan, parameters=order("Alice@Finance.gov.example", "bob@finance.gov.example")
    )
    assert [m.address for m in wanted] == ["alice@finance.gov.example", "bob@finance.gov.example"]


@pytest.mark.parametrize(
    ("addresses", "field", "words"),
    [
        (["a@finance.gov.example", "b@health.gov.example"], "parameters.initial_mailboxes.1.address", "not an address"),
        (["a@sub.finance.gov.example"], "parameters.initial_mailboxes.0.address", "not an address"),
        (["a@finance.gov.example", "A@finance.gov.example"], "parameters.initial_mailboxes.1.address", "twice"),
        (["tonle-probe-a@finance.gov.example"], "parameters.initial_mailboxes.0.address", "health check"),
    ],
)
def test_a_bad_address_is_refused_naming_it(email: Offering, addresses: list[str], field: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as refused:
        domain.check_order(offering=email, plan=email.plans[0], parameters=order(*addresses))
    assert refused.value.field == field


@pytest.mark.parametrize("name", ["Ann: admin", "Ann\nbob:{SHA512-CRYPT}x", "{{ lookup('pipe', 'id') }}"])
def test_a_name_that_would_break_the_passwd_file_or_a_template_is_refused(email: Offering, name: str) -> None:
    parameters = order("ann@finance.gov.example")
    parameters["initial_mailboxes"][0]["full_name"] = name
    with pytest.raises(InvalidInput) as refused:
        domain.check_order(offering=email, plan=email.plans[0], parameters=parameters)
    assert refused.value.field == "parameters.initial_mailboxes.0.full_name"


def test_more_mailboxes_than_the_plan_allows_are_refused(email: Offering) -> None:
    plan = email.plans[0]
    limit = domain.mailbox_limit(plan)
    assert limit == 50
    too_many = [f"user{i}@finance.gov.example" for i in range(limit + 1)]
    with pytest.raises(InvalidInput, match=f"allows {limit} mailboxes") as refused:
        domain.check_order(offering=email, plan=plan, parameters=order(*too_many))
    assert refused.value.field == "parameters.initial_mailboxes"
    assert len(domain.check_order(offering=email, plan=plan, parameters=order(*too_many[:limit]))) == limit


def test_an_offering_without_a_mail_domain_has_no_mailboxes() -> None:
    web = load_catalog(CATALOG)["web-hosting"]
    assert domain.check_order(offering=web, plan=web.plans[0], parameters={"name": "x"}) == []


def test_the_catalogue_refuses_a_mail_domain_that_is_not_a_parameter(email: Offering) -> None:
    with pytest.raises(ValueError, match="'domain' is not a parameter"):
        Offering.model_validate({**email.model_dump(), "mail_domain_from": "domain"})


def test_the_stack_is_told_the_domain_selector_public_key_and_policy_id(email: Offering) -> None:
    mail = MailInputs(
        domain="finance.gov.example",
        dkim_selector="tonle202611",
        dkim_public_key="MIIB",
        mta_sts_policy_id=dns_records.mta_sts_policy_id("finance.gov.example"),
    )
    inputs = ServiceInputs(
        ministry_id=uuid.uuid4(),
        ministry_code="mof",
        ministry_name="Finance",
        service_id=uuid.uuid4(),
        request_id=uuid.uuid4(),
        stack_name="mof-email-1",
        offering=email,
        plan=email.plans[0],
        parameters=order(),
        platform=Platform(
            site_name="primary",
            external_network="public",
            management_cidr="10.0.0.0/24",
            image="debian-12",
            subnet_pool="p",
        ),
        mail=mail,
    )
    config = inputs.stack_config()["tonle:mail"]
    assert config == {
        "domain": "finance.gov.example",
        "dkimSelector": "tonle202611",
        "dkimPublicKey": "MIIB",
        "mtaStsPolicyId": mail.mta_sts_policy_id,
    }
    assert len(config["mtaStsPolicyId"]) == 16
    # Secrets never reach the stack or the plain Ansible vars.
    assert "mail" not in inputs.ansible_vars(endpoints={})
