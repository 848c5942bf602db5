"""A hardened security group: SSH and ping from the management network only, and the
offering's public ports from anywhere. Nothing else comes in; Neutron's default egress rules
stay, because servers fetch security updates.

An isolated group (a drill's copy, `Isolation`) differs: its public ports open to the management
network only (a copy of production data is nobody else's to read), and Neutron's default egress
rules are deleted in favour of one rule per allowed destination (its own subnet, where the
gateway's apt proxy is, and the S3 endpoint its restore reads from), so it has no way to
production.
"""

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from stacks.labels import Labels

ANYWHERE = "0.0.0.0/0"
SSH_PORT = 22


@dataclass(frozen=True)
class PublicPort:
    """A port the offering serves to the whole internet, e.g. HTTPS."""

    port: int
    purpose: str
    protocol: str = "tcp"


@dataclass(frozen=True)
class Isolation:
    """Where an isolated server may send packets: nothing else."""

    own_subnet: pulumi.Input[str]
    allowed: Sequence[str] = ()


@dataclass(frozen=True)
class HardenedGroup:
    group: openstack.networking.SecGroup
    rules: list[openstack.networking.SecGroupRule]


def hardened_security_group(
    labels: Labels,
    *,
    management_cidr: str,
    public_ports: Sequence[PublicPort],
    role: str = "sg",
    isolation: Isolation | None = None,
) -> HardenedGroup:
    group = openstack.networking.SecGroup(
        role,
        name=labels.name(role),
        description=labels.description("isolated" if isolation else "hardened"),
        tags=labels.tags,
        # Only an isolated group loses Neutron's "anything out" rules; they are a create-time choice.
        delete_default_rules=True if isolation else None,
    )

    def rule(
        logical: str,
        *,
        protocol: str | None,
        port: int | None,
        source: pulumi.Input[str],
        what: str,
        direction: str = "ingress",
    ) -> openstack.networking.SecGroupRule:
        return openstack.networking.SecGroupRule(
            f"{role}-{logical}",
            security_group_id=group.id,
            direction=direction,
            ethertype="IPv4",
            protocol=protocol,
            port_range_min=port,
            port_range_max=port,
            remote_ip_prefix=source,
            description=labels.description(what),
            # Every change replaces a rule, and Neutron refuses a duplicate of one that still exists.
            opts=pulumi.ResourceOptions(delete_before_replace=True),
        )

    rules = [
        rule("ssh-management", protocol="tcp", port=SSH_PORT, source=management_cidr, what="ssh from management"),
        # Health checks and operators' ping; ICMP has no ports.
        rule("icmp-management", protocol="icmp", port=None, source=management_cidr, what="icmp from management"),
    ]
    for public in public_ports:
        if public.port == SSH_PORT:
            raise ValueError("SSH is never a public port; it is open to the management network only")
        rules.append(
            rule(
                f"{public.protocol}-{public.port}-public",
                protocol=public.protocol,
                port=public.port,
                source=management_cidr if isolation else ANYWHERE,
                what=f"{public.purpose} from {'management' if isolation else 'anywhere'}",
            )
        )
    if isolation is not None:
        rules.append(
            rule(
                "egress-own-subnet",
                protocol=None,
                port=None,
                source=isolation.own_subnet,
                what="egress to its own subnet",
                direction="egress",
            )
        )
        for cidr in isolation.allowed:
            if ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
                raise ValueError(f"an isolated server may not reach {cidr}: that is everywhere")
            rules.append(
                rule(
                    f"egress-{cidr.replace('/', '-')}",
                    protocol=None,
                    port=None,
                    source=cidr,
                    what=f"egress to {cidr}",
                    direction="egress",
                )
            )
    return HardenedGroup(group=group, rules=rules)


#: What web servers (web hosting, CMS) serve; port 80 only redirects to HTTPS.
WEB_PORTS = (PublicPort(80, "http"), PublicPort(443, "https"))
#: What a mail server serves: inbound mail, authenticated submission (STARTTLS), IMAP over TLS,
#: and HTTPS for webmail, the MTA-STS policy and mail-client autoconfiguration (80 redirects).
MAIL_PORTS = (
    PublicPort(25, "smtp"),
    PublicPort(587, "submission"),
    PublicPort(993, "imaps"),
    PublicPort(80, "http"),
    PublicPort(443, "https"),
)
