"""The migrated schema the repository ships (devcloud/dcim/schema/) is the whole schema of the
Nautobot that devcloud/dcim/requirements.txt installs: loaded into a scratch database beside
Nautobot's own, it leaves `nautobot-server migrate --check` nothing to apply. (This machine's own
cached dump, which a CI machine restores first, would otherwise hide a stale shipped one.)"""

from __future__ import annotations

import subprocess

import pytest

from devcloud.dcim import layout as L
from devcloud.dcim import nautobot as dcim_nautobot
from devcloud.dcim import postgres
from tests.cloud.conftest import dcim_layout

pytestmark = pytest.mark.cloud

SCRATCH = "nautobot_shipped_schema_check"


def test_the_shipped_schema_leaves_no_migration_to_apply(nautobot: dict[str, str]) -> None:
    lay = dcim_layout()
    postgres.psql(lay, f"DROP DATABASE IF EXISTS {SCRATCH}")
    postgres.ensure_database(lay, database=SCRATCH)
    try:
        postgres.restore(lay, L.shipped_dump(), database=SCRATCH)
        loaded = postgres.psql(lay, "SELECT count(*) FROM django_migrations", database=SCRATCH)
        result = subprocess.run(
            [*dcim_nautobot.migrate_command(lay), "--check"],
            env={**dcim_nautobot.environment(lay), "NAUTOBOT_DB_NAME": SCRATCH},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        postgres.psql(lay, f"DROP DATABASE IF EXISTS {SCRATCH}")
    assert int(loaded) > 400  # Nautobot 3.2's migrations, recorded as applied
    # --check exits non-zero when any migration is left to apply, and applies none.
    assert result.returncode == 0, f"{result.stdout[-2000:]}{result.stderr[-3000:]}"
