"""The pipeline's `verify` step: the offering's health check against the live service."""

from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.health.dcim import check_dcim
from orchestrator.health.https import probe_from, wait_until_healthy
from orchestrator.health.mail import check_mail
from orchestrator.health.s3 import check_s3
from orchestrator.pki import service as pki
from orchestrator.ports import EventSink, StepFailed

# (health_check spec, stack outputs, order parameters, the operation's secret vars, event sink,
# deadline in seconds) -> passed
HealthProbe = Callable[[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], EventSink, float], bool]


def check_https(
    spec: dict[str, Any],
    outputs: dict[str, Any],
    parameters: dict[str, Any],
    secret_vars: dict[str, Any],
    on_event: EventSink,
    deadline: float,
) -> bool:
    endpoints = dict(outputs.get("endpoints") or {})
    endpoints.setdefault("hostname", parameters.get("domain"))
    try:
        probe = probe_from(spec, endpoints)
    except ValueError as exc:
        raise StepFailed(str(exc)) from exc
    ca_pem = pki.ca_certificate()
    return wait_until_healthy(probe, ca_pem=ca_pem, deadline_seconds=deadline, on_event=on_event)


# Every kind an offering's `health_check.kind` may name; the catalogue-consistency test holds
# each orderable offering to this mapping.
KINDS: Mapping[str, HealthProbe] = {"https": check_https, "s3": check_s3, "mail": check_mail, "dcim": check_dcim}


class ServiceHealthChecker:
    """Runs the check the catalogue names (`health_check.kind`); the CA comes from the database.

    A service is never declared healthy unchecked: an offering without a check, or with a kind
    not in `KINDS`, fails the step (the catalogue marks such offerings not orderable)."""

    def __init__(self, *, deadline_seconds: float) -> None:
        self.deadline_seconds = deadline_seconds

    def check(
        self,
        spec: dict[str, Any],
        outputs: dict[str, Any],
        parameters: dict[str, Any],
        secret_vars: dict[str, Any],
        on_event: EventSink,
    ) -> bool:
        kind = spec.get("kind")
        if not kind:
            raise StepFailed("the offering defines no health check, so nothing can confirm the service works")
        probe = KINDS.get(kind)
        if probe is None:
            raise StepFailed(
                f"health check kind '{kind}' is not implemented (implemented: {', '.join(sorted(KINDS))}); "
                "the service was not checked"
            )
        return probe(spec, outputs, parameters, secret_vars, on_event, self.deadline_seconds)
