"""Allowed operation transitions."""

from orchestrator.operations.models import OperationStatus as S
from orchestrator.statemachine import StateMachine

OPERATION_STATES = StateMachine[S](
    "operation",
    {
        S.queued: frozenset({S.running, S.cancelled}),
        # running -> queued: a transient error or a dead worker puts it back in line.
        S.running: frozenset({S.succeeded, S.failed, S.queued, S.waiting}),
        # waiting -> queued: the signal it waited for has arrived.
        S.waiting: frozenset({S.queued, S.cancelled}),
        S.failed: frozenset({S.queued, S.cancelled}),
    },
)
