"""Every part an offering names exists and is implemented, or the offering is not orderable.

An orderable offering's stack program defines `program()`, its playbooks (provisioning, day-2
and the final backup of decommissioning) are plays with hosts and existing roles, and its health
check is a kind the real checker implements. An offering marked `orderable: false` must miss at
least one of these: the flag can neither hide a working offering nor outlive the gap it covers.
"""

import importlib
from typing import Any

import pytest
import yaml

from orchestrator.catalog.loader import load_catalog
from orchestrator.catalog.models import Offering
from orchestrator.catalog.service import require_orderable
from orchestrator.config import PROJECT_ROOT
from orchestrator.errors import Conflict
from orchestrator.health.checker import KINDS, ServiceHealthChecker
from orchestrator.ports import ProgressEvent, StepFailed

pytestmark = pytest.mark.unit

OFFERINGS = load_catalog(PROJECT_ROOT / "catalog")
PLAYBOOKS = PROJECT_ROOT / "playbooks"
STACKS = PROJECT_ROOT / "stacks"
# Decommissioning runs this playbook for a final backup when the offering keeps backups
# (tests/integration/test_day2.py proves that on a decommission).
FINAL_BACKUP_PLAYBOOK = "backup_now"


def playbook_problems(name: str) -> list[str]:
    path = PLAYBOOKS / f"{name}.yml"
    if not path.is_file():
        return [f"playbook '{name}' does not exist ({path.relative_to(PROJECT_ROOT)})"]
    try:
        plays = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        return [f"playbook '{name}' is not valid YAML: {exc}"]
    if not isinstance(plays, list) or not plays:
        return [f"playbook '{name}' is not a list of plays"]
    problems = []
    for index, play in enumerate(plays):
        if not isinstance(play, dict) or not play.get("hosts"):
            problems.append(f"playbook '{name}' play {index} is not a play with `hosts`")
            continue
        if not (play.get("roles") or play.get("tasks")):
            problems.append(f"playbook '{name}' play {index} has neither roles nor tasks")
        for role in play.get("roles") or []:
            role_name = role["role"] if isinstance(role, dict) else role
            if not (PLAYBOOKS / "roles" / str(role_name) / "tasks" / "main.yml").is_file():
                problems.append(f"playbook '{name}' play {index} uses role '{role_name}', which has no tasks/main.yml")
    return problems


def stack_problems(program: str) -> list[str]:
    if not (STACKS / f"{program}.py").is_file():
        return [f"stack program '{program}' does not exist (stacks/{program}.py)"]
    module = importlib.import_module(f"stacks.{program}")
    if not callable(getattr(module, "program", None)):
        return [f"stack program '{program}' defines no program()"]
    return []


def missing_parts(offering: Offering) -> list[str]:
    """What the offering names that does not exist or is not implemented; empty when it can work."""
    problems = stack_problems(offering.stack_program)
    playbooks = [*offering.playbooks, *offering.day2_playbooks.values()]
    if offering.backup_tier != "none":
        playbooks.append(FINAL_BACKUP_PLAYBOOK)
    for playbook in dict.fromkeys(playbooks):
        problems += playbook_problems(playbook)
    kind = offering.health_check.get("kind")
    if not kind:
        problems.append("no health check: nothing would confirm the service works")
    elif kind not in KINDS:
        problems.append(f"health check kind '{kind}' is not implemented (implemented: {sorted(KINDS)})")
    return problems


ORDERABLE = sorted(o.id for o in OFFERINGS.values() if o.orderable)
NOT_ORDERABLE = sorted(o.id for o in OFFERINGS.values() if not o.orderable)


def test_the_catalogue_has_offerings_on_both_sides_of_the_flag() -> None:
    # Every offering works end to end today; if this changes, the lists below say why.
    assert {"web-hosting", "cms", "email", "dr-backup", "colocation"} <= set(ORDERABLE), ORDERABLE
    assert ORDERABLE and set(ORDERABLE) | set(NOT_ORDERABLE) == set(OFFERINGS)


@pytest.mark.parametrize("offering_id", ORDERABLE)
def test_an_orderable_offering_names_only_parts_that_exist(offering_id: str) -> None:
    assert missing_parts(OFFERINGS[offering_id]) == []


def test_a_not_orderable_offering_really_misses_a_part() -> None:
    """Once the missing parts exist, this fails: then make the offering orderable. (Every offering
    is orderable today; a loop, not a parametrisation, so that is not a skipped test.)"""
    complete = [offering_id for offering_id in NOT_ORDERABLE if not missing_parts(OFFERINGS[offering_id])]
    assert not complete, f"{complete} name only parts that exist: remove `orderable: false`"


def test_the_missing_parts_are_the_ones_known_today() -> None:
    # Pins what each not-orderable offering lacks, so a reason in the YAML cannot drift from it.
    assert {offering_id: missing_parts(OFFERINGS[offering_id]) for offering_id in NOT_ORDERABLE} == {}


def test_the_consistency_checks_see_what_they_claim_to() -> None:
    # The checks above pass vacuously if they cannot see a fault; show them one of each.
    broken = OFFERINGS["web-hosting"].model_copy(
        update={
            "stack_program": "nowhere",
            "playbooks": ["baseline", "no_such_playbook"],
            "day2_playbooks": {"restart": "no_such_restart"},
            "health_check": {"kind": "telepathy"},
        }
    )
    missing = missing_parts(broken)
    assert len(missing) == 4, missing
    assert "stack program 'nowhere' does not exist (stacks/nowhere.py)" in missing
    assert any("'no_such_playbook' does not exist" in m for m in missing)
    assert any("'no_such_restart' does not exist" in m for m in missing)
    assert any("'telepathy' is not implemented" in m for m in missing)


def test_an_order_for_a_not_orderable_offering_is_refused_with_the_reason() -> None:
    withdrawn = OFFERINGS["colocation"].model_copy(
        update={"orderable": False, "not_orderable_reason": "the DCIM is being replaced"}
    )
    with pytest.raises(Conflict) as refused:
        require_orderable(offering=withdrawn)
    assert refused.value.detail == "offering 'colocation' cannot be ordered yet: the DCIM is being replaced"
    assert refused.value.field == "offering_id"
    require_orderable(offering=OFFERINGS["web-hosting"])  # no exception


@pytest.mark.parametrize(
    "spec", [{"kind": "smtp", "port": 25}, {"kind": "telepathy"}, {}], ids=["smtp", "telepathy", "none"]
)
def test_the_health_checker_fails_a_check_it_cannot_run(spec: dict[str, Any]) -> None:
    events: list[ProgressEvent] = []
    checker = ServiceHealthChecker(deadline_seconds=1)
    with pytest.raises(StepFailed) as failed:
        checker.check(spec, {"endpoints": {"public_address": "192.0.2.10"}}, {}, {}, events.append)
    assert "not implemented" in str(failed.value) or "no health check" in str(failed.value)
    assert events == [], "nothing claims the service was checked"


def test_a_not_orderable_offering_must_say_why() -> None:
    raw: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "catalog" / "web-hosting.yaml").read_text())
    with pytest.raises(ValueError, match="must say why"):
        Offering.model_validate({**raw, "orderable": False})
    with pytest.raises(ValueError, match="only for offerings with `orderable: false`"):
        Offering.model_validate({**raw, "not_orderable_reason": "stale"})
