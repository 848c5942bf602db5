"""The e-mail offering's playbooks, run for real: a devcloud machine, AnsibleRunner over SSH.

Boots a machine with the machine layer (no OpenStack needed), bakes it with `image_mail` as
the image pipeline does, runs `baseline` and `mail` in one run, twice, with the extra-vars
contract of playbooks/README.md (a test CA for the mail host's four names, a DKIM key and
mailbox password hashes made here), then uses the host as a mail client would: submission on
587 (STARTTLS verified against the test CA, AUTH) from A to B, IMAPS on 993 as B, the
message's DKIM signature verified by dkimpy with the public key, webmail, the MTA-STS policy
and autoconfiguration over HTTPS. The configure runs install nothing and the second changes
nothing; `mail_accounts` adds a mailbox, removes one (no login, no delivery, mail kept) and
purges it. Machines, CA and keys: see test_playbooks.py, whose helpers this module shares.

The instance has no DNS resolver (as devcloud instances before H4's resolver): nothing here
may need one. The first run fills the host's apt-cacher-ng with Postfix, Dovecot, rspamd and
Roundcube (a few minutes once).
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import re
import smtplib
import socket
import ssl
import subprocess
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from orchestrator.ansible.runner import AnsibleRunner
from orchestrator.mail.dns_records import mta_sts_policy
from orchestrator.mail.passwords import dovecot_hash
from tests.cloud import test_playbooks
from tests.cloud.test_playbooks import (
    PLAYBOOKS,
    Lab,
    Site,
    Tls,
    assert_no_secret_in,
    bake,
    base_vars,
    configure_twice,
    make_tls,
    ssh,
    visit,
)

pytestmark = test_playbooks.pytestmark

# The same module-scoped fixture: this module's own bridge and machines, destroyed after it.
lab = test_playbooks.lab

DOMAIN = "finance.gov.example"
MAIL_HOST = f"mail.{DOMAIN}"
SELECTOR = "tonle202611"
PASSWORDS = {name: f"pw-{name}-{uuid.uuid4().hex[:12]}" for name in ("alice", "bob", "carol")}
MAIL_TIMEOUT_S = 60.0


def address_of(name: str) -> str:
    return f"{name}@{DOMAIN}"


def mailbox(name: str, password_hashes: dict[str, str]) -> dict[str, Any]:
    return {"address": address_of(name), "full_name": name.title(), "password_hash": password_hashes[name],
            "quota_mb": 200}  # fmt: skip


# --- mail clients that reach the host by address and check its certificate by name ---------


class Smtp(smtplib.SMTP):
    """smtplib's client connecting to `address` while checking TLS for MAIL_HOST (no DNS)."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        super().__init__(MAIL_HOST, port, local_hostname="client.test.example", timeout=30)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self.address, port), timeout)


