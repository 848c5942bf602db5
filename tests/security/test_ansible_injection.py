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
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ansible.runner import AnsibleRunner
from orchestrator.bootstrap import noop_adapters
from orchestrator.config import get_settings
from orchestrator.ports import PlaybookRun, ProgressEvent
from tests.cloud.conftest import require
from tests.cloud.test_playbooks import Lab, lab  # noqa: F401  (the `lab` fixture: machines of the local data centre)

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
        label=f"injection-{uuid.uuid4().hex[:8]}",
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
    (run_dir,) = runner.runs_dir.glob(f"{run.label}-echo-*")
    assert not (run_dir / "env" / "tonle-vars.yml").exists() and not (run_dir / "files").exists()


@pytest.mark.integration
def test_a_hostile_host_name_or_group_is_refused_before_ansible_runs(open_dir: Path) -> None:
    from orchestrator.ports import StepFailed

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
    label = f"privileges-{uuid.uuid4().hex[:8]}"
    events: list[ProgressEvent] = []
    result = runner.run(
        PlaybookRun(
            playbook="privileges",
            hosts={"self": {"address": "127.0.0.1", "ansible_connection": "local",
                            "ansible_python_interpreter": LOCAL_PYTHON}},
            extra_vars={"target_dir": str(target), "probes": probes},
            label=label,
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
    (run_dir,) = runner.runs_dir.glob(f"{label}-privileges-*")
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


# --- on a real machine of the local data centre ----------------------------------------------


@pytest.fixture(scope="module")
def machine_host() -> None:
    """Before `lab`: this host can run the local data centre's machines, or the test skips (fails
    under TONLE_CLOUD_REQUIRED=1, see tests/cloud/conftest.py)."""
    require(os.geteuid() == 0, "devcloud machines need root (nspawn, bridges, nftables)")
    for tool in ("ssh", "ssh-keyscan"):
        require(shutil.which(tool) is not None, f"needs {tool} (apt-get install openssh-client)")


@pytest.mark.cloud
@pytest.mark.machines
@pytest.mark.timeout(1500)
def test_web_and_cms_roles_put_template_payloads_on_the_server_as_literal_text(
    machine_host: None,
    lab: Lab,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    open_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The catalogue's schemas refuse template delimiters in free text; this drives the runner
    directly, as if one got through, to prove the runner's own defence."""
    import html
    import logging
    import ssl

    import httpx

    from tests.cloud.test_playbooks import ALIAS, DOMAIN, PLAYBOOKS, Site, base_vars, errors, make_tls, ssh, visit

    caplog.set_level(logging.DEBUG, logger="tonle")
    marker = open_dir / "pwned"
    touch = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    ministry = "{# c #} {% for x in range(3) %}x{% endfor %} {{ 7 * 7 }} !unsafe"
    title = f"{touch} {{% for x in range(3) %}}x{{% endfor %}} {{# c #}} !unsafe"
    email = "{{7*7}}@health.gov.example"
    db_password = f"{touch}'\"$db-do-not-log"
    admin_password = f"{{{{ query('pipe', 'id > {marker}') }}}}$adm-do-not-log"
    address = lab.boot(40)
    tls = make_tls(tmp_path, [DOMAIN, ALIAS])
    service_id = f"svc-{uuid.uuid4().hex[:8]}"
    label = f"inject-{service_id}"
    parameters = {"name": touch, "domain": DOMAIN, "aliases": [ALIAS], "php_version": "8.2", "admin_email": email}
    extra_vars = base_vars("web-hosting", "small", parameters, service_id)
    extra_vars["tonle"]["ministry"] = ministry
    secret_vars: dict[str, Any] = {
        "tls": {"cert_pem": tls.cert_pem, "key_pem": tls.key_pem, "ca_pem": tls.ca_pem},
        "log_shipping": {"endpoint": ""},
    }
    site = Site(
        runner=AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs"),
        hosts={"web": {"address": address, "user": "debian", "groups": ["web"], "volumes": {}, "note": touch}},
        extra_vars=extra_vars,
        secret_vars=secret_vars,
        key=lab.key,
        label=label,
    )

    # Web hosting: the default page names the ministry it was given, as text.
    for playbook in ("baseline", "web"):
        result, events = site.run(playbook)
        assert result.ok, f"{playbook}: {result.failures}\n{errors(events)}"
    page = visit(address, DOMAIN, tls)
    assert page.status_code == 200 and f"for {ministry}." in page.text, page.text[:600]
    # An upload whose name is a payload: the server records the name the orchestrator made.
    upload = open_dir / "{{ lookup('pipe', 'id') }}.tar.gz"
    subprocess.run(["tar", "-czf", str(upload), "-C", str(FIXTURES), "echo.yml"], check=True)
    result, events = site.run("web_deploy_content", {"archive": upload}, action={"name": "deploy-content"})
    assert result.ok, errors(events)
    release = ssh(lab.key, address, f"cat /var/www/{DOMAIN}/current/.tonle-release")
    assert json.loads(release.stdout)["archive"] == "archive", release

    # The CMS on the same machine: title, admin e-mail and both passwords are payloads.
    parameters.update({"site_title": title, "locale": "en_US"})
    site.hosts["web"]["groups"] = ["web", "cms"]
    site.secret_vars["secrets"] = {"cms_db_password": db_password, "cms_admin_password": admin_password}
    for playbook in ("web", "cms"):
        result, events = site.run(playbook)
        assert result.ok, f"{playbook}: {result.failures}\n{errors(events)}"
    stored = ssh(
        lab.key,
        address,
        'sudo mariadb -N -B -r -e "SELECT option_value FROM wordpress.wp_options'
        " WHERE option_name IN ('admin_email', 'blogname') ORDER BY option_name\"",
    )
    # WordPress keeps the title HTML-escaped (its own sanitising); the text is the payload's.
    assert [html.unescape(line) for line in stored.stdout.splitlines()] == [email, title], stored
    front = visit(address, DOMAIN, tls)
    assert front.status_code == 200 and "{% for x in range(3) %}x{% endfor %} {# c #}" in front.text, front.text[:800]
    # WordPress takes the admin password exactly as it was generated.
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    with httpx.Client(verify=context, timeout=30) as client:
        answer = client.post(
            f"https://{address}/wp-login.php",
            headers={"Host": DOMAIN, "Cookie": "wordpress_test_cookie=WP%20Cookie%20check"},
            data={"log": "admin", "pwd": admin_password, "wp-submit": "Log In", "testcookie": "1"},
            extensions={"sni_hostname": DOMAIN},
        )
    assert answer.status_code == 302, answer.text[:500]

    assert not marker.exists(), "a payload ran a command on the controller"

    # Secrets scan: events, the runs' artifacts and the log hold none of what was passed.
    secrets = [
        tls.key_pem.splitlines()[1],
        db_password,
        admin_password,
        lab.key.private.read_text().splitlines()[1],
    ]
    events_text = json.dumps([e.__dict__ for e in site.events], default=str)
    files = [p for p in site.runner.runs_dir.glob(f"{label}-*/**/*") if p.is_file()]
    assert files, "the runs kept their artifacts"
    for secret in secrets:
        assert secret not in events_text, "a secret reached the events"
        assert secret not in caplog.text, "a secret reached the log"
        for path in files:
            assert secret not in path.read_text(errors="replace"), f"a secret was left in {path}"


# --- what ministries see when something breaks ------------------------------------------------


@pytest.mark.integration
def test_an_unexpected_error_shows_ministries_no_path_or_trace(
    client: Any, tenant: Any, platform: Any, work: Any
) -> None:
    """The engine is a test double at its boundary: it fails the way a bug would, naming files."""
    from orchestrator.jobs import queue
    from orchestrator.noop import NoopEngine
    from orchestrator.ports import EventSink, StackSpec, StepFailed
    from tests.conftest import order_and_approve

    data_dir = get_settings().resolved_data_dir
    leaked = [str(data_dir), str(REPO), "Traceback", "KeyError", "secret.key"]

    class BuggyEngine(NoopEngine):
        def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
            raise KeyError(f"{data_dir}/secret.key: {REPO}/pulumi_embedded/engine.py")

    class PathFailingEngine(NoopEngine):
        def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
            raise StepFailed(f"stack program not found: no {REPO}/stacks/web_hosting.py")

    try:
        for engine, expected in ((BuggyEngine(), "internal error"), (PathFailingEngine(), "stack program not found")):
            queue.set_adapters(noop_adapters(get_settings(), engine=engine))
            approved = order_and_approve(client, tenant, platform)
            work()
            url = f"/v1/operations/{approved['operation_id']}"
            operation = client.get(url, headers=tenant.requester.headers).json()
            assert operation["status"] == "failed" and operation["failed_step"] == "apply", operation
            assert expected in operation["error"], operation["error"]
            shown = json.dumps(operation) + client.get(f"{url}/events", headers=tenant.requester.headers).text
            for text in leaked:
                assert text not in shown, f"{text!r} shown to the ministry: {shown[:2000]}"
    finally:
        queue.set_adapters(None)


@pytest.mark.cloud
@pytest.mark.machines
@pytest.mark.timeout(600)
def test_pinned_host_keys_let_the_right_server_in_and_keep_an_impostor_out(
    machine_host: None,
    lab: Lab,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    address = lab.boot(41)
    scanned = subprocess.run(
        ["ssh-keyscan", "-T", "10", "-t", "ed25519", address], capture_output=True, text=True, check=True
    ).stdout
    assert scanned.strip(), "the machine offers an ed25519 host key"
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    kind, key = impostor.with_suffix(".pub").read_text().split()[:2]
    wrong = f"{address} {kind} {key}\n"
    runner = AnsibleRunner(playbooks_dir=FIXTURES, runs_dir=tmp_path / "runs")

    def ping(known_hosts: str | None) -> tuple[bool, list[ProgressEvent]]:
        events: list[ProgressEvent] = []
        result = runner.run(
            PlaybookRun(
                playbook="ping",
                hosts={"web": {"address": address, "user": "debian"}},
                ssh_private_key=lab.key.private.read_text(),
                known_hosts=known_hosts,
                label="hostkeys",
            ),
            events.append,
        )
        return result.ok, events

    assert ping(scanned)[0], "the pinned key is the server's: the run goes through"
    ok, events = ping(wrong)
    assert not ok, "a server whose key is not the pinned one is refused"
    assert any(e.data.get("outcome") == "unreachable" for e in events), [e.message for e in events]
    assert ping(None)[0], "no pinned key: today's behaviour, unchecked"
