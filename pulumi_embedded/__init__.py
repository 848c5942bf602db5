"""An embedded Pulumi engine: runs Pulumi Python programs in-process, without the Pulumi CLI,
with checkpoints in a store the host provides and an OpenStack provider layer. See README.md."""

from pulumi_embedded.checkpoints import CheckpointStore, StackLocked, StoredStack
from pulumi_embedded.engine import EmbeddedEngine
from pulumi_embedded.memory_store import InMemoryCheckpointStore
from pulumi_embedded.programs import module_programs
from pulumi_embedded.provider import CloudError, Created, Provider, ProviderFactory, UnknownType
from pulumi_embedded.tally import RunStats
from pulumi_embedded.types import (
    ChangeSummary,
    EngineError,
    EventSink,
    OperationFailed,
    ProgressEvent,
    StackSpec,
    TransientFailure,
)

__all__ = [
    "ChangeSummary",
    "CheckpointStore",
    "CloudError",
    "Created",
    "EmbeddedEngine",
    "EngineError",
    "EventSink",
    "InMemoryCheckpointStore",
    "OperationFailed",
    "ProgressEvent",
    "Provider",
    "ProviderFactory",
    "RunStats",
    "StackLocked",
    "StackSpec",
    "StoredStack",
    "TransientFailure",
    "UnknownType",
    "module_programs",
]
