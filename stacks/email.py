"""E-mail domain: one mail server (Postfix, Dovecot, rspamd, Roundcube) with a mail-store volume,
and the domain's whole DNS record set in its own zone.

Reads `tonle:mail` = {"domain", "dkimSelector", "dkimPublicKey" (base64 DER, the `p=` value),
"mtaStsPolicyId", "mtaStsUntil" (optional ISO timestamp: when the certificate serving the MTA-STS
policy expires)}. The record set mirrors `orchestrator/mail/dns_records.py:expected_records`
(a program cannot import the orchestrator; a unit test holds the two in step).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pulumi

from stacks.components import dns
from stacks.components.public_server import public_server
from stacks.components.security import MAIL_PORTS
from stacks.config import NAMESPACE, StackConfig
from stacks.labels import Labels
from stacks.outputs import export_outputs

MX_PREFERENCE = 10
HOST_PREFIXES = ("mail", "mta-sts", "autoconfig", "autodiscover")


@dataclass(frozen=True)
class MailConfig:
    domain: str
    dkim_selector: str
    dkim_public_key: str
    mta_sts_policy_id: str
    mta_sts_until: datetime | None

    @classmethod
    def from_object(cls, value: dict[str, Any]) -> "MailConfig":
        missing = [key for key in ("domain", "dkimSelector", "dkimPublicKey", "mtaStsPolicyId") if not value.get(key)]
        if missing:
            raise ValueError(f"tonle:mail has no {', '.join(missing)}")
        until = value.get("mtaStsUntil")
        return cls(
            domain=str(value["domain"]),
            dkim_selector=str(value["dkimSelector"]),
            dkim_public_key=str(value["dkimPublicKey"]),
            mta_sts_policy_id=str(value["mtaStsPolicyId"]),
            mta_sts_until=_aware(datetime.fromisoformat(str(until))) if until else None,
        )

    def mta_sts_published(self, now: datetime) -> bool:
        """A policy is announced only while the certificate that serves it is valid: senders that
        enforce it would otherwise hold every message for the domain."""
        return self.mta_sts_until is not None and self.mta_sts_until > now


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def program() -> None:
    config = StackConfig()
    labels = Labels.from_config(config)
    mail = MailConfig.from_object(dict(pulumi.Config(NAMESPACE).require_object("mail")))
    domain = mail.domain
    postmaster = str(config.parameter("postmaster"))
    mail_host = f"mail.{domain}"
    host_names = [f"{prefix}.{domain}" for prefix in HOST_PREFIXES]
    site = public_server(
        config,
        labels,
        role="mail",
        groups=["mail"],
        public_ports=MAIL_PORTS,
        volumes_gb={"mail": config.sizes.number("volume_gb")},
    )
    if config.copy is None:
        # A copy at the DR site publishes nothing: a failover's records are the production ones,
        # repointed by the orchestrator.
        _records(labels, mail=mail, postmaster=postmaster, host_names=host_names, address=site.address)
    export_outputs(
        hosts=site.hosts(),
        endpoints={
            "mail_domain": domain,
            "mx": mail_host,
            "smtp_submission": f"{mail_host}:587",
            "imap": f"{mail_host}:993",
            "webmail": f"https://{mail_host}/",
            "public_address": site.address,
            "dns_names": host_names,
        },
    )


def _records(
    labels: Labels, *, mail: MailConfig, postmaster: str, host_names: list[str], address: pulumi.Output[str]
) -> None:
    domain = mail.domain
    zone = dns.zone(labels, domain=domain, email=postmaster)
    for name in host_names:
        dns.record(labels, zone=zone, name=name, record_type="A", records=[address])
    dns.record(labels, zone=zone, name=domain, record_type="MX", records=[f"{MX_PREFERENCE} mail.{domain}."])
    texts = {
        domain: "v=spf1 mx -all",
        f"{mail.dkim_selector}._domainkey.{domain}": f"v=DKIM1; k=rsa; p={mail.dkim_public_key}",
        f"_dmarc.{domain}": f"v=DMARC1; p=quarantine; rua=mailto:{postmaster}",
        f"_smtp._tls.{domain}": f"v=TLSRPTv1; rua=mailto:{postmaster}",
    }
    if mail.mta_sts_published(datetime.now(UTC)):
        texts[f"_mta-sts.{domain}"] = f"v=STSv1; id={mail.mta_sts_policy_id}"
    for name, text in texts.items():
        dns.record(labels, zone=zone, name=name, record_type="TXT", records=[dns.txt(text)])
