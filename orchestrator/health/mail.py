"""Mail health check: what a mailbox user does. A message with a unique token goes by SMTP
submission (587, STARTTLS, authenticated) from one probe mailbox to the other, is read back over
IMAPS (993) and deleted, and its DKIM signature is verified with the key the data centre's DNS
serves. TLS is verified against the internal CA under the mail host's name, connecting to the
service's public address. Every failure names the step that failed.

The probe mailboxes and their passwords come from the operation's secret vars (`mail.probe`).
"""

import contextlib
import email
import email.policy
import imaplib
import secrets as random
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import dkim

from orchestrator.health.polling import poll_until_passed
from orchestrator.mail.dns_query import DnsUnavailable, configured_server, dkim_dnsfunc
from orchestrator.pki import service as pki
from orchestrator.ports import EventSink, ProgressEvent, StepFailed

SUBMISSION_PORT = 587
IMAPS_PORT = 993
TOKEN_HEADER = "X-Tonle-Probe"

DnsFunc = Callable[..., bytes | None]


class ProbeStepFailed(Exception):
    """One step of the probe failed; the message names it."""


@dataclass(frozen=True)
class Mailbox:
    address: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class MailProbe:
    address: str  # the service's public address
    hostname: str  # mail.<domain>: SNI and the certificate's name
    sender: Mailbox
    recipient: Mailbox


def probe_from(outputs: dict[str, Any], secret_vars: dict[str, Any]) -> MailProbe:
    endpoints = dict(outputs.get("endpoints") or {})
    probe = dict((secret_vars.get("mail") or {}).get("probe") or {})
    hostname = endpoints.get("mx") or (f"mail.{endpoints['mail_domain']}" if endpoints.get("mail_domain") else None)
    found = {
        "endpoints.public_address": endpoints.get("public_address"),
        "endpoints.mx": hostname,
        "mail.probe.sender": (probe.get("sender") or {}).get("password"),
        "mail.probe.recipient": (probe.get("recipient") or {}).get("password"),
    }
    missing = [name for name, value in found.items() if not value]
    if missing:
        raise ValueError(f"the mail health check has no {', '.join(missing)}")
    return MailProbe(
        address=str(endpoints["public_address"]),
        hostname=str(hostname),
        sender=Mailbox(str(probe["sender"]["address"]), str(probe["sender"]["password"])),
        recipient=Mailbox(str(probe["recipient"]["address"]), str(probe["recipient"]["password"])),
    )


class _NamedContext(ssl.SSLContext):
    """Connects to an address but verifies (and sends SNI for) the mail host's name: smtplib and
    imaplib would otherwise use the address they connect to."""

    hostname: str

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=self.hostname,
            session=session,
        )


def tls_context(*, ca_pem: str | None, hostname: str) -> ssl.SSLContext:
    context = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.hostname = hostname
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem)
    else:
        context.load_default_certs()
    return context


