"""Allowed request transitions."""

from orchestrator.requests.models import RequestStatus as S
from orchestrator.statemachine import StateMachine

REQUEST_STATES = StateMachine[S](
    "request",
    {
        S.pending_approval: frozenset({S.approved, S.rejected, S.cancelled, S.expired}),
        S.approved: frozenset({S.fulfilled, S.failed}),
        S.failed: frozenset({S.approved, S.cancelled}),  # retried, or given up
    },
)
