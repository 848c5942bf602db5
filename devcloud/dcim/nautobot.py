"""Nautobot itself: its settings, its schema (migrated once, then reused from a dump), the seed
(superuser, token, demo data centre) and its web server (uWSGI from the venv, on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import resource
import secrets
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from devcloud.dcim import layout as L
from devcloud.dcim import postgres, venv
from devcloud.dcim.common import DcimError, run, wait_for
from devcloud.dcim.layout import Layout

if TYPE_CHECKING:
    from devcloud.context import Context

CONFIG = '''"""Written by devcloud/dcim/nautobot.py: Nautobot for the local data centre. Everything else
comes from the NAUTOBOT_* environment devcloud starts Nautobot with."""

from nautobot.core.settings import *  # noqa: F403

# No telemetry: the data centre has no way out, and says so.
INSTALLATION_METRICS_ENABLED = False
# Thin API answers for the orchestrator; the web UI works as usual.
MAINTENANCE_MODE = False
'''


def secret_key(lay: Layout) -> str:
    """Django's SECRET_KEY, generated once and kept (sessions and tokens survive restarts)."""
    if not lay.secret_key_file.exists():
        lay.etc.mkdir(parents=True, exist_ok=True)
        lay.secret_key_file.write_text(secrets.token_urlsafe(50) + "\n")
        lay.secret_key_file.chmod(0o600)
    return lay.secret_key_file.read_text().strip()


