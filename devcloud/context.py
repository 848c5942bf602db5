"""The handle every devcloud part gets: where things live and how to reach the shared services.

`devcloud.dns` and `devcloud.machines` code against this interface (see devcloud/README.md).
Only the stdlib is used here: this module runs under the project's venv, not the cloud's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devcloud import ports

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The two sites of the data centre, as Nova/Cinder availability zones of one region.
SITES: tuple[str, ...] = ("primary", "dr")
REGION = "RegionOne"

ProgressFn = Callable[[str, str], None]


def data_root() -> Path:
    """`${TONLE_DATA_DIR:-.tonle}/devcloud`, relative paths taken from the repository root."""
    base = Path(os.environ.get("TONLE_DATA_DIR", ".tonle"))
    if not base.is_absolute():
        base = REPO_ROOT / base
    return base / "devcloud"


@dataclass(frozen=True)
class AdminCredentials:
    """Keystone's bootstrap admin; scoped to the `admin` project of the `Default` domain."""

    auth_url: str  # http://127.0.0.1:15000/v3
    username: str = "admin"
    password: str = "devcloud-admin"
    project_name: str = "admin"
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str = REGION


@dataclass(frozen=True)
class MariaDB:
    """The cloud's private MariaDB server (not the system one)."""

    socket: Path
    host: str = "127.0.0.1"
    port: int = ports.MARIADB
    user: str = "root"
    password: str = "devcloud-db"

    def url(self, database: str) -> str:
        """SQLAlchemy URL for `database` (PyMySQL driver, present in the cloud venv)."""
        return f"mysql+pymysql://{self.user}:{self.password}@{self.host}:{self.port}/{database}?charset=utf8mb4"


@dataclass(frozen=True)
class Endpoint:
    """One catalog endpoint; registered for the public, internal and admin interfaces alike."""

    url: str
    region: str = REGION


@dataclass
class Context:
    """Everything a devcloud part needs; built once per `python -m devcloud` command."""

    data_dir: Path  # <TONLE_DATA_DIR>/devcloud
    progress: ProgressFn
    repo_root: Path = REPO_ROOT
    admin: AdminCredentials = field(
        default_factory=lambda: AdminCredentials(auth_url=f"http://127.0.0.1:{ports.KEYSTONE}/v3")
    )
    rabbit_user: str = "devcloud"
    rabbit_password: str = "devcloud-rabbit"
    sites: tuple[str, ...] = SITES

    # --- layout -------------------------------------------------------------------------
    @property
    def venv(self) -> Path:
        """The cloud's own virtualenv (OpenStack lives here, never in the project's venv)."""
        return self.data_dir / "venv"

    @property
    def logs_dir(self) -> Path:
        """One `<service>.log` per process."""
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        """Pid files and other runtime state."""
        return self.data_dir / "run"

    @property
    def etc_dir(self) -> Path:
        """Rendered configuration, one folder per service."""
        return self.data_dir / "etc"

    @property
    def state_dir(self) -> Path:
        """Persistent service state (databases, images, volumes, objects)."""
        return self.data_dir / "state"

    @property
    def clouds_yaml(self) -> Path:
        return self.data_dir / "clouds.yaml"

    def venv_bin(self, name: str) -> Path:
        """Path of an executable in the cloud venv, e.g. `venv_bin("designate-manage")`."""
        return self.venv / "bin" / name

    # --- shared services ------------------------------------------------------------------
    @property
    def mariadb(self) -> MariaDB:
        return MariaDB(socket=self.run_dir / "mariadb.sock")

    @property
    def transport_url(self) -> str:
        """oslo.messaging transport URL of the cloud's private RabbitMQ."""
        return f"rabbit://{self.rabbit_user}:{self.rabbit_password}@127.0.0.1:{ports.RABBITMQ}/"

    def create_database(self, name: str) -> str:
        """Create database `name` if missing; return its SQLAlchemy URL."""
        from devcloud.services import mariadb

        mariadb.create_database(self, name)
        return self.mariadb.url(name)

    def register_service(
        self,
        *,
        user: str,
        password: str,
        service_type: str,
        service_name: str,
        endpoints: Sequence[Endpoint],
        description: str = "",
    ) -> None:
        """Idempotently create service user `user` (role `service` and `admin` on project
        `service`), the catalog service and its endpoints. Needs Keystone to be up."""
        from devcloud import keystone_admin

        keystone_admin.register_service(
            self,
            user=user,
            password=password,
            service_type=service_type,
            service_name=service_name,
            endpoints=endpoints,
            description=description,
        )

    # --- processes ------------------------------------------------------------------------
    def start_process(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> int:
        """Start `argv` detached, output to `logs/<name>.log`, pid in `run/<name>.pid`.

        `down` stops every process started this way (SIGTERM, then SIGKILL), so a part need
        not track them itself. Returns the pid; does nothing if `name` is already running.
        """
        from devcloud import procs

        return procs.start(self, name, argv, env=env, cwd=cwd)

    def stop_process(self, name: str, timeout: float = 10.0) -> None:
        from devcloud import procs

        procs.stop(self, name, timeout=timeout)

    def process_alive(self, name: str) -> bool:
        from devcloud import procs

        return procs.alive(self, name)

    def log_path(self, name: str) -> Path:
        """`logs/<name>.log`, its directory made: on a fresh machine the first stage to log may
        finish before any process has started (apt before pip, for one)."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        return self.logs_dir / f"{name}.log"
