"""Per-service secrets: generated once, encrypted at rest, credentials shown to the ministry once."""

import uuid
from collections.abc import Callable

import httpx
import psycopg
import pytest

from orchestrator.pki.issue import names_of
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
