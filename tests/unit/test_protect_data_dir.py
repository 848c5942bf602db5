"""A root worker closes its data directory to other accounts, except where other accounts must
pass: its own PostgreSQL's folder, and the local data centre's (whose DCIM PostgreSQL runs as
another account; closing it once crashed that database at its next checkpoint)."""

import stat
from pathlib import Path

import pytest

from orchestrator.ansible.privileges import protect_data_dir

pytestmark = pytest.mark.unit


def others(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode) & 0o007


def test_the_data_dir_is_closed_but_the_local_data_centre_keeps_its_own_permissions(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for folder in ("engine", "postgres", "devcloud/state/nautobot-postgres"):
        (data / folder).mkdir(parents=True)
    (data / "secret.key").write_text("k")
    for path in (data, data / "engine", data / "postgres", data / "devcloud", data / "secret.key"):
        path.chmod(0o755)

    protect_data_dir(data)

    assert stat.S_IMODE(data.stat().st_mode) == 0o711
    assert others(data / "engine") == 0 and others(data / "secret.key") == 0
    assert others(data / "postgres") == 0o005, "the embedded PostgreSQL's own rules"
    assert others(data / "devcloud") == 0o005, "the local data centre's own rules"
