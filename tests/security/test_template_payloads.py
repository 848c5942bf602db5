"""Template payloads through the API, as a ministry's requester would send them.

Every string an offering's order accepts (each leaf of the catalogue's own complete example,
nested ones included) and the day-2 inputs a requester controls are tried with Jinja payloads.
The API refuses each with 422 naming the field, and nothing is reserved or queued. That the same
text stays text inside Ansible, should it ever get past the schema, is proved on real runs in
test_ansible_injection.py; this is the first of the two walls.
"""

import io
import tarfile
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Platform, Tenant, active_service

pytestmark = [pytest.mark.security, pytest.mark.integration]

PAYLOADS = (
    "{{ lookup('pipe', 'touch /tmp/tonle-pwned') }}",
    "x{% for i in range(3) %}y{% endfor %}",
    "{# hidden #}",
)


def string_leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every string in a JSON value."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_leaves(item, (*path, str(index)))


def replaced(value: Any, path: tuple[str, ...], new: str) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, list):
        return [replaced(item, rest, new) if str(i) == head else item for i, item in enumerate(value)]
    return {key: replaced(item, rest, new) if key == head else item for key, item in value.items()}


def order_cases() -> list[tuple[str, str, tuple[str, ...]]]:
    from orchestrator.catalog import service as catalog

    cases = []
    for offering in catalog.list_offerings():
        example = offering.parameters["examples"][0]
        cases += [(offering.id, offering.plans[0].id, path) for path in string_leaves(example)]
    return cases


CASES = order_cases()


def test_every_offering_has_free_text_to_attack() -> None:
    offerings = {offering for offering, _, _ in CASES}
    assert {"web-hosting", "cms", "email", "colocation", "dr-backup"} <= offerings, offerings


@pytest.mark.parametrize(("offering", "plan", "path"), CASES, ids=[f"{o}:{'.'.join(p)}" for o, _, p in CASES])
@pytest.mark.parametrize("payload", PAYLOADS, ids=["expression", "statement", "comment"])
def test_a_template_in_any_order_parameter_is_refused(
    client: httpx.Client, tenant: Tenant, offering: str, plan: str, path: tuple[str, ...], payload: str
) -> None:
    from orchestrator.catalog import service as catalog

    example = catalog.get_offering(offering).parameters["examples"][0]
    body = {"offering_id": offering, "plan": plan, "parameters": replaced(example, path, payload)}
    response = client.post("/v1/requests", json=body, headers=tenant.requester.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    field = ".".join(("parameters", *path))
    named = {problem.get("field"), *(error["field"] for error in problem.get("errors", []))}
    assert field in named, problem
    requests = client.get("/v1/requests", headers=tenant.requester.headers).json()
    assert requests["total"] == 0, "a refused order leaves nothing behind"


@pytest.fixture
def active_site(client: httpx.Client, tenant: Tenant, platform: Platform, work: Any) -> dict[str, Any]:
    service_id = active_service(client, tenant, platform, work)
    service: dict[str, Any] = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()
    return service


def site_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        page = b"<h1>hello</h1>"
        info = tarfile.TarInfo("index.html")
        info.size = len(page)
        archive.addfile(info, io.BytesIO(page))
    return buffer.getvalue()


@pytest.mark.parametrize("payload", PAYLOADS, ids=["expression", "statement", "comment"])
def test_a_template_in_day2_inputs_is_refused(
    client: httpx.Client, tenant: Tenant, active_site: dict[str, Any], payload: str
) -> None:
    service_id = active_site["id"]
    before = client.get(f"/v1/services/{service_id}/operations", headers=tenant.requester.headers).json()

    upload = client.post(
        f"/v1/services/{service_id}/actions/deploy-content",
        params={"filename": f"{payload}.tar.gz"},
        content=site_archive(),
        headers={**tenant.requester.headers, "Content-Type": "application/gzip"},
    )
    assert upload.status_code == 422, upload.text
    assert upload.json()["field"] == "filename", upload.json()

    resize = client.post(
        f"/v1/services/{service_id}/actions/resize", json={"plan": payload}, headers=tenant.requester.headers
    )
    assert resize.status_code == 422, resize.text
    assert resize.json()["field"] == "plan", resize.json()

    action = client.post(f"/v1/services/{service_id}/actions/{payload}", headers=tenant.requester.headers)
    assert action.status_code in (404, 422), action.text

    after = client.get(f"/v1/services/{service_id}/operations", headers=tenant.requester.headers).json()
    assert after == before, "refused inputs queue no operation"


def test_the_archive_name_is_kept_for_the_record_only(
    client: httpx.Client, tenant: Tenant, active_site: dict[str, Any]
) -> None:
    """A harmless but unusual name is accepted, and the run never sees it (see test_ansible_injection)."""
    name = f"site (v2) {uuid.uuid4().hex[:6]}.tar.gz"
    upload = client.post(
        f"/v1/services/{active_site['id']}/actions/deploy-content",
        params={"filename": name},
        content=site_archive(),
        headers={**tenant.requester.headers, "Content-Type": "application/gzip"},
    )
    assert upload.status_code == 202, upload.text
    from orchestrator.database.core import session_scope
    from orchestrator.operations.models import Operation

    with session_scope() as session:
        operation = session.get(Operation, uuid.UUID(upload.json()["id"]))
        assert operation is not None
        parameters = dict(operation.parameters or {})
    assert name not in str(parameters), "the operation refers to the upload by id, never by its name"
    assert parameters.get("uploads"), parameters
