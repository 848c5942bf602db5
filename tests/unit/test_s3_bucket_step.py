"""An `s3_bucket` offering (dr-backup) gets its bucket and keys from the orchestrator's backup
targets in `apply`, handed out as endpoints and credentials; a retry resuming at `verify` gets
them back. The adapters are doubles (boundaries this test is not about); the steps are real.
That the real adapter makes a bucket the keys reach alone is tests/cloud/test_dr_backup.py."""

import uuid
from typing import Any

import pytest

from orchestrator.catalog import service as catalog
from orchestrator.ports import Adapters, EventSink, ProgressEvent, StackSpec
from orchestrator.workflows import steps
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.inputs import Platform, ServiceInputs

pytestmark = pytest.mark.unit

TARGET = {
    "s3_endpoint": "https://s3.dr.example",
    "region": "us-east-1",
    "bucket": "tonle-backup-health-dr-backup-00000002",
    "access_key": "AK",
    "secret_key": "SK",
}
STACK_OUTPUTS = {"hosts": {}, "endpoints": {"quota_gb": 500, "retention_days": 30}, "credentials": {}}


class StackOutputsEngine:
    """Answers `up` with what the dr-backup program exports."""

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        return {key: dict(value) for key, value in STACK_OUTPUTS.items()}


class ProviderTenancy:
    def ensure(self, *, ministry_code: str, ministry_name: str, site_name: str, on_event: EventSink) -> dict[str, str]:
        return {"openstack:cloud": "tonle-primary"}


class RecordingTargets:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def ensure(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return dict(TARGET)


class RecordingHealth:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def check(
        self,
        spec: dict[str, Any],
        outputs: dict[str, Any],
        parameters: dict[str, Any],
        secret_vars: dict[str, Any],
        on_event: Any,
    ) -> bool:
        self.seen.append({"spec": spec, "outputs": outputs})
        return True


def context(targets: RecordingTargets, health: RecordingHealth, outputs: dict[str, Any]) -> StepContext:
    offering = catalog.get_offering("dr-backup")
    inputs = ServiceInputs(
        ministry_id=uuid.UUID(int=1),
        ministry_code="health",
        ministry_name="Ministry of Health",
        service_id=uuid.UUID(int=2),
        request_id=uuid.UUID(int=3),
        stack_name="health-dr-backup-00000002",
        offering=offering,
        plan=catalog.get_plan(offering, "archive-500g"),
        parameters={"name": "tax-archive", "purpose": "off-site copies"},
        platform=Platform("primary", "public", "10.0.0.0/24", "debian-12", "tenants"),
    )
    adapters = Adapters(
        engine=StackOutputsEngine(),  # type: ignore[arg-type]
        config=None,  # type: ignore[arg-type]
        health=health,
        tenancy=ProviderTenancy(),
        backup_targets=targets,  # type: ignore[arg-type]
    )
    events: list[ProgressEvent] = []
    return StepContext(
        operation_id=uuid.UUID(int=4), inputs=inputs, adapters=adapters, emit=events.append, outputs=outputs
    )


def test_apply_hands_out_the_dr_sites_bucket_endpoint_and_keys_of_the_services_own_user() -> None:
    targets, health = RecordingTargets(), RecordingHealth()
    ctx = context(targets, health, {})
    steps.apply(ctx)
    # The ministry's machines use the site's public endpoint, not the one for instances.
    assert targets.calls == [
        {
            "ministry_code": "health",
            "ministry_name": "Ministry of Health",
            "stack_name": "health-dr-backup-00000002",
            "on_event": ctx.emit,
            "for_instances": False,
            "quota_bytes": 500 * 1024**3,  # the plan's object_gb
        }
    ]
    assert ctx.outputs["endpoints"] == {
        "quota_gb": 500,
        "retention_days": 30,
        "bucket": TARGET["bucket"],
        "s3_endpoint": TARGET["s3_endpoint"],
        "s3_region": "us-east-1",
    }
    assert ctx.outputs["credentials"] == {"s3_access_key_id": "AK", "s3_secret_access_key": "SK"}
    steps.verify(ctx)
    assert len(targets.calls) == 1, "verify after apply needs nothing more"
    assert health.seen[0]["spec"] == {"kind": "s3"}


def test_a_retry_resuming_at_verify_gets_the_bucket_and_keys_back() -> None:
    targets, health = RecordingTargets(), RecordingHealth()
    # What a resumed run starts from: the stack's own outputs (engine.outputs), no keys.
    ctx = context(targets, health, {key: dict(value) for key, value in STACK_OUTPUTS.items()})
    steps.verify(ctx)
    assert len(targets.calls) == 1
    assert health.seen[0]["outputs"]["credentials"] == {"s3_access_key_id": "AK", "s3_secret_access_key": "SK"}
    assert health.seen[0]["outputs"]["endpoints"]["s3_endpoint"] == TARGET["s3_endpoint"]


def test_an_offering_without_s3_bucket_gets_no_bucket_from_apply() -> None:
    targets, health = RecordingTargets(), RecordingHealth()
    ctx = context(targets, health, {})
    ctx.inputs = ServiceInputs(**{**ctx.inputs.__dict__, "offering": catalog.get_offering("web-hosting")})
    steps.apply(ctx)
    assert targets.calls == []
    assert ctx.outputs == STACK_OUTPUTS
