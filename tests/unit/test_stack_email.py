"""The email stack program publishes exactly the record set `orchestrator/mail/dns_records.py`
defines (the program cannot import it), run under Pulumi's mocks (tests/unit/stacks/harness.py)."""

import json
import shlex
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.mail.dns_records import ExpectedRecord, expected_records
from tests.unit.stacks.harness import (
    MAIL_DKIM_PUBLIC_KEY,
    MAIL_DKIM_SELECTOR,
    Case,
    Run,
    every_case,
    mock_floating_address,
    run_program,
)

pytestmark = pytest.mark.unit

RECORD = "openstack:dns/recordSet:RecordSet"
DOMAIN = "finance.gov.example"
POSTMASTER = "postmaster@finance.gov.example"
DESIGNATE_QUOTED_MAX = 255


def email_case() -> Case:
    return next(case for case in every_case() if case.offering["id"] == "email")


def config_with(case: Case, **mail: Any) -> dict[str, str]:
    """The case's config with keys of `tonle:mail` changed (None: left out)."""
    config = case.config()
    merged = {**json.loads(config["tonle:mail"]), **mail}
    return {**config, "tonle:mail": json.dumps({k: v for k, v in merged.items() if v is not None})}


def served(run: Run) -> set[ExpectedRecord]:
    """The program's record sets as DNS would answer them: names without the dot, TXT strings joined."""
    found = set()
    for record in run.of_type(RECORD):
        name = record.inputs["name"].removesuffix(".")
        for value in record.inputs["records"]:
            if record.inputs["type"] == "TXT":
                strings = shlex.split(value)
                # Designate refuses a string whose quoted form passes DNS's 255 characters.
                assert all(len(f'"{string}"') <= DESIGNATE_QUOTED_MAX for string in strings), value
                value = "".join(strings)
            found.add(ExpectedRecord(name=name, type=record.inputs["type"], value=value))
    return found


def address_of(run: Run) -> str:
    (fip,) = run.of_type("openstack:networking/floatingIp:FloatingIp")
    return mock_floating_address(fip.name)


def expected(run: Run, *, mta_sts_published: bool) -> set[ExpectedRecord]:
    return set(
        expected_records(
            domain=DOMAIN,
            address=address_of(run),
            postmaster=POSTMASTER,
            dkim_selector=MAIL_DKIM_SELECTOR,
            dkim_public_key=MAIL_DKIM_PUBLIC_KEY,
            mta_sts_published=mta_sts_published,
        )
    )


def test_the_stack_publishes_exactly_the_expected_record_set_while_the_policy_certificate_is_valid() -> None:
    case = email_case()
    run = run_program(case.program(), case.config())
    assert served(run) == expected(run, mta_sts_published=True)
    assert any(record.name == f"_mta-sts.{DOMAIN}" for record in served(run))


def test_the_dkim_key_is_split_into_strings_dns_accepts() -> None:
    case = email_case()
    run = run_program(case.program(), case.config())
    (dkim,) = [r for r in run.of_type(RECORD) if r.inputs["name"] == f"{MAIL_DKIM_SELECTOR}._domainkey.{DOMAIN}."]
    (value,) = dkim.inputs["records"]
    assert len(shlex.split(value)) == 2


@pytest.mark.parametrize(
    "until", [None, (datetime.now(UTC) - timedelta(minutes=1)).isoformat()], ids=["absent", "expired"]
)
def test_no_mta_sts_record_without_a_valid_certificate(until: str | None) -> None:
    case = email_case()
    run = run_program(case.program(), config_with(case, mtaStsUntil=until))
    assert served(run) == expected(run, mta_sts_published=False)


def test_the_endpoints_name_the_mail_services() -> None:
    case = email_case()
    run = run_program(case.program(), case.config())
    endpoints = run.outputs["endpoints"].value
    assert endpoints == {
        "mail_domain": DOMAIN,
        "mx": f"mail.{DOMAIN}",
        "smtp_submission": f"mail.{DOMAIN}:587",
        "imap": f"mail.{DOMAIN}:993",
        "webmail": f"https://mail.{DOMAIN}/",
        "public_address": address_of(run),
        "dns_names": [f"{prefix}.{DOMAIN}" for prefix in ("mail", "mta-sts", "autoconfig", "autodiscover")],
    }


def test_a_copy_publishes_no_records() -> None:
    case = email_case()
    run = run_program(case.program(), case.config(copy="failover", copyId="0a1b2c3d"))
    assert not run.of_type(RECORD)
    assert run.outputs["endpoints"].value["mx"] == f"mail.{DOMAIN}"


def test_missing_mail_config_is_named() -> None:
    case = email_case()
    with pytest.raises(ValueError, match="dkimPublicKey"):
        run_program(case.program(), config_with(case, dkimPublicKey=None))
