"""Backup tiers, policy bounds, the schedule's arithmetic and reading restic's JSON. Pure; the
restic outputs are real ones (restic 0.14, Debian 12), kept in tests/fixtures/restic."""

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.backup import policies, schedule
from orchestrator.backup.models import BackupPolicy
from orchestrator.backup.repository import (
    RepositoryError,
    parse_restore_size,
    parse_snapshots,
    parse_time,
    repository_url,
)
from orchestrator.catalog.loader import CatalogError, load_catalog
from orchestrator.catalog.tiers import TIERS_FILE, load_tiers

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "catalog"
FIXTURES = ROOT / "tests" / "fixtures" / "restic"
TIERS = load_tiers(CATALOG)
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def a_policy(**overrides: Any) -> BackupPolicy:
    values: dict[str, Any] = {
        "service_id": uuid.uuid4(),
        "ministry_id": uuid.uuid4(),
        "tier": "standard",
        "backup_every_hours": 24,
        "retention": {"daily": 7, "weekly": 4, "monthly": 6},
        "rpo_target_seconds": 90000,
        "rto_target_seconds": 14400,
        "drill_every_days": 30,
        "created_at": NOW - timedelta(days=3),
    }
    values.update(overrides)
    return BackupPolicy.model_validate(values)


# --- Tiers. ---


def test_the_shipped_tiers_are_standard_and_critical_with_defaults_within_bounds() -> None:
    assert set(TIERS) == {"standard", "critical"}
    for tier in TIERS.values():
        defaults = {field: bound.default for field, bound in tier.bounds().items()}
        values: dict[str, Any] = {
            name: defaults[name] for name in ("backup_every_hours", "rpo_target_seconds", "rto_target_seconds")
        }
        values["drill_every_days"] = defaults["drill_every_days"]
        values["retention"] = {p: defaults[f"retention.{p}"] for p in ("daily", "weekly", "monthly")}
        assert policies.out_of_bounds(tier, values) == []
    assert TIERS["critical"].backup_every_hours.default < TIERS["standard"].backup_every_hours.default


def test_every_offering_with_backups_names_a_defined_tier() -> None:
    offerings = load_catalog(CATALOG)
    named = {o.backup_tier for o in offerings.values()} | {o.dr_tier for o in offerings.values()}
    assert named - {"none"} <= set(TIERS)
    assert policies.tier_name(offerings["web-hosting"]) == "standard"
    assert policies.tier_name(offerings["dr-backup"]) is None, "a bucket has nothing of its own to back up"


def test_an_offering_naming_an_undefined_tier_is_refused(tmp_path: Path) -> None:
    shutil.copy(CATALOG / "web-hosting.yaml", tmp_path / "web-hosting.yaml")
    raw = yaml.safe_load((CATALOG / TIERS_FILE).read_text())
    del raw["tiers"]["standard"]
    (tmp_path / TIERS_FILE).write_text(yaml.safe_dump(raw))
    with pytest.raises(CatalogError) as raised:
        load_catalog(tmp_path)
    assert raised.value.field == "backup_tier" and "'standard' is not in dr-tiers.yaml" in str(raised.value)


def test_a_tier_whose_default_is_out_of_its_bounds_is_refused(tmp_path: Path) -> None:
    shutil.copy(CATALOG / "web-hosting.yaml", tmp_path / "web-hosting.yaml")
    raw = yaml.safe_load((CATALOG / TIERS_FILE).read_text())
    raw["tiers"]["standard"]["retention"]["daily"] = {"default": 40, "min": 1, "max": 31}
    (tmp_path / TIERS_FILE).write_text(yaml.safe_dump(raw))
    with pytest.raises(CatalogError) as raised:
        load_catalog(tmp_path)
    assert raised.value.field == "tiers.standard.retention.daily"


# --- Bounds of a policy change. ---


@pytest.mark.parametrize(
    ("changes", "field", "bound"),
    [
        ({"retention": {"daily": 0}}, "retention.daily", (1, 31)),
        ({"retention": {"monthly": 25}}, "retention.monthly", (0, 24)),
        ({"backup_every_hours": 49}, "backup_every_hours", (4, 48)),
        ({"drill_every_days": 6}, "drill_every_days", (7, 90)),
        ({"rto_target_seconds": "soon"}, "rto_target_seconds", (3600, 86400)),
    ],
)
def test_a_change_out_of_the_tiers_bounds_names_the_field_and_the_bound(
    changes: dict[str, object], field: str, bound: tuple[int, int]
) -> None:
    current = a_policy()
    problems = policies.out_of_bounds(TIERS["standard"], policies.proposed(current, changes))
    assert [p["field"] for p in problems] == [field]
    assert (problems[0]["min"], problems[0]["max"]) == bound
    assert f"from {bound[0]} to {bound[1]}" in problems[0]["message"]


