"""The mail health check over real sockets: submission with STARTTLS and AUTH, IMAPS, TLS verified
against a CA under the mail host's name while connecting to an address, the DKIM key read from a
DNS server. The mail server (`mail_server_double.py`) and DNS (`dns_double.py`) are doubles at the
boundary this test is not about; the real Postfix, Dovecot and rspamd are the cloud tier's."""

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest

from orchestrator.health.mail import Mailbox, MailProbe, wait_until_healthy
from orchestrator.mail import dkim as dkim_keys
from orchestrator.mail.dns_query import dkim_dnsfunc
from orchestrator.pki.issue import KeyAndCert, new_ca, server_certificate
from orchestrator.ports import ProgressEvent, StepFailed
from stacks.components import dns as dns_component
from tests.integration.dns_double import AuthoritativeDnsDouble
from tests.integration.mail_server_double import Deliver, MailServerDouble

pytestmark = pytest.mark.integration

DOMAIN = "finance.gov.example"
SENDER = Mailbox(f"tonle-probe-a@{DOMAIN}", "sender-password")
RECIPIENT = Mailbox(f"tonle-probe-b@{DOMAIN}", "recipient-password")
KEY = dkim_keys.generate(now=datetime.now(UTC))


@pytest.fixture(scope="module")
def ca() -> KeyAndCert:
    return new_ca("Tonle test CA")


@pytest.fixture(scope="module")
def dns_server() -> Iterator[AuthoritativeDnsDouble]:
    double = AuthoritativeDnsDouble()
    double.zone = {
        (f"{KEY.selector}._domainkey.{DOMAIN}", "TXT"): [dns_component.txt(f"v=DKIM1; k=rsa; p={KEY.public_key}")]
    }
    yield double
    double.close()


def signed(message: bytes) -> bytes:
    """What rspamd does on the way out: a DKIM signature by the domain's key."""
    headers = [b"from", b"to", b"subject", b"date", b"message-id"]
    return (
        dkim.sign(
            message, KEY.selector.encode(), DOMAIN.encode(), KEY.private_key_pem.encode(), include_headers=headers
        )
        + message
    )


ServerFactory = Callable[..., MailServerDouble]


@pytest.fixture
def mail_server(ca: KeyAndCert, tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[MailServerDouble] = []

    def start(*, deliver: Deliver = signed, names: tuple[str, ...] = (f"mail.{DOMAIN}",)) -> MailServerDouble:
        # A loopback address of its own: the probe's ports are the real ones (587, 993).
        address = f"127.{random.randint(64, 250)}.{random.randint(1, 250)}.{random.randint(1, 250)}"
        certificate = server_certificate(ca, list(names))
        server = MailServerDouble(
            address=address,
            cert_pem=certificate.cert_pem,
            key_pem=certificate.key_pem,
            passwords={SENDER.address: SENDER.password, RECIPIENT.address: RECIPIENT.password},
            deliver=deliver,
        ).start(tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def probe_of(server: MailServerDouble, *, sender: Mailbox = SENDER) -> MailProbe:
    return MailProbe(address=server.address, hostname=f"mail.{DOMAIN}", sender=sender, recipient=RECIPIENT)


def run(
    server: MailServerDouble, dns_server: AuthoritativeDnsDouble, ca: KeyAndCert, *, deadline: float = 10, **kw: Mailbox
) -> tuple[bool, list[ProgressEvent]]:
    events: list[ProgressEvent] = []
    passed = wait_until_healthy(
        probe_of(server, **kw),
        ca_pem=ca.cert_pem,
        dnsfunc=dkim_dnsfunc(dns_server.address),
        deadline_seconds=deadline,
        on_event=events.append,
    )
    return passed, events


def test_a_signed_message_is_sent_read_back_verified_and_deleted(
    mail_server: ServerFactory, dns_server: AuthoritativeDnsDouble, ca: KeyAndCert
) -> None:
    server = mail_server()
    passed, events = run(server, dns_server, ca)
    assert passed
    assert "DKIM verified" in events[-1].message and events[-1].data["passed"] is True
    assert server.mailboxes[RECIPIENT.address] == []  # the probe leaves nothing behind


def test_a_wrong_password_fails_naming_submission_auth(
    mail_server: ServerFactory, dns_server: AuthoritativeDnsDouble, ca: KeyAndCert
) -> None:
    server = mail_server()
    with pytest.raises(StepFailed, match=f"submission auth as {SENDER.address} failed"):
        run(server, dns_server, ca, deadline=2, sender=Mailbox(SENDER.address, "wrong"))


def test_a_certificate_for_another_name_fails_at_starttls(
    mail_server: ServerFactory, dns_server: AuthoritativeDnsDouble, ca: KeyAndCert
) -> None:
    server = mail_server(names=("webmail.other.gov.example",))
    with pytest.raises(StepFailed, match=r"submission STARTTLS .* failed: .*certificate verify failed"):
        run(server, dns_server, ca, deadline=2)


def test_a_message_never_delivered_fails_after_the_deadline(
    mail_server: ServerFactory, dns_server: AuthoritativeDnsDouble, ca: KeyAndCert
) -> None:
    server = mail_server(deliver=lambda message: None)
    with pytest.raises(StepFailed, match=r"not delivered within \d+ s"):
        run(server, dns_server, ca, deadline=3)


def test_an_unsigned_message_fails_naming_the_missing_signature(
    mail_server: ServerFactory, dns_server: AuthoritativeDnsDouble, ca: KeyAndCert
) -> None:
    server = mail_server(deliver=lambda message: message)
    with pytest.raises(StepFailed, match="DKIM missing"):
        run(server, dns_server, ca)


def test_a_message_changed_after_signing_fails_dkim(
    mail_server: ServerFactory, dns_server: AuthoritativeDnsDouble, ca: KeyAndCert
) -> None:
    server = mail_server(deliver=lambda message: signed(message).replace(b"Token: ", b"Token:  "))
    with pytest.raises(StepFailed, match="DKIM fails"):
        run(server, dns_server, ca)
