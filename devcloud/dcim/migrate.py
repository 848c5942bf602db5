"""Runs INSIDE Nautobot's venv (copied there as `tonle_nautobot_migrate`), never in the project's.

    <dcim-venv>/bin/python -m tonle_nautobot_migrate --config <nautobot_config.py> migrate --no-input

`nautobot-server` itself, at a raised CPU priority, with Python's cycle collector held back and
Django's swappable-model lookups kept for the run (`keep_swappable_names`). It also holds
`NoCache`, the cache of a migration that runs before Redis is up.

A first migration renders Django's model state again for most of Nautobot's ~470 migrations;
each rendering makes thousands of model classes, fields and descriptors, and the collector's
frequent young-generation passes over them were about a quarter of the run. Here the collector
runs only when the process has grown by `GROWTH_BYTES` since its last pass, so garbage is still
freed and memory stays bounded. Measured alone on two cores: 237 s with the default collector
(326 MiB at most), 180 s this way (3.0 GiB at most), 182 s with no collection at all (8 GiB: why
there is a bound); a 2 GiB bound, or freezing what survives each pass, changed nothing. Keeping
the swappable answers then took a first migration from 193 s to 160 s, with the same schema and
data (pg_dump of both, compared).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import time

from django.core.cache.backends.dummy import DummyCache

GROWTH_BYTES = 1 << 30
POLL_SECONDS = 0.5
#: A CPU share about three times a default process's.
NICENESS = -5


class NoCache(DummyCache):
    """The cache of a migration run while Redis's package is still installing (the environment's
    NAUTOBOT_CACHES_BACKEND names it; devcloud/dcim/nautobot.py `schema`): nothing is kept, and
    django-redis's `delete_pattern`, which a post-migrate handler of Nautobot calls, deletes
    nothing. Redis, which persists nothing, then starts empty: no entry from before the
    migration survives it."""

    def delete_pattern(self, pattern: str, **kwargs: object) -> int:
        return 0


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def collect_on_growth() -> None:
    """A full collection each time the process grew by GROWTH_BYTES since the last one. The
    baseline is what was left after it: freed memory is kept by the allocator, so an absolute
    bound would collect over and over once reached."""
    baseline = resident_bytes()
    while True:
        time.sleep(POLL_SECONDS)
        if resident_bytes() > baseline + GROWTH_BYTES:
            gc.collect()
            baseline = resident_bytes()


def raise_priority() -> None:
    """Ahead of the cloud's start it runs beside (root only): this one process is the DCIM's whole
    critical path on a fresh machine, and it shared two cores with the cloud's installs."""
    with contextlib.suppress(PermissionError):
        os.nice(NICENESS)


def keep_swappable_names() -> None:
    """Answer `apps.get_swappable_settings_name` from a cache kept for the whole run.

    Every foreign key's `deconstruct` asks it, and Django 5 caches it with `functools.cache`, which
    is one cache for every `Apps` instance: each model the migration state renders clears the cache
    of its throw-away registry (`StateApps.clear_cache`), and so the global registry's too, and the
    next lookup walks all of Nautobot's models again. That was 12 % of a first migration. The
    answer depends only on settings and the global registry's models, fixed once Django is set up
    (the method's own docstring says so); other registries keep Django's behaviour."""
    from django.apps import apps as project_apps
    from django.apps.registry import Apps

    django_lookup = Apps.get_swappable_settings_name
    kept: dict[str, str | None] = {}

    def get_swappable_settings_name(self: Apps, to_string: str) -> str | None:
        if self is not project_apps:
            return django_lookup(self, to_string)
        if to_string not in kept:
            kept[to_string] = django_lookup(self, to_string)
        return kept[to_string]

    # `Apps.clear_cache` calls `cache_clear` through the bound method.
    get_swappable_settings_name.cache_clear = django_lookup.cache_clear  # type: ignore[attr-defined]
    Apps.get_swappable_settings_name = get_swappable_settings_name


def main() -> int:
    raise_priority()
    keep_swappable_names()
    gc.disable()
    threading.Thread(target=collect_on_growth, name="collect-on-growth", daemon=True).start()
    from nautobot.core.cli import main as nautobot_server

    sys.argv[0] = "nautobot-server"
    return int(nautobot_server() or 0)


if __name__ == "__main__":
    sys.exit(main())
