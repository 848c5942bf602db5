#!/usr/bin/python3
"""First-boot user data for devcloud machines: a small stand-in for cloud-init.

This file is copied into the base image as /usr/local/sbin/tonle-init and runs *inside* the
guest (Debian 12's python3 with python3-yaml), so it uses only the standard library and yaml.
cloud-init itself would add seconds to every boot; this covers what the orchestrator's
offerings use and says so loudly in the console log when user data asks for anything else.

Phases (two systemd oneshot units, each runs once per instance, like cloud-init's per-instance
modules: markers in /var/lib/tonle/instances/<instance id>/, the id written by the host at
spawn, so a server booted from a snapshot of another machine runs them again):
  early  before ssh.service: SSH host keys (generated, then published on the console as
         cloud-init does), users, ssh_authorized_keys, write_files, bootcmd
  final  after ssh.service:  packages, runcmd, or a `#!` script given as the whole user data
Input: /var/lib/tonle/user-data (raw, possibly gzip), written by the host at spawn.
"""

from __future__ import annotations

import base64
import gzip
import os
import pwd
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

STATE = Path("/var/lib/tonle")
USER_DATA = STATE / "user-data"
INSTANCE_ID = STATE / "instance-id"
MACHINE_ID = Path("/etc/machine-id")
DEFAULT_USER = "debian"
SSH_DIR = Path("/etc/ssh")
# Only ed25519: sshd is configured for it alone, and an RSA key costs about a second of CPU.
HOST_KEY_TYPES = ("ed25519",)
SUPPORTED = {
    "users",
    "ssh_authorized_keys",
    "write_files",
    "runcmd",
    "bootcmd",
    "packages",
    "package_update",
    "package_upgrade",
    "hostname",
    "fqdn",
    "manage_etc_hosts",
    "preserve_hostname",
    "disable_root",
    "ssh_pwauth",
}


def say(msg: str) -> None:
    # stdout goes to the journal and the console (StandardOutput=journal+console),
    # so `openstack console log show` shows what happened.
    print(f"tonle-init: {msg}", flush=True)


def load() -> tuple[str, Any]:
    """Return ("cloud-config", dict), ("script", bytes) or ("none", None)."""
    if not USER_DATA.exists():
        return "none", None
    raw = USER_DATA.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if not raw.strip():
        return "none", None
    if raw.startswith(b"#!"):
        return "script", raw
    if raw.lstrip().startswith(b"#cloud-config"):
        import yaml

        cfg = yaml.safe_load(raw.decode()) or {}
        if not isinstance(cfg, dict):
            raise SystemExit("tonle-init: #cloud-config user data is not a mapping")
        return "cloud-config", cfg
    say(f"user data of unsupported type (starts {raw[:20]!r}); ignored")
    return "none", None


def sh(argv: list[str] | str, check: bool = True) -> int:
    rc = subprocess.run(argv, shell=isinstance(argv, str), check=False).returncode
    if check and rc != 0:
        raise SystemExit(f"tonle-init: {argv!r} exited {rc}")
    return rc


def add_keys(user: str, keys: list[str]) -> None:
    if not keys:
        return
    pw = pwd.getpwnam(user)
    ssh = Path(pw.pw_dir) / ".ssh"
    ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    auth = ssh / "authorized_keys"
    existing = auth.read_text().splitlines() if auth.exists() else []
    lines = existing + [k.strip() for k in keys if k.strip() and k.strip() not in existing]
    auth.write_text("\n".join(lines) + "\n")
    for p in (ssh, auth):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    auth.chmod(0o600)


def as_list(value: Any) -> list[str]:
    if value is None or value is False:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def key_list(value: Any) -> list[str]:
    """SSH keys as given in cloud-config: one key as a string, or a list of them."""
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(k) for k in value]


def create_user(u: dict[str, Any]) -> None:
    name = str(u["name"])
    try:
        pwd.getpwnam(name)
        exists = True
    except KeyError:
        exists = False
    if not exists:
        argv = ["useradd", "--create-home", "--shell", str(u.get("shell", "/bin/bash"))]
        if u.get("gecos"):
            argv += ["--comment", str(u["gecos"])]
        if u.get("homedir"):
            argv += ["--home-dir", str(u["homedir"])]
        if u.get("primary_group"):
            sh(["groupadd", "-f", str(u["primary_group"])])
            argv += ["--gid", str(u["primary_group"])]
        if u.get("system"):
            argv += ["--system"]
        if u.get("uid") is not None:
            argv += ["--uid", str(u["uid"])]
        sh([*argv, name])
        say(f"created user {name}")
    groups = as_list(u.get("groups"))
    for g in groups:
        sh(["groupadd", "-f", g])
    if groups:
        sh(["usermod", "-aG", ",".join(groups), name])
    if u.get("passwd"):
        sh(["usermod", "-p", str(u["passwd"]), name])
    rules = u.get("sudo")
    if rules:
        rules = [rules] if isinstance(rules, str) else list(rules)
        f = Path("/etc/sudoers.d") / f"90-tonle-{name}"
        f.write_text("".join(f"{name} {r}\n" for r in rules))
        f.chmod(0o440)
    add_keys(name, key_list(u.get("ssh_authorized_keys")))


