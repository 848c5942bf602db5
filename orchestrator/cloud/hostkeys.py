"""SSH host keys, learned from the cloud instead of from the network, and pinned.

At first boot an instance prints its public host keys on its console between cloud-init's
markers (`-----BEGIN SSH HOST KEY KEYS-----` ... `-----END SSH HOST KEY KEYS-----`). Nova's
console-log API hands that text to the ministry's project over the authenticated API, so a
man in the middle on the management network cannot forge it. The keys are learned once per
server and kept with the service; every later run connects with exactly those keys.

The console is written by the guest and is hostile input: only known key types with valid
base64 that names its own type are taken, everything else is ignored, and sizes are capped.
"""

import base64
import binascii
import hashlib
import ipaddress
import logging
import re
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.cloud.sites import CloudConfigError, connect, site
from orchestrator.cloud.tenancy import project_name
from orchestrator.config import Settings
from orchestrator.ports import EventSink, Learned, ProgressEvent, StepFailed

log = logging.getLogger(__name__)

BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
END = "-----END SSH HOST KEY KEYS-----"
KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "ssh-rsa",
    }
)
# Nova returns a tail of the console; we read no more than this of whatever comes back.
MAX_CONSOLE_CHARS = 1024 * 1024
MAX_LINE_CHARS = 4096  # an RSA-8192 public key is about 1,400 characters of base64
MAX_KEYS = 8
HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*")


class HostKeyChanged(StepFailed):
    """A server presented another key than the one pinned for it: a man in the middle, or a
    server whose identity was replaced. Never re-learned silently; an operator must look."""


def parse_console(text: str) -> list[str]:
    """The host keys (`<type> <base64>`) of the first complete key block in console text; []
    when there is none yet. Lines that are not a valid key of a known type are ignored."""
    lines = text[:MAX_CONSOLE_CHARS].splitlines()
    start: int | None = None
    for index, line in enumerate(lines):
        marker = line.strip()
        if marker == BEGIN:
            start = index  # a block cut short by another one starts again here
        elif marker == END and start is not None:
            keys = _unique(k for k in (parse_key(raw) for raw in lines[start + 1 : index]) if k)
            if keys:
                return keys[:MAX_KEYS]
            start = None
    return []


def parse_key(line: str) -> str | None:
    """`<type> <base64> [comment]` -> `<type> <base64>`, or None for anything else."""
    if len(line) > MAX_LINE_CHARS or len(line.strip().splitlines()) != 1:
        return None
    fields = line.strip().split()
    if len(fields) < 2 or fields[0] not in KEY_TYPES:
        return None
    kind, encoded = fields[0], fields[1]
    if not encoded.isascii():
        return None
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    # The key blob starts with its own type as an SSH string (RFC 4253 6.6): it must agree.
    if len(blob) < 4 or blob[4 : 4 + int.from_bytes(blob[:4], "big")] != kind.encode():
        return None
    return f"{kind} {encoded}"


def _unique(keys: Any) -> list[str]:
    return list(dict.fromkeys(keys))


def known_hosts_address(address: Any) -> str:
    """An address from the stack outputs, fit for a known_hosts line (an IP or a host name)."""
    text = str(address or "")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        if len(text) <= 253 and HOSTNAME.fullmatch(text):
            return text.lower()
    raise StepFailed(f"the stack outputs an address that is neither an IP nor a host name: {text[:80]!r}")


def known_hosts(pins: Mapping[str, Mapping[str, Any]], hosts: Mapping[str, Mapping[str, Any]]) -> str:
    """known_hosts lines: each host's pinned keys under the address Ansible connects to."""
    lines = []
    for name, spec in sorted(hosts.items()):
        address = known_hosts_address(spec.get("address"))
        # Checked again on the way out: a stored value is never more than one known_hosts line.
        keys = [key for key in (parse_key(str(raw)) for raw in pins[name]["keys"]) if key]
        lines += [f"{address} {key}" for key in keys]
    return "\n".join(lines) + "\n" if lines else ""


@dataclass
class Pinning:
    """What `pin` decided: every host's pin, and which of them were learned just now."""

    pins: dict[str, dict[str, Any]]
    learned: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # a new server under a known host name