def environment(lay: Layout) -> dict[str, str]:
    """What every Nautobot process runs with (settings are read from these at import)."""
    return {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")},
        "NAUTOBOT_ROOT": str(lay.nautobot_root),
        "NAUTOBOT_CONFIG": str(lay.nautobot_config),
        "NAUTOBOT_DB_HOST": L.HOST,
        "NAUTOBOT_DB_PORT": str(lay.pg_port),
        "NAUTOBOT_DB_NAME": L.DB_NAME,
        "NAUTOBOT_DB_USER": L.DB_USER,
        "NAUTOBOT_DB_PASSWORD": L.DB_PASSWORD,
        "NAUTOBOT_REDIS_HOST": L.HOST,
        "NAUTOBOT_REDIS_PORT": str(lay.redis_port),
        "NAUTOBOT_REDIS_PASSWORD": L.REDIS_PASSWORD,
        "NAUTOBOT_SECRET_KEY": secret_key(lay),
        "NAUTOBOT_ALLOWED_HOSTS": f"{L.HOST} localhost",
        "NAUTOBOT_INSTALLATION_METRICS_ENABLED": "False",
        "NAUTOBOT_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def write_config(lay: Layout) -> None:
    lay.etc.mkdir(parents=True, exist_ok=True)
    lay.nautobot_root.mkdir(parents=True, exist_ok=True)
    if not lay.nautobot_config.exists() or lay.nautobot_config.read_text() != CONFIG:
        lay.nautobot_config.write_text(CONFIG)


def server(lay: Layout, *args: str) -> list[str]:
    return [str(lay.venv_bin("nautobot-server")), "--config", str(lay.nautobot_config), *args]


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: The cache a migration runs with before Redis answers (migrate.py's `NoCache`).
NO_CACHE_BACKEND = f"{venv.MIGRATE_MODULE}.NoCache"


def migrate_command(lay: Layout) -> list[str]:
    """`nautobot-server migrate` through our wrapper of it (migrate.py: collector held back,
    swappable answers kept)."""
    return venv_python(lay, "-m", venv.MIGRATE_MODULE, "--config", str(lay.nautobot_config), "migrate", "--no-input")


def schema(ctx: Context, lay: Layout, *, redis_up: bool) -> str:
    """Bring the schema up to date the cheapest way; returns how ("current", "restored",
    "migrated"). A database this exact Nautobot already migrated (the stamp says so) is left
    alone. A fresh one is loaded from the migrated dump of this exact Nautobot, this machine's
    own or the one the repository ships (then `migrate` has nothing left to do but check);
    without either it is migrated (Nautobot 3.2: ~470 migrations, three to four minutes on two
    shared cores, see migrate.py) and the dump is written for next time.

    Without Redis up yet (`redis_up` false: its package still installing on a fresh machine),
    `migrate` runs with no cache at all (migrate.py's `NoCache`) rather than wait for it; with a
    Redis answering, it uses it, so that Nautobot clears what it cached before."""
    how = "current"
    if postgres.migrated(lay):
        if lay.schema_stamp.exists() and lay.schema_stamp.read_text().strip() == L.schema_key():
            ctx.progress("dcim", f"schema current ({L.schema_key()}): no migrate")
            return how
    else:
        how = "restored" if _load_migrated_dump(ctx, lay) else "migrated"
    if how == "migrated":
        ctx.progress("dcim", f"first migration of Nautobot {L.NAUTOBOT_VERSION} (slow; kept in {L.migrated_dump()})")
    started, cpu_before = time.monotonic(), _children_cpu_seconds()
    env = environment(lay)
    if not redis_up:
        env["NAUTOBOT_CACHES_BACKEND"] = NO_CACHE_BACKEND
    run(migrate_command(lay), "nautobot-server migrate", env=env, timeout=1800)
    ctx.progress(
        "dcim",
        f"nautobot-server migrate ({how}) took {time.monotonic() - started:.1f} s"
        f" ({_children_cpu_seconds() - cpu_before:.1f} s of CPU)",
    )
    if how == "migrated":
        postgres.dump(lay, L.migrated_dump())
        ctx.progress("dcim", f"migrated database kept for reuse: {L.migrated_dump()}")
        for stale in L.forget_other_dumps():
            ctx.progress("dcim", f"deleted {stale}: a dump of another Nautobot, or of an older format")
    lay.schema_stamp.write_text(L.schema_key() + "\n")
    return how


def _load_migrated_dump(ctx: Context, lay: Layout) -> bool:
    """Load the first migrated dump of this Nautobot there is into the empty database; false
    when there is none, or none loads (the database is left empty: each load is one transaction)."""
    for dump in (L.migrated_dump(), L.shipped_dump()):
        if not dump.exists():
            continue
        started = time.monotonic()
        try:
            postgres.restore(lay, dump)
        except DcimError as exc:
            ctx.progress("dcim", f"could not load {dump}, so not using it: {exc}")
            continue
        ctx.progress("dcim", f"database loaded from {dump} in {time.monotonic() - started:.1f} s")
        return True
    return False


def token_key(lay: Layout) -> str:
    """The orchestrator's API token: kept in dcim.json once made."""
    try:
        key = str(json.loads(lay.credentials.read_text())["token"])
        if len(key) == 40:
            return key
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return secrets.token_hex(20)


def seed(ctx: Context, lay: Layout) -> None:
    """Superuser, token and the demo data centre (idempotent), then dcim.json."""
    key = token_key(lay)
    started = time.monotonic()
    run(venv_python(lay, "-m", venv.SEED_MODULE, key), "seeding Nautobot", env=environment(lay), timeout=600)
    ctx.progress("dcim", f"seeded the demo data centre in {time.monotonic() - started:.1f} s")
    lay.credentials.parent.mkdir(parents=True, exist_ok=True)
    partial = lay.credentials.with_suffix(".partial")
    partial.touch(mode=0o600)
    partial.chmod(0o600)
    partial.write_text(json.dumps({"url": lay.url, "token": key, "username": L.ADMIN_USER}, indent=1) + "\n")
    partial.replace(lay.credentials)


def venv_python(lay: Layout, *args: str) -> list[str]:
    return [str(lay.python), *args]


#: Straight to loopback, whatever http_proxy the environment sets.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def api_answers(lay: Layout, token: str | None = None) -> bool:
    """GET /api/status/ answers 200 (with the token when given: the token works too)."""
    request = urllib.request.Request(f"{lay.url}/api/status/", headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with _DIRECT.open(request, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_web(ctx: Context, lay: Layout) -> None:
    """Launch uWSGI (Nautobot's `start`): 2 processes x 4 threads, on 127.0.0.1 only; the request
    log is off (the devcloud's logs hold errors, not traffic). `wait_for_web` waits for it."""
    ctx.start_process(
        L.WEB,
        server(
            lay,
            "start",
            f"--http={L.HOST}:{lay.web_port}",
            "--master",
            "--processes=2",
            "--threads=4",
            "--enable-threads",
            "--die-on-term",
            "--buffer-size=16384",
            "--disable-logging",
            # uWSGI's HTTP router closes a connection after each answer without saying so: a
            # client reusing it (requests, pynautobot) then finds it dropped mid-request.
            "--add-header=Connection: close",
        ),
        env=environment(lay),
    )


def wait_for_web(ctx: Context, lay: Layout) -> None:
    """The web server answers the API with the orchestrator's token (the seed made it)."""
    key = token_key(lay)
    wait_for(ctx, L.WEB, f"{lay.url}/api/status/ with the token", lambda: api_answers(lay, key), timeout=180)
