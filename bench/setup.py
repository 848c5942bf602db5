"""What the benchmarks share: a fresh database on the embedded server, accounts with tokens, and
waiting for an API process."""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from devcloud.orchestrator_env import orchestrator_env


def fresh_database(data_dir: Path, prefix: str) -> str:
    """A new, migrated database on the embedded server under `data_dir`; this process uses it.
    The databases earlier runs with this prefix left behind are dropped first."""
    os.environ["TONLE_DATA_DIR"] = str(data_dir)
    from orchestrator.database import migrate
    from orchestrator.database.embedded import ensure_database, start_embedded, with_database

    server = start_embedded(data_dir, stop_on_exit=True)
    drop_earlier_runs(server, prefix)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    ensure_database(server, name)
    url = with_database(server, name)
    os.environ["TONLE_DATABASE_URL"] = url
    migrate.upgrade(url)
    return url


def drop_earlier_runs(server: str, prefix: str) -> None:
    """Drop the databases `fresh_database` made for `prefix` before (a run's rows each, kept by
    nothing), except one a run still going is connected to."""
    import psycopg
    from psycopg import errors, sql

    with psycopg.connect(server, autocommit=True) as connection:
        names = [
            name
            for (name,) in connection.execute(
                "SELECT datname FROM pg_database WHERE datname ~ %s", (f"^{prefix}_[0-9a-f]{{8}}$",)
            )
        ]
        for name in names:
            try:
                connection.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
            except errors.ObjectInUse:
                print(f"kept database {name}: a run is using it", file=sys.stderr)


def account_token(session: Any, username: str, role: str, ministry_id: uuid.UUID | None) -> str:
    """A user with the role (in the ministry, if any) and a token for it."""
    from orchestrator.actors import SYSTEM, Role
    from orchestrator.auth import service as auth
    from orchestrator.auth.models import ApiTokenCreate, UserCreate

    user = auth.create_user(
        session=session, actor=SYSTEM, data=UserCreate(username=username, role=Role(role), ministry_id=ministry_id)
    )
    token = auth.issue_token(session=session, actor=SYSTEM, user_id=user.id, data=ApiTokenCreate(name="bench")).token
    session.commit()  # service functions never commit; the caller owns the transaction
    return token


def seed_tenants(session: Any, *, prefix: str, count: int, scale: int = 1) -> tuple[list[dict[str, str]], str, str]:
    """`count` ministries (codes `<prefix><n>-xxxx`), each with a requester and an approver, plus
    an operator and an admin; quota limits multiplied by `scale`. Returns (tenants, operator
    token, admin token)."""
    from orchestrator.actors import SYSTEM
    from orchestrator.ministry import service as ministry_service
    from orchestrator.ministry.models import MinistryCreate, QuotaLimits

    tenants = []
    for index in range(count):
        code = f"{prefix}{index}-{uuid.uuid4().hex[:4]}"
        ministry = ministry_service.create(
            session=session,
            actor=SYSTEM,
            data=MinistryCreate(
                code=code,
                name=f"Ministry {index}",
                quota_limits=QuotaLimits(
                    vcpu=64 * scale,
                    ram_gb=128 * scale,
                    storage_gb=2000 * scale,
                    object_gb=2000 * scale,
                    public_ips=20 * scale,
                    mailboxes=50,
                ),
                dns_suffixes=[f"{code}.gov.example"],
            ),
        )
        tenants.append(
            {
                "code": code,
                "requester": account_token(session, f"{code}-req", "requester", ministry.id),
                "approver": account_token(session, f"{code}-appr", "ministry_approver", ministry.id),
            }
        )
    operator = account_token(session, f"operator-{uuid.uuid4().hex[:4]}", "operator", None)
    admin = account_token(session, f"admin-{uuid.uuid4().hex[:4]}", "admin", None)
    return tenants, operator, admin


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(base: str, api: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or api.poll() is not None:
            raise RuntimeError("the API did not start")
        time.sleep(0.2)


@contextmanager
def api_and_worker(database_url: str, clouds_yaml: Path, **settings: str) -> Iterator[str]:
    """An API and a worker process on the database, building on the local data centre with the
    embedded engine and Ansible; yields the API's base URL. `settings`: more TONLE_* variables."""
    port = free_port()
    env = {
        **os.environ,
        "TONLE_DATABASE_URL": database_url,
        "TONLE_ENGINE": "embedded",
        "TONLE_ANSIBLE": "ansible",
        "TONLE_CLOUDS_YAML": str(clouds_yaml),
        "TONLE_LOG_LEVEL": "WARNING",
        # The data centre's DNS and DCIM; its folder is where clouds.yaml is.
        **orchestrator_env(clouds_yaml.parent),
        **settings,
    }
    processes = [
        subprocess.Popen([sys.executable, "-m", "portal_api.cli", "serve", "--port", str(port)], env=env),
        subprocess.Popen([sys.executable, "-m", "portal_api.cli", "worker"], env=env),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, processes[0], timeout=300)  # a busy 2-core machine imports slowly
        yield base
        time.sleep(5)  # let the last decommissions get going before the worker is stopped
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def order_web_site(
    client: httpx.Client, tenant: dict[str, str], operator: str, *, name: str, domain: str
) -> tuple[dict[str, Any], float]:
    """Order a small web site as the tenant's requester and approve it (see `order_and_approve`)."""
    body = {
        "offering_id": "web-hosting",
        "plan": "small",
        "parameters": {"name": name, "domain": domain, "admin_email": f"bench@{tenant['code']}.gov.example"},
    }
    return order_and_approve(client, tenant, operator, body)


def order_cms_site(
    client: httpx.Client, tenant: dict[str, str], operator: str, *, name: str, domain: str
) -> tuple[dict[str, Any], float]:
    """Order a standard CMS site and approve it (see `order_and_approve`)."""
    body = {
        "offering_id": "cms",
        "plan": "standard",
        "parameters": {
            "name": name,
            "domain": domain,
            "site_title": "Bench site",
            "admin_email": f"bench@{tenant['code']}.gov.example",
        },
    }
    return order_and_approve(client, tenant, operator, body)


def order_mail_domain(
    client: httpx.Client, tenant: dict[str, str], operator: str, *, domain: str, mailboxes: int = 2
) -> tuple[dict[str, Any], float]:
    """Order a team mail domain with a few mailboxes and approve it (see `order_and_approve`)."""
    body = {
        "offering_id": "email",
        "plan": "team",
        "parameters": {
            "name": "mail",
            "mail_domain": domain,
            "postmaster": f"postmaster@{domain}",
            "initial_mailboxes": [
                {"address": f"staff{index}@{domain}", "full_name": f"Staff {index}"} for index in range(mailboxes)
            ],
        },
    }
    return order_and_approve(client, tenant, operator, body)


def order_and_approve(
    client: httpx.Client, tenant: dict[str, str], operator: str, body: dict[str, Any]
) -> tuple[dict[str, Any], float]:
    """Order as the tenant's requester and approve (ministry, then operator). Returns the approved
    request and the monotonic time the operator's approval was sent."""
    response = client.post("/v1/requests", json=body, headers=headers(tenant["requester"]))
    if response.status_code != 201:
        raise RuntimeError(f"order refused: {response.status_code} {response.text}")
    request = response.json()
    client.post(
        f"/v1/requests/{request['id']}/approvals", json={"decision": "approve"}, headers=headers(tenant["approver"])
    )
    approved_at = time.monotonic()
    approved: dict[str, Any] = client.post(
        f"/v1/requests/{request['id']}/approvals", json={"decision": "approve"}, headers=headers(operator)
    ).json()
    return approved, approved_at
