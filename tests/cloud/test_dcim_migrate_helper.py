"""The wrapper that runs Nautobot's migrations (devcloud/dcim/migrate.py), checked inside
Nautobot's own venv against the Django and Nautobot it works with, so that an upgrade that
breaks it fails here, not in a fresh machine's first migration:
- it keeps Django's swappable-model answers for the run: the kept answers are Django's, they
  survive a throw-away registry clearing Django's shared cache (what each rendered migration
  state does), and other registries keep Django's behaviour;
- its `NoCache` lets `migrate` run to its end, post-migrate handlers included, with no Redis to
  reach (what a fresh machine does while Redis's package installs)."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from devcloud.dcim import nautobot as dcim_nautobot
from devcloud.dcim import venv
from tests.cloud.conftest import dcim_layout

pytestmark = pytest.mark.cloud

PROBE = textwrap.dedent(
    f"""
    import json

    import nautobot

    nautobot.setup()

    from django.apps import apps
    from django.apps.registry import Apps

    import {venv.MIGRATE_MODULE} as helper

    labels = sorted({{m._meta.label_lower for m in apps.get_models(include_swapped=True)}})
    django_answers = {{label: apps.get_swappable_settings_name(label) for label in labels}}
    helper.keep_swappable_names()
    kept_before = {{label: apps.get_swappable_settings_name(label) for label in labels}}
    Apps([]).clear_cache()
    kept_after = {{label: apps.get_swappable_settings_name(label) for label in labels}}
    print(json.dumps({{
        "django": django_answers,
        "kept_before": kept_before,
        "kept_after": kept_after,
        "other_registry": Apps([]).get_swappable_settings_name("users.user"),
    }}))
    """
)


def test_kept_swappable_answers_are_djangos_and_survive_a_state_registry_clearing_the_cache(
    nautobot: dict[str, str],
) -> None:
    lay = dcim_layout()
    result = subprocess.run(
        [str(lay.python), "-c", PROBE],
        env=dcim_nautobot.environment(lay),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    django = answers["django"]
    assert len(django) > 100  # every model of Nautobot, not an empty registry
    assert django["users.user"] == "AUTH_USER_MODEL"  # one lookup that is swappable, and found
    assert answers["kept_before"] == django
    assert answers["kept_after"] == django
    assert answers["other_registry"] is None  # an empty registry: Django's own answer


def test_migrate_runs_to_its_end_with_no_cache_and_no_redis_to_reach(nautobot: dict[str, str]) -> None:
    lay = dcim_layout()
    unreachable = {"NAUTOBOT_REDIS_PORT": "1", "NAUTOBOT_CACHES_BACKEND": dcim_nautobot.NO_CACHE_BACKEND}
    result = subprocess.run(
        dcim_nautobot.migrate_command(lay),
        env={**dcim_nautobot.environment(lay), **unreachable},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Nautobot's post-migrate handler calls django-redis's `delete_pattern`: Django's own dummy
    # cache has none, and a Redis client would find nobody on port 1.
    assert result.returncode == 0, result.stderr[-3000:]
    assert "No migrations to apply" in result.stdout
