"""The DNS records a mail domain must have: the one definition the status check compares with
what DNS serves. `stacks/email.py` publishes the same set (a stack program cannot import the
orchestrator); `tests/unit/test_stack_email.py` runs the program and holds the two in step.

Names are written without the trailing dot; TXT values are the whole text (DNS may split it in
strings of at most 255 characters; they are joined before comparing); MX values name their host
absolutely, as DNS presents them.
"""

import hashlib
from dataclasses import dataclass

MX_PREFERENCE = 10
#: Host names under the mail domain that point at the mail server.
HOST_PREFIXES = ("mail", "mta-sts", "autoconfig", "autodiscover")
MTA_STS_MAX_AGE_SECONDS = 86400


@dataclass(frozen=True)
class ExpectedRecord:
    name: str
    type: str
    value: str


def mail_host(domain: str) -> str:
    return f"mail.{domain}"


def mta_sts_policy(domain: str) -> str:
    """The policy served at `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461)."""
    return f"version: STSv1\nmode: enforce\nmx: {mail_host(domain)}\nmax_age: {MTA_STS_MAX_AGE_SECONDS}\n"


def mta_sts_policy_id(domain: str) -> str:
    """Changes whenever the policy text does, so senders fetch it again."""
    return hashlib.sha256(mta_sts_policy(domain).encode()).hexdigest()[:16]


def dkim_name(*, domain: str, selector: str) -> str:
    return f"{selector}._domainkey.{domain}"


def expected_records(
    *,
    domain: str,
    address: str,
    postmaster: str,
    dkim_selector: str,
    dkim_public_key: str,
    mta_sts_published: bool,
) -> list[ExpectedRecord]:
    """Every record of the domain. `_mta-sts` only while the certificate serving the policy is
    valid: a published policy whose HTTPS fails makes enforcing senders hold our mail."""
    records = [ExpectedRecord(name=f"{prefix}.{domain}", type="A", value=address) for prefix in HOST_PREFIXES]
    records += [
        ExpectedRecord(name=domain, type="MX", value=f"{MX_PREFERENCE} {mail_host(domain)}."),
        # Only our MX may send for the domain.
        ExpectedRecord(name=domain, type="TXT", value="v=spf1 mx -all"),
        ExpectedRecord(
            name=dkim_name(domain=domain, selector=dkim_selector),
            type="TXT",
            value=f"v=DKIM1; k=rsa; p={dkim_public_key}",
        ),
        # Others' mail claiming the domain is quarantined and reported to the postmaster.
        ExpectedRecord(name=f"_dmarc.{domain}", type="TXT", value=f"v=DMARC1; p=quarantine; rua=mailto:{postmaster}"),
        ExpectedRecord(name=f"_smtp._tls.{domain}", type="TXT", value=f"v=TLSRPTv1; rua=mailto:{postmaster}"),
    ]
    if mta_sts_published:
        records.append(
            ExpectedRecord(name=f"_mta-sts.{domain}", type="TXT", value=f"v=STSv1; id={mta_sts_policy_id(domain)}")
        )
    return records
