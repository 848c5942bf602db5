"""The offerings' playbooks, run for real: devcloud machines, AnsibleRunner over SSH.

Boots real machines with the machine layer (no OpenStack needed), bakes each as the image
pipeline does (image_web, image_cms), then runs the web-hosting playbooks (baseline, web in
one run, then the day-2 ones) and the CMS ones (baseline, web, cms) through the orchestrator's
`AnsibleRunner` with the extra-vars contract of playbooks/README.md and a test CA made here,
and checks as a visitor would: HTTPS on the site's domain (SNI and Host, verified against the
test CA) at the machine's address shows the expected page; the configure runs install nothing
and a second run of every playbook changes nothing; a broken run fails with Ansible's error in
the events; no secret reaches an event.

`backup_agent` needs an S3 endpoint the machine can reach; it runs only when
TONLE_TEST_S3_ENDPOINT (plus _BUCKET, _ACCESS_KEY, _SECRET_KEY) names one, e.g. a
`moto_server` bound to the lab bridge's gateway address.

Needs root (nspawn, bridges): skips with that message otherwise. The first run of the machine
layer builds the Debian base image (about 90 s). Package installs go through the host's
apt-cacher-ng, so the first run here also fills that cache (a few minutes more).
Addresses are from 198.18.0.0/15 (benchmarking range), on bridges of the test's own.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import shutil
import ssl
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orchestrator.ansible.runner import AnsibleRunner
from orchestrator.ports import PlaybookResult, PlaybookRun, ProgressEvent
from tests.cloud.conftest import devcloud_up, machines_in_use, unavailable

pytestmark = [
    pytest.mark.cloud,
    pytest.mark.machines,
    pytest.mark.skipif(os.geteuid() != 0, reason="devcloud machines need root (nspawn, bridges, nftables)"),
    pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client (apt-get install openssh-client)"),
    pytest.mark.skipif(shutil.which("apt-get") is None, reason="the machine layer needs a Debian host (apt-get)"),
]

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
SSH_READY_S = 120.0
DOMAIN = "portal.health.gov.example"
ALIAS = "www.health.gov.example"
CMS_DOMAIN = "news.education.gov.example"
SITE_TITLE = "Ministry of Education news"
DB_PASSWORD = "db-Pa55'with\\quote$-do-not-log"
ADMIN_PASSWORD = "adm-Pa55'\"$-do-not-log"


# --- the machines ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    private: Path
    public: str


@dataclass
class Lab:
    layout: Any  # devcloud.machines.layout.Layout
    prefix: str  # "198.18.N."
    network_id: str
    key: Key
    machines: list[Any] = field(default_factory=list)  # devcloud.machines.machine.Machine

    def boot(self, octet: int) -> str:
        """A fresh Debian 12 machine at prefix+octet, SSH-ready as `debian` with our key."""
        from devcloud.machines import net
        from devcloud.machines.image import base_rootfs
        from devcloud.machines.machine import Machine, MachineSpec

        machine = Machine(self.layout, f"test-{uuid.uuid4()}")
        self.machines.append(machine)
        address = f"{self.prefix}{octet}"
        nic = net.Nic(
            port_id=uuid.uuid4().hex,
            mac=f"fa:16:3e:{os.urandom(1).hex()}:{os.urandom(1).hex()}:{octet:02x}",
            network_id=self.network_id,
            subnets=(net.Subnet(f"{self.prefix}0/24", f"{self.prefix}1", (address,)),),
        )
        machine.create(
            MachineSpec(
                name=machine.name,
                hostname=f"pb{octet}-{machine.name[5:13]}",
                nics=[nic],
                lower=base_rootfs(self.layout.data_dir),
                authorized_keys=self.key.public,
            )
        )
        machine.start()
        wait_ssh(self.key, address, machine)
        return address


def ssh(key: Key, address: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key.private), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "BatchMode=yes", "-o", "ConnectTimeout=2", "-o", "LogLevel=ERROR", f"debian@{address}", command],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def wait_ssh(key: Key, address: str, machine: Any) -> None:
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < SSH_READY_S:
        proc = ssh(key, address, "true")
        if proc.returncode == 0:
            return
        last = proc.stderr.strip()
        time.sleep(0.3)
    console = machine.console(limit=3000).decode(errors="replace")
    pytest.fail(f"no SSH to debian@{address} within {SSH_READY_S:.0f}s: {last}\nconsole tail:\n{console}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with machines_in_use():  # from the host's preparation on, until the machines are gone
        yield from _lab(tmp_path_factory)


def _lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    try:
        from devcloud.context import data_root
        from devcloud.machines import host, prepare_host
        from devcloud.machines.bench import free_lab_octet
        from devcloud.machines.layout import Layout
    except ImportError as exc:  # pragma: no cover - depends on the checkout
        unavailable(f"the devcloud machine layer cannot be imported here: {exc}")
    data_dir = data_root()
    # Without the local data centre up (the security tier run alone), prepare_host starts
    # apt-cacher-ng for this module alone: it is stopped at the end, as `devcloud down` would,
    # unless a cloud came up meanwhile and uses it.
    acng_was_running = host.apt_cacher_running(Layout(data_dir))
    try:
        prepare_host(data_dir)  # idempotent; builds the base image the first time
    except (PermissionError, FileNotFoundError, subprocess.CalledProcessError) as exc:
        unavailable(f"the machine layer cannot run on this host: {exc}")
    path = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    key = Key(path, path.with_suffix(".pub").read_text().strip())
    # A third octet no other lab on the host uses: another test process may have one up.
    lab = Lab(Layout(data_dir), f"198.18.{free_lab_octet()}.", f"pbtest{uuid.uuid4().hex}", key)
    yield lab
    for machine in lab.machines:  # only the machines this module created
        machine.destroy()
    if not acng_was_running and not devcloud_up():
        host.stop_apt_cacher(lab.layout)


# --- the test CA and certificates -----------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    ca_pem: str
    cert_pem: str
    key_pem: str
    ca_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tls(directory: Path, names: list[str]) -> Tls:
    """A CA standing in for the data centre's internal CA, and a leaf for `names`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Tonle test internal CA"))
        .issuer_name(_name("Tonle test internal CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    ca_file = directory / f"ca-{names[0]}.pem"
    ca_file.write_text(ca_pem)
    return Tls(
        ca_pem=ca_pem,
        cert_pem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        ca_file=ca_file,
    )


# --- running playbooks and visiting sites ---------------------------------------------------


@dataclass
class Site:
    """One service's hosts and vars, as the pipeline's configure step would pass them."""

    runner: AnsibleRunner
    hosts: dict[str, dict[str, Any]]
    extra_vars: dict[str, Any]
    secret_vars: dict[str, Any]
    key: Key
    events: list[ProgressEvent] = field(default_factory=list)
    label: str = "test"

    def run(
        self, playbook: str, files: dict[str, Path] | None = None, then: tuple[str, ...] = (), **extra: Any
    ) -> tuple[PlaybookResult, list[ProgressEvent]]:
        """`then`: further playbooks in the same run, as the configure step runs an offering's."""
        events: list[ProgressEvent] = []
        t0 = time.monotonic()
        result = self.runner.run(
            PlaybookRun(
                playbook=playbook,
                hosts=self.hosts,
                extra_vars={**self.extra_vars, **extra},
                secret_vars=self.secret_vars,
                ssh_private_key=self.key.private.read_text(),
                label=self.label,
                files=files or {},
                then=then,
            ),
            events.append,
        )
        self.events.extend(events)
        print(
            f"{' + '.join((playbook, *then))}: ok={result.ok} changed={result.changed} in {time.monotonic() - t0:.1f}s"
        )
        return result, events

    def converge(self, playbook: str, files: dict[str, Path] | None = None, **extra: Any) -> None:
        """Run once (must succeed), then again: the second run must change nothing."""
        first, events = self.run(playbook, files, **extra)
        assert first.ok, f"{playbook} failed: {first.failures}\n{errors(events)}"
        second, events = self.run(playbook, files, **extra)
        assert second.ok, f"{playbook} failed on its second run: {second.failures}\n{errors(events)}"
        changed = [e.message for e in events if e.data.get("changed")]
        assert second.changed == 0, f"{playbook}'s second run changed {second.changed} thing(s): {changed}"


def errors(events: list[ProgressEvent]) -> str:
    return "\n".join(e.message for e in events if e.level == "error")


def visit(address: str, host: str, tls: Tls, path: str = "/", **kwargs: Any) -> httpx.Response:
    """GET https://<host><path> from the machine at `address`: SNI and Host are the domain,
    and the certificate must verify against the test CA, as a browser trusting it would."""
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    with httpx.Client(verify=context, timeout=20) as client:
        return client.get(
            f"https://{address}{path}", headers={"Host": host}, extensions={"sni_hostname": host}, **kwargs
        )


def base_vars(offering: str, plan: str, parameters: dict[str, Any], service_id: str) -> dict[str, Any]:
    return {
        "tonle": {
            "ministry": "health",
            "service_id": service_id,
            "request_id": f"req-{service_id}",
            "offering": offering,
            "plan": plan,
            "sizes": {"volume_gb": 20},
        },
        "parameters": parameters,
        "endpoints": {},
    }


def s3_backup_vars() -> dict[str, Any] | None:
    endpoint = os.environ.get("TONLE_TEST_S3_ENDPOINT")
    if not endpoint:
        return None
    return {
        "s3_endpoint": endpoint,
        "bucket": os.environ.get("TONLE_TEST_S3_BUCKET", "dr-backups"),
        "access_key": os.environ.get("TONLE_TEST_S3_ACCESS_KEY", "test"),
        "secret_key": os.environ.get("TONLE_TEST_S3_SECRET_KEY", "test"),
        "restic_password": "restic-Pa55-do-not-log",
        "retention": {"daily": 7, "weekly": 4, "monthly": 6},
    }


def assert_no_secret_in(site: Site, secrets: list[str]) -> None:
    everything = json.dumps([e.__dict__ for e in site.events], default=str)
    for secret in secrets:
        assert secret not in everything, "a secret reached the events"
    # This site's runs (the runner may keep them in the Ansible account's home).
    for path in site.runner.runs_dir.glob(f"{site.label}-*/**/*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            for secret in secrets:
                assert secret not in text, f"a secret was left in {path}"


def install_task_names(*roles: str) -> set[str]:
    """The names of the tasks of these roles' install phases (and apt's list refresh)."""
    import yaml

    names: set[str] = set()
    for role in (*roles, "apt_lists"):
        for task in yaml.safe_load((PLAYBOOKS / "roles" / role / "tasks" / "install.yml").read_text()):
            names.add(task["name"])
    return names


def rekey(machine: Any) -> None:
    """What a clone's first boot does for a sealed image (devcloud's guest init, cloud-init):
    new SSH host keys, so the server takes SSH connections again."""
    pid = machine.guest_pid()
    assert pid, f"machine {machine.name} is not running"
    subprocess.run(["nsenter", "-t", str(pid), "-a", "ssh-keygen", "-A"], check=True, capture_output=True)


def bake(site: Site, machine: Any, address: str, image: str) -> dict[str, Any]:
    """image_<image>.yml on a base server, as the image pipeline runs it before its snapshot
    (the snapshot itself is tests/cloud/test_images.py's); returns the image's record."""
    t0 = time.monotonic()
    baked, events = site.run(f"image_{image}", image=image)
    assert baked.ok, f"image_{image} failed: {baked.failures}\n{errors(events)}"
    rekey(machine)
    record: dict[str, Any] = json.loads(ssh(site.key, address, "cat /etc/tonle/image.json").stdout)
    sealed = ssh(site.key, address, "ls /var/lib/apt/lists | grep -c Packages; wc -c < /etc/machine-id")
    assert sealed.stdout.split() == ["0", "0"], f"image_{image} left apt lists or a machine-id: {sealed}"
    print(f"image_{image} on a base server: {time.monotonic() - t0:.1f}s")
    return record


def configure_twice(site: Site, playbooks: tuple[str, ...], install_roles: tuple[str, ...]) -> None:
    """The offering's playbooks in one run, as the configure step runs them on a baked server,
    twice: neither run refreshes apt lists or installs a package, and the second changes nothing."""
    install_tasks = install_task_names(*install_roles)
    timings = []
    for attempt in ("first", "second"):
        t0 = time.monotonic()
        result, events = site.run(playbooks[0], then=playbooks[1:])
        timings.append(time.monotonic() - t0)
        assert result.ok, f"{attempt} configure run failed: {result.failures}\n{errors(events)}"
        ran = [e.message for e in events if e.data.get("task") in install_tasks and e.data.get("outcome") != "skipped"]
        assert ran == [], f"the {attempt} run on a baked server ran install tasks: {ran}"
        tasks = [e for e in events if e.type == "ansible.task"]
        assert {e.data.get("playbook") for e in tasks} == set(playbooks), "each task event names its playbook"
    changed = [e.message for e in events if e.data.get("changed")]
    assert result.changed == 0, f"the second run on a baked server changed {result.changed} thing(s): {changed}"
    print(f"configure {' + '.join(playbooks)} on the baked server: first {timings[0]:.1f}s, second {timings[1]:.1f}s")


# --- the tests ------------------------------------------------------------------------------
# Servers here are baked first, as every order's server is when its offering has an image. The
# other path, an order on the base image whose configure step installs the packages itself, is
# run by tests/security/test_ansible_injection.py (and by the cloud tier with TONLE_TEST_IMAGES=base).


@pytest.mark.timeout(1500)
def test_web_hosting_on_a_baked_server_serves_its_domain_over_https_deploys_content_and_converges(
    lab: Lab, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    address = lab.boot(10)
    machine = lab.machines[-1]
    print(f"machine SSH-ready in {time.monotonic() - t0:.1f}s")
    tls = make_tls(tmp_path, [DOMAIN, ALIAS])
    parameters = {"name": "portal", "domain": DOMAIN, "aliases": [ALIAS], "php_version": "8.2",
                  "admin_email": "web@health.gov.example"}  # fmt: skip
    secret_vars: dict[str, Any] = {
        "tls": {"cert_pem": tls.cert_pem, "key_pem": tls.key_pem, "ca_pem": tls.ca_pem},
        "log_shipping": {"endpoint": ""},
    }
    backup = s3_backup_vars()
    if backup:
        secret_vars["backup"] = backup
    site = Site(
        runner=AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs"),
        hosts={"web": {"address": address, "user": "debian", "groups": ["web"], "volumes": {}}},
        extra_vars=base_vars("web-hosting", "small", parameters, f"svc-{uuid.uuid4().hex[:8]}"),
        secret_vars=secret_vars,
        key=lab.key,
    )

    record = bake(site, machine, address, "web")
    assert record["image_role"] == "web" and record["roles"] == ["baseline", "web", "backup_agent"]
    assert {"nginx", "php8.2-fpm", "restic", "openssh-server"} <= set(record["packages"]), record
    configure_twice(
        site, ("baseline", "web", *(("backup_agent",) if backup else ())), ("baseline", "web", "backup_agent")
    )

    page = visit(address, DOMAIN, tls)
    assert page.status_code == 200
    assert f"<h1>{DOMAIN}</h1>" in page.text, page.text[:500]
    assert "max-age=31536000" in page.headers.get("strict-transport-security", "")
    assert visit(address, ALIAS, tls).status_code == 200  # the alias is on the same site and cert
    redirect = httpx.get(f"http://{address}/some/page?x=1", headers={"Host": DOMAIN}, timeout=20)
    assert redirect.status_code == 301
    assert redirect.headers["location"] == f"https://{DOMAIN}/some/page?x=1"

    # Day 2: deploy an uploaded archive (with PHP), twice: the second changes nothing.
    archive = tmp_path / "site.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, body in {"index.html": "<h1>Vaccination campaign</h1>\n", "hello.php": "<?php echo 6 * 7;\n"}.items():
            data = body.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600  # the playbook makes it readable for nginx whatever the archive says
            tar.addfile(info, io.BytesIO(data))
    # As the pipeline's day-2 step passes an upload: the runner hands the play a copy it can
    # read, as `action.files.archive`.
    site.converge("web_deploy_content", files={"archive": archive}, action={"name": "deploy-content"})
    assert "Vaccination campaign" in visit(address, DOMAIN, tls).text
    assert visit(address, DOMAIN, tls, "/hello.php").text.strip() == "42"
    # Re-running the provisioning playbooks keeps the deployed content.
    again, _ = site.run("web")
    assert again.ok and again.changed == 0
    assert "Vaccination campaign" in visit(address, DOMAIN, tls).text

    restart, events = site.run("web_restart")
    assert restart.ok, errors(events)
    assert visit(address, DOMAIN, tls).status_code == 200

    assert_no_secret_in(site, [tls.key_pem.splitlines()[1], "restic-Pa55-do-not-log"])
    print(f"web hosting, everything: {time.monotonic() - t0:.1f}s")


@pytest.mark.timeout(1500)
def test_cms_on_a_baked_server_serves_wordpress_with_its_admin_and_converges(lab: Lab, tmp_path: Path) -> None:
    t0 = time.monotonic()
    address = lab.boot(20)
    machine = lab.machines[-1]
    tls = make_tls(tmp_path, [CMS_DOMAIN])
    parameters = {"name": "news", "domain": CMS_DOMAIN, "site_title": SITE_TITLE, "locale": "en_US",
                  "admin_email": "press@education.gov.example"}  # fmt: skip
    site = Site(
        runner=AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs"),
        # No `db` device shows up in a devcloud machine (Cinder's backend is a fake): the cms
        # role must fall back to MariaDB's directory on the root disk and say so.
        hosts={
            "web": {
                "address": address,
                "user": "debian",
                "groups": ["web", "cms"],
                "volumes": {"db": {"id": str(uuid.uuid4()), "device": "/dev/vdc"}},
            }
        },
        extra_vars=base_vars("cms", "standard", parameters, f"svc-{uuid.uuid4().hex[:8]}"),
        secret_vars={
            "tls": {"cert_pem": tls.cert_pem, "key_pem": tls.key_pem, "ca_pem": tls.ca_pem},
            "secrets": {"cms_db_password": DB_PASSWORD, "cms_admin_password": ADMIN_PASSWORD},
            "log_shipping": {},
        },
        key=lab.key,
    )
    record = bake(site, machine, address, "cms")
    assert record["image_role"] == "cms", record
    assert {"nginx", "php8.2-fpm", "mariadb-server", "wordpress"} <= set(record["packages"]), record
    configure_twice(site, ("baseline", "web", "cms"), ("baseline", "web", "cms", "backup_agent"))
    # No volume appeared, so MariaDB's data is a directory on the root disk, not a mount.
    where = ssh(
        lab.key,
        address,
        "if mountpoint -q /var/lib/mysql; then echo mounted; else echo directory; fi;"
        " sudo test -d /var/lib/mysql/wordpress && echo has-db",
    )
    assert where.stdout.split() == ["directory", "has-db"], where

    front = visit(address, CMS_DOMAIN, tls)
    assert front.status_code == 200
    assert SITE_TITLE in front.text, front.text[:500]
    login = visit(address, CMS_DOMAIN, tls, "/wp-login.php")
    assert login.status_code == 200 and 'name="log"' in login.text

    # The admin user exists with the generated password: WordPress logs it in.
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    with httpx.Client(verify=context, timeout=30) as client:
        answer = client.post(
            f"https://{address}/wp-login.php",
            # WordPress refuses logins from browsers without cookies: send its test cookie.
            headers={"Host": CMS_DOMAIN, "Cookie": "wordpress_test_cookie=WP%20Cookie%20check"},
            data={"log": "admin", "pwd": ADMIN_PASSWORD, "wp-submit": "Log In", "testcookie": "1"},
            extensions={"sni_hostname": CMS_DOMAIN},
        )
    assert answer.status_code == 302, answer.text[:500]
    assert any(c.startswith("wordpress_logged_in_") for c in answer.headers.get_list("set-cookie")), answer.headers

    assert_no_secret_in(site, [DB_PASSWORD, ADMIN_PASSWORD, tls.key_pem.splitlines()[1]])
    print(f"cms, everything: {time.monotonic() - t0:.1f}s")


@pytest.mark.timeout(600)
def test_a_broken_run_fails_with_the_ansible_error_in_its_events(lab: Lab, tmp_path: Path) -> None:
    address = lab.boot(30)
    runner = AnsibleRunner(playbooks_dir=PLAYBOOKS, runs_dir=tmp_path / "runs")
    hosts = {"web": {"address": address, "user": "debian", "groups": ["web"]}}
    parameters = {"name": "portal", "domain": DOMAIN, "admin_email": "web@health.gov.example"}

    def run(playbook: str, extra: dict[str, Any], secret: dict[str, Any]) -> tuple[PlaybookResult, str]:
        events: list[ProgressEvent] = []
        result = runner.run(
            PlaybookRun(playbook=playbook, hosts=hosts, extra_vars=extra, secret_vars=secret,
                        ssh_private_key=lab.key.private.read_text(), label="broken"),
            events.append,
        )  # fmt: skip
        return result, errors(events)

    # The orchestrator forgot the certificate: the first task says which vars are missing.
    result, error = run("web", base_vars("web-hosting", "small", parameters, "svc-broken"), {})
    assert not result.ok
    assert result.failures == ["web: Check the orchestrator passed the variables this role needs"]
    assert "missing or empty extra vars: tls.cert_pem, tls.key_pem" in error, error

    # A PHP version Debian 12 does not ship.
    tls = make_tls(tmp_path, [DOMAIN])
    bad = base_vars("web-hosting", "small", {**parameters, "php_version": "7.4"}, "svc-broken")
    result, error = run("web", bad, {"tls": {"cert_pem": tls.cert_pem, "key_pem": tls.key_pem}})
    assert not result.ok
    assert "php_version 7.4 is not available: Debian 12 ships PHP 8.2 only" in error, error

    # A deployment without its archive.
    result, error = run("web_deploy_content", base_vars("web-hosting", "small", parameters, "svc-broken"), {})
    assert not result.ok
    assert "missing or empty extra vars: action.files.archive" in error, error

    # A backup endpoint nobody answers on: restic's own error, never a new repository.
    backup = {
        "s3_endpoint": f"http://{lab.prefix}1:9",
        "bucket": "dr-backups",
        "access_key": "a",
        "secret_key": "b",
        "restic_password": "restic-Pa55-do-not-log",
        "retention": {"daily": 1, "weekly": 1, "monthly": 1},
    }
    result, error = run("backup_agent", base_vars("web-hosting", "small", parameters, "svc-broken"), {"backup": backup})
    assert not result.ok
    assert "cannot open the restic repository" in error, error
    assert "restic-Pa55-do-not-log" not in error
