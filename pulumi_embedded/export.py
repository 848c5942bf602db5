"""A stack's checkpoint in Pulumi's deployment format, version 3 (`pulumi stack export`).

Secrets stay encrypted (`{sig: secret, "ciphertext": ...}`) with the engine's Fernet key,
named by `secrets_providers.type = "tonle-fernet"`; the Pulumi CLI cannot decrypt them, so
an import into a Pulumi backend needs them re-entered (the rest of the state carries over).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pulumi

from pulumi_embedded.deployment import STACK_TYPE
from pulumi_embedded.state import ResourceState, Snapshot


def deployment_v3(snapshot: Snapshot, *, project: str, seal: Callable[[Any], Any]) -> dict[str, Any]:
    resources = [_resource(r, seal) for r in _dependency_order(snapshot.resources)]
    stack_urn = f"urn:pulumi:{snapshot.stack}::{project}::{STACK_TYPE}::{project}-{snapshot.stack}"
    for entry in resources:
        if entry["urn"] == stack_urn:
            entry["outputs"] = seal(snapshot.outputs)
    pending = [{"resource": _resource(r, seal), "type": r.pending} for r in snapshot.resources if r.pending is not None]
    deployment: dict[str, Any] = {
        "manifest": {
            "time": datetime.now(UTC).isoformat(),
            "magic": "",
            "version": f"tonle-embedded (pulumi sdk {pulumi.__version__ if hasattr(pulumi, '__version__') else ''})",
        },
        "secrets_providers": {"type": "tonle-fernet", "state": {}},
        "resources": resources,
    }
    if pending:
        deployment["pending_operations"] = pending
    return {"version": 3, "deployment": deployment}


def _resource(r: ResourceState, seal: Callable[[Any], Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"urn": r.urn, "custom": r.custom, "type": r.type}
    if r.id:
        entry["id"] = r.id
    if r.custom or r.inputs:
        entry["inputs"] = seal(r.inputs)
    entry["outputs"] = seal(r.outputs)
    for key, value in (
        ("parent", r.parent),
        ("provider", r.provider),
        ("dependencies", r.dependencies),
        ("propertyDependencies", r.property_dependencies),
        ("protect", r.protect),
        ("external", r.external),
        ("delete", r.condemned),
        ("deleteBeforeReplace", r.delete_before_replace),
        ("retainOnDelete", r.retain_on_delete),
        ("additionalSecretOutputs", r.additional_secret_outputs),
    ):
        if value:
            entry[key] = value
    return entry


def _dependency_order(resources: list[ResourceState]) -> list[ResourceState]:
    """Every resource after the ones it depends on (Pulumi rejects a checkpoint that is not)."""
    by_urn: dict[str, list[ResourceState]] = {}
    for r in resources:
        by_urn.setdefault(r.urn, []).append(r)
    ordered: list[ResourceState] = []
    placed: set[str] = set()
    visiting: set[str] = set()

    def place(r: ResourceState) -> None:
        if r.key in placed or r.key in visiting:
            return
        visiting.add(r.key)
        for urn in sorted(r.depends_on()):
            for dep in by_urn.get(urn, []):
                place(dep)
        visiting.discard(r.key)
        placed.add(r.key)
        ordered.append(r)

    # The stack first: everything else is its descendant.
    for r in sorted(resources, key=lambda r: r.type != STACK_TYPE):
        place(r)
    return ordered
