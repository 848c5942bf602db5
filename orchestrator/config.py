"""One settings object for the whole system, read from `TONLE_*` environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TONLE_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".tonle"),
        description="Where the embedded PostgreSQL, demo tokens and run artefacts live.",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://...). Unset: an embedded server under data_dir.",
    )
    host: str = Field(default="127.0.0.1", description="Address the API binds to.")
    port: int = Field(default=8000, description="Port the API binds to.")
    catalog_dir: Path = Field(default=PROJECT_ROOT / "catalog", description="Folder of offering YAML files.")
    playbooks_dir: Path = Field(default=PROJECT_ROOT / "playbooks", description="Folder of Ansible playbooks.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    worker_concurrency: int = Field(default=4, ge=1, description="Operations run at once per worker.")
    job_max_attempts: int = Field(default=5, ge=1, description="Attempts of an operation job on transient errors.")
    job_retry_wait_seconds: int = Field(
        default=2, ge=0, description="Base of the exponential backoff between job attempts."
    )
    stalled_after_seconds: int = Field(
        default=60, ge=5, description="A worker silent this long is dead; its jobs are resumed."
    )
    engine: Literal["auto", "automation", "embedded", "noop"] = Field(
        default="auto",
        description="Stack engine: `automation` (Pulumi CLI), `embedded`, or `auto` (the CLI when on PATH).",
    )
    secret_key: str | None = Field(
        default=None,
        description="Fernet key for secrets at rest. Unset: generated once into data_dir/secret.key.",
    )
    pulumi_backend_url: str | None = Field(
        default=None,
        description="Automation API engine: state backend. Unset: file:// under data_dir/pulumi.",
    )
    pulumi_passphrase: str | None = Field(
        default=None,
        description="Automation API engine: passphrase of the stack secrets. Unset: derived from secret_key.",
    )
    ansible: Literal["noop"] = Field(
        default="noop",
        description="Configuration runner. Only the no-op runner exists until Ansible lands.",
    )
    noop_step_seconds: float = Field(
        default=0.0, ge=0, description="Seconds each no-op engine call takes (demos, recovery tests)."
    )
    sse_poll_seconds: float = Field(default=0.5, gt=0, description="How often an SSE stream looks for new events.")

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()


@lru_cache
def get_settings() -> Settings:
    return Settings()


class ClientSettings(BaseSettings):
    """What the `tonle` user verbs need to reach an API."""

    model_config = SettingsConfigDict(env_prefix="TONLE_", extra="ignore")

    api_url: str = Field(default="http://127.0.0.1:8000", description="Base URL of the Tonle API.")
    token: str | None = Field(default=None, description="API token for the user verbs of the CLI.")
