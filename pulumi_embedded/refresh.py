"""Refresh: read every managed resource from the cloud, report drift, record what is real.

Drift in a property the program declares is written into the checkpoint's inputs too, so the
next `up` sees the difference from the program and puts the declared value back.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pulumi_embedded.deployment import Deployment
from pulumi_embedded.diff import _equal
from pulumi_embedded.protocol import mark_secret, reveal, secret_paths
from pulumi_embedded.provider import CloudError
from pulumi_embedded.state import ResourceState, Snapshot


def refresh_resources(deployment: Deployment, snapshot: Snapshot) -> None:
    managed = [r for r in snapshot.resources if r.custom and not r.is_provider and r.id and not r.condemned]
    prefix = f"tonle-refresh-{snapshot.stack}"
    with ThreadPoolExecutor(max_workers=deployment.parallel, thread_name_prefix=prefix) as pool:
        errors = [e for e in pool.map(lambda r: _refresh_one(deployment, r), managed) if e is not None]
    if errors:
        raise errors[0]


def drifted(stored: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Properties whose real value differs from the recorded one (only those the cloud reports)."""
    return sorted(k for k in actual if k in stored and not _equal(reveal(stored[k]), reveal(actual[k])))


def _refresh_one(deployment: Deployment, state: ResourceState) -> CloudError | None:
    emitter = deployment.emitter
    started = time.monotonic()
    try:
        provider = deployment.providers_for(state)
        actual = deployment.timed(lambda: provider.read(state.type, state.id, reveal(state.inputs)), mutating=False)
    except CloudError as exc:
        emitter.outcome("refresh", state.urn, seconds=time.monotonic() - started, error=str(exc))
        return exc
    if actual is None:
        deployment.tally.step("delete")
        emitter.emit(
            "resource.drift",
            f"{state.type} {state.urn.rsplit('::', 1)[-1]} ({state.id}) no longer exists; forgetting it",
            level="warning",
            urn=state.urn,
            drift="deleted",
        )
        if deployment.checkpoints is not None:
            deployment.checkpoints.remove(deployment.stack, state.key)
        return None
    changed = drifted(state.outputs, actual)
    if not changed:
        deployment.tally.step("same")
        return None
    # Drift is a change to what the program declares. Computed outputs move by themselves (a
    # port's deviceId once a server uses it): recorded, not reported.
    declared = [key for key in changed if key in state.inputs]
    secrets = secret_paths(state.outputs) | secret_paths(state.inputs)
    outputs = mark_secret({**state.outputs, **actual}, secrets)
    inputs = dict(state.inputs)
    for key in declared:
        # Only where the output echoes the declared input (same shape), so the next up puts the
        # declared value back; an output richer than its input (an instance's `networks` with
        # addresses) must not become the "declared" value, or the next diff would see a change.
        if _equal(reveal(state.inputs[key]), reveal(state.outputs.get(key))):
            inputs[key] = outputs[key]
    if deployment.checkpoints is not None:
        deployment.checkpoints.put(deployment.stack, state.evolve(outputs=outputs, inputs=inputs))
    if not declared:
        deployment.tally.step("same")
        return None
    deployment.tally.step("update")
    emitter.emit(
        "resource.drift",
        f"{state.type} {state.urn.rsplit('::', 1)[-1]} changed outside Tonle: {', '.join(declared)}",
        level="warning",
        urn=state.urn,
        drift="changed",
        changed=declared,
    )
    return None
