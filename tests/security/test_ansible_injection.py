"""Template injection into Ansible, and what a playbook can reach on the orchestrator.

Every value that reaches Ansible (order parameters, secrets, stack outputs that become host
vars, uploaded files) is data: the runner writes it `!unsafe`, so Jinja in it is never
rendered. These tests hand the real runner payloads that would run a command on the controller
if Ansible templated them (a `pipe` lookup touching a marker file) and check the play saw the
literal text and the marker never appeared. Playbooks run as an unprivileged account that
cannot read the orchestrator's data directory.

The local tests run ansible-playbook against this machine (local connection); the cloud test
runs the web and CMS roles on a real machine of the local data centre.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.ansible.runner import AnsibleRunner
from orchestrator.config import get_settings
from orchestrator.pipeline.configure import PlaybookRun
from orchestrator.pipeline.events import ProgressEvent

pytestmark = [pytest.mark.security]

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "playbooks"
LOCAL_PYTHON = "/usr/bin/python3"


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder the unprivileged Ansible account can write to (pytest's own is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="tonle-injection-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def payloads(marker: Path) -> list[str]:
    """Texts Ansible would render if it templated them; the first runs a command."""
    return [
        f"{{{{ lookup('pipe', 'touch {marker}') }}}}",
        "{% for x in range(3) %}x{% endfor %}",
        "{# c #}",
        "!unsafe {{ 7 * 7 }}",
        f"{{{{ query('pipe', 'id > {marker}') }}}}",
        "{{ '%s' | format(lookup('env', 'HOME')) }} ${HOME} $(id) `id`",
    ]


def local_run(playbook: str, marker: Path, target: Path, archive: Path) -> PlaybookRun:
    attack = payloads(marker)
    return PlaybookRun(
        playbook=playbook,
        hosts={
            "self": {
                # Stack outputs: an address and a host var a hostile program or server could shape.
                "address": attack[0],
                "private_address": attack[1],
                "host_note": attack[4],
                "ansible_connection": "local",
                "ansible_python_interpreter": LOCAL_PYTHON,
                "groups": ["web"],
            }
        },
        extra_vars={
            "target_dir": str(target),
            "parameters": {
                "name": attack[0],
                "site_title": attack[4],
                "admin_email": attack[2],
                "aliases": attack,
                attack[0]: attack[3],  # a key is a string too
            },
            "action": {"name": "deploy-content"},
        },
        secret_vars={"secrets": {"cms_admin_password": attack[0], "cms_db_password": attack[5]}},
        files={"archive": archive},
        label="injection",
    )


@pytest.mark.integration
def test_payloads_in_every_kind_of_var_and_file_arrive_literally_and_run_nothing(open_dir: Path) -> None:
    marker = open_dir / "pwned"
    # An upload whose own name and content are payloads: neither may be rendered.
    uploads = open_dir / "uploads"
    uploads.mkdir()
    archive = uploads / "{{ lookup('pipe', 'id') }}{% raw %}.tar.gz"
    archive.write_text(payloads(marker)[0])
    target = open_dir / "out"
    target.mkdir()
    target.chmod(0o1777)
    runner = AnsibleRunner(playbooks_dir=FIXTURES, runs_dir=open_dir / "runs")
    events: list[ProgressEvent] = []
    run = local_run("echo", marker, target, archive)

    result = runner.run(run, events.append)

    assert result.ok, (result, [e.message for e in events])
    assert not marker.exists(), "a payload ran a command on the controller"
    echoed = json.loads((target / "echo.json").read_text())
    attack = payloads(marker)
    assert echoed["parameters"] == run.extra_vars["parameters"]
    assert echoed["secrets"] == run.secret_vars["secrets"]
    assert echoed["host_note"] == attack[4]
    assert echoed["address"] == attack[0] and echoed["private_address"] == attack[1]
    assert echoed["derived"] == attack[4] and echoed["joined"] == f"title: {attack[4]}"
    # The upload reached the play under a name the orchestrator made, with its content as data.
    assert Path(echoed["archive"]).name == "archive" and "lookup" not in echoed["archive"]
    assert echoed["archive_content"] == attack[0]
    # Nothing of the run's inputs stays behind: the vars file (secrets) and the upload's copy.
    (run_dir,) = runner.runs_dir.glob("injection-echo-*")
    assert not (run_dir / "env" / "tonle-vars.yml").exists() and not (run_dir / "files").exists()


@pytest.mark.integration
def test_a_hostile_host_name_or_group_is_refused_before_ansible_runs(open_dir: Path) -> None:
    from orchestrator.pipeline.events import StepFailed

    runner = AnsibleRunner(playbooks_dir=FIXTURES, runs_dir=open_dir / "runs")
    marker = open_dir / "pwned"
    for hosts in (
        {f"{{{{ lookup('pipe', 'touch {marker}') }}}}": {"address": "127.0.0.1"}},
        {"web": {"address": "127.0.0.1", "groups": [f"{{{{ lookup('pipe', 'touch {marker}') }}}}"]}},
    ):
        with pytest.raises(StepFailed, match="not a plain name"):
            runner.run(PlaybookRun(playbook="echo", hosts=hosts), lambda e: None)
    assert not marker.exists()


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs a root worker")
def test_playbooks_run_as_the_unprivileged_account_and_cannot_read_the_data_dir(open_dir: Path) -> None:
    # A data directory as a careless install leaves it: everything readable by everyone.
    data = open_dir / "data"
    (data / "devcloud").mkdir(parents=True)
    data.chmod(0o755)
    (data / "devcloud").chmod(0o755)
    secret_key = data / "secret.key"
    secret_key.write_text("not-the-real-key\n")
    secret_key.chmod(0o644)
    clouds = data / "devcloud" / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    clouds.chmod(0o644)
    target = open_dir / "out"
    target.mkdir()
    target.chmod(0o1777)
    probes = [
        {"name": "read secret.key", "argv": ["cat", str(secret_key)]},
        {"name": "list the data dir", "argv": ["ls", str(data)]},
        {"name": "read clouds.yaml", "argv": ["cat", str(clouds)]},
        {"name": "read /root", "argv": ["ls", "/root"]},
    ]
    # The test session's own data directory and database, when this machine has them.
    real = get_settings().resolved_data_dir
    if (real / "secret.key").exists():
        probes.append({"name": "read the real secret.key", "argv": ["cat", str(real / "secret.key")]})
    for socket in sorted((REPO / ".tonle").glob("**/postgres/.s.PGSQL.*"))[:1]:
        if stat.S_ISSOCK(socket.stat().st_mode):
            connect = f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({str(socket)!r})"
            probes.append({"name": "connect to PostgreSQL", "argv": [LOCAL_PYTHON, "-c", connect]})
    runner = AnsibleRunner(playbooks_dir=FIXTURES, runs_dir=open_dir / "runs", data_dir=data)
    events: list[ProgressEvent] = []
    result = runner.run(
        PlaybookRun(
            playbook="privileges",
            hosts={"self": {"address": "127.0.0.1", "ansible_connection": "local",
                            "ansible_python_interpreter": LOCAL_PYTHON}},
            extra_vars={"target_dir": str(target), "probes": probes},
            label="privileges",
        ),
        events.append,
    )  # fmt: skip
    assert result.ok, (result, [e.message for e in events])
    seen = json.loads((target / "privileges.json").read_text())
    user = get_settings().ansible_user
    assert seen["user"] == user != "root"
    assert pwd.getpwnam(user).pw_uid != 0
    refused = {name: rc for name, rc in seen["attempts"].items() if rc != 0}
    assert refused == seen["attempts"], f"the Ansible account reached: {seen['attempts']}"
    assert len(seen["attempts"]) == len(probes)
    # The runner closed the data directory before the run.
    assert stat.S_IMODE(data.stat().st_mode) == 0o711
    assert stat.S_IMODE(secret_key.stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "devcloud").stat().st_mode) & 0o007 == 0
    # And the run's folder belongs to that account alone.
    (run_dir,) = runner.runs_dir.glob("privileges-privileges-*")
    info = run_dir.stat()
    assert info.st_uid == pwd.getpwnam(user).pw_uid and stat.S_IMODE(info.st_mode) == 0o700
    assert not any(e.type == "ansible.privileges" for e in events), "no 'not dropped' warning as root"


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="checks the account from root")
def test_the_ansible_account_cannot_use_sudo_on_the_controller() -> None:
    user = get_settings().ansible_user
    AnsibleRunner(playbooks_dir=FIXTURES, runs_dir=Path(tempfile.gettempdir()))  # creates the account
    shell = pwd.getpwnam(user).pw_shell
    assert shell.endswith("nologin"), shell
    probe = subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--no-new-privs", "id", "-u"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() != "0"
