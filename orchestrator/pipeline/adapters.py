"""The adapters the pipeline runs with, chosen from settings."""

import logging
from dataclasses import dataclass, field

from orchestrator.backup.targets import BackupTargets, NoBackupTargets, SwiftBackupTargets
from orchestrator.cloud.hostkeys import ConsoleHostKeys, HostKeySource
from orchestrator.cloud.tenancy import OpenStackTenancy, SiteNamesOnly, Tenancy
from orchestrator.config import Settings, get_settings
from orchestrator.engines.automation import cli_available
from orchestrator.pipeline.configure import (
    ConfigRunner,
    HealthChecker,
    NoopConfigRunner,
    NoopHealthChecker,
)
from orchestrator.pipeline.engine import Engine, NoopEngine

log = logging.getLogger(__name__)


@dataclass
class Adapters:
    engine: Engine
    config: ConfigRunner
    health: HealthChecker
    tenancy: Tenancy = field(default_factory=lambda: SiteNamesOnly(get_settings()))
    backup_targets: BackupTargets = field(default_factory=NoBackupTargets)
    # Where SSH host keys are learned (servers' consoles); None: no servers, nothing to pin.
    host_keys: HostKeySource | None = None


def engine_choice(settings: Settings) -> str:
    """Which engine runs: the configured one, or for `auto` the Automation API when the CLI exists."""
    if settings.engine == "auto":
        return "automation" if cli_available() else "embedded"
    return settings.engine


def build_engine(settings: Settings) -> Engine:
    choice = engine_choice(settings)
    if choice == "automation":
        from orchestrator import secrets
        from orchestrator.engines.automation import AutomationEngine, passphrase_from_key

        data_dir = settings.resolved_data_dir
        log.info("engine: Pulumi Automation API (pulumi CLI found)")
        return AutomationEngine(
            backend_url=settings.pulumi_backend_url or (data_dir / "pulumi").as_uri(),
            passphrase=settings.pulumi_passphrase or passphrase_from_key(secrets.master_key()),
            work_dir=data_dir / "pulumi-work",
        )
    if choice == "embedded":
        from orchestrator.engines.embedded.engine import EmbeddedEngine

        log.info("engine: embedded (no pulumi CLI needed)")
        return EmbeddedEngine.from_settings(settings)
    log.warning("engine: no-op (nothing will be created in any cloud)")
    return NoopEngine(step_seconds=settings.noop_step_seconds)


def build_config_runner(settings: Settings, engine: Engine) -> ConfigRunner:
    choice = settings.ansible
    if choice == "auto":
        # Hosts come from stack outputs; with the no-op engine there are none to configure.
        choice = "noop" if isinstance(engine, NoopEngine) else "ansible"
    if choice == "noop":
        return NoopConfigRunner()
    from orchestrator.ansible.runner import AnsibleRunner

    return AnsibleRunner(
        playbooks_dir=settings.playbooks_dir,
        runs_dir=settings.resolved_data_dir / "ansible-runs",
        timeout_seconds=settings.ansible_timeout_seconds,
    )


def _health(settings: Settings) -> HealthChecker:
    from orchestrator.health.checker import ServiceHealthChecker

    return ServiceHealthChecker(deadline_seconds=settings.health_timeout_seconds)


def build_adapters(settings: Settings) -> Adapters:
    engine = build_engine(settings)
    if isinstance(engine, NoopEngine):
        # The no-op engine touches no cloud, so neither may anything preparing its stacks.
        return Adapters(
            engine=engine,
            config=build_config_runner(settings, engine),
            health=NoopHealthChecker(),
            tenancy=SiteNamesOnly(settings),
        )
    tenancy = OpenStackTenancy(settings)
    return Adapters(
        engine=engine,
        config=build_config_runner(settings, engine),
        health=_health(settings),
        tenancy=tenancy,
        backup_targets=SwiftBackupTargets(settings, tenancy),
        host_keys=ConsoleHostKeys(settings),
    )
