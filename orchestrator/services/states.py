"""Allowed service transitions."""

from orchestrator.services.models import ServiceStatus as S
from orchestrator.statemachine import StateMachine

SERVICE_STATES = StateMachine[S](
    "service",
    {
        S.provisioning: frozenset({S.active, S.failed}),
        S.active: frozenset({S.modifying, S.decommissioning}),
        S.modifying: frozenset({S.active, S.failed}),
        S.decommissioning: frozenset({S.retired, S.failed}),
        # A failed service is retried (back to the work that failed) or torn down.
        S.failed: frozenset({S.provisioning, S.modifying, S.decommissioning}),
    },
)
