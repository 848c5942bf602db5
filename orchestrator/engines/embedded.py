"""`EmbeddedEngine`: `orchestrator.ports.Engine` on the embedded Pulumi engine (`pulumi_embedded`).

A thin adapter: it builds the engine from our settings (our database for checkpoints, our
secrets key, the site's clouds.yaml, the programs of `stacks/`) and translates at the border:
our `StackSpec` in, the engine's events out as our `ProgressEvent`s, its failures as
`StepFailed` / `TransientError`. What the engine does and how: pulumi_embedded/README.md.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pulumi_embedded
from orchestrator.config import Settings
from orchestrator.engines.checkpoints import PostgresCheckpointStore
from orchestrator.ports import ChangeSummary, EventSink, ProgressEvent, StackSpec, StepFailed, TransientError

PROJECT = "tonle"
STACK_PROGRAMS = "stacks"  # one module per program, each with a `program()` (see stacks/__init__.py)


class EmbeddedEngine:
    name = "embedded"

    def __init__(self, engine: pulumi_embedded.EmbeddedEngine) -> None:
        self.engine = engine

    @classmethod
    def from_settings(cls, settings: Settings) -> "EmbeddedEngine":
        """The engine as workers run it: checkpoints in the app's database, secrets sealed with
        the app's master key, the OpenStack provider layer reading `settings.resolved_clouds_yaml`."""
        from orchestrator import secrets
        from orchestrator.database.core import database_url
        from pulumi_embedded.openstack.provider import OpenStackProvider

        return cls(
            pulumi_embedded.EmbeddedEngine(
                store=PostgresCheckpointStore(database_url()),
                secrets_key=secrets.master_key(),
                load_program=pulumi_embedded.module_programs(STACK_PROGRAMS),
                provider_factory=OpenStackProvider.factory(settings.resolved_clouds_yaml),
                project=PROJECT,
            )
        )

    def close(self) -> None:
        self.engine.close()

    def preview(self, stack: StackSpec, on_event: EventSink) -> ChangeSummary:
        with translated_failures():
            return ChangeSummary(changes=self.engine.preview(engine_spec(stack), relay(on_event)).changes)

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        with translated_failures():
            return self.engine.up(engine_spec(stack), relay(on_event))

    def destroy(self, stack_name: str, on_event: EventSink) -> None:
        with translated_failures():
            self.engine.destroy(stack_name, relay(on_event))

    def refresh(self, stack_name: str, on_event: EventSink) -> ChangeSummary:
        with translated_failures():
            return ChangeSummary(changes=self.engine.refresh(stack_name, relay(on_event)).changes)

    def outputs(self, stack_name: str) -> dict[str, Any]:
        with translated_failures():
            return self.engine.outputs(stack_name)

    def export_state(self, stack_name: str) -> dict[str, Any]:
        with translated_failures():
            return self.engine.export_state(stack_name)

    def cancel(self, stack_name: str) -> None:
        with translated_failures():
            self.engine.cancel(stack_name)


def engine_spec(stack: StackSpec) -> pulumi_embedded.StackSpec:
    # `tags` stay ours: the programs read what they need from the config.
    return pulumi_embedded.StackSpec(
        name=stack.name, program=stack.program, config=stack.config, secret_keys=stack.secret_keys
    )


def relay(on_event: EventSink) -> Callable[[pulumi_embedded.ProgressEvent], None]:
    def forward(event: pulumi_embedded.ProgressEvent) -> None:
        on_event(ProgressEvent(type=event.type, message=event.message, level=event.level, data=event.data))

    return forward


@contextmanager
def translated_failures() -> Iterator[None]:
    try:
        yield
    except pulumi_embedded.TransientFailure as exc:
        raise TransientError(str(exc)) from exc
    except pulumi_embedded.OperationFailed as exc:
        raise StepFailed(str(exc)) from exc


def load_stack_program(name: str) -> Callable[[], None]:
    """`stacks.<name>.program`, the offering's Pulumi program; `StepFailed` when there is none."""
    with translated_failures():
        return pulumi_embedded.module_programs(STACK_PROGRAMS)(name)
