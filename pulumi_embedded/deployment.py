"""One preview or up of one stack: what each registration means, and doing it.

The SDK calls `register` from its executor threads, one call per resource, as soon as the
resource's dependencies have resolved; a call returns only when the resource's cloud call
is done. So creates and updates run in dependency order, independent ones in parallel (as
many as the executor has threads), with no scheduler of our own. Deletes of what the program
no longer declares run after the program finishes (`finish`), dependents first.

Every step is written to the checkpoint as soon as it is done, and a cloud call is recorded
as pending before it starts, so a crash loses nothing and the next run can find what an
interrupted create made (`Provider.find`) instead of making a duplicate.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pulumi_embedded import diff
from pulumi_embedded.checkpoints import SealedCheckpoints
from pulumi_embedded.events import Emitter
from pulumi_embedded.protocol import (
    UNKNOWN,
    has_unknown,
    make_urn,
    mark_secret,
    reveal,
    secret_paths,
)
from pulumi_embedded.provider import CloudError, Created, Provider, UnknownType
from pulumi_embedded.state import ResourceState, Snapshot, deletion_order, provider_urn
from pulumi_embedded.tally import Tally

log = logging.getLogger("tonle.engine")

STACK_TYPE = "pulumi:pulumi:Stack"


class Cancelled(Exception):
    """The operation was cancelled; finished steps are recorded, nothing further is started."""


class ResourceFailed(Exception):
    """A resource's step failed. Raised into the program, and reported by the engine."""

    def __init__(self, urn: str, op: str, cause: BaseException) -> None:
        super().__init__(f"{op} of {urn} failed: {cause}")
        self.urn = urn
        self.op = op
        self.transient = isinstance(cause, CloudError) and cause.transient


@dataclass
class Registration:
    """What the SDK sent for one resource, as plain values."""

    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    provider: str = ""
    version: str = ""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    delete_before_replace: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    additional_secret_outputs: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    import_id: str = ""
    retain_on_delete: bool = False


@dataclass
class Result:
    urn: str
    id: str
    outputs: dict[str, Any]