class Imaps(imaplib.IMAP4_SSL):
    def __init__(self, address: str, context: ssl.SSLContext) -> None:
        self.address = address
        super().__init__(MAIL_HOST, 993, ssl_context=context, timeout=30)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = socket.create_connection((self.address, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def submit(address: str, tls: Tls, sender: str, recipient: str, subject: str, body: str) -> None:
    """Submission on 587: STARTTLS verified against the test CA, then AUTH as the sender."""
    message = EmailMessage()
    message["From"] = address_of(sender)
    message["To"] = recipient
    message["Subject"] = subject
    message["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
    message["Date"] = email.utils.formatdate()
    message.set_content(body)
    with Smtp(address, 587) as client:
        client.starttls(context=ssl.create_default_context(cafile=str(tls.ca_file)))
        client.login(address_of(sender), PASSWORDS[sender])
        client.send_message(message)


def fetch(address: str, tls: Tls, name: str, subject: str) -> bytes:
    """The raw message with `subject` in `name`'s INBOX, read over IMAPS (polled: delivery is async)."""
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    deadline = time.monotonic() + MAIL_TIMEOUT_S
    with Imaps(address, context) as client:
        client.login(address_of(name), PASSWORDS[name])
        while True:
            client.select("INBOX")
            _, found = client.search(None, "SUBJECT", f'"{subject}"')
            numbers = found[0].split()
            if numbers:
                _, parts = client.fetch(numbers[-1], "(RFC822)")
                raw = parts[0]
                assert isinstance(raw, tuple)
                return raw[1]
            assert time.monotonic() < deadline, f"no message {subject!r} in {name}'s INBOX after {MAIL_TIMEOUT_S:.0f}s"
            time.sleep(1)


def storage_limit_kb(address: str, tls: Tls, name: str) -> int:
    """The mailbox's quota as IMAP's GETQUOTAROOT reports it (KiB)."""
    with Imaps(address, ssl.create_default_context(cafile=str(tls.ca_file))) as client:
        client.login(address_of(name), PASSWORDS[name])
        _, answer = client.getquotaroot("INBOX")
    found = re.search(rb"STORAGE \d+ (\d+)", b" ".join(part for part in answer[1] if isinstance(part, bytes)))
    assert found, answer
    return int(found.group(1))


def imap_login_refused(address: str, tls: Tls, name: str) -> bool:
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    with Imaps(address, context) as client:
        try:
            client.login(address_of(name), PASSWORDS[name])
        except imaplib.IMAP4.error:
            return True
        return False


def dkim_verifies(message: bytes, public_key_b64: str) -> bool:
    """dkimpy's verification, with the selector's TXT record answered from the key we made."""

    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes:
        wanted = f"{SELECTOR}._domainkey.{DOMAIN}."
        asked = name.decode() if isinstance(name, bytes) else name
        return f"v=DKIM1; k=rsa; p={public_key_b64}".encode() if asked.rstrip(".") + "." == wanted else b""

    return bool(dkim.verify(message, dnsfunc=dnsfunc))


def checksum(lab: Lab, address: str) -> str:
    """The backup agent's content checksum on the host (its script, piped over SSH)."""
    script = PLAYBOOKS / "roles" / "backup_agent" / "files" / "tonle-checksum"
    proc = subprocess.run(
        ["ssh", "-i", str(lab.key.private), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"debian@{address}", "sudo sh -s"],
        input=script.read_text(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return proc.stdout.strip()


# --- the test -------------------------------------------------------------------------------


@pytest.mark.timeout(2400)
def test_mail_host_sends_signs_receives_serves_webmail_and_syncs_accounts(lab: Lab, tmp_path: Path) -> None:
    t0 = time.monotonic()
    address = lab.boot(40)
    tls = make_tls(tmp_path, [f"{prefix}.{DOMAIN}" for prefix in ("mail", "mta-sts", "autoconfig", "autodiscover")])
    dkim_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    dkim_pem = dkim_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    dkim_public = "".join(
        dkim_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
        .splitlines()[1:-1]
    )
    hashes = {name: dovecot_hash(password) for name, password in PASSWORDS.items()}
    mail: dict[str, Any] = {
        "domain": DOMAIN,
        "hostname": MAIL_HOST,
        "postmaster": address_of("alice"),
        "dkim": {"selector": SELECTOR, "private_key_pem": dkim_pem},
        "mailboxes": [mailbox("alice", hashes), mailbox("bob", hashes)],
        "removed": [],
        "aliases": [{"address": address_of("info"), "destinations": [address_of("alice"), address_of("bob")]}],
    }
    site = Site(
        runner=AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs"),
        # devcloud's Cinder is a fake: no `mail` device shows up, and the store stays on the root disk.
        hosts={
            "mail": {
                "address": address,
                "user": "debian",
                "groups": ["mail"],
                "volumes": {"mail": {"id": str(uuid.uuid4()), "device": "/dev/vdc"}},
            }
        },
        extra_vars=base_vars(
            "email",
            "standard",
            {"mail_domain": DOMAIN, "postmaster": address_of("alice")},
            f"svc-{uuid.uuid4().hex[:8]}",
        ),
        secret_vars={
            "tls": {"cert_pem": tls.cert_pem, "key_pem": tls.key_pem, "ca_pem": tls.ca_pem},
            "mail": mail,
            "log_shipping": {},
        },
        key=lab.key,
        label="mail",
    )
    # Baked as the image pipeline does, then configured as an order's server is.
    record = bake(site, lab.machines[-1], address, "mail")
    assert {"postfix", "dovecot-core", "rspamd", "roundcube-core"} <= set(record["packages"]), record
    configure_twice(site, ("baseline", "mail"), ("baseline", "mail", "backup_agent"))
    # No volume appeared (devcloud's Cinder is a fake): the store is a directory on the root disk.
    where = ssh(lab.key, address, "if mountpoint -q /var/vmail; then echo mounted; else echo directory; fi")
    assert where.stdout.strip() == "directory", where

    # A to B by submission; B reads it over IMAPS; rspamd signed it for the domain.
    before = checksum(lab, address)
    token = uuid.uuid4().hex
    submit(address, tls, "alice", address_of("bob"), f"Budget {token}", f"The figures, {token}.\n")
    raw = fetch(address, tls, "bob", f"Budget {token}")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    signature = str(message["DKIM-Signature"] or "")
    assert f"d={DOMAIN}" in signature and f"s={SELECTOR}" in signature, message.as_string()[:2000]
    assert dkim_verifies(raw, dkim_public)
    tampered = raw.replace(b"The figures", b"The Figures", 1)  # one byte of the body
    assert tampered != raw and not dkim_verifies(tampered, dkim_public)
    assert storage_limit_kb(address, tls, "bob") == 200 * 1024  # the mailbox's quota_mb
    # The mail store is content the backup agent checksums (and so backs up).
    assert checksum(lab, address) != before

    # The alias delivers to both its mailboxes.
    submit(address, tls, "bob", address_of("info"), f"Alias {token}", "To everyone.\n")
    assert fetch(address, tls, "alice", f"Alias {token}")
    # A mailbox may not send as another one.
    forged = EmailMessage()
    forged["From"] = address_of("bob")
    forged["To"] = address_of("alice")
    forged["Subject"] = "forged"
    forged.set_content("Not from Bob.\n")
    # Postfix answers the sender check at RCPT (smtpd_delay_reject), hence "recipients refused".
    with Smtp(address, 587) as client, pytest.raises(smtplib.SMTPRecipientsRefused, match="not owned by user"):
        client.starttls(context=ssl.create_default_context(cafile=str(tls.ca_file)))
        client.login(address_of("alice"), PASSWORDS["alice"])
        client.send_message(forged)

    # Inbound on port 25 from another domain: refused for a stranger, accepted for a mailbox, and
    # rspamd's verdict (Authentication-Results) is in the delivered message.
    inbound = (
        f"From: someone@other.gov.example\r\nTo: {address_of('bob')}\r\nSubject: Inbound {token}\r\n\r\nHello.\r\n"
    )
    with Smtp(address, 25) as client:
        client.starttls(context=ssl.create_default_context(cafile=str(tls.ca_file)))
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("someone@other.gov.example", [address_of("nobody")], inbound.encode())
        client.sendmail("someone@other.gov.example", [address_of("bob")], inbound.encode())
    received = email.message_from_bytes(fetch(address, tls, "bob", f"Inbound {token}"), policy=email.policy.default)
    assert "dkim=none" in str(received["Authentication-Results"] or ""), received.as_string()[:2000]

    # Webmail, the MTA-STS policy, autoconfig and autodiscover, over HTTPS on their names.
    webmail = visit(address, MAIL_HOST, tls)
    assert webmail.status_code == 200 and "Roundcube" in webmail.text, webmail.text[:500]
    assert webmail_login(address, tls, "alice") == "/?_task=mail"  # Roundcube reached Dovecot over TLS
    policy = visit(address, f"mta-sts.{DOMAIN}", tls, "/.well-known/mta-sts.txt")
    assert policy.status_code == 200 and policy.headers["content-type"].startswith("text/plain")
    assert policy.text == mta_sts_policy(DOMAIN)  # the text whose hash the `_mta-sts` TXT record names
    autoconfig = visit(address, f"autoconfig.{DOMAIN}", tls, "/mail/config-v1.1.xml")
    assert autoconfig.status_code == 200 and f"<hostname>{MAIL_HOST}</hostname>" in autoconfig.text
    autodiscover = post(address, f"autodiscover.{DOMAIN}", tls, "/autodiscover/autodiscover.xml", address_of("bob"))
    assert autodiscover.status_code == 200, autodiscover.text[:500]
    assert (
        f"<LoginName>{address_of('bob')}</LoginName>" in autodiscover.text and "<Port>993</Port>" in autodiscover.text
    )

    # Day 2: carol added, bob removed (no login, no delivery, his mail kept), then purged.
    mail["mailboxes"] = [mailbox("alice", hashes), mailbox("carol", hashes)]
    mail["removed"] = [{"address": address_of("bob"), "purge": False}]
    t3 = time.monotonic()
    site.converge("mail_accounts")
    print(f"mail_accounts, two runs: {time.monotonic() - t3:.1f}s")
    submit(address, tls, "alice", address_of("carol"), f"Welcome {token}", "Hello Carol.\n")
    assert fetch(address, tls, "carol", f"Welcome {token}")
    assert imap_login_refused(address, tls, "bob")
    with Smtp(address, 25) as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("someone@other.gov.example", [address_of("bob")], inbound.encode())
    kept = ssh(lab.key, address, f"sudo test -d /var/vmail/{DOMAIN}/bob/cur && echo kept")
    assert kept.stdout.strip() == "kept", kept
    mail["removed"] = [{"address": address_of("bob"), "purge": True}]
    site.converge("mail_accounts")
    gone = ssh(lab.key, address, f"sudo test -e /var/vmail/{DOMAIN}/bob || echo gone")
    assert gone.stdout.strip() == "gone", gone
    # The full playbook agrees with what the day-2 one did.
    final, events = site.run("mail")
    assert final.ok and final.changed == 0, [e.message for e in events if e.data.get("changed")]

    assert_no_secret_in(
        site, [tls.key_pem.splitlines()[1], dkim_pem.splitlines()[1], *PASSWORDS.values(), *hashes.values()]
    )
    print(f"mail, everything: {time.monotonic() - t0:.1f}s")


def webmail_login(address: str, tls: Tls, name: str) -> str:
    """Log in to Roundcube as a browser would; its redirect after the login form."""
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    with httpx.Client(verify=context, timeout=30, headers={"Host": MAIL_HOST}) as client:
        form = client.get(f"https://{address}/", extensions={"sni_hostname": MAIL_HOST})
        found = re.search(r'name="_token" value="([^"]+)"', form.text)
        assert found, form.text[:500]
        answer = client.post(
            f"https://{address}/?_task=login",
            data={"_token": found.group(1), "_task": "login", "_action": "login", "_timezone": "UTC", "_url": "",
                  "_user": address_of(name), "_pass": PASSWORDS[name]},
            extensions={"sni_hostname": MAIL_HOST},
        )  # fmt: skip
    assert answer.status_code == 302, answer.text[:500]
    return re.sub(r"&_token=[^&]*", "", answer.headers["location"])


def post(address: str, host: str, tls: Tls, path: str, mail_address: str) -> httpx.Response:
    """Outlook's autodiscover request, to `address` with SNI and Host `host`."""
    request = (
        '<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
        'autodiscover/outlook/requestschema/2006"><Request>'
        f"<EMailAddress>{mail_address}</EMailAddress>"
        "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
        "</AcceptableResponseSchema></Request></Autodiscover>"
    )
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    with httpx.Client(verify=context, timeout=20) as client:
        return client.post(
            f"https://{address}{path}",
            content=request.encode(),
            headers={"Host": host, "Content-Type": "text/xml"},
            extensions={"sni_hostname": host},
        )
