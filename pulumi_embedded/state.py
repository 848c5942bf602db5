"""What the engine remembers about a stack: one `ResourceState` per resource it manages."""

import uuid
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass
class ResourceState:
    """One resource in a stack's checkpoint. Property values keep their secret wrappers.

    `key` identifies the row: during a create-before-delete replacement the old and the new
    resource share a URN, and the old one is `condemned` until it is deleted. `pending` names
    a cloud call that was started but not seen to finish ("creating", "updating", "deleting"),
    so the next run knows to look before it acts again.
    """

    urn: str
    type: str
    custom: bool
    id: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    parent: str = ""
    provider: str = ""  # "urn::id" of the provider resource; "" for components
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    delete_before_replace: bool = False
    retain_on_delete: bool = False
    additional_secret_outputs: list[str] = field(default_factory=list)
    external: bool = False  # read with `Resource.get`, never changed or deleted by the engine
    condemned: bool = False
    pending: str | None = None
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    def evolve(self, **changes: Any) -> "ResourceState":
        return replace(self, **changes)

    @property
    def is_provider(self) -> bool:
        return self.type.startswith("pulumi:providers:")

    def depends_on(self) -> set[str]:
        """URNs this resource needs to exist: parent, provider, explicit and property dependencies."""
        needs = set(self.dependencies)
        for urns in self.property_dependencies.values():
            needs.update(urns)
        if self.parent:
            needs.add(self.parent)
        if self.provider:
            needs.add(provider_urn(self.provider))
        needs.discard(self.urn)
        return needs


def provider_urn(reference: str) -> str:
    """The URN part of a provider reference `urn::id` (URNs themselves contain `::`)."""
    return reference.rsplit("::", 1)[0]


def provider_id(reference: str) -> str:
    return reference.rsplit("::", 1)[1]


@dataclass
class Snapshot:
    """A stack's checkpoint as loaded at the start of an operation."""

    stack: str
    resources: list[ResourceState] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def live(self) -> dict[str, ResourceState]:
        """The current (not condemned) resource for each URN."""
        return {r.urn: r for r in self.resources if not r.condemned}


def deletion_order(resources: list[ResourceState]) -> list[list[ResourceState]]:
    """Resources grouped in waves that can be deleted in parallel, dependents before what they need.

    A resource is deleted only after every resource that depends on it; resources outside the
    list are ignored (they stay).
    """
    by_key = {r.key: r for r in resources}
    urns_to_keys: dict[str, list[str]] = {}
    for r in resources:
        urns_to_keys.setdefault(r.urn, []).append(r.key)
    # dependents[k]: keys of resources in the list that need resource k
    dependents: dict[str, set[str]] = {k: set() for k in by_key}
    for r in resources:
        for urn in r.depends_on():
            for k in urns_to_keys.get(urn, []):
                if k != r.key:
                    dependents[k].add(r.key)
    waves: list[list[ResourceState]] = []
    remaining = set(by_key)
    while remaining:
        wave = [k for k in remaining if not (dependents[k] & remaining)]
        if not wave:  # a cycle should be impossible; delete the rest one by one rather than hang
            wave = [sorted(remaining)[0]]
        waves.append([by_key[k] for k in sorted(wave, key=lambda k: by_key[k].urn)])
        remaining -= set(wave)
    return waves
