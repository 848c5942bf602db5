"""The mail domain's expected DNS record set and its MTA-STS policy."""

import hashlib

import pytest

from orchestrator.mail.dns_records import ExpectedRecord, expected_records, mta_sts_policy, mta_sts_policy_id

pytestmark = pytest.mark.unit

DOMAIN = "finance.gov.example"


def records(*, published: bool) -> list[ExpectedRecord]:
    return expected_records(
        domain=DOMAIN,
        address="172.24.4.50",
        postmaster=f"postmaster@{DOMAIN}",
        dkim_selector="tonle202611",
        dkim_public_key="MIIBIjAN",
        mta_sts_published=published,
    )


def test_the_policy_enforces_tls_to_our_mx_and_its_id_follows_its_text() -> None:
    policy = mta_sts_policy(DOMAIN)
    assert policy == f"version: STSv1\nmode: enforce\nmx: mail.{DOMAIN}\nmax_age: 86400\n"
    assert mta_sts_policy_id(DOMAIN) == hashlib.sha256(policy.encode()).hexdigest()[:16]
    assert mta_sts_policy_id(DOMAIN) != mta_sts_policy_id("health.gov.example")


def test_the_record_set_of_a_domain_whose_policy_certificate_is_valid() -> None:
    assert set(records(published=True)) == {
        ExpectedRecord(f"mail.{DOMAIN}", "A", "172.24.4.50"),
        ExpectedRecord(f"mta-sts.{DOMAIN}", "A", "172.24.4.50"),
        ExpectedRecord(f"autoconfig.{DOMAIN}", "A", "172.24.4.50"),
        ExpectedRecord(f"autodiscover.{DOMAIN}", "A", "172.24.4.50"),
        ExpectedRecord(DOMAIN, "MX", f"10 mail.{DOMAIN}."),
        ExpectedRecord(DOMAIN, "TXT", "v=spf1 mx -all"),
        ExpectedRecord(f"tonle202611._domainkey.{DOMAIN}", "TXT", "v=DKIM1; k=rsa; p=MIIBIjAN"),
        ExpectedRecord(f"_dmarc.{DOMAIN}", "TXT", f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{DOMAIN}"),
        ExpectedRecord(f"_smtp._tls.{DOMAIN}", "TXT", f"v=TLSRPTv1; rua=mailto:postmaster@{DOMAIN}"),
        ExpectedRecord(f"_mta-sts.{DOMAIN}", "TXT", f"v=STSv1; id={mta_sts_policy_id(DOMAIN)}"),
    }


def test_no_mta_sts_announcement_without_a_valid_certificate() -> None:
    without = records(published=False)
    assert {record.name for record in without} == {r.name for r in records(published=True)} - {f"_mta-sts.{DOMAIN}"}
