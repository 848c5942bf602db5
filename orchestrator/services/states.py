"""Allowed service transitions."""

from orchestrator.services.models import ServiceStatus as S
from orchestrator.statemachine import StateMachine

SERVICE_STATES = StateMachine[S](
    "service",
    {
        S.provisioning: frozenset({S.active, S.failed}),
        S.active: frozenset({S.modifying, S.failing_over, S.failing_back, S.decommissioning}),
        S.modifying: frozenset({S.active, S.failed}),
        # A failover or failback that fails leaves the service where it ran, still active there.
        S.failing_over: frozenset({S.active}),
        S.failing_back: frozenset({S.active}),
        S.decommissioning: frozenset({S.retired, S.failed}),
        # A failed service is retried (back to the work that failed) or torn down.
        S.failed: frozenset({S.provisioning, S.modifying, S.decommissioning}),
    },
)