def write_file(f: dict[str, Any]) -> None:
    path = Path(str(f["path"]))
    content: Any = f.get("content", "")
    data = content.encode() if isinstance(content, str) else bytes(content)
    enc = str(f.get("encoding", "text")).lower()
    if enc in ("b64", "base64"):
        data = base64.b64decode(data)
    elif enc in ("gzip", "gz"):
        data = gzip.decompress(data)
    elif enc in ("gz+base64", "gzip+base64", "gz+b64", "gzip+b64"):
        data = gzip.decompress(base64.b64decode(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab" if f.get("append") else "wb") as fh:
        fh.write(data)
    path.chmod(int(str(f.get("permissions", "0644")), 8))
    owner = str(f.get("owner", "root:root"))
    user, _, group = owner.partition(":")
    sh(["chown", f"{user}:{group or user}", str(path)])
    say(f"wrote {path}")


def commands_script(cmds: list[Any]) -> str:
    lines = ["#!/bin/sh"]
    for c in cmds:
        lines.append(c if isinstance(c, str) else " ".join(shlex.quote(str(a)) for a in c))
    return "\n".join(lines) + "\n"


def run_script(name: str, text: bytes) -> None:
    path = STATE / name
    path.write_bytes(text)
    path.chmod(0o700)
    rc = sh([str(path)], check=False)
    say(f"{name} exited {rc}")


def host_keys() -> None:
    """Generate the missing host keys, then print the public ones between cloud-init's markers.
    The console log is the one channel the cloud vouches for (Nova's console-log API), so the
    orchestrator learns the keys from there instead of trusting the first SSH connection."""
    for kind in HOST_KEY_TYPES:
        key = SSH_DIR / f"ssh_host_{kind}_key"
        if not key.exists():
            key.with_suffix(".pub").unlink(missing_ok=True)
            sh(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(key)])
    lines = []
    for pub in sorted(SSH_DIR.glob("ssh_host_*_key.pub")):
        fields = pub.read_text().split()
        if len(fields) >= 2:
            lines.append(f"{fields[0]} {fields[1]}")
    block = ["-----BEGIN SSH HOST KEY KEYS-----", *lines, "-----END SSH HOST KEY KEYS-----"]
    data = ("\n".join(block) + "\n").encode()
    # Straight to the console, as cloud-init does: through the journal each line would get a
    # `tonle-init[pid]: ` prefix. One write, so it stays in one piece among other boot messages.
    try:
        fd = os.open("/dev/console", os.O_WRONLY | os.O_NOCTTY)
    except OSError:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def early(kind: str, cfg: Any) -> None:
    if kind != "cloud-config":
        return
    unknown = sorted(set(cfg) - SUPPORTED)
    if unknown:
        say(f"WARNING: cloud-config keys not supported by devcloud, ignored: {', '.join(unknown)}")
    for u in cfg.get("users") or []:
        if u == "default":
            continue
        if isinstance(u, str):
            u = {"name": u}
        create_user(u)
    add_keys(DEFAULT_USER, key_list(cfg.get("ssh_authorized_keys")))
    for f in cfg.get("write_files") or []:
        if not f.get("defer"):
            write_file(f)
    if cfg.get("bootcmd"):
        run_script("bootcmd.sh", commands_script(cfg["bootcmd"]).encode())


def final(kind: str, cfg: Any) -> None:
    if kind == "script":
        run_script("user-script", cfg)
        return
    if kind != "cloud-config":
        return
    for f in cfg.get("write_files") or []:
        if f.get("defer"):
            write_file(f)
    pkgs = cfg.get("packages") or []
    if cfg.get("package_update") or cfg.get("package_upgrade") or pkgs:
        sh(["apt-get", "update", "-q"], check=False)
    if pkgs:
        names = [p if isinstance(p, str) else "=".join(map(str, p)) for p in pkgs]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", *names], env=env, check=False)
    if cfg.get("runcmd"):
        run_script("runcmd.sh", commands_script(cfg["runcmd"]).encode())


def instance_id() -> str:
    """The instance this boot belongs to: the host's word (spawn writes it), else the machine-id
    (devcloud derives it from the instance uuid), as a single path component."""
    for source in (INSTANCE_ID, MACHINE_ID):
        try:
            value = source.read_text().strip()
        except OSError:
            continue
        if value and value.isascii() and value.replace("-", "").isalnum():
            return value
    return "unknown"


def main(argv: list[str]) -> int:
    phase = argv[1] if len(argv) > 1 else ""
    if phase not in ("early", "final"):
        print("usage: tonle-init early|final", file=sys.stderr)
        return 2
    marker = STATE / "instances" / instance_id() / f"{phase}.done"
    if marker.exists():
        return 0
    marker.parent.mkdir(parents=True, exist_ok=True)
    if phase == "early":
        # First, so that sshd can start even if the user data below is broken.
        host_keys()
    kind, cfg = load()
    (early if phase == "early" else final)(kind, cfg)
    marker.write_text("done\n")
    # What the units' ConditionPathExists tests: later boots of this instance skip the agent.
    (STATE / f"{phase}.done").write_text("done\n")
    say(f"{phase} phase done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