def pin(
    *,
    pins: Mapping[str, Mapping[str, Any]],
    hosts: Mapping[str, Mapping[str, Any]],
    learn: Callable[[str, Mapping[str, Any]], Learned],
) -> Pinning:
    """Keep the pinned keys of every host whose server is the one they were learned from; learn
    the others. A server with the same id keeps its disk (reboot, resize) and so its keys: its
    pin is never re-learned. A host whose stack now names another server (the instance was
    replaced) is learned again from that server's own console, and reported as replaced."""
    result = Pinning(pins={name: dict(value) for name, value in pins.items()})
    for name, spec in sorted(hosts.items()):
        pinned = pins.get(name)
        server_id = spec.get("server_id")
        if pinned and pinned.get("keys") and (not server_id or str(server_id) == pinned.get("server_id")):
            continue
        found = learn(name, spec)
        if pinned and pinned.get("keys"):
            result.replaced.append(name)
        result.pins[name] = {
            "server_id": found.server_id,
            "keys": list(found.keys),
            "learned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        result.learned.append(name)
    return result


def fingerprint(key: str) -> str:
    """SHA256 fingerprint as `ssh-keygen -l` prints it, for events and the audit log."""
    blob = base64.b64decode(key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


class ConsoleHostKeys:
    """Reads each server's console through Nova in the ministry's project at the site."""

    # The console is read every second: a server here boots in ~1.5 s, and the first playbook
    # of an order waits for its keys.
    def __init__(self, settings: Settings, *, timeout_seconds: float = 300, poll_seconds: float = 1) -> None:
        self.settings = settings
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds

    def learn(
        self, *, host: str, spec: Mapping[str, Any], ministry_code: str, site_name: str, on_event: EventSink
    ) -> Learned:
        try:
            conn = connect(
                self.settings, site(self.settings, site_name).cloud, project_name=project_name(ministry_code)
            )
        except CloudConfigError as exc:
            raise StepFailed(str(exc)) from exc
        server_id = _server_id(conn, host, spec)
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            keys = parse_console(_console(conn, server_id))
            if keys:
                on_event(
                    ProgressEvent(
                        type="ssh.host_keys",
                        message=f"learned the SSH host keys of {host} from its console: "
                        + ", ".join(fingerprint(k) for k in keys),
                        data={"host": host, "server_id": server_id, "fingerprints": [fingerprint(k) for k in keys]},
                    )
                )
                return Learned(server_id=server_id, keys=keys)
            if time.monotonic() >= deadline:
                raise StepFailed(
                    f"host {host}: no SSH host keys on the console of server {server_id} after "
                    f"{self.timeout_seconds:.0f} s (its first boot publishes them, as cloud-init does)"
                )
            time.sleep(self.poll_seconds)

    def verify(self, *, hosts: Mapping[str, Mapping[str, Any]], known_hosts: str) -> None:
        verify_with_ssh(hosts=hosts, known_hosts=known_hosts)


def _server_id(conn: Any, host: str, spec: Mapping[str, Any]) -> str:
    """The server behind a host of the stack outputs: its `server_id`, or, for stacks built
    before hosts carried one, the project's one server holding the host's addresses."""
    if spec.get("server_id"):
        try:
            return str(uuid.UUID(str(spec["server_id"])))
        except ValueError:
            raise StepFailed(f"host {host}: the stack outputs a server_id that is not a UUID") from None
    wanted = {str(spec.get(key)) for key in ("address", "private_address") if spec.get(key)}
    matches = [
        server.id
        for server in conn.compute.servers(details=True)
        if wanted & {str(a.get("addr")) for addrs in (server.addresses or {}).values() for a in addrs}
    ]
    if len(matches) != 1:
        raise StepFailed(f"host {host}: {len(matches)} servers hold its addresses; cannot tell whose keys to learn")
    return str(matches[0])


def _console(conn: Any, server_id: str) -> str:
    from openstack import exceptions

    try:
        output = conn.compute.get_server_console_output(server_id)
    except exceptions.NotFoundException:
        raise StepFailed(f"server {server_id} is gone; its host keys cannot be learned") from None
    except exceptions.HttpException as exc:
        # A server still building has no console yet (409): wait like for a slow first boot.
        log.info("console of %s not readable yet: %s", server_id, exc)
        return ""
    text = (output or {}).get("output") if isinstance(output, dict) else None
    return text[-MAX_CONSOLE_CHARS:] if isinstance(text, str) else ""


# ssh decides about the host key before it authenticates: with authentication switched off, a
# pinned key that matches ends in "Permission denied" and nothing runs on the host either way.
PROBE_OPTIONS = (
    "BatchMode=yes",
    "StrictHostKeyChecking=yes",
    "GlobalKnownHostsFile=/dev/null",
    "CheckHostIP=no",
    "UpdateHostKeys=no",
    "PubkeyAuthentication=no",
    "PasswordAuthentication=no",
    "KbdInteractiveAuthentication=no",
    "GSSAPIAuthentication=no",
    "HostbasedAuthentication=no",
    "IdentityAgent=none",
    "ConnectTimeout=10",
    "LogLevel=ERROR",
)


def verify_with_ssh(*, hosts: Mapping[str, Mapping[str, Any]], known_hosts: str, timeout: float = 20) -> None:
    """Before Ansible connects: does each host present a pinned key? A host that cannot be
    reached yet (still booting) is not judged here; Ansible, which checks the same keys, is."""
    with tempfile.TemporaryDirectory(prefix="tonle-hostkeys-") as folder:
        path = Path(folder) / "known_hosts"
        path.write_text(known_hosts)
        options = [arg for option in (*PROBE_OPTIONS, f"UserKnownHostsFile={path}") for arg in ("-o", option)]
        for name, spec in sorted(hosts.items()):
            address = known_hosts_address(spec.get("address"))
            try:
                probe = subprocess.run(
                    ["ssh", "-F", "/dev/null", *options, "-l", "tonle-hostkey-probe", "--", address, "true"],
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                continue
            if "Host key verification failed" in probe.stderr:
                raise HostKeyChanged(
                    f"host key changed: {name} ({address}) presents an SSH host key other than the one "
                    "pinned when it was created; nothing was run on it. A man in the middle, or a server "
                    "whose keys were replaced: an operator must check before it is trusted again"
                )
