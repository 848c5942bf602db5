"""The pipeline's `verify` step: the offering's health check against the live service."""

from typing import Any

from orchestrator.health.https import probe_from, wait_until_healthy
from orchestrator.pki import service as pki
from orchestrator.ports import EventSink, ProgressEvent, StepFailed


class ServiceHealthChecker:
    """Runs the check the catalogue names (`health_check.kind`); the CA comes from the database."""

    def __init__(self, *, deadline_seconds: float) -> None:
        self.deadline_seconds = deadline_seconds

    def check(
        self, spec: dict[str, Any], outputs: dict[str, Any], parameters: dict[str, Any], on_event: EventSink
    ) -> bool:
        kind = spec.get("kind")
        if not kind:
            on_event(ProgressEvent(type="health.none", message="the offering defines no health check"))
            return True
        if kind != "https":
            # Said plainly in the operation's events: this service was not checked.
            on_event(
                ProgressEvent(
                    type="health.unsupported",
                    message=f"health check kind '{kind}' is not implemented yet; not checked",
                    level="warning",
                )
            )
            return True
        endpoints = dict(outputs.get("endpoints") or {})
        endpoints.setdefault("hostname", parameters.get("domain"))
        try:
            probe = probe_from(spec, endpoints)
        except ValueError as exc:
            raise StepFailed(str(exc)) from exc
        ca_pem = pki.ca_certificate()
        return wait_until_healthy(probe, ca_pem=ca_pem, deadline_seconds=self.deadline_seconds, on_event=on_event)
