"""The one place that builds what a process runs with: settings, adapters, the job queue.

The API, the worker and the CLI call `bootstrap()` once at start; nothing is installed by importing
a module.
"""

import logging

import procrastinate

from orchestrator import workflows
from orchestrator.backup.targets import NoBackupTargets, SwiftBackupTargets
from orchestrator.cloud.dns import DesignateRecords
from orchestrator.cloud.hostkeys import ConsoleHostKeys
from orchestrator.cloud.leftovers import OpenStackLeftovers
from orchestrator.cloud.tenancy import OpenStackTenancy, SiteNamesOnly
from orchestrator.config import Settings, get_settings
from orchestrator.dcim import connection as dcim_connection
from orchestrator.engines import engine_choice
from orchestrator.jobs import queue
from orchestrator.noop import NoopConfigRunner, NoopEngine, NoopHealthChecker
from orchestrator.operations import outbox
from orchestrator.ports import Adapters, ConfigRunner, Engine, HealthChecker

log = logging.getLogger(__name__)


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
        from orchestrator.engines.embedded import EmbeddedEngine

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
        return noop_adapters(settings, engine=engine, config=build_config_runner(settings, engine))
    tenancy = OpenStackTenancy(settings)
    return Adapters(
        engine=engine,
        config=build_config_runner(settings, engine),
        health=_health(settings),
        tenancy=tenancy,
        backup_targets=SwiftBackupTargets(settings, tenancy),
        host_keys=ConsoleHostKeys(settings),
        dns=DesignateRecords(settings),
        leftovers=OpenStackLeftovers(settings),
        dcim=dcim_connection.for_worker(settings),
    )


def noop_adapters(
    settings: Settings,
    *,
    engine: Engine | None = None,
    config: ConfigRunner | None = None,
    health: HealthChecker | None = None,
) -> Adapters:
    """Adapters that touch no cloud, with any of them replaced (the no-op engine, tests)."""
    return Adapters(
        engine=engine or NoopEngine(step_seconds=settings.noop_step_seconds),
        config=config or NoopConfigRunner(),
        health=health or NoopHealthChecker(),
        tenancy=SiteNamesOnly(settings),
        backup_targets=NoBackupTargets(),
    )


def bootstrap(settings: Settings | None = None) -> procrastinate.App:
    """Make this process ready to work; call once at start (API, worker, CLI, test session).

    The workflows become known (their step names too), jobs are deferred after each unit of work
    commits, and the worker's adapters are built from settings when it first runs an operation.
    Returns the job queue's app, not yet opened.
    """
    settings = settings or get_settings()
    workflows.load()
    app = queue.get_app()
    outbox.set_dispatcher(queue.defer_operation)
    queue.set_adapter_builder(lambda: build_adapters(settings))
    return app
