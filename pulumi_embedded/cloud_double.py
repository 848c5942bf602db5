"""`CloudDouble`: a test double of the cloud boundary (the `Provider` interface), in memory.

For tests and benchmarks of the engine's core (monitor, diff, apply, checkpoint) where the
cloud is not what is being tested. It uses the real OpenStack replace rules
(`openstack.schema`), records every call so tests can count mutating ones, can add latency
per call, and can fail or "crash" at a chosen call. The real provider layer is tested against
the local data centre (tests/cloud/test_engine.py).
"""

import copy
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pulumi_embedded.openstack.schema import FORCE_NEW, INVOKES, SECRET_OUTPUTS
from pulumi_embedded.provider import CloudError, Created, Provider, UnknownType

MUTATING = ("create", "update", "delete")


class SimulatedCrash(Exception):
    """Raised by the double after a create took effect: the engine never sees the call finish,
    exactly as when its process dies mid-call (the checkpoint holds only the pending create)."""


@dataclass
class DoubleResource:
    type: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class CloudDouble:
    latency: float = 0.0
    resources: dict[str, DoubleResource] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (op, type, id or token)
    fail: Callable[[str, str, dict[str, Any]], None] | None = None  # hook: (op, type, inputs) -> may raise
    path: Path | None = None  # where the "cloud" persists, so it outlives a killed engine process
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def stored_at(cls, path: Path, **kwargs: Any) -> "CloudDouble":
        """A double whose resources live in a JSON file (loaded now, rewritten on every change)."""
        double = cls(path=path, **kwargs)
        if path.exists():
            stored = json.loads(path.read_text())
            double.resources = {id_: DoubleResource(**r) for id_, r in stored.items()}
        return double

    def _save(self) -> None:
        """Persist (caller holds the lock). Write-then-rename: a kill never leaves half a file."""
        if self.path is None:
            return
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(json.dumps({id_: asdict(r) for id_, r in self.resources.items()}))
        os.replace(scratch, self.path)

    def factory(self, config: dict[str, Any]) -> Provider:
        return self

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(op for op, _, _ in self.calls)

    def mutating_calls(self) -> int:
        return sum(n for op, n in self.counts().items() if op in MUTATING)

    def of_type(self, type_: str) -> list[DoubleResource]:
        with self._lock:
            return [r for r in self.resources.values() if r.type == type_]

    def _call(self, op: str, type_: str, ident: str, inputs: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append((op, type_, ident))
        if self.latency:
            time.sleep(self.latency)
        if self.fail is not None:
            self.fail(op, type_, inputs)

    # ---- Provider ----

    def force_new(self, type_: str) -> frozenset[str]:
        if type_ not in FORCE_NEW:
            raise UnknownType(type_, list(FORCE_NEW))
        return FORCE_NEW[type_]

    def secret_outputs(self, type_: str) -> frozenset[str]:
        return SECRET_OUTPUTS.get(type_, frozenset())

    def create(self, type_: str, inputs: dict[str, Any]) -> Created:
        id_ = uuid.uuid4().hex
        outputs = {**_computed(type_, id_), **copy.deepcopy(inputs), "id": id_}
        with self._lock:
            self.resources[id_] = DoubleResource(type_, copy.deepcopy(inputs), outputs)
            self._save()
        # The hook runs after the resource exists: a crash here is a create the engine never saw finish.
        self._call("create", type_, id_, inputs)
        return Created(id_, copy.deepcopy(outputs))

    def read(self, type_: str, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        self._call("read", type_, id_, inputs)
        with self._lock:
            found = self.resources.get(id_)
            return copy.deepcopy(found.outputs) if found else None

    def update(self, type_: str, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        self._call("update", type_, id_, new)
        with self._lock:
            found = self.resources.get(id_)
            if found is None:
                raise CloudError(f"{type_} {id_} not found")
            found.inputs = copy.deepcopy(new)
            found.outputs = {**found.outputs, **copy.deepcopy(new)}
            self._save()
            return copy.deepcopy(found.outputs)

    def delete(self, type_: str, id_: str, outputs: dict[str, Any]) -> None:
        with self._lock:
            self.resources.pop(id_, None)
            self._save()
        # As for create, the hook runs once the change took effect in the "cloud".
        self._call("delete", type_, id_, outputs)

    def find(self, type_: str, inputs: dict[str, Any]) -> Created | None:
        self._call("find", type_, "", inputs)
        with self._lock:
            for id_, r in self.resources.items():
                if r.type == type_ and r.inputs == inputs:
                    return Created(id_, copy.deepcopy(r.outputs))
        return None

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        self._call("invoke", token, token, args)
        if token not in INVOKES:
            raise UnknownType(token, list(INVOKES))
        name = args.get("name") or "default"
        return {"id": f"{token.rsplit(':', 1)[-1]}-{name}", "name": name, "region": "RegionOne"}

    def tamper(self, id_: str, **outputs: Any) -> None:
        """Change a resource behind the engine's back (for refresh tests)."""
        with self._lock:
            self.resources[id_].outputs.update(outputs)


def _computed(type_: str, id_: str) -> dict[str, Any]:
    short = id_[:4]
    if type_ == "openstack:compute/instance:Instance":
        return {"accessIpV4": f"10.0.{int(short[:2], 16) % 250}.{int(short[2:], 16) % 250 + 2}", "powerState": "active"}
    if type_ == "openstack:networking/port:Port":
        return {
            "allFixedIps": [f"10.1.{int(short[:2], 16) % 250}.{int(short[2:], 16) % 250 + 2}"],
            "macAddress": "fa:16:3e:00:00:01",
        }
    if type_ == "openstack:networking/subnet:Subnet":
        return {"cidr": "10.1.0.0/24", "gatewayIp": "10.1.0.1"}
    if type_ == "openstack:networking/floatingIp:FloatingIp":
        return {"address": f"203.0.113.{int(short[:2], 16) % 250 + 2}"}
    if type_ == "openstack:identity/ec2CredentialV3:Ec2CredentialV3":
        return {"access": uuid.uuid4().hex, "secret": uuid.uuid4().hex}
    return {}
