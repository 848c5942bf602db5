"""What a caller hands the engine and gets back: a stack spec, a change summary, progress
events, and the two kinds of failure. Plain values, no dependency on any caller's types."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StackSpec:
    """One stack: which program to run and the configuration it reads.

    `program` is a name the engine's `load_program` resolves (see `programs.module_programs`).
    `config` holds fully qualified keys (`<project>:...` for the program, `openstack:cloud`,
    `openstack:tenantName`, `openstack:region` for the default provider); values are JSON values.
    Keys in `secret_keys` are secrets: kept encrypted at rest and never put in events.
    """

    name: str
    program: str
    config: dict[str, Any]
    secret_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ChangeSummary:
    """Steps per kind, e.g. {"create": 5, "update": 1, "same": 3}."""

    changes: dict[str, int]


@dataclass(frozen=True)
class ProgressEvent:
    """One thing the engine reports while it works (see `events.py` for the types and data keys)."""

    type: str
    message: str
    level: str = "info"
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[ProgressEvent], None]


class EngineError(Exception):
    """Base of what an engine operation raises."""


class OperationFailed(EngineError):
    """The operation failed for a reason a retry will not fix by itself: a program error, a
    cloud refusal, a protected resource, an unknown type, a cancel."""


class TransientFailure(EngineError):
    """The operation failed for a reason that may pass: a cloud timeout or 5xx/409/429, or the
    stack locked by another operation. Retrying the same operation later is safe."""
