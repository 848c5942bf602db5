"""The adapters the pipeline runs with, chosen from settings."""

from dataclasses import dataclass

from orchestrator.config import Settings
from orchestrator.pipeline.configure import (
    BackupAgent,
    ConfigRunner,
    HealthChecker,
    NoopBackupAgent,
    NoopConfigRunner,
    NoopHealthChecker,
)
from orchestrator.pipeline.engine import Engine, NoopEngine


@dataclass
class Adapters:
    engine: Engine
    config: ConfigRunner
    health: HealthChecker
    backup: BackupAgent


def build_adapters(settings: Settings) -> Adapters:
    return Adapters(
        engine=NoopEngine(step_seconds=settings.noop_step_seconds),
        config=NoopConfigRunner(),
        health=NoopHealthChecker(),
        backup=NoopBackupAgent(),
    )
