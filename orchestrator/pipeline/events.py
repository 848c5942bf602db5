"""What adapters report while they work. The runner turns each into an operation Event."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    type: str  # e.g. "resource.pre", "resource.outcome", "ansible.task", "diagnostic", "summary"
    message: str
    level: str = "info"
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[ProgressEvent], None]


class StepFailed(Exception):
    """A step failed for a reason a retry will not fix by itself (bad playbook, quota, ...)."""


class TransientError(Exception):
    """A step failed for a reason that may pass (cloud API hiccup); the job is retried."""
