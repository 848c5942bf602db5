"""A mail domain's record set as the email stack publishes it, through the embedded engine into the
local data centre's Designate, read back from its BIND by the status check: every expected record
is served (the DKIM key split in strings comes back whole), and a record deleted behind the
stack's back is reported missing.

The program is the email stack's DNS part (`stacks.email._records`) alone, pointing the host
names at a documentation address: the server of a real e-mail service is the e-mail end-to-end
test's.
"""

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi
import pytest
from cryptography.fernet import Fernet

from orchestrator.engines.checkpoints import PostgresCheckpointStore
from orchestrator.mail import dkim
from orchestrator.mail import status as mail_status
from orchestrator.mail.dns_records import expected_records, mta_sts_policy_id
from pulumi_embedded import EmbeddedEngine, ProgressEvent, StackSpec
from pulumi_embedded.openstack.provider import OpenStackProvider
from stacks import email
from stacks.config import NAMESPACE
from stacks.labels import Labels
from tests.cloud.conftest import DEVCLOUD_DIR, DevCloud
from tests.conftest import Database

pytestmark = pytest.mark.cloud

CLOUDS_YAML = DEVCLOUD_DIR / "clouds.yaml"
BIND = "127.0.0.1:15353"  # devcloud/ports.py BIND_DNS
ADDRESS = "192.0.2.50"
PROPAGATION_TIMEOUT = 60.0


def dns_only() -> None:
    config = pulumi.Config(NAMESPACE)
    labels = Labels(
        ministry="health",
        service_id=config.require("serviceId"),
        request_id=str(uuid.UUID(int=1)),
        offering="email",
        service_name="mail",
    )
    mail = email.MailConfig.from_object(dict(config.require_object("mail")))
    email._records(
        labels,
        mail=mail,
        postmaster=config.require("postmaster"),
        host_names=[f"{prefix}.{mail.domain}" for prefix in email.HOST_PREFIXES],
        address=pulumi.Output.from_input(ADDRESS),
    )


@pytest.fixture
def engine(database: Database, devcloud: DevCloud) -> Iterator[EmbeddedEngine]:
    if not CLOUDS_YAML.exists():
        pytest.skip(f"no local data centre: {CLOUDS_YAML} is absent (start it with `python -m devcloud up`)")
    eng = EmbeddedEngine(
        store=PostgresCheckpointStore(database.url),
        secrets_key=Fernet.generate_key(),
        provider_factory=OpenStackProvider.factory(CLOUDS_YAML),
        parallel=4,
        load_program=lambda name: dns_only,
    )
    yield eng
    eng.close()


def ignore(event: ProgressEvent) -> None:
    return None


def until_served(expected: list[Any], *, want: str) -> list[mail_status.RecordStatus]:
    lookup = mail_status.server_lookup(BIND)
    deadline = time.monotonic() + PROPAGATION_TIMEOUT
    while True:
        found = mail_status.compare(expected=expected, ours=expected, lookup=lookup)
        problems = sorted(record.problem for record in found if record.problem)
        if (want == "ok" and not problems) or (want != "ok" and want in " ".join(problems)):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"BIND still serves with problems {problems} after {PROPAGATION_TIMEOUT:.0f} s")
        time.sleep(0.5)


def test_the_stacks_record_set_is_served_by_bind_and_drift_is_seen(engine: EmbeddedEngine, devcloud: DevCloud) -> None:
    domain = f"mail-{uuid.uuid4().hex[:8]}.tonle-test.gov"
    postmaster = f"postmaster@{domain}"
    key = dkim.generate(now=datetime.now(UTC))
    stack_name = f"maildns-{uuid.uuid4().hex[:6]}"
    spec = StackSpec(
        name=stack_name,
        program="dns-only",
        config={
            "openstack:cloud": "tonle-primary",
            "tonle:serviceId": str(uuid.uuid4()),
            "tonle:postmaster": postmaster,
            "tonle:mail": {
                "domain": domain,
                "dkimSelector": key.selector,
                "dkimPublicKey": key.public_key,
                "mtaStsPolicyId": mta_sts_policy_id(domain),
                "mtaStsUntil": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            },
        },
    )
    expected = expected_records(
        domain=domain,
        address=ADDRESS,
        postmaster=postmaster,
        dkim_selector=key.selector,
        dkim_public_key=key.public_key,
        mta_sts_published=True,
    )
    conn = devcloud.primary
    try:
        engine.up(spec, ignore)
        served = until_served(expected, want="ok")
        assert len(served) == len(expected)
        dkim_name = f"{key.selector}._domainkey.{domain}"
        (dkim_status,) = [record for record in served if record.name == dkim_name]
        assert dkim_status.served == [f"v=DKIM1; k=rsa; p={key.public_key}"]

        zone = conn.dns.find_zone(f"{domain}.")
        (dmarc,) = [rs for rs in conn.dns.recordsets(zone) if rs.name == f"_dmarc.{domain}."]
        conn.dns.delete_recordset(dmarc)
        until_served(expected, want=f"missing TXT _dmarc.{domain}")
    finally:
        engine.destroy(stack_name, ignore)
    assert conn.dns.find_zone(f"{domain}.", ignore_missing=True) is None
