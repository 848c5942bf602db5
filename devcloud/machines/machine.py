"""One machine: a systemd-nspawn container booting systemd, in its own network namespace,
on its own overlayfs copy-on-write layer over a shared read-only image tree.

No Nova here: tests and `nova_driver` both drive machines through this module. Every piece of
state lives on disk in the instance directory (see `layout`), so any process can ask about or
act on any machine, and a restarted nova-compute finds its machines as it left them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devcloud.machines import net, statefile
from devcloud.machines._proc import ok, run
from devcloud.machines.cgroups import remove_cgroups
from devcloud.machines.host import ACNG_PORT
from devcloud.machines.image import GUEST_INIT
from devcloud.machines.layout import Layout

log = logging.getLogger("devcloud.machines.machine")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_USER = "debian"
CONSOLE_TAIL = 256 * 1024
#: The guest agent's once-per-machine markers that its systemd units test (image.EARLY_UNIT).
FIRST_BOOT_MARKERS = ("var/lib/tonle/early.done", "var/lib/tonle/final.done")


class MachineError(RuntimeError):
    pass


@dataclass(frozen=True)
class MachineSpec:
    """What a machine is made of; Nova's driver fills it from the instance and network_info."""

    name: str  # unique, stable: the Nova instance uuid
    hostname: str
    nics: Sequence[net.Nic]
    lower: Path  # read-only root filesystem tree shared by machines of one image
    authorized_keys: str = ""  # for the default user `debian`
    user_data: bytes | None = None  # raw, as passed to Nova (already base64-decoded)
    extra: dict[str, str] = field(default_factory=dict)  # free-form, kept in state.json


