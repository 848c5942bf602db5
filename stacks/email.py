"""E-mail domain: one Postfix + Dovecot server with a mail-store volume, and the domain's DNS:
the mail host's A record, MX, SPF and DMARC. DKIM keys are made by the `mail` playbook."""

from stacks.components import dns
from stacks.components.public_server import public_server
from stacks.components.security import MAIL_PORTS
from stacks.config import StackConfig
from stacks.labels import Labels
from stacks.outputs import export_outputs

MX_PREFERENCE = 10


def program() -> None:
    config = StackConfig()
    labels = Labels.from_config(config)
    domain = str(config.parameter("mail_domain"))
    postmaster = str(config.parameter("postmaster"))
    mail_host = f"mail.{domain}"
    site = public_server(
        config,
        labels,
        role="mail",
        groups=["mail"],
        public_ports=MAIL_PORTS,
        volumes_gb={"mail": config.sizes.number("volume_gb")},
    )
    zone = dns.zone(labels, domain=domain, email=postmaster)
    dns.record(labels, zone=zone, name=mail_host, record_type="A", records=[site.address])
    dns.record(labels, zone=zone, name=domain, record_type="MX", records=[f"{MX_PREFERENCE} {dns.fqdn(mail_host)}"])
    # Only our MX may send for the domain; others' mail claiming it is quarantined and reported.
    dns.record(labels, zone=zone, name=domain, record_type="TXT", records=[dns.txt("v=spf1 mx -all")])
    dns.record(
        labels,
        zone=zone,
        name=f"_dmarc.{domain}",
        record_type="TXT",
        records=[dns.txt(f"v=DMARC1; p=quarantine; rua=mailto:{postmaster}")],
    )
    export_outputs(
        hosts=site.hosts(),
        endpoints={
            "mail_domain": domain,
            "mx": mail_host,
            "smtp_submission": f"{mail_host}:587",
            "imap": f"{mail_host}:993",
            "public_address": site.address,
        },
    )
