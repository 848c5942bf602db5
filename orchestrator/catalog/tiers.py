"""Backup and DR tiers (`catalog/dr-tiers.yaml`): each editable value of a backup policy with
its default and the bounds within which a ministry may change it."""

from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

TIERS_FILE = "dr-tiers.yaml"
RETENTION_PERIODS = ("daily", "weekly", "monthly")


class Bound(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: int = Field(ge=0)
    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="after")
    def _default_within(self) -> Self:
        if not self.min <= self.default <= self.max:
            raise ValueError(f"the default {self.default} is not within [{self.min}, {self.max}]")
        return self


class RetentionBounds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    daily: Bound
    weekly: Bound
    monthly: Bound

    @model_validator(mode="after")
    def _keeps_something(self) -> Self:
        # restic's forget with every keep-* at 0 would remove every snapshot.
        if self.daily.min < 1:
            raise ValueError("retention.daily.min must be at least 1: a policy must keep the latest backup")
        return self


class DrTier(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    backup_every_hours: Bound
    retention: RetentionBounds
    rpo_target_seconds: Bound
    rto_target_seconds: Bound
    drill_every_days: Bound
    check_read_data_subset: str = Field(default="5%", pattern=r"^([1-9][0-9]?(\.[0-9]+)?%|[1-9][0-9]*/[1-9][0-9]*)$")

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if self.backup_every_hours.min < 1 or self.drill_every_days.min < 1:
            raise ValueError("backup_every_hours and drill_every_days must be at least 1")
        return self

    def bounds(self) -> dict[str, Bound]:
        """Every editable field by its name in the policy (`retention.daily`...)."""
        found = {
            "backup_every_hours": self.backup_every_hours,
            "rpo_target_seconds": self.rpo_target_seconds,
            "rto_target_seconds": self.rto_target_seconds,
            "drill_every_days": self.drill_every_days,
        }
        found.update({f"retention.{period}": getattr(self.retention, period) for period in RETENTION_PERIODS})
        return found


class DrTiersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tiers: dict[str, DrTier] = Field(min_length=1)


class TiersError(Exception):
    def __init__(self, path: Path, field: str, message: str) -> None:
        super().__init__(f"{path}: {field}: {message}")
        self.path = path
        self.field = field
        self.message = message


def load_tiers(folder: Path) -> dict[str, DrTier]:
    """The tiers of the catalogue folder; none when it has no tiers file (then no offering may name one)."""
    path = folder / TIERS_FILE
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TiersError(path, "-", f"not valid YAML: {exc}") from exc
    try:
        parsed = DrTiersFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TiersError(path, ".".join(str(p) for p in first["loc"]) or "-", first["msg"]) from exc
    if "none" in parsed.tiers:
        raise TiersError(path, "tiers.none", "`none` means no backups; it is not a tier to define")
    return parsed.tiers
