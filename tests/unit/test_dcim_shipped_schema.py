"""The migrated schema the repository ships for the local data centre's DCIM (devcloud/dcim/schema/):
one file, the one for the Nautobot that devcloud/dcim/requirements.txt installs. A fresh machine
loads it instead of running Nautobot's ~470 migrations; for another Nautobot it would be ignored,
and every fresh machine would migrate for minutes again. The cloud tier checks that it is that
Nautobot's whole schema (tests/cloud/test_dcim_shipped_schema.py)."""

from pathlib import Path

import pytest

from devcloud.dcim import layout as L
from devcloud.dcim import postgres
from devcloud.dcim.common import DcimError
from devcloud.dcim.layout import Layout

REGENERATE = (
    "devcloud/dcim/requirements.txt changed: regenerate the shipped schema as devcloud/dcim/README.md "
    "says (a DCIM brought up with an empty TONLE_CACHE_DIR migrates and writes it), and delete the old one"
)


def test_the_one_shipped_schema_is_the_one_for_the_nautobot_installed() -> None:
    shipped = sorted(L.SHIPPED_SCHEMA_DIR.iterdir())
    assert shipped == [L.shipped_dump()], REGENERATE


def test_a_dump_that_is_not_xz_is_refused_naming_it(tmp_path: Path) -> None:
    """Refused as a DcimError, the bootstrap takes the next way (another dump, or migrating)."""
    broken = tmp_path / "broken-migrated.sql.xz"
    broken.write_bytes(b"CREATE TABLE half")
    with pytest.raises(DcimError, match=r"broken-migrated\.sql\.xz is not an xz-compressed SQL dump"):
        postgres.restore(Layout(data_dir=tmp_path, etc_root=tmp_path, state_root=tmp_path), broken)


def test_forgetting_other_dumps_keeps_this_one_and_files_that_are_not_dumps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TONLE_CACHE_DIR", str(tmp_path))
    current = L.migrated_dump()
    current.parent.mkdir(parents=True)
    current.write_bytes(b"this one")
    older_format = current.parent / "nautobot-3.1.0-0123456789ab.pgdump"
    other_packages = current.parent / "nautobot-3.2.0-ba9876543210-migrated.sql.xz"
    unrelated = current.parent / "notes.txt"
    for path in (older_format, other_packages, unrelated):
        path.write_bytes(b"x")

    assert L.forget_other_dumps() == sorted([older_format, other_packages])
    assert sorted(current.parent.iterdir()) == sorted([current, unrelated])
