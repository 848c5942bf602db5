"""Government e-mail end to end against the local data centre: one ministry orders a mail domain with
two mailboxes through the API, it is approved and built, and then everything is checked as a mail
client and an outside DNS resolver would: submission on 587 and IMAPS on 993 (TLS verified against
the internal CA under the mail host's name), a DKIM signature that verifies against the key BIND
serves and fails once a byte of the body changes, the domain's records in BIND, webmail over HTTPS;
a mailbox is added, receives mail, and is removed; a second ministry's domain receives mail from
the first over port 25 with DKIM passed by its rspamd; decommissioning leaves nothing in the project
and takes the zone out of DNS. Real API and worker processes, real engine, real Ansible, real
Postfix, Dovecot and rspamd."""

import email.message
import email.utils
import imaplib
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dkim
import dns.message
import dns.query
import dns.rcode
import httpx
import pytest

from tests.cloud.conftest import DevCloud, System
from tests.cloud.test_web_hosting_e2e import DNS_SERVER, fetch, follow, left_in_project, retire_everything
from tests.conftest import Platform, Tenant, make_tenant, order_and_approve

pytestmark = [pytest.mark.cloud, pytest.mark.timeout(2400)]

DELIVERY_TIMEOUT_S = 120


class MailHost:
    """A mail client of one server: connects to its address, verifies TLS under its host name."""

    def __init__(self, *, address: str, hostname: str) -> None:
        from orchestrator.pki import service as pki

        self.address = address
        self.hostname = hostname
        self.tls = ssl.create_default_context(cadata=pki.ca_certificate())

    def submit(self, *, login: str, password: str, message: email.message.EmailMessage) -> None:
        with smtplib.SMTP(self.address, 587, timeout=30) as smtp:
            # smtplib names the TLS server after the host it connected to: the address, here.
            smtp._host = self.hostname  # type: ignore[attr-defined]
            smtp.starttls(context=self.tls)
            smtp.login(login, password)
            smtp.send_message(message)

    def imap(self, *, login: str, password: str) -> imaplib.IMAP4:
        hostname, tls = self.hostname, self.tls

        class Client(imaplib.IMAP4):
            def _create_socket(self, timeout: float | None) -> socket.socket:
                return tls.wrap_socket(super()._create_socket(timeout), server_hostname=hostname)  # type: ignore[misc]

        client = Client(self.address, 993, timeout=30)
        client.login(login, password)
        return client

    def wait_for(self, *, login: str, password: str, token: str) -> bytes:
        """The raw message whose subject holds `token`, once it is in the inbox."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT_S
        while True:
            client = self.imap(login=login, password=password)
            try:
                client.select("INBOX")
                _, found = client.search(None, "SUBJECT", f'"{token}"')
                numbers = found[0].split()
                if numbers:
                    _, data = client.fetch(numbers[-1], "(RFC822)")
                    part = data[0]
                    assert isinstance(part, tuple)
                    return bytes(part[1])
            finally:
                client.logout()
            if time.monotonic() > deadline:
                pytest.fail(f"no message with subject {token!r} reached {login} within {DELIVERY_TIMEOUT_S} s")
            time.sleep(2)


def message(*, sender: str, recipient: str) -> tuple[email.message.EmailMessage, str]:
    token = f"tonle-e2e-{uuid.uuid4().hex[:10]}"
    mail = email.message.EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, recipient, f"Test {token}"
    mail["Date"] = email.utils.formatdate()
    mail["Message-ID"] = email.utils.make_msgid(domain=sender.split("@")[1])
    mail.set_content(f"Circular no. {token}\nសូមជម្រាបជូន\n")
    return mail, token


def query(name: str, rdtype: str) -> list[str]:
    answer = dns.query.udp(dns.message.make_query(name, rdtype), DNS_SERVER[0], port=DNS_SERVER[1], timeout=3)
    return [item.to_text() for rrset in answer.answer for item in rrset]


def txt(name: str) -> list[str]:
    answer = dns.query.udp(dns.message.make_query(name, "TXT"), DNS_SERVER[0], port=DNS_SERVER[1], timeout=3)
    return [b"".join(item.strings).decode() for rrset in answer.answer for item in rrset]


def dkim_dns(name: bytes, timeout: int = 5) -> bytes:
    """dkimpy's key lookup, answered by the data centre's BIND (the resolver the world would ask)."""
    records = txt(name.decode().rstrip("."))
    return records[0].encode() if records else b""


def zone_served(domain: str) -> bool:
    answer = dns.query.udp(dns.message.make_query(domain, "SOA"), DNS_SERVER[0], port=DNS_SERVER[1], timeout=3)
    return answer.rcode() == dns.rcode.NOERROR and bool(answer.answer)


@pytest.fixture(scope="module")
def ministries(system: System, platform: Platform) -> Iterator[tuple[Tenant, Tenant]]:
    pair = (make_tenant(), make_tenant())
    yield pair
    retire_everything(system, platform, list(pair))


def order_mail(
    client: httpx.Client, system: System, tenant: Tenant, platform: Platform, local_parts: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """An active mail domain of the tenant with the given mailboxes: the service and its passwords."""
    domain = f"mail{uuid.uuid4().hex[:6]}.{tenant.dns_suffix}"
    body = {
        "offering_id": "email",
        "plan": "team",
        "parameters": {
            "name": "mail",
            "mail_domain": domain,
            "postmaster": f"postmaster@{domain}",
            "initial_mailboxes": [
                {"address": f"{local}@{domain}", "full_name": local.title()} for local in local_parts
            ],
        },
    }
    approved = order_and_approve(client, tenant, platform, body)
    follow(client, tenant.requester.headers, approved["operation_id"], system)
    service = client.get(f"/v1/services/{approved['service_id']}", headers=tenant.requester.headers).json()
    assert service["status"] == "active", service
    revealed = client.post(f"/v1/services/{service['id']}/credentials", headers=tenant.requester.headers)
    assert revealed.status_code == 200, revealed.text
    passwords: dict[str, str] = revealed.json()["credentials"]
    assert set(passwords) == {f"{local}@{domain}" for local in local_parts}
    return service, passwords


def test_email_end_to_end(
    system: System, ministries: tuple[Tenant, Tenant], platform: Platform, devcloud: DevCloud
) -> None:
    first, second = ministries
    client = httpx.Client(base_url=system.url, timeout=60)
    service, passwords = order_mail(client, system, first, platform, ["alice", "bob"])
    domain = service["endpoints"]["mail_domain"]
    alice, bob = f"alice@{domain}", f"bob@{domain}"
    mail_host = f"mail.{domain}"
    address = service["endpoints"]["public_address"]
    assert service["endpoints"]["mx"] == mail_host
    assert service["endpoints"]["smtp_submission"] == f"{mail_host}:587"
    assert service["endpoints"]["imap"] == f"{mail_host}:993"
    host = MailHost(address=address, hostname=mail_host)

    # Submission as one mailbox, read back over IMAP as the other; signed on the way.
    sent, token = message(sender=alice, recipient=bob)
    host.submit(login=alice, password=passwords[alice], message=sent)
    received = host.wait_for(login=bob, password=passwords[bob], token=token)
    assert b"DKIM-Signature:" in received
    assert dkim.verify(received, dnsfunc=dkim_dns), "the DKIM signature verifies against the key in DNS"
    head, _, body = received.partition(b"\r\n\r\n")
    tampered = head + b"\r\n\r\n" + body.replace(token.encode(), token.upper().encode(), 1)
    assert tampered != received
    assert not dkim.verify(tampered, dnsfunc=dkim_dns), "one changed byte of the body breaks the signature"

    # The domain's records, as BIND serves them.
    assert query(mail_host, "A") == [address]
    assert query(domain, "MX") == [f"10 {mail_host}."]
    assert "v=spf1 mx -all" in txt(domain)
    assert any(r.startswith("v=DMARC1; p=quarantine") for r in txt(f"_dmarc.{domain}"))
    assert any(r.startswith("v=STSv1; id=") for r in txt(f"_mta-sts.{domain}"))
    assert any(r.startswith("v=TLSRPTv1; rua=mailto:") for r in txt(f"_smtp._tls.{domain}"))
    for name in (f"mta-sts.{domain}", f"autoconfig.{domain}", f"autodiscover.{domain}"):
        assert query(name, "A") == [address], name
    policy = fetch(address, f"mta-sts.{domain}", "/.well-known/mta-sts.txt")
    assert policy.status_code == 200 and f"mx: {mail_host}" in policy.text

    # Webmail over HTTPS under the mail host's name.
    webmail = fetch(address, mail_host)
    assert webmail.status_code == 200 and "roundcube" in webmail.text.lower()
    assert service["endpoints"]["webmail"] == f"https://{mail_host}/"

    # Day 2: a third mailbox, mail to it, and its removal.
    carol = f"carol@{domain}"
    added = client.post(
        f"/v1/services/{service['id']}/mailboxes",
        json={"address": carol, "full_name": "Carol"},
        headers=first.requester.headers,
    )
    assert added.status_code == 202, added.text
    follow(client, first.requester.headers, added.json()["operation_id"], system)
    to_carol, token = message(sender=alice, recipient=carol)
    host.submit(login=alice, password=passwords[alice], message=to_carol)
    host.wait_for(login=carol, password=added.json()["password"], token=token)
    removed = client.delete(f"/v1/services/{service['id']}/mailboxes/{carol}", headers=first.requester.headers)
    assert removed.status_code == 202, removed.text
    follow(client, first.requester.headers, removed.json()["operation_id"], system)
    with pytest.raises(imaplib.IMAP4.error):
        host.imap(login=carol, password=added.json()["password"])

    # Between ministries: the first's mailbox writes to the second's domain over port 25.
    other, other_passwords = order_mail(client, system, second, platform, ["dara"])
    other_domain = other["endpoints"]["mail_domain"]
    dara = f"dara@{other_domain}"
    other_host = MailHost(address=other["endpoints"]["public_address"], hostname=f"mail.{other_domain}")
    across, token = message(sender=alice, recipient=dara)
    host.submit(login=alice, password=passwords[alice], message=across)
    arrived = other_host.wait_for(login=dara, password=other_passwords[dara], token=token)
    results = email.message_from_bytes(arrived).get_all("Authentication-Results") or []
    headers = arrived.partition(b"\r\n\r\n")[0].decode(errors="replace")
    assert any("dkim=pass" in str(result) for result in results), headers

    # Decommission both: nothing left in either project, and neither zone in DNS.
    for tenant, retiring in ((first, service), (second, other)):
        retired = client.post(f"/v1/services/{retiring['id']}/decommission", headers=tenant.requester.headers)
        assert retired.status_code == 202, retired.text
        follow(client, tenant.requester.headers, retired.json()["id"], system)
        assert left_in_project(devcloud, f"tonle-{tenant.code}") == {
            "servers": [],
            "ports": [],
            "volumes": [],
            "floating_ips": [],
        }
        # Designate takes the zone out of BIND moments after the stack deleted it.
        deadline = time.monotonic() + 60
        while zone_served(retiring["endpoints"]["mail_domain"]) and time.monotonic() < deadline:
            time.sleep(2)
        assert not zone_served(retiring["endpoints"]["mail_domain"]), "the zone is gone from DNS"
    client.close()
