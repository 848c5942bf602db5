"""The Automation API engine's shaping of its calls. No `pulumi` CLI exists here, so what is
tested is everything up to the CLI: config, workspace options, event translation, errors."""

from pathlib import Path

import pytest
from pulumi.automation import errors
from pulumi.automation._cmd import CommandResult
from pulumi.automation.events import EngineEvent

from orchestrator.config import Settings
from orchestrator.engines import engine_choice
from orchestrator.engines.automation import (
    AutomationEngine,
    _guard,
    cli_available,
    config_map,
    passphrase_from_key,
    to_progress,
)
from orchestrator.ports import StackSpec, StepFailed

pytestmark = pytest.mark.unit

SPEC = StackSpec(
    name="health-web-hosting-1a2b3c4d",
    program="web_hosting",
    config={
        "tonle:ministry": "health",
        "tonle:sizes": {"flavor": "m1.small", "volume_gb": 20},
        "tonle:sshPublicKey": "ssh-ed25519 AAAA tonle",
        "openstack:tenantName": "tonle-health",
    },
    secret_keys=frozenset({"tonle:sshPublicKey"}),
)


def test_config_values_are_strings_and_secrets_are_flagged() -> None:
    shaped = config_map(SPEC)
    assert shaped["tonle:ministry"] == {"value": "health", "secret": False}
    assert shaped["tonle:sizes"] == {"value": '{"flavor": "m1.small", "volume_gb": 20}', "secret": False}
    assert shaped["tonle:sshPublicKey"]["secret"] is True


def test_workspace_uses_the_self_managed_backend_and_passphrase(tmp_path: Path) -> None:
    engine = AutomationEngine(backend_url="file:///srv/pulumi", passphrase="p4ss", work_dir=tmp_path / "work")
    options = engine.workspace_options()
    assert options.project_settings.backend.url == "file:///srv/pulumi"
    assert options.project_settings.name == "tonle" and options.project_settings.runtime == "python"
    assert options.secrets_provider == "passphrase"
    assert options.env_vars["PULUMI_CONFIG_PASSPHRASE"] == "p4ss"
    assert (tmp_path / "work").is_dir()


def test_engine_events_become_progress_events() -> None:
    urn = "urn:pulumi:health-web::tonle::openstack:compute/instance:Instance::web"
    pre = EngineEvent.from_json(
        {
            "sequence": 1,
            "timestamp": 0,
            "resourcePreEvent": {
                "metadata": {"op": "create", "urn": urn, "type": "openstack:compute/instance:Instance", "provider": ""}
            },
        }
    )
    progress = to_progress(pre)
    assert progress is not None and progress.type == "resource.pre"
    assert progress.message == "create openstack:compute/instance:Instance web"
    diag = EngineEvent.from_json(
        {
            "sequence": 2,
            "timestamp": 0,
            "diagnosticEvent": {"message": "quota exceeded\n", "color": "", "severity": "error", "urn": urn},
        }
    )
    progress = to_progress(diag)
    assert progress is not None and progress.level == "error" and progress.message == "quota exceeded"
    summary = EngineEvent.from_json(
        {
            "sequence": 3,
            "timestamp": 0,
            "summaryEvent": {
                "maybeCorrupt": False,
                "durationSeconds": 3,
                "resourceChanges": {"create": 4},
                "PolicyPacks": {},
            },
        }
    )
    progress = to_progress(summary)
    assert progress is not None and progress.data == {"changes": {"create": 4}}


def test_a_failed_update_is_a_step_failure_with_the_cli_output() -> None:
    def fail() -> None:
        raise errors.CommandError(CommandResult(stdout="", stderr="error: update failed\n  boom", code=255))

    with pytest.raises(StepFailed, match="boom"):
        _guard(fail)


def test_auto_picks_the_embedded_engine_without_a_cli(tmp_path: Path) -> None:
    assert not cli_available(), "this machine has no pulumi CLI; the test documents the fallback"
    assert engine_choice(Settings(engine="auto", data_dir=tmp_path)) == "embedded"
    assert engine_choice(Settings(engine="noop", data_dir=tmp_path)) == "noop"


def test_the_passphrase_is_stable_per_key() -> None:
    assert passphrase_from_key(b"k1") == passphrase_from_key(b"k1") != passphrase_from_key(b"k2")
