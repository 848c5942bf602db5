"""Who a resource belongs to, written into its name, tags, metadata or description.

Names carry the ministry, the service's short name and the first 8 hex digits of its id; these
never change for a service's life, so a name never forces a replacement. The request id goes
only where it can change in place (tags, metadata, descriptions).
"""

import re
from dataclasses import dataclass

from stacks.config import StackConfig

HOSTNAME_MAX = 63  # one DNS label; Nova truncates an instance's hostname to this too
BUCKET_MAX = 63  # S3 bucket names


@dataclass(frozen=True)
class Labels:
    ministry: str
    service_id: str
    request_id: str
    offering: str
    service_name: str
    # A copy of the service (`drill-<id>`, `failover-<id>`): in every name, tag and description,
    # so the copy never collides with the service and what it leaves can be found by name.
    copy: str | None = None

    @classmethod
    def from_config(cls, config: StackConfig) -> "Labels":
        return cls(
            ministry=config.ministry,
            service_id=config.service_id,
            request_id=config.request_id,
            offering=config.offering,
            service_name=str(config.parameter("name")),
            copy=f"{config.copy}-{config.copy_id}" if config.copy else None,
        )

    @property
    def short_id(self) -> str:
        return self.service_id.replace("-", "")[:8]

    @property
    def prefix(self) -> str:
        base = f"{self.ministry}-{self.service_name}-{self.short_id}"
        return f"{base}-{self.copy}" if self.copy else base

    def name(self, role: str) -> str:
        """The cloud name of this service's resource that plays `role`, e.g. `health-portal-1a2b3c4d-net`."""
        return f"{self.prefix}-{role}"

    def hostname(self, role: str) -> str:
        return _trim_label(f"{self.service_name}-{role}-{self.short_id}", HOSTNAME_MAX)

    def bucket(self) -> str:
        """A valid S3 bucket name: lower case, at most 63 characters, ending in the short id."""
        head = _trim_label(f"{self.ministry}-{self.service_name}", BUCKET_MAX - len(self.short_id) - 1)
        return f"{head}-{self.short_id}"

    @property
    def tags(self) -> list[str]:
        """Neutron tags (no commas allowed, so one fact a tag)."""
        return ["tonle", *(f"{key}={value}" for key, value in self._facts().items())]

    @property
    def metadata(self) -> dict[str, str]:
        """Nova and Cinder metadata."""
        return {f"tonle_{key}": value for key, value in self._facts().items()}

    @property
    def header_metadata(self) -> dict[str, str]:
        """Swift metadata travels as HTTP headers: `_` would come back as `-` and case as Title-Case,
        so the keys are written the way Swift returns them (no perpetual diff)."""
        return {f"Tonle-{key.title()}": value for key, value in self._facts().items()}

    def description(self, what: str) -> str:
        """Short enough for Designate (160 characters)."""
        text = f"{what}; ministry={self.ministry} service={self.service_id} request={self.request_id}"
        return f"{text} copy={self.copy}" if self.copy else text

    def _facts(self) -> dict[str, str]:
        facts = {
            "ministry": self.ministry,
            "service": self.service_id,
            "request": self.request_id,
            "offering": self.offering,
        }
        return {**facts, "copy": self.copy} if self.copy else facts


def _trim_label(text: str, limit: int) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    return cleaned[:limit].strip("-")
