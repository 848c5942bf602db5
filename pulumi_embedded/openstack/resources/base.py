"""What every resource handler offers, and small helpers shared by them.

A handler maps one `openstack:*` type to openstacksdk calls. Inputs and outputs use the
Pulumi (camelCase) property names; outputs are the inputs plus what the cloud computed, so a
program reads back what the real provider would give it.
"""

from typing import Any

from openstack.connection import Connection

from pulumi_embedded.provider import CloudError, Created

# How long to wait for a resource to settle (ACTIVE, available, gone); servers take longest.
WAIT_SECONDS = 600
# How often a wait asks for a status: an instance here boots in ~1.5 s, and openstacksdk's default
# of 2 s added about a second to every wait on an order's critical path (volume, server, zone).
POLL_SECONDS = 0.5


class Handler:
    """Base class: `type_` is the Pulumi type token; subclasses implement the cloud calls."""

    type_: str = ""

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        raise NotImplementedError

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """Current outputs, or None when gone. NotFound from the SDK counts as gone."""
        raise NotImplementedError

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise CloudError(f"{self.type_} cannot change {', '.join(changed)} in place")

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        raise NotImplementedError

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        """A resource an interrupted create made with these inputs (by name where there is one)."""
        return None


def changed(old: dict[str, Any], new: dict[str, Any], *keys: str) -> bool:
    return any(old.get(k) != new.get(k) for k in keys)


def some(**values: Any) -> dict[str, Any]:
    """The keyword arguments that are not None (openstacksdk sends None as null)."""
    return {k: v for k, v in values.items() if v is not None}


def integer(value: Any) -> int | None:
    """Numbers arrive from the SDK as floats."""
    return None if value is None else int(value)


def ordered_like(declared: list[Any] | None, actual: list[Any] | None) -> list[Any]:
    """`actual`, in the declared order when it holds the same items (clouds sort tags their own way)."""
    actual = list(actual or [])
    if declared is not None and sorted(map(str, declared)) == sorted(map(str, actual)):
        return list(declared)
    return actual


def stringify(metadata: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (metadata or {}).items()}
