"""Host preparation: Debian packages, sysctls, our nftables table, apt-cacher-ng.

Runs as root on the devcloud host. Everything here is idempotent and touches only what the
machine layer owns (its own nftables table, its own apt-cacher-ng instance and config).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import time
from pathlib import Path

from devcloud.apt import apt_get
from devcloud.machines._proc import HostCommandError, run
from devcloud.machines.layout import Layout

log = logging.getLogger("devcloud.machines.host")

HOST_PACKAGES = {  # binary -> Debian package
    "mmdebstrap": "mmdebstrap",
    "systemd-nspawn": "systemd-container",
    "apt-cacher-ng": "apt-cacher-ng",
    "ip": "iproute2",
    "nft": "nftables",
    "ssh-keygen": "openssh-client",
}
#: apt-cacher-ng's port on the host (3142 + 10000, the devcloud convention of devcloud/ports.py).
ACNG_PORT = 13142
SOURCES_DEB822 = Path("/etc/apt/sources.list.d/debian.sources")
SOURCES_LIST = Path("/etc/apt/sources.list")


def ensure_packages() -> None:
    """apt-get install whatever machine tools are missing (apt-get update first, once)."""
    missing = sorted(
        {
            pkg
            for binary, pkg in HOST_PACKAGES.items()
            if not shutil.which(binary) and not Path("/usr/sbin", binary).exists()
        }
    )
    if not missing:
        return
    log.info("installing host packages: %s", " ".join(missing))
    for args in (["update"], ["install", "-y", "--no-install-recommends", *missing]):
        result = apt_get(args)
        if result.returncode != 0:
            raise HostCommandError(["apt-get", *args], result.returncode, result.stderr or result.stdout)


def _sources() -> list[tuple[list[str], list[str]]]:
    """(URIs, suites) of every enabled Debian source of the host's own apt."""
    entries: list[tuple[list[str], list[str]]] = []
    if SOURCES_DEB822.exists():
        for stanza in SOURCES_DEB822.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                k, _, v = line.partition(":")
                fields[k.strip().lower()] = v.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                entries.append((fields.get("uris", "").split(), fields.get("suites", "").split()))
    if SOURCES_LIST.exists():
        for line in SOURCES_LIST.read_text().splitlines():
            parts = line.split("#")[0].split()
            if len(parts) >= 3 and parts[0] == "deb":
                rest = [p for p in parts[1:] if not p.startswith("[")]
                entries.append(([rest[0]], [rest[1]]))
    return entries


def debian_mirror() -> str:
    """The Debian archive URI the host's own apt uses (read at run time, never hardcoded)."""
    for uris, suites in _sources():
        if any(s in ("bookworm", "stable") for s in suites) and uris:
            return uris[0].rstrip("/")
    raise RuntimeError(
        f"no bookworm source in {SOURCES_DEB822} or {SOURCES_LIST}: "
        "cannot tell which Debian mirror to build the base image from"
    )


def security_mirror() -> str | None:
    for uris, suites in _sources():
        if any(s.endswith("-security") for s in suites) and uris:
            return uris[0].rstrip("/")
    return None


def set_sysctls() -> None:
    # Forwarding: the host routes between networks and for floating IPs. Bridged frames must
    # not go through the host's iptables/nftables ip hooks (br_netfilter), or instances on
    # one network would be NATed/filtered when they talk to each other.
    wanted = {
        "net/ipv4/ip_forward": "1",
        "net/bridge/bridge-nf-call-iptables": "0",
        "net/bridge/bridge-nf-call-ip6tables": "0",
        "net/bridge/bridge-nf-call-arptables": "0",
    }
    for key, value in wanted.items():
        p = Path("/proc/sys", key)
        if p.exists() and p.read_text().strip() != value:
            log.info("sysctl %s=%s", key.replace("/", "."), value)
            p.write_text(value)


# --- apt-cacher-ng --------------------------------------------------------------------------


def _strip_scheme(uri: str) -> str:
    return uri.split("://", 1)[-1].rstrip("/")


def _acng_conf(layout: Layout) -> str:
    mirror = debian_mirror()
    lines = [
        f"CacheDir: {layout.acng_dir / 'cache'}",
        f"LogDir: {layout.acng_dir / 'log'}",
        "SupportDir: /usr/lib/apt-cacher-ng",
        f"Port: {ACNG_PORT}",
        "BindAddress: 0.0.0.0",
        # It daemonises itself: no process of ours (nova-compute) is left as its parent.
        "ForeGround: 0",
        f"PidFile: {layout.acng_dir / 'acng.pid'}",
        "ExThreshold: 4",
        # Guests use the host's own sources (copied into the image) through this proxy. Map
        # them explicitly to the host's mirror: acng's built-in Debian backend list names
        # hosts that do not resolve in this lab.
        f"Remap-debrep: {_strip_scheme(mirror)} ; {mirror}/",
    ]
    sec = security_mirror()
    if sec:
        lines.append(f"Remap-secdeb: {_strip_scheme(sec)} ; {sec}/")
    return "\n".join(lines) + "\n"


def _pid_alive(pidfile: Path, needle: str) -> int | None:
    try:
        pid = int(pidfile.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if needle.encode() in cmdline else None


def start_apt_cacher(layout: Layout) -> None:
    d = layout.acng_dir
    for sub in ("etc", "cache", "log"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    conf = _acng_conf(layout)
    conf_file = d / "etc" / "acng.conf"
    pidfile = d / "acng.pid"
    pid = _pid_alive(pidfile, str(d / "etc"))
    if pid and conf_file.exists() and conf_file.read_text() == conf:
        return
    if pid:
        stop_apt_cacher(layout)
    if _port_open(ACNG_PORT):
        # Another devcloud data dir on this host (a second checkout, a test run) has its own
        # apt-cacher-ng on the port already. It caches the same mirror: share it.
        log.info("apt-cacher-ng of another devcloud already listens on %d; sharing it", ACNG_PORT)
        return
    conf_file.write_text(conf)
    log.info("starting apt-cacher-ng on port %d", ACNG_PORT)
    pidfile.unlink(missing_ok=True)
    run(["apt-cacher-ng", "-c", str(d / "etc")], timeout=30)
    deadline = time.monotonic() + 5
    while not (_pid_alive(pidfile, str(d / "etc")) and _port_open(ACNG_PORT)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"apt-cacher-ng did not come up on port {ACNG_PORT}; see {d / 'log'}")
        time.sleep(0.05)


def apt_proxy_url() -> str:
    """apt-cacher-ng as the host itself reaches it (guests use their gateway address)."""
    return f"http://127.0.0.1:{ACNG_PORT}/"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_apt_cacher(layout: Layout) -> None:
    pidfile = layout.acng_dir / "acng.pid"
    pid = _pid_alive(pidfile, str(layout.acng_dir / "etc"))
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def apt_cacher_running(layout: Layout) -> bool:
    return _pid_alive(layout.acng_dir / "acng.pid", str(layout.acng_dir / "etc")) is not None
