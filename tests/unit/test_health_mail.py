"""The mail health check's DKIM verifier, on messages signed here with dkimpy, and the probe's
inputs. DNS is a dictionary (a double at the boundary these tests are not about); the DNS query
itself is tested against a DNS server in tests/integration/test_mail_status.py."""

import base64

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from orchestrator.health.mail import Mailbox, MailProbe, dkim_problem, probe_from, probe_message

pytestmark = pytest.mark.unit

DOMAIN = "finance.gov.example"
SELECTOR = "tonle202611"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def dns_double(key: rsa.RSAPrivateKey) -> dict[bytes, bytes]:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    return {f"{SELECTOR}._domainkey.{DOMAIN}.".encode(): record.encode()}


def unsigned_message() -> bytes:
    probe = MailProbe(
        address="172.24.4.50",
        hostname=f"mail.{DOMAIN}",
        sender=Mailbox(f"tonle-probe-a@{DOMAIN}", "a"),
        recipient=Mailbox(f"tonle-probe-b@{DOMAIN}", "b"),
    )
    return probe_message(probe, "0123456789abcdef").as_bytes()


def signed_message(key: rsa.RSAPrivateKey) -> bytes:
    message = unsigned_message()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signature = dkim.sign(
        message, SELECTOR.encode(), DOMAIN.encode(), pem, include_headers=[b"from", b"to", b"subject"]
    )
    return signature + message


def test_a_signed_message_verifies_with_the_key_dns_serves(key: rsa.RSAPrivateKey) -> None:
    records = dns_double(key)
    assert dkim_problem(signed_message(key), dnsfunc=lambda name, timeout=5: records.get(name)) is None


def test_one_byte_of_the_body_changed_fails(key: rsa.RSAPrivateKey) -> None:
    records = dns_double(key)
    message = signed_message(key)
    changed = message.replace(b"Token: 0", b"Token: 1")
    assert changed != message and len(changed) == len(message)
    problem = dkim_problem(changed, dnsfunc=lambda name, timeout=5: records.get(name))
    assert problem is not None and problem.startswith("DKIM fails:")


def test_a_key_dns_does_not_serve_fails(key: rsa.RSAPrivateKey) -> None:
    problem = dkim_problem(signed_message(key), dnsfunc=lambda name, timeout=5: None)
    assert problem is not None and problem.startswith("DKIM fails:")


def test_an_unsigned_message_is_named_as_missing_its_signature() -> None:
    assert dkim_problem(unsigned_message(), dnsfunc=lambda name, timeout=5: None) == (
        "DKIM missing: the delivered message carries no DKIM-Signature"
    )


def test_the_probe_names_what_it_lacks() -> None:
    outputs = {"endpoints": {"public_address": "172.24.4.50", "mx": f"mail.{DOMAIN}"}}
    with pytest.raises(ValueError, match=r"mail\.probe\.sender, mail\.probe\.recipient"):
        probe_from(outputs, {})
    probe = probe_from(
        outputs,
        {
            "mail": {
                "probe": {
                    "sender": {"address": f"tonle-probe-a@{DOMAIN}", "password": "pa"},
                    "recipient": {"address": f"tonle-probe-b@{DOMAIN}", "password": "pb"},
                }
            }
        },
    )
    assert probe.hostname == f"mail.{DOMAIN}" and probe.address == "172.24.4.50"
    assert "pa" not in repr(probe)
