"""Per-service secrets: generated once, encrypted at rest, credentials shown to the ministry once."""

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from orchestrator.bootstrap import noop_adapters
from orchestrator.config import get_settings
from orchestrator.jobs import queue
from orchestrator.noop import NoopEngine
from orchestrator.pki.issue import names_of
from orchestrator.ports import EventSink, StackSpec
from tests.conftest import Database, Platform, Tenant, order_and_approve

pytestmark = pytest.mark.integration


def cms_order(tenant: Tenant) -> dict[str, object]:
    """A CMS order under the tenant's own DNS suffix."""
    return {
        "offering_id": "cms",
        "plan": "standard",
        "parameters": {
            "name": "news",
            "domain": f"news.{tenant.dns_suffix}",
            "site_title": "Education news",
            "admin_email": f"press@{tenant.dns_suffix}",
        },
    }


def provision_cms(client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]) -> str:
    approved = order_and_approve(client, tenant, platform, cms_order(tenant))
    work()
    service_id: str = approved["service_id"]
    assert client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()["status"] == "active"
    return service_id


def test_credentials_are_shown_once_to_the_ministry_only(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    service_id = provision_cms(client, tenant, platform, work)
    url = f"/v1/services/{service_id}/credentials"
    assert client.post(url, headers=platform.operator.headers).status_code == 403
    assert client.post(url, headers=other_tenant.requester.headers).status_code == 404

    shown = client.post(url, headers=tenant.requester.headers)
    assert shown.status_code == 200, shown.text
    credentials = shown.json()["credentials"]
    assert set(credentials) == {"cms_admin_password"} and len(credentials["cms_admin_password"]) >= 24

    again = client.post(url, headers=tenant.approver.headers)
    assert again.status_code == 409 and tenant.requester.username in again.json()["detail"]
    service = client.get(f"/v1/services/{service_id}", headers=tenant.approver.headers).json()
    assert service["credentials_revealed_by"] == tenant.requester.username
    assert "cms_admin_password" not in str(service)


def test_secrets_and_keys_are_encrypted_at_rest(
    database: Database, client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    service_id = provision_cms(client, tenant, platform, work)
    password = client.post(f"/v1/services/{service_id}/credentials", headers=tenant.requester.headers).json()[
        "credentials"
    ]["cms_admin_password"]
    with psycopg.connect(database.url) as conn:
        row = conn.execute(
            "SELECT generated_secrets_encrypted, ssh_private_key_encrypted, tls_key_encrypted, tls_cert_pem,"
            " ssh_public_key FROM service WHERE id = %s",
            (uuid.UUID(service_id),),
        ).fetchone()
        dump = " ".join(
            str(v)
            for v in conn.execute("SELECT * FROM service WHERE id = %s", (uuid.UUID(service_id),)).fetchone() or ()
        )
    assert row is not None
    generated, ssh_private, tls_key, tls_cert, ssh_public = row
    assert password not in dump
    assert "PRIVATE KEY" not in dump, "no private key is stored in the clear"
    assert all(value.startswith("gAAAAA") for value in (generated, ssh_private, tls_key))  # Fernet tokens
    assert names_of(tls_cert) == {f"news.{tenant.dns_suffix}"}
    assert ssh_public.startswith("ssh-ed25519 ")


class CredentialMakingEngine(NoopEngine):
    """Test double at the engine boundary: a stack whose outputs carry credentials it made (as
    dr-backup's S3 keys), so the split of outputs into endpoints and credentials is what is tested."""

    def __init__(self) -> None:
        super().__init__()
        self.made: dict[str, str] = {}

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        self.made = {"s3_access_key_id": uuid.uuid4().hex, "s3_secret_access_key": uuid.uuid4().hex * 2}
        return {"hosts": {}, "endpoints": {"bucket": f"{stack.name}-bucket"}, "credentials": dict(self.made)}


@pytest.fixture
def credential_engine() -> Iterator[CredentialMakingEngine]:
    engine = CredentialMakingEngine()
    queue.set_adapters(noop_adapters(get_settings(), engine=engine))
    yield engine
    queue.set_adapters(None)


def test_credentials_a_stack_makes_are_kept_encrypted_and_shown_once_with_the_generated_ones(
    database: Database,
    client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    credential_engine: CredentialMakingEngine,
) -> None:
    service_id = provision_cms(client, tenant, platform, work)
    made = credential_engine.made
    service = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()
    assert service["endpoints"] == {"bucket": f"{service['stack_name']}-bucket"}  # endpoints are shown
    assert made["s3_secret_access_key"] not in str(service)  # credentials are not
    with psycopg.connect(database.url) as conn:
        row = conn.execute(
            "SELECT credentials_encrypted FROM service WHERE id = %s", (uuid.UUID(service_id),)
        ).fetchone()
        dump = " ".join(
            str(v)
            for v in conn.execute("SELECT * FROM service WHERE id = %s", (uuid.UUID(service_id),)).fetchone() or ()
        )
    assert row is not None and row[0].startswith("gAAAAA")
    assert made["s3_access_key_id"] not in dump and made["s3_secret_access_key"] not in dump

    shown = client.post(f"/v1/services/{service_id}/credentials", headers=tenant.requester.headers)
    assert shown.status_code == 200, shown.text
    credentials = shown.json()["credentials"]
    assert len(credentials.pop("cms_admin_password")) >= 24
    assert credentials == made
    again = client.post(f"/v1/services/{service_id}/credentials", headers=tenant.requester.headers)
    assert again.status_code == 409
