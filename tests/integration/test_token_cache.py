"""Every API process remembers the tokens it has authenticated, and forgets them once the news that
a token was revoked or its user deactivated reaches it (PostgreSQL's NOTIFY, milliseconds after the
commit), or when it (or a parent) expires: shown on two API processes sharing one database, each of
which has the token in memory when the change is made through the other."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from orchestrator.auth.revocation_listener import APPLICATION_NAME
from orchestrator.auth.token_cache import CHANNEL
from tests.conftest import Database, Platform, Tenant, make_account, serving_api

pytestmark = pytest.mark.integration

# The catalogue listing reads nothing from the database: a cached token answers it with no query.
CHEAP = "/v1/catalog"


@pytest.fixture(scope="module")
def second_api(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with (
        serving_api(database.url, Path(tmp_path_factory.mktemp("second-api"))) as url,
        httpx.Client(base_url=url, timeout=30.0) as http,
    ):
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mint(api: httpx.Client, headers: dict[str, str], name: str) -> dict[str, str]:
    response = api.post("/v1/tokens", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    issued: dict[str, str] = response.json()
    return issued


def remembered_by(apis: list[httpx.Client], token: str) -> None:
    """Every process has authenticated the token (so it is in its memory now)."""
    for api in apis:
        for _ in range(2):
            assert api.get(CHEAP, headers=bearer(token)).status_code == 200


# PostgreSQL hands a notification to each listening process on its own, after the commit: on a
# busy host the request that follows the revocation can reach the other process first. A process
# refuses the token once the notification has reached it; this is how long that may take here.
HEARD_WITHIN_S = 2.0


def refused_once_heard(api: httpx.Client, token: str) -> None:
    deadline = time.monotonic() + HEARD_WITHIN_S
    while (status := api.get(CHEAP, headers=bearer(token)).status_code) == 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert status == 401, f"still {status} {HEARD_WITHIN_S} s after the change was announced"


def sql(database: Database, statement: str, *params: object) -> None:
    """A change made behind the services' back: no session hook sees it, nothing is announced."""
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(statement, params)


def test_a_token_revoked_through_one_process_is_refused_by_both_once_announced(
    client: httpx.Client, second_api: httpx.Client, tenant: Tenant
) -> None:
    for revoking, other in ((client, second_api), (second_api, client)):
        token = mint(revoking, tenant.requester.headers, "laptop")
        remembered_by([client, second_api], token["token"])
        revoked = revoking.delete(f"/v1/tokens/{token['id']}", headers=tenant.requester.headers)
        assert revoked.status_code == 200, revoked.text
        refused_once_heard(other, token["token"])
        refused_once_heard(revoking, token["token"])
    assert client.get(CHEAP, headers=tenant.requester.headers).status_code == 200, "other tokens live on"


def test_a_child_token_dies_in_both_processes_with_its_revoked_parent(
    client: httpx.Client, second_api: httpx.Client, tenant: Tenant
) -> None:
    parent = mint(client, tenant.requester.headers, "parent")
    child = mint(second_api, bearer(parent["token"]), "child")
    remembered_by([client, second_api], child["token"])
    assert client.delete(f"/v1/tokens/{parent['id']}", headers=tenant.requester.headers).status_code == 200
    refused_once_heard(second_api, child["token"])
    refused_once_heard(client, child["token"])


def test_a_deactivated_user_is_refused_by_both_processes_once_announced(
    client: httpx.Client, second_api: httpx.Client, tenant: Tenant, platform: Platform
) -> None:
    user = make_account("requester", tenant.ministry_id)
    spare = mint(second_api, user.headers, "spare")
    remembered_by([client, second_api], user.token)
    remembered_by([client, second_api], spare["token"])
    deactivated = client.post(f"/v1/users/{user.user_id}/deactivate", headers=platform.admin.headers)
    assert deactivated.status_code == 200, deactivated.text
    for api in (second_api, client):
        for token in (user.token, spare["token"]):
            refused_once_heard(api, token)


def test_a_remembered_token_is_refused_once_a_parent_expires(
    client: httpx.Client, second_api: httpx.Client, tenant: Tenant, database: Database
) -> None:
    parent = mint(client, tenant.requester.headers, "parent")
    # Expiry is not announced: each process must know when the earliest expiry along the chain is.
    sql(database, "UPDATE apitoken SET expires_at = now() + interval '2 seconds' WHERE id = %s", parent["id"])
    child = mint(client, bearer(parent["token"]), "child")
    remembered_by([client, second_api], child["token"])
    time.sleep(2.5)
    for api in (client, second_api):
        assert api.get(CHEAP, headers=bearer(child["token"])).status_code == 401
        assert api.get(CHEAP, headers=bearer(parent["token"])).status_code == 401


def test_processes_answer_from_memory_and_forget_on_the_notification(
    client: httpx.Client, second_api: httpx.Client, tenant: Tenant, database: Database
) -> None:
    token = mint(client, tenant.requester.headers, "remembered")
    remembered_by([client, second_api], token["token"])
    sql(database, "UPDATE apitoken SET revoked_at = now() WHERE id = %s", token["id"])
    # Proof that the processes do answer from memory: a change nobody announced is not seen yet...
    for api in (client, second_api):
        assert api.get(CHEAP, headers=bearer(token["token"])).status_code == 200
    # ...and that the announcement is all it takes.
    sql(database, "SELECT pg_notify(%s, '')", CHANNEL)
    for api in (client, second_api):
        refused_once_heard(api, token["token"])


def test_a_process_that_lost_its_channel_looks_every_token_up(
    client: httpx.Client, second_api: httpx.Client, tenant: Tenant, database: Database
) -> None:
    token = mint(client, tenant.requester.headers, "unheard")
    remembered_by([client, second_api], token["token"])
    # Both processes' listening connections die (waiting until they have), then a change nobody
    # announces: a process that cannot hear announcements must not trust its memory.
    sql(
        database,
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = %s",
        APPLICATION_NAME,
    )
    sql(database, "UPDATE apitoken SET revoked_at = now() WHERE id = %s", token["id"])
    for api in (client, second_api):
        assert api.get(CHEAP, headers=bearer(token["token"])).status_code == 401
    # Listening again (or still looking tokens up), a revocation is honoured once announced, as before.
    later = mint(client, tenant.requester.headers, "later")
    remembered_by([client, second_api], later["token"])
    assert client.delete(f"/v1/tokens/{later['id']}", headers=tenant.requester.headers).status_code == 200
    refused_once_heard(second_api, later["token"])