class Machine:
    def __init__(self, layout: Layout, name: str) -> None:
        self.layout = layout
        self.name = name
        self.dir = layout.instance_dir(name)

    # --- on-disk state ---------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @property
    def netns(self) -> str:
        return net.netns_name(self.name)

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    def exists(self) -> bool:
        return self.state_file.exists()

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            raise MachineError(f"machine {self.name} does not exist ({self.state_file})") from None

    def _update(self, **changes: object) -> None:
        statefile.update(self.state_file, **changes)

    def nics(self) -> list[net.Nic]:
        return [net.Nic.from_json(n) for n in self.state().get("nics", [])]

    def extra(self) -> dict[str, str]:
        """The caller's own keys (Nova: host, instance_name)."""
        return dict(self.state().get("extra") or {})

    def set_nics(self, nics: Sequence[net.Nic]) -> None:
        self._update(nics=[n.to_json() for n in nics])

    # --- lifecycle -------------------------------------------------------------------------
    def create(self, spec: MachineSpec) -> None:
        """Lay out the instance directory, mount its overlay, personalise it, plug its NICs.
        Does not start it."""
        if self.exists():
            raise MachineError(f"machine {self.name} already exists in {self.dir}")
        for sub in ("upper", "work", "rootfs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._update(
            name=self.name,
            hostname=spec.hostname,
            lower=str(spec.lower),
            power="shutdown",
            desired="stopped",
            created_at=time.time(),
            extra=spec.extra,
            nics=[n.to_json() for n in spec.nics],
            nspawn_argv=self._nspawn_argv(spec.hostname),
        )
        self.ensure_mounted()
        _personalise(self.rootfs, spec)
        self.plug()
        log.info("created machine %s (%s)", self.name, spec.hostname)

    def _nspawn_argv(self, hostname: str) -> list[str]:
        return [
            "systemd-nspawn",
            "--quiet",
            "--boot",
            f"--directory={self.rootfs}",
            f"--machine=tonle-{self.name}"[:74],
            f"--hostname={hostname}",
            f"--network-namespace-path=/run/netns/{self.netns}",
            "--capability=CAP_NET_ADMIN",  # nftables / ip inside the guest, for playbooks
            # The host runs no systemd-machined and no host systemd to make a scope for us.
            "--register=no",
            "--keep-unit",
            "--link-journal=no",
            "--resolv-conf=off",
            "--timezone=off",
            "--console=read-only",  # guest console -> nspawn's stdout -> console.log
            "--setenv=SYSTEMD_COLORS=0",
        ]

    def ensure_mounted(self) -> None:
        if os.path.ismount(self.rootfs):
            return
        lower = str(self.state()["lower"])
        if not Path(lower, "etc").is_dir():
            raise MachineError(f"image tree {lower} of machine {self.name} is missing")
        run(
            [
                "mount",
                "-t",
                "overlay",
                f"tonle-{self.name}"[:60],
                "-o",
                f"lowerdir={lower},upperdir={self.dir / 'upper'},workdir={self.dir / 'work'}",
                str(self.rootfs),
            ]
        )

    def plug(self) -> None:
        for i, nic in enumerate(self.nics()):
            net.plug(self.layout, self.netns, i, nic)

    def unplug(self) -> None:
        for nic in self.nics():
            net.unplug(self.layout, nic)

    def start(self, wait: float = 15.0) -> None:
        """Boot the machine under a detached supervisor; returns once its systemd runs."""
        self._update(desired="running")
        if self.supervisor_pid():
            return
        self.ensure_mounted()
        self.plug()
        with open(self.dir / "supervisor.log", "ab") as out:
            # setsid --fork: the supervisor gets its own session and is no child of ours, so
            # it outlives nova-compute and leaves no zombie behind in it.
            subprocess.run(
                ["setsid", "--fork", sys.executable, "-m", "devcloud.machines.supervisor", str(self.dir)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                cwd="/",
            )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.power() == "running" and self.guest_pid():
                log.info("machine %s started", self.name)
                return
            time.sleep(0.05)
        raise MachineError(
            f"machine {self.name} did not start within {wait:.0f}s; see {self.dir}/supervisor.log "
            f"and {self.console_log}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Clean power-off (the guest's systemd shuts down); forced after `timeout` seconds."""
        if self.exists():
            self._update(desired="stopped")
        pid = self.supervisor_pid()
        if pid and timeout <= 0:
            os.kill(pid, signal.SIGUSR2)  # no clean shutdown asked for
            if not _wait_gone(pid, 10):
                os.kill(pid, signal.SIGKILL)
        elif pid:
            os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout):
                log.warning("machine %s did not power off in %.0fs; killing it", self.name, timeout)
                os.kill(pid, signal.SIGUSR2)
                if not _wait_gone(pid, 10):
                    os.kill(pid, signal.SIGKILL)
        self._kill_strays()

    def _kill_strays(self) -> None:
        """A supervisor that was SIGKILLed leaves nspawn running: end it by its pid."""
        nspawn = self.nspawn_pid()
        if nspawn:
            guest = self.guest_pid()
            if guest:
                os.kill(guest, signal.SIGKILL)
            os.kill(nspawn, signal.SIGKILL)
            _wait_gone(nspawn, 10)
        if self.exists():
            self._update(power="shutdown", nspawn_pid=None)

    def reboot(self, hard: bool = False, timeout: float = 60.0) -> None:
        """Soft: ctrl-alt-del to the guest's systemd (it reboots itself, nspawn exits 133, the
        supervisor starts it again). Hard: kill and start again. Returns once it runs again."""
        pid = self.supervisor_pid()
        if not pid:
            self.start()
            return
        old = self.nspawn_pid()
        os.kill(pid, signal.SIGUSR1 if hard else signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.nspawn_pid()
            if now and now != old and self.guest_pid():
                return
            if not self.supervisor_pid():
                break
            time.sleep(0.1)
        if not hard:
            log.warning("machine %s did not reboot softly in %.0fs; hard reboot", self.name, timeout)
            self.reboot(hard=True)
            return
        raise MachineError(f"machine {self.name} did not come back from a reboot; see {self.dir}")

    def destroy(self) -> None:
        """Power off at once and remove everything: processes, veths, netns, mount, files."""
        if not self.dir.exists():
            return
        self.stop(timeout=0)
        remove_cgroups(self.name)  # the supervisor does it, unless it was killed
        if self.exists():
            self.unplug()
        net.delete_netns(self.netns)
        if os.path.ismount(self.rootfs) and not ok(["umount", str(self.rootfs)]):
            run(["umount", "--lazy", str(self.rootfs)], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        log.info("destroyed machine %s", self.name)

    # --- observation -----------------------------------------------------------------------
    def supervisor_pid(self) -> int | None:
        return _pid_with(self.dir / "supervisor.pid", [b"devcloud.machines.supervisor", str(self.dir).encode()])

    def nspawn_pid(self) -> int | None:
        if not self.exists():
            return None
        pid = self.state().get("nspawn_pid")
        if not isinstance(pid, int):
            return None
        return pid if _cmdline_has(pid, [b"systemd-nspawn", str(self.rootfs).encode()]) else None

    def guest_pid(self) -> int | None:
        """Host PID of the guest's systemd (nspawn's only child)."""
        nspawn = self.nspawn_pid()
        if not nspawn:
            return None
        try:
            kids = Path(f"/proc/{nspawn}/task/{nspawn}/children").read_text().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def power(self) -> str:
        """running | shutdown | crashed | missing — from processes and state.json, not memory."""
        if not self.exists():
            return "missing"
        if self.supervisor_pid() and self.nspawn_pid():
            return "running"
        p = str(self.state().get("power", "shutdown"))
        return "crashed" if p == "crashed" else "shutdown"

    def console(self, limit: int = CONSOLE_TAIL) -> bytes:
        try:
            with open(self.console_log, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - limit))
                return fh.read()
        except FileNotFoundError:
            return b""

    def memory_bytes(self) -> int:
        """Memory of the guest's processes: the sum of their PSS (shared pages, such as the
        libraries of the common lower layer, counted proportionally, not once per process)."""
        guest = self.guest_pid()
        if not guest:
            return 0
        total, stack = 0, [guest]
        while stack:
            pid = stack.pop()
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                for task in Path(f"/proc/{pid}/task").iterdir():
                    stack += [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
        return total


def list_machines(layout: Layout) -> list[Machine]:
    d = layout.instances_dir
    if not d.is_dir():
        return []
    return [Machine(layout, p.name) for p in sorted(d.iterdir()) if (p / "state.json").exists()]


# --- helpers -----------------------------------------------------------------------------


def _cmdline_has(pid: int, needles: list[bytes]) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie is gone for our purposes
        return False
    return all(n in cmd for n in needles)


def _pid_with(pidfile: Path, needles: list[bytes]) -> int | None:
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return None
    return pid if _cmdline_has(pid, needles) else None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if not _cmdline_has(pid, [b""]):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _personalise(root: Path, spec: MachineSpec) -> None:
    """Write what makes this machine itself into its upper layer, before its first boot."""

    def write(rel: str, data: str | bytes, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink():
            p.unlink()
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        p.chmod(mode)
        os.chown(p, *owner)

    fixed = [ip for nic in spec.nics for s in nic.subnets for ip in s.fixed_ips]
    write("etc/hostname", spec.hostname + "\n")
    # The hostname must resolve without DNS (sudo and Ansible fact gathering stall otherwise).
    hosts = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{spec.hostname}"]
    hosts += [f"{ip}\t{spec.hostname}" for ip in fixed[:1]]
    hosts += ["::1\tlocalhost ip6-localhost ip6-loopback", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"]
    write("etc/hosts", "\n".join(hosts) + "\n")
    try:
        machine_id = uuid.UUID(spec.name).hex
    except ValueError:
        machine_id = uuid.uuid4().hex
    write("etc/machine-id", machine_id + "\n", 0o444)
    write("etc/resolv.conf", resolv_conf(spec.nics))

    # Host keys are the guest's own, made at its first boot (guest_init), which publishes them on
    # the console; none baked into an image may be shared by every machine made from it.
    for old in (root / "etc/ssh").glob("ssh_host_*"):
        old.unlink()

    uid, gid = _user_ids(root, DEFAULT_USER)
    if spec.authorized_keys.strip():
        (root / f"home/{DEFAULT_USER}/.ssh").mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chown(root / f"home/{DEFAULT_USER}/.ssh", uid, gid)
        write(f"home/{DEFAULT_USER}/.ssh/authorized_keys", spec.authorized_keys.strip() + "\n", 0o600, (uid, gid))
    # The user data agent comes from this checkout, so editing it needs no image rebuild.
    write("usr/local/sbin/tonle-init", GUEST_INIT.read_bytes(), 0o755)
    # First-boot state is per instance, as cloud-init keys it on the instance id: an image made
    # from another machine (a snapshot) carries that machine's, which must not count here.
    write("var/lib/tonle/instance-id", spec.name + "\n", 0o644)
    for stale in FIRST_BOOT_MARKERS:
        (root / stale).unlink(missing_ok=True)
    if spec.user_data:
        write("var/lib/tonle/user-data", spec.user_data, 0o600)
    else:  # none given: an image's leftover must not run as this machine's
        (root / "var/lib/tonle/user-data").unlink(missing_ok=True)
    gateway = next((s.gateway for nic in spec.nics[:1] for s in nic.subnets if s.gateway and s.version == 4), None)
    if gateway:
        # apt inside the guest goes through the host's apt-cacher-ng, reached at the gateway.
        write("etc/apt/apt.conf.d/01devcloud-proxy", f'Acquire::http::Proxy "http://{gateway}:{ACNG_PORT}/";\n')


#: glibc reads at most three `nameserver` lines.
MAX_NAMESERVERS = 3


def resolv_conf(nics: Sequence[net.Nic]) -> str:
    """The guest's /etc/resolv.conf from its subnets' `dns_nameservers`, in NIC order, as
    cloud-init renders Neutron's network config; with none, a resolver that fails at once."""
    servers = list(dict.fromkeys(server for nic in nics for s in nic.subnets for server in s.dns))
    if not servers:
        return "# devcloud: no resolver for instances\noptions timeout:1 attempts:1\n"
    lines = ["# devcloud: the subnets' dns_nameservers (Neutron)"]
    lines += [f"nameserver {server}" for server in servers[:MAX_NAMESERVERS]]
    return "\n".join(lines) + "\n"


def _user_ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == user:
            return int(parts[2]), int(parts[3])
    raise MachineError(f"image has no user {user!r}; was it built by devcloud.machines.image?")
