"""Reading a service's restic repositories from the orchestrator: which snapshots exist, when
they were taken, how large they are and the content checksum each was tagged with.

Reads only (`--no-lock`, no cache): writes go through the host's backup agent, over the site's
HTTPS relay, because Swift's S3 API over plain HTTP refuses restic's aws-chunked uploads. restic
runs as a child with an argument vector (never a shell); the keys and the repository password
are in the child's environment only.
"""

import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHECKSUM_TAG = "checksum="


class RepositoryError(Exception):
    """restic could not read the repository; the message is restic's last line."""


@dataclass(frozen=True)
class Repository:
    """One host's repository: `s3:<endpoint>/<bucket>/<ministry>/<service_id>/<host>`."""

    url: str
    password: str = field(repr=False)
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    ca_pem: str | None = field(default=None, repr=False)


def repository_url(*, s3_endpoint: str, bucket: str, ministry_code: str, service_id: str, host: str) -> str:
    """The same address the backup agent's role writes to (playbooks/roles/backup_agent/defaults)."""
    return f"s3:{s3_endpoint.rstrip('/')}/{bucket}/{ministry_code}/{service_id}/{host}"


@dataclass(frozen=True)
class Snapshot:
    id: str
    taken_at: datetime
    hostname: str
    tags: tuple[str, ...]
    size_bytes: int | None = None  # restic 0.17+ says it in the snapshot's summary; older ones need `stats`

    @property
    def checksum(self) -> str:
        """The content checksum the backup script tagged the snapshot with ("" if none)."""
        return next((tag[len(CHECKSUM_TAG) :] for tag in self.tags if tag.startswith(CHECKSUM_TAG)), "")


def parse_time(value: str) -> datetime:
    """restic's RFC 3339 time with nanoseconds, as an aware UTC datetime (microseconds kept)."""
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"snapshot time without a zone: {value!r}")
    return parsed.astimezone(UTC)


def parse_snapshots(text: str) -> list[Snapshot]:
    """`restic snapshots --json` output, oldest first as restic lists them."""
    raw = json.loads(text or "[]")
    if raw is None:  # restic prints `null` for an empty repository
        return []
    if not isinstance(raw, list):
        raise RepositoryError(f"restic snapshots: expected a JSON list, got {type(raw).__name__}")
    found = []
    for item in raw:
        summary = item.get("summary") or {}
        size = summary.get("total_bytes_processed")
        found.append(
            Snapshot(
                id=str(item["id"]),
                taken_at=parse_time(str(item["time"])),
                hostname=str(item.get("hostname", "")),
                tags=tuple(str(t) for t in item.get("tags") or ()),
                size_bytes=int(size) if isinstance(size, int) else None,
            )
        )
    return found


def parse_restore_size(text: str) -> int:
    """`restic stats --json --mode restore-size` output: the bytes a restore of it writes."""
    raw: dict[str, Any] = json.loads(text)
    return int(raw["total_size"])


class ResticReader:
    """Runs the controller's `restic` against a repository, read-only."""

    def __init__(self, *, executable: str | None = None, timeout_seconds: int = 300) -> None:
        self.executable = executable or shutil.which("restic") or "/usr/bin/restic"
        self.timeout_seconds = timeout_seconds

    def snapshots(self, repository: Repository, *, known_sizes: dict[str, int] | None = None) -> list[Snapshot]:
        """Every snapshot of the repository, with its size (asked of `stats` only for snapshots
        whose size is not in `known_sizes` and not in restic's own summary)."""
        known = known_sizes or {}
        listed = parse_snapshots(self._run(repository, ["snapshots"]))
        sized = []
        for snapshot in listed:
            size = snapshot.size_bytes if snapshot.size_bytes is not None else known.get(snapshot.id)
            if size is None:
                size = parse_restore_size(self._run(repository, ["stats", "--mode", "restore-size", snapshot.id]))
            sized.append(Snapshot(snapshot.id, snapshot.taken_at, snapshot.hostname, snapshot.tags, size))
        return sized

    def _run(self, repository: Repository, args: Sequence[str]) -> str:
        if not Path(self.executable).exists():
            raise RepositoryError(f"restic is not installed on the orchestrator ({self.executable})")
        with tempfile.TemporaryDirectory(prefix="tonle-restic-") as home:
            argv = [self.executable, "--no-lock", "--no-cache", "--json", "--quiet"]
            if repository.ca_pem:
                ca = Path(home, "ca.pem")
                ca.write_text(repository.ca_pem)
                argv += ["--cacert", str(ca)]
            env = {
                "HOME": home,
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "RESTIC_REPOSITORY": repository.url,
                "RESTIC_PASSWORD": repository.password,
                "AWS_ACCESS_KEY_ID": repository.access_key,
                "AWS_SECRET_ACCESS_KEY": repository.secret_key,
                "AWS_DEFAULT_REGION": repository.region,
            }
            try:
                done = subprocess.run(
                    [*argv, *args],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout_seconds,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired as exc:
                raise RepositoryError(f"restic {args[0]} took longer than {self.timeout_seconds} s") from exc
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise RepositoryError(f"restic {args[0]} on {repository.url}: {last}")
        return done.stdout
