"""Real ansible-playbook runs through the runner adapter, against this machine (local connection).

Runs against real instances are in the cloud tier; this checks events, idempotence reporting,
failures and that secrets never reach events or stay on disk.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.ansible.runner import AnsibleRunner
from orchestrator.ports import PlaybookRun, ProgressEvent, StepFailed

pytestmark = pytest.mark.integration

PLAYBOOKS = Path(__file__).parent.parent / "fixtures" / "playbooks"
SECRET = "s3cr3t-Pa55-do-not-log"
# Modules run by the unprivileged Ansible account: an interpreter it can reach (this test
# process's own may live under /root).
LOCAL_PYTHON = "/usr/bin/python3"


def local_host(tmp_path: Path | None = None) -> dict[str, dict[str, object]]:
    return {
        "self": {
            "address": "127.0.0.1",
            "ansible_connection": "local",
            "ansible_python_interpreter": LOCAL_PYTHON,
            "groups": ["web"],
        }
    }


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder the unprivileged Ansible account can write to (pytest's own is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="tonle-ansible-test-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_playbook_runs_streams_task_events_and_reports_no_change_the_second_time(
    tmp_path: Path, open_dir: Path
) -> None:
    runner = AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs")
    target = open_dir
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
    for path in runner.runs_dir.glob("op-1-probe-*/**/*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), f"secret left in {path}"
    artifacts = list(runner.runs_dir.glob("op-1-probe-*/artifacts/*/job_events/*.json"))
    assert artifacts, "the run's events are kept as artifacts"


def test_a_failing_task_is_reported_with_its_error(tmp_path: Path) -> None:
    runner = AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs")
    events: list[ProgressEvent] = []
    result = runner.run(PlaybookRun(playbook="broken", hosts=local_host(tmp_path)), events.append)
    assert not result.ok
    assert result.failures == ["self: install a package that does not exist"]
    failed = [e for e in events if e.level == "error"]
    assert failed and "Unable to locate package nginx-nonexistent" in failed[0].message


def test_several_playbooks_run_in_one_run_and_a_failure_names_its_playbook(tmp_path: Path, open_dir: Path) -> None:
    runner = AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs")
    run = PlaybookRun(
        playbook="probe",
        then=("broken",),
        hosts=local_host(tmp_path),
        extra_vars={"target_dir": str(open_dir), "ministry": "health"},
        secret_vars={"db_password": SECRET},
        label="op-2",
    )
    # A root test process drops to the Ansible account, whose runs folder earlier runs share.
    earlier = set(runner.runs_dir.glob("op-2-probe+broken-*"))
    events: list[ProgressEvent] = []
    result = runner.run(run, events.append)
    assert not result.ok
    assert result.failures == ["self: install a package that does not exist (playbook broken)"]
    assert (open_dir / "greeting.txt").read_text() == "hello health\n", "the first playbook ran"
    tasks = [(e.data["playbook"], e.data["task"]) for e in events if e.type == "ansible.task"]
    assert tasks == [
        ("probe", "write the greeting"),
        ("probe", "write the secret without logging it"),
        ("broken", "install a package that does not exist"),
    ]
    plays = [e.message for e in events if e.type == "ansible.play"]
    assert len(plays) == 2 and plays[1].endswith("(playbook broken)"), plays
    assert len([e for e in events if e.type == "ansible.stats"]) == 1, "one ansible-playbook run"
    assert len(set(runner.runs_dir.glob("op-2-probe+broken-*")) - earlier) == 1


def test_an_unknown_playbook_is_a_step_failure_naming_it(tmp_path: Path) -> None:
    runner = AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs")
    with pytest.raises(StepFailed, match="playbook 'nope' is not installed") as failure:
        runner.run(PlaybookRun(playbook="nope", hosts=local_host(tmp_path)), lambda e: None)
    # Ministries see the failure: it names no place on the orchestrator.
    assert str(PLAYBOOKS) not in str(failure.value) and "/" not in str(failure.value)


def test_a_playbook_that_cannot_start_fails_without_orchestrator_paths(tmp_path: Path) -> None:
    runner = AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs")
    result = runner.run(PlaybookRun(playbook="missing_role", hosts=local_host(tmp_path)), lambda e: None)
    assert not result.ok and result.failures
    shown = " ".join(result.failures)
    assert "missing_role_that_does_not_exist" in shown, shown
    for place in (str(PLAYBOOKS.resolve()), str(runner.runs_dir), "artifacts:"):
        assert place not in shown, shown


def test_a_crashed_run_leaves_no_secret_after_a_worker_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.ansible.runner import SECRET_FILES, clean_up_at_start, remove_leftover_secrets
    from orchestrator.config import get_settings

    # What `tonle worker` does first, for a data directory of this test's own.
    monkeypatch.setenv("TONLE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    runs = tmp_path / "ansible-runs"
    crashed = runs / "provision-x-web-1234abcd"
    for name in (*SECRET_FILES, "artifacts/1/env/ssh_key", "files/archive"):
        (crashed / name).parent.mkdir(parents=True, exist_ok=True)
        (crashed / name).write_text(SECRET)
    (crashed / "artifacts/1/stdout").write_text("PLAY RECAP\n")
    # A run still going in another worker holds its lock: left alone.
    running = runs / "provision-y-web-5678abcd"
    (running / "env").mkdir(parents=True)
    (running / "env/ssh_key").write_text(SECRET)
    lock = os.open(running / ".running", os.O_WRONLY | os.O_CREAT, 0o600)
    import fcntl

    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        clean_up_at_start()
    finally:
        os.close(lock)
        get_settings.cache_clear()
    left = [p for p in crashed.rglob("*") if p.is_file()]
    assert left == [crashed / "artifacts/1/stdout"], left
    assert (running / "env/ssh_key").exists()
    assert remove_leftover_secrets([runs]) == 1  # its worker gone too, now it is cleaned


@pytest.mark.skipif(os.geteuid() != 0, reason="becomes another account to be a worker that is not root")
def test_a_worker_that_is_not_root_runs_playbooks_as_itself_and_says_so(open_dir: Path) -> None:
    """What a developer's laptop does: no account to drop to, so a warning event says so. Run
    as the (unprivileged) Ansible account, with the system's interpreter it can reach."""
    import subprocess
    import sys

    from orchestrator.ansible import privileges
    from orchestrator.config import get_settings

    user = get_settings().ansible_user
    AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=open_dir)  # makes sure the account exists
    target = open_dir / "target"
    target.mkdir(mode=0o777)
    target.chmod(0o777)
    script = f"""
import json
from pathlib import Path
from orchestrator.ansible.runner import AnsibleRunner
from orchestrator.ports import PlaybookRun
runner = AnsibleRunner(playbooks_dir=Path({str(PLAYBOOKS)!r}), runs_dir=Path({str(open_dir / "runs")!r}))
events = []
hosts = {{"self": {{"address": "127.0.0.1", "ansible_connection": "local",
                    "ansible_python_interpreter": {LOCAL_PYTHON!r}}}}}
result = runner.run(PlaybookRun(playbook="probe", hosts=hosts, label="laptop",
                    extra_vars={{"target_dir": {str(target)!r}, "ministry": "laptop"}},
                    secret_vars={{"db_password": "x"}}), events.append)
print(json.dumps({{"ok": result.ok, "events": [[e.type, e.level, e.message] for e in events]}}))
"""
    python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    env = {**privileges.child_environment(privileges.account(user)), "TONLE_DATA_DIR": str(open_dir / "data")}
    done = subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", python, "-s", "-c", script],
        env=env, cwd=str(open_dir), capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["ok"], outcome
    warnings = [e for e in outcome["events"] if e[0] == "ansible.privileges"]
    assert warnings and warnings[0][1] == "warning" and "not dropped" in warnings[0][2], outcome["events"]
    assert (target / "greeting.txt").read_text() == "hello laptop\n"
    assert (open_dir / "runs").stat().st_uid == (target / "greeting.txt").stat().st_uid != 0
