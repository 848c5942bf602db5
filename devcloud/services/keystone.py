"""Keystone: fernet tokens, the bootstrap admin, catalog entry for itself."""

from __future__ import annotations

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
enabled = false
[oslo_policy]
enforce_new_defaults = true
enforce_scope = false
"""


def start(ctx: Context) -> None:
    etc = ctx.etc_dir / NAME
    etc.mkdir(parents=True, exist_ok=True)
    conf = etc / "keystone.conf"
    conf.write_text(_conf(ctx))
    ctx.create_database("keystone")
    for d in ("fernet-keys", "fernet-receipts", "credential-keys"):
        (ctx.state_dir / NAME / d).mkdir(parents=True, exist_ok=True, mode=0o700)
    manage = [str(ctx.venv_bin("keystone-manage")), "--config-file", str(conf)]
    run_logged(ctx, "keystone-manage", [*manage, "db_sync"])
    owner = ["--keystone-user", "root", "--keystone-group", "root"]
    if not any((ctx.state_dir / NAME / "fernet-keys").iterdir()):
        run_logged(ctx, "keystone-manage", [*manage, "fernet_setup", *owner])
        run_logged(ctx, "keystone-manage", [*manage, "fernet_receipts_setup", *owner])
        run_logged(ctx, "keystone-manage", [*manage, "credential_setup", *owner])
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
        processes=2,
        threads=2,
    )
    wait_for_http(ctx, NAME, url)