def probe_message(probe: MailProbe, token: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = probe.sender.address
    message["To"] = probe.recipient.address
    message["Subject"] = f"Tonle health check {token}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=probe.hostname)
    message[TOKEN_HEADER] = token
    message.set_content(f"Sent by the data centre's health check to prove delivery. Token: {token}\n")
    return message


def submit(probe: MailProbe, message: EmailMessage, *, context: ssl.SSLContext, timeout: float) -> None:
    where = f"{probe.hostname} ({probe.address}:{SUBMISSION_PORT})"
    try:
        smtp = smtplib.SMTP(probe.address, SUBMISSION_PORT, timeout=timeout)
    except OSError as exc:
        raise ProbeStepFailed(f"submission connect to {where} failed: {exc}") from exc
    with smtp:
        try:
            smtp.ehlo()
            smtp.starttls(context=context)
            smtp.ehlo()
        except (smtplib.SMTPException, OSError) as exc:
            raise ProbeStepFailed(f"submission STARTTLS with {where} failed: {exc}") from exc
        try:
            smtp.login(probe.sender.address, probe.sender.password)
        except (smtplib.SMTPException, OSError) as exc:
            raise ProbeStepFailed(f"submission auth as {probe.sender.address} failed: {exc}") from exc
        try:
            smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise ProbeStepFailed(f"submission refused the message to {probe.recipient.address}: {exc}") from exc


def fetch_and_delete(probe: MailProbe, token: str, *, context: ssl.SSLContext, timeout: float) -> bytes | None:
    """The recipient's message carrying `token`, deleted from the mailbox; None while absent."""
    where = f"{probe.hostname} ({probe.address}:{IMAPS_PORT})"
    try:
        imap = imaplib.IMAP4_SSL(probe.address, IMAPS_PORT, ssl_context=context, timeout=timeout)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise ProbeStepFailed(f"IMAP connect to {where} failed: {exc}") from exc
    try:
        try:
            imap.login(probe.recipient.address, probe.recipient.password)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise ProbeStepFailed(f"IMAP auth as {probe.recipient.address} failed: {exc}") from exc
        try:
            imap.select("INBOX")
            _, found = imap.search(None, "HEADER", TOKEN_HEADER, token)
            numbers = found[0].split() if found and found[0] else []
            if not numbers:
                return None
            _, parts = imap.fetch(numbers[0], "(BODY.PEEK[])")
            raw = next(part[1] for part in parts if isinstance(part, tuple))
            for number in numbers:
                imap.store(number, "+FLAGS", "\\Deleted")
            imap.expunge()
        except (imaplib.IMAP4.error, OSError, StopIteration) as exc:
            raise ProbeStepFailed(f"IMAP reading {probe.recipient.address}'s inbox failed: {exc}") from exc
        return bytes(raw)
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            imap.logout()


def dkim_problem(message: bytes, *, dnsfunc: DnsFunc) -> str | None:
    """None when the message's DKIM signature verifies; else what is wrong."""
    parsed = email.message_from_bytes(message, policy=email.policy.compat32)
    if parsed.get("DKIM-Signature") is None:
        return "DKIM missing: the delivered message carries no DKIM-Signature"
    try:
        verified = dkim.DKIM(message).verify(dnsfunc=dnsfunc)
    except DnsUnavailable as exc:
        return f"DKIM fails: {exc}"
    except dkim.DKIMException as exc:
        return f"DKIM fails: {exc}"
    return None if verified else "DKIM fails: the signature does not match the message (body hash or signed headers)"


@dataclass
class _Run:
    token: str
    sent_at: float | None = None
    last_seen: str = ""


def wait_until_healthy(
    probe: MailProbe,
    *,
    ca_pem: str | None,
    dnsfunc: DnsFunc,
    deadline_seconds: float,
    on_event: EventSink,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Send once (retrying submission until it is accepted), then look for the message until the
    deadline. A message that arrives with a bad or missing signature fails at once."""
    context = tls_context(ca_pem=ca_pem, hostname=probe.hostname)
    run = _Run(token=random.token_hex(12))
    timeout = min(30.0, max(deadline_seconds, 1.0))

    def attempt() -> tuple[bool, str]:
        try:
            if run.sent_at is None:
                submit(probe, probe_message(probe, run.token), context=context, timeout=timeout)
                run.sent_at = clock()
            run.last_seen = ""
            raw = fetch_and_delete(probe, run.token, context=context, timeout=timeout)
        except ProbeStepFailed as exc:
            run.last_seen = str(exc)
            return False, run.last_seen
        if raw is None:
            return False, f"sent to {probe.recipient.address}, waiting for delivery"
        problem = dkim_problem(raw, dnsfunc=dnsfunc)
        if problem:
            on_event(ProgressEvent(type="health.probe", message=_describe(probe, problem), level="error"))
            raise StepFailed(f"mail health check: {problem}")
        return True, f"delivered in {clock() - (run.sent_at or clock()):.1f} s, read back over IMAP, DKIM verified"

    start = clock()
    passed = poll_until_passed(
        attempt,
        describe=lambda seen: _describe(probe, seen),
        data={"address": probe.address, "hostname": probe.hostname},
        deadline_seconds=deadline_seconds,
        on_event=on_event,
        sleep=sleep,
        clock=clock,
    )
    if passed:
        return True
    if run.sent_at is not None and not run.last_seen:
        raise StepFailed(
            f"mail health check: not delivered within {clock() - start:.0f} s "
            f"({probe.sender.address} to {probe.recipient.address})"
        )
    raise StepFailed(f"mail health check: {run.last_seen}")


def _describe(probe: MailProbe, seen: str) -> str:
    return f"mail {probe.hostname} via {probe.address}: {seen}"


def check_mail(
    spec: dict[str, Any],
    outputs: dict[str, Any],
    parameters: dict[str, Any],
    secret_vars: dict[str, Any],
    on_event: EventSink,
    deadline: float,
) -> bool:
    try:
        probe = probe_from(outputs, secret_vars)
        server = configured_server()
    except (ValueError, DnsUnavailable) as exc:
        raise StepFailed(str(exc)) from exc
    return wait_until_healthy(
        probe, ca_pem=pki.ca_certificate(), dnsfunc=dkim_dnsfunc(server), deadline_seconds=deadline, on_event=on_event
    )
