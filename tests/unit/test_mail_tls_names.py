"""Certificate names of an offering with `tls_name_prefixes` (the mail host's names)."""

import pytest

from orchestrator.catalog import service as catalog
from orchestrator.services.service import tls_names

pytestmark = pytest.mark.unit


def test_a_mail_domain_certificate_names_its_hosts_not_the_bare_domain() -> None:
    offering = catalog.get_offering("email")
    names = tls_names(offering.tls_names_from, {"mail_domain": "finance.gov.example"}, offering.tls_name_prefixes)
    assert names == [
        "mail.finance.gov.example",
        "mta-sts.finance.gov.example",
        "autoconfig.finance.gov.example",
        "autodiscover.finance.gov.example",
    ]


def test_without_prefixes_the_names_are_the_parameters_values() -> None:
    parameters = {"domain": "portal.health.gov.example", "aliases": ["www.health.gov.example"]}
    assert tls_names(["domain", "aliases"], parameters) == ["portal.health.gov.example", "www.health.gov.example"]