class ProviderCache:
    """One `Provider` per distinct configuration, shared by operations (connections are reused)."""

    def __init__(self, factory: Callable[[dict[str, Any]], Provider]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._providers: dict[str, Provider] = {}

    def get(self, config: dict[str, Any]) -> Provider:
        key = repr(sorted((k, repr(v)) for k, v in config.items()))
        with self._lock:
            if key not in self._providers:
                self._providers[key] = self._factory(config)
            return self._providers[key]


class Deployment:
    def __init__(
        self,
        *,
        snapshot: Snapshot,
        project: str,
        providers: ProviderCache,
        provider_config: dict[str, dict[str, Any]],
        checkpoints: SealedCheckpoints | None,
        emitter: Emitter,
        tally: Tally,
        preview: bool,
        cancelled: threading.Event,
        parallel: int,
    ) -> None:
        self.stack = snapshot.stack
        self.project = project
        self.providers = providers
        self.provider_config = provider_config  # package -> default provider config from stack config
        self.checkpoints = checkpoints
        self.emitter = emitter
        self.tally = tally  # told of every step and cloud call (change summary, benchmarks)
        self.preview = preview
        self.cancelled = cancelled
        self.parallel = parallel
        self.old = snapshot.live()
        self.leftovers = [r for r in snapshot.resources if r.condemned]  # from an interrupted run
        self.claimed: set[str] = set()  # keys of old resources the program declared again
        self.registered: dict[str, ResourceState] = {}
        self.to_delete: list[ResourceState] = []  # replaced resources, deleted after the program
        self.failures: list[ResourceFailed] = []
        self.stack_outputs: dict[str, Any] = dict(snapshot.outputs)
        self._lock = threading.Lock()
        self._default_provider_lock = threading.Lock()
        # At most `parallel` resource steps talk to the cloud at once (the SDK's executor is larger).
        self._slots = threading.BoundedSemaphore(parallel)

    # ---- registrations (called from the SDK's executor threads) ----

    def register(self, reg: Registration) -> Result:
        if self.cancelled.is_set():
            raise Cancelled(f"operation on stack {self.stack} was cancelled")
        urn = make_urn(self.stack, self.project, reg.parent, reg.type, reg.name)
        if reg.type.startswith("pulumi:providers:"):
            return self._register_provider(urn, reg)
        if not reg.custom:
            return self._register_component(urn, reg)
        try:
            return self._register_custom(urn, reg)
        except (Cancelled, ResourceFailed):
            raise
        except UnknownType as exc:
            failure = ResourceFailed(urn, "register", exc)
            self._fail(failure)
            raise failure from exc

    def register_outputs(self, urn: str, outputs: dict[str, Any]) -> None:
        if urn.split("::")[2] == STACK_TYPE:
            with self._lock:
                self.stack_outputs = outputs

    def read(self, reg: Registration, id_: str) -> Result:
        """`Resource.get`: an existing resource the stack reads but does not manage."""
        urn = make_urn(self.stack, self.project, reg.parent, reg.type, reg.name)
        ref = self._provider_ref(reg)
        provider = self._provider(ref)
        outputs = self.timed(lambda: provider.read(reg.type, id_, reveal(reg.inputs)), mutating=False)
        if outputs is None:
            raise ResourceFailed(urn, "read", CloudError(f"{reg.type} {id_} does not exist"))
        state = ResourceState(
            urn=urn, type=reg.type, custom=True, id=id_, inputs=reg.inputs, outputs=outputs, parent=reg.parent,
            provider=ref, external=True,
        )  # fmt: skip
        old = self._claim(urn, [])
        if old:
            state.key = old.key
        self._record(state)
        self.tally.step("read")
        return Result(urn, id_, outputs)

    def invoke(self, token: str, args: dict[str, Any], provider_ref: str) -> dict[str, Any]:
        package = token.split(":", 1)[0]
        ref = provider_ref or self._default_provider_ref(package, "")
        provider = self._provider(ref)
        return self.timed(lambda: provider.invoke(token, reveal(args)), mutating=False)

    # ---- the three kinds of registration ----

    def _register_component(self, urn: str, reg: Registration) -> Result:
        old = self._claim(urn, reg.aliases)
        state = ResourceState(
            urn=urn, type=reg.type, custom=False, parent=reg.parent, dependencies=reg.dependencies,
            protect=reg.protect, key=old.key if old else uuid.uuid4().hex,
        )  # fmt: skip
        if old is None or old.parent != state.parent or old.urn != urn:
            self._record(state)
        else:
            with self._lock:
                self.registered[urn] = state
        return Result(urn, "", {})

    def _register_provider(self, urn: str, reg: Registration) -> Result:
        old = self._claim(urn, reg.aliases)
        same = old is not None and not diff.compute(old.inputs, reg.inputs, force_new=frozenset()).mutates
        id_ = old.id if old is not None and same else uuid.uuid4().hex
        state = ResourceState(
            urn=urn, type=reg.type, custom=True, id=id_, inputs=reg.inputs, outputs=reg.inputs, parent=reg.parent,
            key=old.key if old and same else uuid.uuid4().hex,
        )  # fmt: skip
        if old is not None and not same:
            # Resources that used the old configuration are replaced (their provider reference
            # changes); the old provider entry goes once they are gone.
            with self._lock:
                self.to_delete.append(old.evolve(condemned=True))
        if old is None or not same:
            self._record(state)
        else:
            with self._lock:
                self.registered[urn] = state
        return Result(urn, id_, reg.inputs)

    def _register_custom(self, urn: str, reg: Registration) -> Result:
        ref = self._provider_ref(reg)
        provider = self._provider(ref)
        force_new = provider.force_new(reg.type)  # UnknownType names the token
        old = self._claim(urn, reg.aliases)
        if old is not None and old.pending == "creating" and not old.id:
            return self._adopt_or_create(urn, reg, ref, provider, old)
        if old is not None and old.pending == "deleting" and not self._still_exists(old, provider):
            # An interrupted delete-before-replace: the old resource is gone, so this is a create.
            return self._adopt_or_create(urn, reg, ref, provider, old.evolve(id="", pending="creating"))
        if old is None and reg.import_id:
            return self._import(urn, reg, ref, provider)
        inputs = diff.apply_ignore_changes(old.inputs, reg.inputs, reg.ignore_changes) if old else reg.inputs
        d = diff.compute(
            old.inputs if old else None,
            inputs,
            force_new=force_new,
            replace_on_changes=reg.replace_on_changes,
            provider_changed=old is not None and bool(old.provider) and old.provider != ref,
        )
        if old is not None and d.kind == "replace" and old.protect:
            failure = ResourceFailed(
                urn, "replace", CloudError(f"it is protected; changing {', '.join(d.replace_keys)} would replace it")
            )
            self._fail(failure)
            raise failure
        new = self._state(urn, reg, ref, inputs)
        self.tally.step(d.kind)
        if d.kind == "same":
            assert old is not None
            new.id, new.outputs, new.key = old.id, old.outputs, old.key
            with self._lock:
                self.registered[urn] = new
            if old.urn != urn or old.parent != new.parent or old.protect != new.protect:
                self._record(new)
            return Result(urn, old.id, old.outputs)
        unknown = tuple(sorted(k for k, v in inputs.items() if has_unknown(v)))
        self.emitter.pre(
            d.kind, urn, preview=self.preview, changed=d.changed, replace_keys=d.replace_keys, unknown=unknown
        )
        if self.preview:
            return self._preview_result(urn, d.kind, old, inputs)
        started = time.monotonic()
        try:
            with self._slots:
                if self.cancelled.is_set():  # it may have waited for its slot while a cancel came in
                    raise Cancelled(f"operation on stack {self.stack} was cancelled")
                if d.kind == "create":
                    result = self._create(new, provider)
                elif d.kind == "update":
                    assert old is not None
                    result = self._update(old, new, provider)
                else:
                    assert old is not None
                    result = self._replace(old, new, provider, reg.delete_before_replace)
        except CloudError as exc:
            self.emitter.outcome(d.kind, urn, seconds=time.monotonic() - started, error=str(exc))
            failure = ResourceFailed(urn, d.kind, exc)
            self._fail(failure)
            raise failure from exc
        self.emitter.outcome(d.kind, urn, seconds=time.monotonic() - started, id_=result.id)
        return result

    # ---- steps ----

    def _create(self, new: ResourceState, provider: Provider) -> Result:
        self._record(new.evolve(pending="creating"))
        created = self.timed(lambda: provider.create(new.type, reveal(new.inputs)), urn=new.urn)
        return self._created(new, provider, created)

    def _created(self, new: ResourceState, provider: Provider, created: Created) -> Result:
        new.id = created.id
        new.outputs = self._secret_outputs(new, provider, created.outputs)
        new.pending = None
        self._record(new)
        return Result(new.urn, new.id, new.outputs)

    def _update(self, old: ResourceState, new: ResourceState, provider: Provider) -> Result:
        new.id, new.key = old.id, old.key
        self._record(old.evolve(pending="updating"))
        outputs = self.timed(
            lambda: provider.update(new.type, old.id, reveal(old.inputs), reveal(new.inputs)), urn=new.urn
        )
        new.outputs = self._secret_outputs(new, provider, outputs)
        new.pending = None
        self._record(new)
        return Result(new.urn, new.id, new.outputs)

    def _replace(self, old: ResourceState, new: ResourceState, provider: Provider, delete_first: bool) -> Result:
        if delete_first or new.delete_before_replace:
            self._delete(old, provider)
            return self._create(new, provider)
        result = self._create(new, provider)
        condemned = old.evolve(condemned=True)
        self._record(condemned)
        with self._lock:
            self.to_delete.append(condemned)
        return result

    def _delete(self, state: ResourceState, provider: Provider | None) -> None:
        if state.custom and not state.is_provider and not state.external and not state.retain_on_delete:
            assert provider is not None
            self._record(state.evolve(pending="deleting"))
            self.timed(lambda: provider.delete(state.type, state.id, reveal(state.outputs)), urn=state.urn)
        if self.checkpoints is not None:
            self.checkpoints.remove(self.stack, state.key)

    def _adopt_or_create(self, urn: str, reg: Registration, ref: str, provider: Provider, old: ResourceState) -> Result:
        """An earlier run started creating this resource and died: adopt what it made, if anything."""
        new = self._state(urn, reg, ref, reg.inputs)
        new.key = old.key
        self.emitter.pre("create", urn, preview=self.preview)
        self.tally.step("create")
        if self.preview:
            return self._preview_result(urn, "create", None, reg.inputs)
        started = time.monotonic()
        try:
            found = self.timed(lambda: provider.find(reg.type, reveal(reg.inputs)), mutating=False)
            if found is not None:
                log.warning("stack %s: adopting %s %s left by an interrupted create", self.stack, urn, found.id)
                self.emitter.emit(
                    "diagnostic", f"adopted {urn} ({found.id}), created by an interrupted run", level="warning", urn=urn
                )
                result = self._created(new, provider, found)
            else:
                result = self._create(new, provider)
        except CloudError as exc:
            self.emitter.outcome("create", urn, seconds=time.monotonic() - started, error=str(exc))
            failure = ResourceFailed(urn, "create", exc)
            self._fail(failure)
            raise failure from exc
        self.emitter.outcome("create", urn, seconds=time.monotonic() - started, id_=result.id)
        return result

    def _still_exists(self, state: ResourceState, provider: Provider) -> bool:
        try:
            found = self.timed(lambda: provider.read(state.type, state.id, reveal(state.inputs)), mutating=False)
        except CloudError as exc:
            failure = ResourceFailed(state.urn, "read", exc)
            self._fail(failure)
            raise failure from exc
        return found is not None

    def _import(self, urn: str, reg: Registration, ref: str, provider: Provider) -> Result:
        new = self._state(urn, reg, ref, reg.inputs)
        outputs = self.timed(lambda: provider.read(reg.type, reg.import_id, reveal(reg.inputs)), mutating=False)
        if outputs is None:
            failure = ResourceFailed(urn, "import", CloudError(f"{reg.type} {reg.import_id} does not exist"))
            self._fail(failure)
            raise failure
        self.tally.step("import")
        new.id = reg.import_id
        new.outputs = self._secret_outputs(new, provider, outputs)
        if not self.preview:
            self._record(new)
        return Result(urn, new.id, new.outputs)

    def _preview_result(self, urn: str, kind: str, old: ResourceState | None, inputs: dict[str, Any]) -> Result:
        """What a preview tells the program: known inputs; computed outputs and new ids unknown."""
        if kind == "update" and old is not None:
            outputs = {**old.outputs, **inputs}
            with self._lock:
                self.registered[urn] = old
            return Result(urn, old.id, outputs)
        with self._lock:
            self.registered[urn] = ResourceState(urn=urn, type="", custom=True, inputs=inputs)
        return Result(urn, "", dict(inputs))

    # ---- after the program ----

    def finish(self) -> None:
        """Delete what the program no longer declares and what was replaced, dependents first."""
        gone = [r for r in self.old.values() if r.key not in self.claimed]
        doomed = [*gone, *self.to_delete, *self.leftovers]
        for r in doomed:
            if r.protect and r.custom and not r.condemned:
                raise ResourceFailed(
                    r.urn, "delete", CloudError("it is protected; unprotect it before removing it from the program")
                )
        if not doomed:
            return
        self.delete_all(doomed)

    def delete_all(self, doomed: list[ResourceState]) -> None:
        waves = deletion_order(doomed)
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix=f"tonle-delete-{self.stack}") as pool:
            for wave in waves:
                if self.cancelled.is_set():
                    raise Cancelled(f"operation on stack {self.stack} was cancelled")
                errors = [f for f in pool.map(self._delete_one, wave) if f is not None]
                if errors:
                    raise errors[0]

    def _delete_one(self, state: ResourceState) -> ResourceFailed | None:
        managed = state.custom and not state.is_provider and not state.external
        if managed:
            self.tally.step("delete")
            self.emitter.pre("delete", state.urn, preview=self.preview)
        if self.preview:
            return None
        started = time.monotonic()
        try:
            provider = self._provider(state.provider) if managed else None
            if managed and not state.id and state.pending == "creating" and provider is not None:
                found = self.timed(lambda: provider.find(state.type, reveal(state.inputs)), mutating=False)
                if found is not None:
                    state = state.evolve(id=found.id, outputs=found.outputs)
            if managed and not state.id:
                if self.checkpoints is not None:
                    self.checkpoints.remove(self.stack, state.key)
            else:
                self._delete(state, provider)
        except CloudError as exc:
            self.emitter.outcome("delete", state.urn, seconds=time.monotonic() - started, error=str(exc))
            failure = ResourceFailed(state.urn, "delete", exc)
            self._fail(failure)
            return failure
        if managed:
            self.emitter.outcome("delete", state.urn, seconds=time.monotonic() - started, id_=state.id)
        return None

    # ---- helpers ----

    def _claim(self, urn: str, aliases: list[str]) -> ResourceState | None:
        """The checkpoint's resource for this URN (or one of its aliases), marked as still declared."""
        with self._lock:
            for candidate in (urn, *aliases):
                old = self.old.get(candidate)
                if old is not None and old.key not in self.claimed:
                    self.claimed.add(old.key)
                    if candidate != urn:
                        self.emitter.emit("diagnostic", f"{candidate} is now {urn} (alias)", urn=urn)
                    return old
        return None

    def _state(self, urn: str, reg: Registration, ref: str, inputs: dict[str, Any]) -> ResourceState:
        return ResourceState(
            urn=urn, type=reg.type, custom=True, inputs=inputs, parent=reg.parent, provider=ref,
            dependencies=reg.dependencies, property_dependencies=reg.property_dependencies, protect=reg.protect,
            delete_before_replace=reg.delete_before_replace, retain_on_delete=reg.retain_on_delete,
            additional_secret_outputs=reg.additional_secret_outputs,
        )  # fmt: skip

    def _secret_outputs(self, state: ResourceState, provider: Provider, outputs: dict[str, Any]) -> dict[str, Any]:
        keys = secret_paths(state.inputs) | set(state.additional_secret_outputs) | provider.secret_outputs(state.type)
        return mark_secret(outputs, keys)

    def _provider_ref(self, reg: Registration) -> str:
        if reg.provider:
            return reg.provider
        return self._default_provider_ref(reg.type.split(":", 1)[0], reg.version)

    def _default_provider_ref(self, package: str, version: str) -> str:
        """The stack's default provider for a package, from the `<package>:*` stack config."""
        name = "default" + (f"_{version.replace('.', '_').replace('-', '_')}" if version else "")
        urn = make_urn(self.stack, self.project, "", f"pulumi:providers:{package}", name)
        # One thread makes the default provider; the others must see it, not make a second one.
        with self._default_provider_lock:
            with self._lock:
                existing = self.registered.get(urn)
            if existing is not None:
                return f"{urn}::{existing.id}"
            config = self.provider_config.get(package, {})
            result = self._register_provider(
                urn, Registration(type=f"pulumi:providers:{package}", name=name, parent="", custom=True, inputs=config)
            )
            return f"{urn}::{result.id}"

    def providers_for(self, state: ResourceState) -> Provider:
        return self._provider(state.provider)

    def _provider(self, ref: str) -> Provider:
        urn = provider_urn(ref)
        with self._lock:
            state = self.registered.get(urn) or self.old.get(urn)
        if state is None:
            raise UnknownType(urn_type_of(ref), [])
        return self.providers.get(reveal(state.inputs))

    def _record(self, state: ResourceState) -> None:
        with self._lock:
            if not state.condemned:
                self.registered[state.urn] = state
        if self.checkpoints is not None and not self.preview:
            self.checkpoints.put(self.stack, state)

    def timed(self, call: Callable[[], Any], *, mutating: bool = True, urn: str = "") -> Any:
        """Make one cloud call and report its duration, and whether it changes anything, to the tally."""
        started = time.monotonic()
        try:
            return call()
        finally:
            self.tally.cloud_call(urn=urn, seconds=time.monotonic() - started, mutating=mutating)

    def _fail(self, failure: ResourceFailed) -> None:
        log.error("stack %s: %s", self.stack, failure)
        with self._lock:
            self.failures.append(failure)

    def outputs_known(self) -> dict[str, Any]:
        return {k: v for k, v in self.stack_outputs.items() if not has_unknown(v) and v != UNKNOWN}


def urn_type_of(ref: str) -> str:
    return provider_urn(ref).split("::")[2] if "::" in ref else ref
