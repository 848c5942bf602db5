"""The engine's boundary with the cloud: what a provider must do for each resource type.

The engine never talks to a cloud API itself. For each provider configuration (cloud,
project, region) it asks a `ProviderFactory` for a `Provider`, and calls it with plain values
(secrets revealed, no unknowns). `pulumi_embedded.openstack` is the real one; tests use
`CloudDouble` from `cloud_double.py` where the cloud is not what they test.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class UnknownType(Exception):
    """A program used a resource type or function the provider layer does not implement."""

    def __init__(self, token: str, known: list[str]) -> None:
        super().__init__(
            f"resource type or function {token!r} is not supported by the embedded engine's provider layer; "
            f"supported: {', '.join(sorted(known))}"
        )
        self.token = token


class CloudError(Exception):
    """A cloud call failed. `transient` errors may pass on retry (timeouts, 5xx, conflicts)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Created:
    id: str
    outputs: dict[str, Any]


class Provider(Protocol):
    """Cloud operations for one provider configuration. Every method may raise `CloudError`."""

    def force_new(self, type_: str) -> frozenset[str]:
        """Input names whose change replaces a resource of this type. Raises UnknownType."""
        ...

    def secret_outputs(self, type_: str) -> frozenset[str]:
        """Output names that are always secret for this type (generated passwords, keys)."""
        ...

    def create(self, type_: str, inputs: dict[str, Any]) -> Created: ...

    def read(self, type_: str, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """The resource's current outputs, or None when it no longer exists."""
        ...

    def update(self, type_: str, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Change the resource in place from inputs `old` to `new`; returns the new outputs."""
        ...

    def delete(self, type_: str, id_: str, outputs: dict[str, Any]) -> None:
        """Delete the resource and wait until it is gone. Deleting a missing resource succeeds."""
        ...

    def find(self, type_: str, inputs: dict[str, Any]) -> Created | None:
        """A resource that a create with these inputs made earlier (after a crash), if one exists."""
        ...

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]: ...


ProviderFactory = Callable[[dict[str, Any]], Provider]
"""Builds the provider for one configuration: `{"cloud": ..., "tenantName": ..., "region": ...}`."""
