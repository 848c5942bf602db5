"""Keystone: fernet tokens, the bootstrap admin, catalog entry for itself."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import TYPE_CHECKING

from devcloud import ports
from devcloud.services.common import run_logged, wait_for_http
from devcloud.services.wsgi import start_api

if TYPE_CHECKING:
    from devcloud.context import Context

NAME = "keystone"


def _conf(ctx: Context) -> str:
    state = ctx.state_dir / "keystone"
    return f"""# Rendered by devcloud/services/keystone.py
[DEFAULT]
debug = false
[database]
connection = {ctx.mariadb.url("keystone")}
max_pool_size = 5
[identity]
# bcrypt's default cost makes every password login ~0.3 s of CPU; a loopback dev cloud
# with a handful of fixed passwords does not need it.
password_hash_rounds = 4
[token]
provider = fernet
# Long-lived tokens: tests and the orchestrator hold sessions for a whole run.
expiration = 43200
[fernet_tokens]
key_repository = {state}/fernet-keys
[fernet_receipts]
key_repository = {state}/fernet-receipts
[credential]
key_repository = {state}/credential-keys
[cache]
# In-process cache: token validations dominate Keystone's work. One uWSGI process only, so
# the cache can never disagree with another process's.
enabled = true
backend = dogpile.cache.memory
[oslo_policy]
enforce_new_defaults = true
enforce_scope = false
"""


KEY_REPOSITORIES = ("fernet-keys", "fernet-receipts", "credential-keys")


def _ensure_keys(repository: Path) -> None:
    """What `keystone-manage fernet_setup`/`credential_setup` write: key 0 (staged) and key 1
    (primary), each a Fernet key. Done here: each keystone-manage run costs ~10 s of imports."""
    repository.mkdir(parents=True, exist_ok=True, mode=0o700)
    if any(repository.iterdir()):
        return
    for index in ("0", "1"):
        key = repository / index
        key.write_bytes(base64.urlsafe_b64encode(os.urandom(32)))
        key.chmod(0o600)


def start(ctx: Context) -> None:
    etc = ctx.etc_dir / NAME
    etc.mkdir(parents=True, exist_ok=True)
    conf = etc / "keystone.conf"
    conf.write_text(_conf(ctx))
    ctx.create_database("keystone")
    manage = [str(ctx.venv_bin("keystone-manage")), "--config-file", str(conf)]
    run_logged(ctx, "keystone-manage", [*manage, "db_sync"])
    for keys in KEY_REPOSITORIES:
        _ensure_keys(ctx.state_dir / NAME / keys)
    url = f"http://127.0.0.1:{ports.KEYSTONE}/v3"
    run_logged(
        ctx,
        "keystone-manage",
        [
            *manage,
            "bootstrap",
            "--bootstrap-password",
            ctx.admin.password,
            "--bootstrap-username",
            ctx.admin.username,
            "--bootstrap-project-name",
            ctx.admin.project_name,
            "--bootstrap-role-name",
            "admin",
            "--bootstrap-service-name",
            "keystone",
            "--bootstrap-region-id",
            ctx.admin.region_name,
            "--bootstrap-admin-url",
            url,
            "--bootstrap-internal-url",
            url,
            "--bootstrap-public-url",
            url,
        ],
    )
    start_api(
        ctx,
        NAME,
        module="keystone.wsgi.api",
        port=ports.KEYSTONE,
        env={"OS_KEYSTONE_CONFIG_FILES": str(conf)},
        processes=1,
        threads=4,
    )
    wait_for_http(ctx, NAME, url)
