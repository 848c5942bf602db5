"""Alembic, configured in code: `tonle db upgrade` and `make run` call `upgrade()`."""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from orchestrator.database.core import database_url, sqlalchemy_url

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

log = logging.getLogger(__name__)


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Percent signs in socket paths would be read as interpolation by configparser.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url or database_url()).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "heads") -> None:
    log.info("migrating the database to %s", revision)
    command.upgrade(alembic_config(url), revision)


def current(url: str | None = None) -> None:
    command.current(alembic_config(url), verbose=True)