def test_retention_changes_merge_period_by_period() -> None:
    wanted = policies.proposed(a_policy(), {"retention": {"daily": 3}})
    assert wanted["retention"] == {"daily": 3, "weekly": 4, "monthly": 6}
    assert policies.out_of_bounds(TIERS["standard"], wanted) == []


def test_an_rpo_target_shorter_than_the_backup_interval_is_refused() -> None:
    wanted = policies.proposed(a_policy(), {"backup_every_hours": 24, "rpo_target_seconds": 14400})
    problems = policies.out_of_bounds(TIERS["standard"], wanted)
    assert [p["field"] for p in problems] == ["rpo_target_seconds"]
    assert problems[0]["min"] == 24 * 3600


# --- The schedule. ---


def test_next_due_counts_from_the_last_backup_or_else_from_the_policy() -> None:
    created = NOW - timedelta(days=3)
    assert policies.next_due(last_backup_at=None, created_at=created, every_hours=24) == created + timedelta(hours=24)
    last = NOW - timedelta(hours=2)
    assert policies.next_due(last_backup_at=last, created_at=created, every_hours=4) == NOW + timedelta(hours=2)


def test_a_backup_is_due_once_its_time_has_come() -> None:
    assert schedule.is_due(a_policy(next_backup_due_at=NOW), now=NOW)
    assert schedule.is_due(a_policy(next_backup_due_at=NOW - timedelta(hours=30)), now=NOW)
    assert not schedule.is_due(a_policy(next_backup_due_at=NOW + timedelta(seconds=1)), now=NOW)
    assert not schedule.is_due(a_policy(next_backup_due_at=None), now=NOW)


def test_a_started_backup_that_fails_is_retried_within_the_hour_or_the_interval() -> None:
    assert schedule.retry_at(a_policy(backup_every_hours=24), now=NOW) == NOW + timedelta(hours=1)
    assert schedule.retry_at(a_policy(backup_every_hours=1), now=NOW) == NOW + timedelta(hours=1)


def test_the_repository_check_rides_on_a_backup_weekly() -> None:
    assert schedule.check_due(a_policy(last_check_at=None), now=NOW)
    assert not schedule.check_due(a_policy(last_check_at=NOW - timedelta(days=6, hours=23)), now=NOW)
    assert schedule.check_due(a_policy(last_check_at=NOW - timedelta(days=7)), now=NOW)


# --- restic's output. ---


def test_snapshots_are_read_from_restics_json() -> None:
    snapshots = parse_snapshots((FIXTURES / "snapshots.json").read_text())
    assert [s.id for s in snapshots] == [
        "5e7b6310874c32436f4c9e8eb5209e54f8451dce1a1903dd0b0dd3d4b88a8467",
        "28f27b57e03ddf9570488dd9e635f8a67141a185daf4c0915d1e85912f41f819",
    ]
    first = snapshots[0]
    assert first.taken_at == datetime(2026, 11, 30, 2, 27, 0, 395807, tzinfo=UTC)
    assert first.hostname == "svc-web-1"
    assert first.checksum == "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
    assert first.size_bytes is None, "restic 0.14 puts no summary in the snapshot; the size comes from stats"
    assert parse_restore_size((FIXTURES / "stats-restore-size.json").read_text()) == 6


def test_an_empty_repository_lists_no_snapshots_and_junk_is_refused() -> None:
    assert parse_snapshots("null") == [] == parse_snapshots("[]")
    with pytest.raises(RepositoryError):
        parse_snapshots('{"id": 1}')


def test_restics_times_keep_their_zone_and_become_utc() -> None:
    assert parse_time("2026-11-30T09:27:00.123456789+07:00") == datetime(2026, 11, 30, 2, 27, 0, 123456, tzinfo=UTC)
    assert parse_time("2026-11-30T02:27:00Z") == datetime(2026, 11, 30, 2, 27, tzinfo=UTC)
    assert parse_time("2026-11-30T02:27:00.5Z").microsecond == 500000


def test_the_repository_address_is_the_agents() -> None:
    url = repository_url(
        s3_endpoint="http://127.0.0.1:18080/", bucket="b", ministry_code="health", service_id="s", host="web-1"
    )
    assert url == "s3:http://127.0.0.1:18080/b/health/s/web-1"
