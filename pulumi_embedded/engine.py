"""`EmbeddedEngine`: runs Pulumi programs without the Pulumi CLI.

Each operation takes the stack's lock, loads its checkpoint, runs (or, for destroy and
refresh, skips) the program against an in-process resource monitor, and records every step
as it happens. Errors reach the caller as `OperationFailed` (a retry will not help by itself)
or `TransientFailure` (cloud hiccup, stack busy: retry later).
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pulumi_embedded import program as program_runner
from pulumi_embedded.checkpoints import CheckpointStore, SealedCheckpoints, StackLocked
from pulumi_embedded.deployment import Cancelled, Deployment, ProviderCache, ResourceFailed
from pulumi_embedded.events import Emitter
from pulumi_embedded.export import deployment_v3
from pulumi_embedded.monitor import EngineLog, ResourceMonitor
from pulumi_embedded.programs import ProgramLoader
from pulumi_embedded.protocol import reveal
from pulumi_embedded.provider import CloudError, ProviderFactory, UnknownType
from pulumi_embedded.refresh import refresh_resources
from pulumi_embedded.secrets import SecretBox
from pulumi_embedded.state import Snapshot
from pulumi_embedded.tally import RunStats, Tally
from pulumi_embedded.types import ChangeSummary, EventSink, OperationFailed, StackSpec, TransientFailure

log = logging.getLogger("tonle.engine")


class EmbeddedEngine:
    name = "embedded"

    def __init__(
        self,
        *,
        store: CheckpointStore,
        secrets_key: bytes,
        load_program: ProgramLoader,
        provider_factory: ProviderFactory | None = None,
        project: str = "tonle",
        parallel: int = 16,
        lock_wait_seconds: float = 10.0,
        on_run: Callable[[RunStats], None] | None = None,
    ) -> None:
        """`store`: where checkpoints live (the engine closes it in `close`); `secrets_key`: a
        Fernet key sealing secrets at rest (see `secrets.load_or_create_key`); `load_program`:
        program name -> Pulumi program (see `programs.module_programs`); `provider_factory`: the
        cloud boundary, by default the OpenStack provider layer reading `clouds.yaml` as
        openstacksdk does; `project`: the Pulumi project name in URNs; `parallel`: cloud steps
        at once per operation; `lock_wait_seconds`: how long an operation waits for another one
        on the same stack; `on_run`: told the figures of every finished operation."""
        if provider_factory is None:
            from pulumi_embedded.openstack.provider import OpenStackProvider

            provider_factory = OpenStackProvider.factory()
        self.store = store
        self.checkpoints = SealedCheckpoints(store, SecretBox(secrets_key))
        self.providers = ProviderCache(provider_factory)
        self.project = project
        self.parallel = parallel
        self.load_program = load_program
        self.lock_wait_seconds = lock_wait_seconds
        self.on_run = on_run
        self.cancel_poll_seconds = 1.0
        self._cancels: dict[str, threading.Event] = {}
        self._cancels_lock = threading.Lock()

    def close(self) -> None:
        self.store.close()

    # ---- Engine ----

    def preview(self, stack: StackSpec, on_event: EventSink) -> ChangeSummary:
        deployment = self._run_program(stack, on_event, preview=True)
        return ChangeSummary(changes=deployment.tally.changes())

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        deployment = self._run_program(stack, on_event, preview=False)
        return reveal(deployment.outputs_known())

    def destroy(self, stack_name: str, on_event: EventSink) -> None:
        emitter = Emitter(on_event, stack=stack_name, operation="destroy")
        with self._operation(stack_name, "destroy", emitter) as cancelled:
            snapshot = self.checkpoints.load(stack_name)
            protected = [r.urn for r in snapshot.resources if r.protect and not r.condemned]
            if protected:
                raise OperationFailed(f"stack {stack_name} has protected resources; unprotect them first: {protected}")
            deployment = self._deployment(snapshot, emitter, {}, preview=False, cancelled=cancelled)
            started = time.monotonic()
            self._guard(stack_name, lambda: deployment.delete_all(snapshot.resources), deployment)
            self.checkpoints.finish(stack_name, "succeeded", {})
            self.store.drop(stack_name)
            self._summary(emitter, deployment, started, "destroy")

    def refresh(self, stack_name: str, on_event: EventSink) -> ChangeSummary:
        emitter = Emitter(on_event, stack=stack_name, operation="refresh")
        with self._operation(stack_name, "refresh", emitter) as cancelled:
            snapshot = self.checkpoints.load(stack_name)
            deployment = self._deployment(snapshot, emitter, {}, preview=False, cancelled=cancelled)
            started = time.monotonic()
            self._guard(stack_name, lambda: refresh_resources(deployment, snapshot), deployment)
            self.checkpoints.finish(stack_name, "succeeded")
            self._summary(emitter, deployment, started, "refresh")
            return ChangeSummary(changes=deployment.tally.changes())

    def outputs(self, stack_name: str) -> dict[str, Any]:
        return reveal(self.checkpoints.load(stack_name).outputs)

    def export_state(self, stack_name: str) -> dict[str, Any]:
        return deployment_v3(self.checkpoints.load(stack_name), project=self.project, seal=self.checkpoints.box.seal)

    def cancel(self, stack_name: str) -> None:
        """Stop the stack's running operation, in this process or any other: steps in flight
        finish and are recorded, nothing new starts, the operation fails as cancelled."""
        with self._cancels_lock:
            event = self._cancels.get(stack_name)
        if event is not None:
            event.set()
        # Other processes' operations see the request in the database (see `_watch_for_cancel`).
        requested = self.store.request_cancel(stack_name)
        if event is not None or requested:
            log.warning("stack %s: cancelling; steps in flight finish, nothing new starts", stack_name)

    # ---- internals ----

    def _run_program(self, stack: StackSpec, on_event: EventSink, *, preview: bool) -> Deployment:
        operation = "preview" if preview else "up"
        emitter = Emitter(on_event, stack=stack.name, operation=operation)
        program = self.load_program(stack.program)
        with self._operation(stack.name, operation, emitter, record=not preview) as cancelled:
            snapshot = self.checkpoints.load(stack.name)
            deployment = self._deployment(snapshot, emitter, stack.config, preview=preview, cancelled=cancelled)
            engine_log = EngineLog(emitter)
            started = time.monotonic()

            def run() -> None:
                program_runner.run(
                    program,
                    monitor=ResourceMonitor(deployment),
                    engine=engine_log,
                    project=self.project,
                    stack=stack.name,
                    config=stack.config,
                    secret_keys=sorted(stack.secret_keys),
                    preview=preview,
                    parallel=self.parallel,
                )
                deployment.finish()

            self._guard(stack.name, run, deployment, engine_log)
            if not preview:
                self.checkpoints.finish(stack.name, "succeeded", deployment.stack_outputs)
            self._summary(emitter, deployment, started, operation)
            return deployment

    def _deployment(
        self,
        snapshot: Snapshot,
        emitter: Emitter,
        config: dict[str, Any],
        *,
        preview: bool,
        cancelled: threading.Event,
    ) -> Deployment:
        provider_config: dict[str, dict[str, Any]] = {}
        for key, value in config.items():
            package, _, name = key.partition(":")
            if package != "tonle" and name:
                provider_config.setdefault(package, {})[name] = value
        return Deployment(
            snapshot=snapshot,
            project=self.project,
            providers=self.providers,
            provider_config=provider_config,
            checkpoints=None if preview else self.checkpoints,
            tally=Tally(),
            emitter=emitter,
            preview=preview,
            cancelled=cancelled,
            parallel=self.parallel,
        )

    @contextmanager
    def _operation(
        self, stack_name: str, operation: str, emitter: Emitter, *, record: bool = True
    ) -> Iterator[threading.Event]:
        cancelled = threading.Event()
        try:
            with self.store.lock(stack_name, wait_seconds=self.lock_wait_seconds):
                with self._cancels_lock:
                    self._cancels[stack_name] = cancelled
                log.info("stack %s: %s started", stack_name, operation)
                done = threading.Event()
                try:
                    if record:
                        self.store.begin(stack_name, operation)
                        watcher = threading.Thread(
                            target=self._watch_for_cancel,
                            args=(stack_name, cancelled, done),
                            name=f"tonle-cancel-{stack_name}",
                            daemon=True,
                        )
                        watcher.start()
                    yield cancelled
                except BaseException:
                    if record:
                        self.checkpoints.finish(stack_name, "failed")
                    raise
                finally:
                    done.set()
                    with self._cancels_lock:
                        self._cancels.pop(stack_name, None)
        except StackLocked as exc:
            raise TransientFailure(str(exc)) from exc

    def _watch_for_cancel(self, stack_name: str, cancelled: threading.Event, done: threading.Event) -> None:
        """Poll for a cancel requested from another process (the API, another worker)."""
        while not done.wait(self.cancel_poll_seconds):
            try:
                if self.store.cancel_requested(stack_name):
                    log.warning("stack %s: cancel requested elsewhere; stopping", stack_name)
                    cancelled.set()
                    return
            except Exception:  # the database hiccuped; the operation itself will notice if it lasts
                log.exception("stack %s: could not check for a cancel request", stack_name)

    def _guard(
        self, stack_name: str, body: Callable[[], None], deployment: Deployment, engine_log: EngineLog | None = None
    ) -> None:
        """Run `body`; turn what went wrong into `OperationFailed` or `TransientFailure`, naming the resource."""
        try:
            body()
        except Cancelled as exc:
            raise OperationFailed(f"cancelled: {exc}; finished steps are recorded") from exc
        except OperationFailed:
            raise
        except BaseException as exc:  # programs raise anything; report and classify it
            failures = deployment.failures
            if failures:
                # The first few say what happened; the rest are usually the same cause again.
                message = "; ".join(str(f) for f in failures[:3])
                if len(failures) > 3:
                    message += f"; and {len(failures) - 3} more failed steps (see the operation's events)"
                log.error("stack %s: %s", stack_name, message)
                if all(f.transient for f in failures):
                    raise TransientFailure(message) from exc
                raise OperationFailed(message) from exc
            if isinstance(exc, ResourceFailed | CloudError):
                raise (TransientFailure if getattr(exc, "transient", False) else OperationFailed)(str(exc)) from exc
            if isinstance(exc, UnknownType):
                raise OperationFailed(str(exc)) from exc
            if not isinstance(exc, Exception):
                raise
            diagnostics = "; ".join(engine_log.errors) if engine_log and engine_log.errors else ""
            log.exception("stack %s: the program failed", stack_name)
            raise OperationFailed(
                f"the stack program failed: {type(exc).__name__}: {exc} {diagnostics}".strip()
            ) from exc
        finally:
            first_failure = deployment.failures[0] if deployment.failures else None
            if first_failure is not None:
                deployment.emitter.emit("diagnostic", str(first_failure), level="error", urn=first_failure.urn)

    def _summary(self, emitter: Emitter, deployment: Deployment, started: float, operation: str) -> None:
        seconds = time.monotonic() - started
        changes = deployment.tally.changes()
        if self.on_run is not None:
            self.on_run(deployment.tally.stats(stack=emitter.stack, operation=operation, seconds=seconds))
        text = ", ".join(f"{n} {kind}" for kind, n in sorted(changes.items())) or "no changes"
        emitter.emit(
            "summary",
            f"{operation} of stack {emitter.stack}: {text} in {seconds:.1f}s",
            changes=changes,
            seconds=round(seconds, 3),
            preview=operation == "preview",
        )
        log.info("stack %s: %s done: %s in %.1fs", emitter.stack, operation, text, seconds)
