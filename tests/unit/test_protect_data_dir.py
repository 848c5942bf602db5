"""A root worker closes its data directory to other accounts, except the way to a folder another
account owns: its own PostgreSQL's, and the local data centre's DCIM cluster (closing the way to
that one once crashed the database at its next checkpoint). Whatever lies beside that way is
closed all the same (the local data centre's clouds.yaml is no more readable than before)."""

import os
import stat
from pathlib import Path

import pytest

from orchestrator.ansible.privileges import protect_data_dir

pytestmark = pytest.mark.unit

NOBODY = 65534


def others(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode) & 0o007


def test_only_the_way_to_another_accounts_folder_stays_passable(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "the worker that protects its data directory runs as root, and so does this test"
    data = tmp_path / "data"
    cluster = data / "devcloud" / "state" / "nautobot-postgres"
    for folder in ("engine", "postgres", "devcloud/etc", "devcloud/state/keystone"):
        (data / folder).mkdir(parents=True)
    cluster.mkdir()
    os.chown(cluster, NOBODY, NOBODY)
    cluster.chmod(0o700)
    files = [data / "secret.key", data / "devcloud" / "clouds.yaml", data / "devcloud" / "state" / "schema.key"]
    for file in files:
        file.write_text("k")
    for path in [data, *data.rglob("*")]:
        if path != cluster:
            path.chmod(0o755 if path.is_dir() else 0o644)

    protect_data_dir(data)

    assert stat.S_IMODE(data.stat().st_mode) == 0o711
    assert others(data / "postgres") == 0o005, "the embedded PostgreSQL's own rules"
    assert others(data / "devcloud") == 0o001 and others(data / "devcloud" / "state") == 0o001, "passable only"
    assert stat.S_IMODE(cluster.stat().st_mode) == 0o700 and cluster.stat().st_uid == NOBODY, "left to its owner"
    for closed in (data / "engine", data / "devcloud" / "etc", data / "devcloud" / "state" / "keystone"):
        assert others(closed) == 0, closed
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, file
