"""Typed access to the stack configuration (`tonle:*`), the only input a program has.

Each value is read when a program first asks for it, so a program requires exactly the keys it
uses and a missing key fails with Pulumi's own error naming it.
"""

import ipaddress
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pulumi

NAMESPACE = "tonle"

#: What a copy of a service is for (`tonle:copy`; absent: the service itself). See stacks/__init__.py.
COPY_MODES = frozenset({"drill", "failover"})


@dataclass(frozen=True)
class Sizes:
    """The plan's `sizes` from the catalogue (`tonle:sizes`)."""

    values: dict[str, Any]

    def number(self, key: str) -> int:
        """A whole-number size such as `volume_gb`; JSON gives floats, the cloud wants integers."""
        if key not in self.values:
            raise ValueError(f"tonle:sizes has no {key!r} (plan sizes: {sorted(self.values)})")
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value or value <= 0:
            raise ValueError(f"tonle:sizes.{key} must be a positive whole number, got {value!r}")
        return int(value)

    @property
    def flavor(self) -> str:
        flavor = self.values.get("flavor")
        if not isinstance(flavor, str) or not flavor:
            raise ValueError(f"tonle:sizes.flavor must name a flavor, got {flavor!r}")
        return flavor


def _management_cidr(value: str) -> str:
    """The management network: SSH is opened to it alone, so it must never be the whole internet."""
    network = ipaddress.ip_network(value, strict=True)
    if network.prefixlen == 0:
        raise ValueError(f"tonle:managementCidr {value} would open SSH to everyone")
    return str(network)


def _egress_cidr(value: Any) -> str:
    """A destination a drill's copy may reach: never the whole internet, or it would not be isolated."""
    network = ipaddress.ip_network(str(value), strict=False)
    if network.prefixlen == 0:
        raise ValueError(f"tonle:egressAllowed {value} would let the copy reach everything")
    return str(network)


class StackConfig:
    """The `tonle:*` keys of the contract in `stacks/__init__.py`, as typed properties."""

    def __init__(self) -> None:
        self._config = pulumi.Config(NAMESPACE)

    @cached_property
    def ministry(self) -> str:
        return self._config.require("ministry")

    @cached_property
    def service_id(self) -> str:
        return self._config.require("serviceId")

    @cached_property
    def request_id(self) -> str:
        return self._config.require("requestId")

    @cached_property
    def offering(self) -> str:
        return self._config.require("offering")

    @cached_property
    def plan(self) -> str:
        return self._config.require("plan")

    @cached_property
    def sizes(self) -> Sizes:
        return Sizes(dict(self._config.require_object("sizes")))

    @cached_property
    def parameters(self) -> dict[str, Any]:
        return dict(self._config.require_object("parameters"))

    @cached_property
    def site(self) -> str:
        return self._config.require("site")

    @cached_property
    def external_network(self) -> str:
        return self._config.require("externalNetwork")

    @cached_property
    def management_cidr(self) -> str:
        return _management_cidr(self._config.require("managementCidr"))

    @cached_property
    def image(self) -> str:
        return self._config.require("image")

    @cached_property
    def subnet_pool(self) -> str:
        return self._config.require("subnetPool")

    @cached_property
    def dns_resolvers(self) -> list[str]:
        """Resolvers the tenant subnet hands its servers (the data centre's DNS); none when unset."""
        return [str(ipaddress.ip_address(str(value))) for value in self._config.get_object("dnsResolvers") or []]

    @cached_property
    def ssh_public_key(self) -> str:
        return self._config.require("sshPublicKey")

    @cached_property
    def copy(self) -> str | None:
        """None for the service itself; `drill` or `failover` for a copy of it at the DR site."""
        value = self._config.get("copy")
        if value is None:
            return None
        if value not in COPY_MODES:
            raise ValueError(f"tonle:copy must be one of {sorted(COPY_MODES)}, got {value!r}")
        return value

    @cached_property
    def copy_id(self) -> str:
        """Tells one copy of the service from another (the drill's operation); required with `tonle:copy`."""
        return self._config.require("copyId")

    @cached_property
    def egress_allowed(self) -> list[str]:
        """CIDRs a drill's copy may reach besides its own subnet (the S3 endpoint for instances)."""
        return [_egress_cidr(value) for value in self._config.get_object("egressAllowed") or []]

    def parameter(self, key: str) -> Any:
        if key not in self.parameters:
            raise ValueError(f"tonle:parameters has no {key!r}; the offering's schema requires it")
        return self.parameters[key]
