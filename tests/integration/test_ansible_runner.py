"""Real ansible-playbook runs through the runner adapter, against this machine (local connection).

Runs against real instances are in the cloud tier; this checks events, idempotence reporting,
failures and that secrets never reach events or stay on disk.
"""

import json
import sys
from pathlib import Path

import pytest

from orchestrator.ansible.runner import AnsibleRunner
from orchestrator.pipeline.configure import PlaybookRun
from orchestrator.pipeline.events import ProgressEvent, StepFailed

pytestmark = pytest.mark.integration

PLAYBOOKS = Path(__file__).parent.parent / "fixtures" / "playbooks"
SECRET = "s3cr3t-Pa55-do-not-log"


def local_host(tmp_path: Path) -> dict[str, dict[str, object]]:
    return {
        "self": {
            "address": "127.0.0.1",
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "groups": ["web"],
        }
    }


def test_a_playbook_runs_streams_task_events_and_reports_no_change_the_second_time(tmp_path: Path) -> None:
    runner = AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs")
    target = tmp_path / "target"
    target.mkdir()
    run = PlaybookRun(
        playbook="probe",
        hosts=local_host(tmp_path),
        extra_vars={"target_dir": str(target), "ministry": "health"},
        secret_vars={"db_password": SECRET},
        label="op-1",
    )
    events: list[ProgressEvent] = []
    first = runner.run(run, events.append)
    assert first.ok and first.changed == 2, first
    assert (target / "greeting.txt").read_text() == "hello health\n"
    assert (target / "secret.txt").read_text() == f"{SECRET}\n"
    tasks = [e for e in events if e.type == "ansible.task"]
    assert [(e.data["task"], e.data["outcome"], e.data["changed"]) for e in tasks] == [
        ("write the greeting", "ok", True),
        # no_log hides the result, `changed` included; the recap still counts it.
        ("write the secret without logging it", "ok", False),
    ]
    assert events[-1].type == "ansible.stats"

    second_events: list[ProgressEvent] = []
    second = runner.run(run, second_events.append)
    assert second.ok and second.changed == 0

    everything = json.dumps([e.__dict__ for e in events + second_events])
    assert SECRET not in everything
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), f"secret left in {path}"
    artifacts = list((tmp_path / "runs").glob("op-1-probe-*/artifacts/*/job_events/*.json"))
    assert artifacts, "the run's events are kept as artifacts"


def test_a_failing_task_is_reported_with_its_error(tmp_path: Path) -> None:
    runner = AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs")
    events: list[ProgressEvent] = []
    result = runner.run(PlaybookRun(playbook="broken", hosts=local_host(tmp_path)), events.append)
    assert not result.ok
    assert result.failures == ["self: install a package that does not exist"]
    failed = [e for e in events if e.level == "error"]
    assert failed and "Unable to locate package nginx-nonexistent" in failed[0].message


def test_an_unknown_playbook_is_a_step_failure_naming_it(tmp_path: Path) -> None:
    runner = AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs")
    with pytest.raises(StepFailed, match="playbook 'nope' not found"):
        runner.run(PlaybookRun(playbook="nope", hosts=local_host(tmp_path)), lambda e: None)
