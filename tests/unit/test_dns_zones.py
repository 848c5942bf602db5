"""Which of the ministry's zones holds a name, when a failover repoints it (orchestrator/cloud/dns.py)."""

import pytest

from orchestrator.cloud.dns import fqdn, zone_for

pytestmark = pytest.mark.unit

ZONES = ["health.gov.example.", "portal.health.gov.example.", "www.health.gov.example."]


def test_a_name_lives_in_the_longest_zone_that_holds_it() -> None:
    assert zone_for("portal.health.gov.example", ZONES) == "portal.health.gov.example."
    assert zone_for("news.portal.health.gov.example", ZONES) == "portal.health.gov.example."
    assert zone_for("forms.health.gov.example.", ZONES) == "health.gov.example."


def test_a_zone_is_matched_on_whole_labels_only() -> None:
    # "xhealth.gov.example" ends with "health.gov.example" as a string but is not under it.
    assert zone_for("xhealth.gov.example", ZONES) is None
    assert zone_for("education.gov.example", ZONES) is None


def test_names_are_made_absolute_once() -> None:
    assert fqdn("a.example") == "a.example."
    assert fqdn("a.example.") == "a.example."
