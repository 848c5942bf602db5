"""What one operation knows about its service, built once, and its two projections.

`ServiceInputs` is read from the database when an operation starts (`context.py`); the stack
config (what the Pulumi program reads, `stacks/__init__.py`) and the Ansible vars (the contract of
`playbooks/README.md`) are pure functions of it, so neither is read back out of the other.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.catalog.models import Offering, Plan
from orchestrator.config import Settings


@dataclass(frozen=True)
class Platform:
    """The data centre's side of every stack: networks and the image servers boot from."""

    site_name: str
    external_network: str
    management_cidr: str
    image: str
    subnet_pool: str
    dns_resolvers: tuple[str, ...] = ()  # what tenant subnets hand their servers as resolvers
    image_reason: str = ""  # why servers boot from `image` (a baked image, or the base image and why)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Platform":
        return cls(
            site_name=settings.primary_site,
            external_network=settings.external_network,
            management_cidr=settings.management_cidr,
            image=settings.server_image,
            subnet_pool=settings.subnet_pool,
            dns_resolvers=tuple(settings.dns_resolvers),
        )


@dataclass(frozen=True)
class StackCopy:
    """A copy of the service at the DR site, in a stack of its own (`stacks/__init__.py`)."""

    mode: str  # "drill" (isolated) or "failover"
    copy_id: str  # in every name of the copy
    egress_allowed: tuple[str, ...] = ()  # CIDRs a drill's copy may reach besides its subnet


@dataclass(frozen=True)
class MailInputs:
    """The service's mail domain as its stack publishes it in DNS; the keys' private halves and the
    accounts are secret vars (`context._secret_vars`), never stack config."""

    domain: str
    dkim_selector: str
    dkim_public_key: str  # base64 DER: the DKIM record's `p=`
    mta_sts_policy_id: str
    # The MTA-STS policy is served over HTTPS: its record is published only while the certificate is valid.
    mta_sts_until: str | None = None  # ISO timestamp

    def stack_config(self) -> dict[str, str]:
        config = {
            "domain": self.domain,
            "dkimSelector": self.dkim_selector,
            "dkimPublicKey": self.dkim_public_key,
            "mtaStsPolicyId": self.mta_sts_policy_id,
        }
        if self.mta_sts_until is not None:
            config["mtaStsUntil"] = self.mta_sts_until
        return config


@dataclass(frozen=True)
class ServiceInputs:
    ministry_id: uuid.UUID
    ministry_code: str
    ministry_name: str
    service_id: uuid.UUID
    request_id: uuid.UUID
    stack_name: str
    offering: Offering
    plan: Plan  # for a resize, the plan it moves to
    parameters: Mapping[str, Any]  # the order's, validated against the offering's schema
    platform: Platform
    ssh_public_key: str | None = None
    action: str | None = None  # a day-2 action's name
    tags: Mapping[str, str] = field(default_factory=dict)
    copy: StackCopy | None = None
    mail: MailInputs | None = None  # an offering with `mail_domain_from`

    def stack_config(self) -> dict[str, Any]:
        """The stack's Pulumi config, except the site and provider keys (the tenancy adds them)."""
        config: dict[str, Any] = {
            "tonle:ministry": self.ministry_code,
            "tonle:serviceId": str(self.service_id),
            "tonle:requestId": str(self.request_id),
            "tonle:offering": self.offering.id,
            "tonle:plan": self.plan.id,
            "tonle:sizes": dict(self.plan.sizes),
            "tonle:parameters": dict(self.parameters),
            "tonle:externalNetwork": self.platform.external_network,
            "tonle:managementCidr": self.platform.management_cidr,
            "tonle:image": self.platform.image,
            "tonle:subnetPool": self.platform.subnet_pool,
        }
        if self.platform.dns_resolvers:
            config["tonle:dnsResolvers"] = list(self.platform.dns_resolvers)
        if self.ssh_public_key:
            config["tonle:sshPublicKey"] = self.ssh_public_key
        if self.mail is not None:
            config["tonle:mail"] = self.mail.stack_config()
        if self.copy is not None:
            config["tonle:copy"] = self.copy.mode
            config["tonle:copyId"] = self.copy.copy_id
            config["tonle:egressAllowed"] = list(self.copy.egress_allowed)
        return config

    def stack_tags(self) -> dict[str, str]:
        return {
            "ministry": self.ministry_code,
            "ministry_id": str(self.ministry_id),
            "service_id": str(self.service_id),
            "request_id": str(self.request_id),
        }

    def ansible_vars(self, *, endpoints: Mapping[str, Any]) -> dict[str, Any]:
        """The extra vars every playbook gets. They are data: the Ansible adapter writes every
        string of them tagged `!unsafe`, so nothing here is ever evaluated as a template."""
        found: dict[str, Any] = {
            "tonle": {
                "ministry": self.ministry_code,
                "service_id": str(self.service_id),
                "request_id": str(self.request_id),
                "offering": self.offering.id,
                "plan": self.plan.id,
                "sizes": dict(self.plan.sizes),
            },
            "parameters": dict(self.parameters),
            "endpoints": dict(endpoints),
        }
        if self.action is not None:
            found["action"] = {"name": self.action, "files": {}}
        return found
