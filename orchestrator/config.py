"""One settings object for the whole system, read from `TONLE_*` environment variables."""

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    ansible: Literal["auto", "ansible", "noop"] = Field(
        default="auto",
        description="Configuration runner: `ansible` (ansible-runner), or `auto` (ansible unless the engine is no-op).",
    )
    ansible_timeout_seconds: int = Field(default=3600, ge=60, description="Longest one playbook may run.")
    ansible_strategy: Literal["mitogen", "linear"] = Field(
        default="mitogen",
        description="How Ansible drives a host: `mitogen` (one Python kept on the host for the whole run, "
        "modules sent once) or Ansible's own `linear` (a new Python and module upload per task).",
    )
    ansible_user: str = Field(
        default="tonle-ansible",
        pattern=r"^[a-z_][a-z0-9_-]{0,31}$",
        description="Unprivileged system account playbooks run as when the worker is root (created if missing).",
    )
    noop_step_seconds: float = Field(
        default=0.0, ge=0, description="Seconds each no-op engine call takes (demos, recovery tests)."
    )
    clouds_yaml: Path | None = Field(
        default=None,
        description="clouds.yaml naming the sites. Unset: OS_CLIENT_CONFIG_FILE, else the local data centre's.",
    )
    admin_cloud: str = Field(default="tonle-admin", description="clouds.yaml entry with admin rights (projects).")
    site_clouds: dict[str, str] = Field(
        default={"primary": "tonle-primary", "dr": "tonle-dr"},
        description="Site name -> clouds.yaml entry (JSON in the environment).",
    )
    primary_site: str = Field(default="primary", description="Where services are built.")
    dr_site: str = Field(default="dr", description="Where backups land and drills run.")
    external_network: str = Field(default="public", description="Network floating IPs come from.")
    subnet_pool: str = Field(default="tenant-pool", description="Shared pool tenant subnets are cut from.")
    server_image: str = Field(default="debian-12", description="Image servers boot from.")
    management_cidr: str = Field(
        default="172.24.4.0/24",
        description="The only source allowed to reach SSH on servers: where the orchestrator runs Ansible from.",
    )
    dns_resolvers: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Resolvers tenant subnets hand to their servers (comma-separated). Empty: the cloud's default.",
    )
    dns_server: str | None = Field(
        default=None,
        description="`host:port` of the DNS server the orchestrator itself queries (the zones it publishes).",
    )
    dcim_url: str | None = Field(
        default=None, description="The data centre's DCIM (Nautobot) REST API, e.g. https://dcim.example/ ."
    )
    dcim_token: SecretStr | None = Field(default=None, description="An API token of the DCIM with write access.")
    dcim_config: Path | None = Field(
        default=None,
        description=(
            'A `{"url", "token"}` JSON file naming the DCIM, read when connecting (the local data centre\'s '
            "`dcim.json`, written once its Nautobot is seeded). TONLE_DCIM_URL/TOKEN win when set."
        ),
    )
    dcim_site: str = Field(default="primary", description="The DCIM site co-located devices are placed in.")
    health_timeout_seconds: int = Field(default=300, ge=10, description="How long a health check keeps trying.")
    sse_poll_seconds: float = Field(default=0.5, gt=0, description="How often an SSE stream looks for new events.")
    sse_streams_per_token: int = Field(
        default=5, ge=1, description="Event streams one token may hold open at once, across all API processes."
    )
    upload_max_bytes: int = Field(default=50 * 2**20, ge=1, description="Largest upload (e.g. a site archive).")
    upload_timeout_seconds: float = Field(
        default=300, gt=0, description="Longest an upload may take to arrive; a slower client is cut off (408)."
    )
    upload_retention_hours: int = Field(
        default=72, ge=0, description="How long a failed operation's upload is kept for a retry."
    )
    mail_removed_retention_days: int = Field(
        default=90, ge=0, description="How long a removed mailbox's mail is kept before it is deleted."
    )
    scheduled_drills_max_parallel: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Drills the schedule (each policy's drill_every_days) keeps in progress at once; 0: no schedule.",
    )
    token_default_days: int = Field(default=90, ge=1, description="Lifetime of a token issued without one.")
    token_max_days: int = Field(default=365, ge=1, description="Longest lifetime a token may be issued with.")
    console_session_hours: int = Field(
        default=12, ge=1, le=24 * 7, description="How long a console sign-in lasts (it is a child API token)."
    )
    oidc_issuer: str | None = Field(
        default=None, description="OpenID Connect issuer of the console's single sign-on; unset: no SSO button."
    )
    oidc_client_id: str | None = Field(default=None, description="The console's client id at the OpenID provider.")
    oidc_client_secret: SecretStr | None = Field(default=None, description="The console's client secret.")
    oidc_role_claim: str = Field(
        default="tonle_role", description="ID-token/userinfo claim naming the user's Tonle role."
    )
    oidc_ministry_claim: str = Field(
        default="tonle_ministry", description="Claim naming the user's ministry by its code (ministry roles)."
    )
    public_url: str | None = Field(
        default=None,
        description="The console's external base URL (https://...), for the OIDC redirect; unset: the request's.",
    )

    @field_validator("dns_resolvers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """`10.0.0.2,10.0.0.3` in the environment, as well as a JSON list."""
        if isinstance(value, str):
            text = value.strip()
            return (
                json.loads(text) if text.startswith("[") else [part.strip() for part in text.split(",") if part.strip()]
            )
        return value

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_clouds_yaml(self) -> Path | None:
        if self.clouds_yaml:
            return self.clouds_yaml.expanduser().resolve()
        from_env = os.environ.get("OS_CLIENT_CONFIG_FILE")
        if from_env:
            return Path(from_env)
        local = self.resolved_data_dir / "devcloud" / "clouds.yaml"
        return local if local.exists() else None


@lru_cache
def get_settings() -> Settings:
    return Settings()


class ClientSettings(BaseSettings):
    """What the `tonle` user verbs need to reach an API."""

    model_config = SettingsConfigDict(env_prefix="TONLE_", extra="ignore")

    api_url: str = Field(default="http://127.0.0.1:8000", description="Base URL of the Tonle API.")
    token: str | None = Field(default=None, description="API token for the user verbs of the CLI.")
