"""Helpers every service launcher shares: waiting for readiness, rendering config."""

from __future__ import annotations

import socket
import string
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from devcloud import procs

if TYPE_CHECKING:
    from devcloud.context import Context

TEMPLATES = Path(__file__).parent / "templates"


class StageError(RuntimeError):
    """A stage of `up` failed; the message says what and where to look."""


def _fail(ctx: Context, name: str, why: str) -> StageError:
    log = ctx.log_path(name)
    return StageError(f"{name}: {why}\n---- last lines of {log} ----\n{procs.tail(log)}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(ctx: Context, name: str, port: int, timeout: float = 60) -> None:
    """Wait until `port` accepts connections, failing early if process `name` died."""
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if not ctx.process_alive(name):
            raise _fail(ctx, name, f"exited before listening on port {port}")
        if time.monotonic() > deadline:
            raise _fail(ctx, name, f"not listening on port {port} after {timeout:.0f} s")
        time.sleep(0.2)


def http_ok(url: str) -> bool:
    """True if `url` answers at all with a status below 500 (401 counts: the app is up)."""
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def wait_for_http(ctx: Context, name: str, url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not http_ok(url):
        if not ctx.process_alive(name):
            raise _fail(ctx, name, f"exited before answering {url}")
        if time.monotonic() > deadline:
            raise _fail(ctx, name, f"no answer from {url} after {timeout:.0f} s")
        time.sleep(0.3)


def render(template: str, dest: Path, **values: object) -> Path:
    """Fill `templates/<template>` (string.Template `${name}` syntax) into `dest`."""
    text = string.Template((TEMPLATES / template).read_text()).substitute({k: str(v) for k, v in values.items()})
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    return dest


def run_logged(
    ctx: Context,
    name: str,
    argv: list[str],
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run a one-shot command (db sync, bootstrap) with output appended to `logs/<name>.log`."""

    ctx.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = ctx.log_path(name)
    with open(log_path, "ab") as log:
        log.write(f"\n==== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        result = subprocess.run(
            argv,
            check=False,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            env=env,
        )
    if result.returncode != 0:
        raise _fail(ctx, name, f"`{' '.join(argv)}` exited with {result.returncode}")


def service_password(user: str) -> str:
    """Password of an OpenStack service user. A loopback-only dev cloud: fixed, not secret."""
    return f"devcloud-{user}"


def keystone_auth_options(ctx: Context, user: str) -> str:
    """The `auth_type = password` option block for service user `user` (any config section)."""
    return (
        "auth_type = password\n"
        f"auth_url = {ctx.admin.auth_url}\n"
        f"username = {user}\n"
        f"password = {service_password(user)}\n"
        "project_name = service\n"
        "user_domain_name = Default\n"
        "project_domain_name = Default\n"
        f"region_name = {ctx.admin.region_name}\n"
    )


def authtoken_section(ctx: Context, user: str) -> str:
    """`[keystone_authtoken]` for an API validating tokens as service user `user`."""
    return (
        "[keystone_authtoken]\n"
        f"www_authenticate_uri = {ctx.admin.auth_url}\n"
        + keystone_auth_options(ctx, user)
        # Service tokens are accepted only from users with the `service` role.
        + "service_token_roles_required = true\n"
        "service_token_roles = service\n"
    )


def service_user_section(ctx: Context, user: str) -> str:
    """`[service_user]`: send a service token along with the user's on calls to other APIs."""
    return "[service_user]\nsend_service_user_token = true\n" + keystone_auth_options(ctx, user)
