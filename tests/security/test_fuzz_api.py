"""A schema fuzzer over the whole live OpenAPI: every operation, as a requester, a ministry
approver and an operator, must never answer with a server error, and what it answers must
match the schema where the schema describes it.

Bounded and reproducible: a few derandomized examples per operation and role. Path
parameters sometimes name rows that exist (one ordered and approved service of the tenant),
so that the fuzzer gets past the 404s into the endpoints' own code. (The seeded operation has
finished, so its event stream ends at once.)
"""

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import Account, Database, Platform, Tenant, make_tenant, order_and_approve, run_worker_until_idle

pytestmark = [pytest.mark.security, pytest.mark.integration]

# Examples per operation: small for `make test`; TONLE_FUZZ_EXAMPLES=200 digs deeper.
MAX_EXAMPLES = int(os.environ.get("TONLE_FUZZ_EXAMPLES", "12"))
ROLES = ("requester", "approver", "operator")

# Uploads are archives sent as the raw body; the fuzzer sends them as it sends any binary body.
schemathesis.serializer.alias(
    ["application/gzip", "application/x-gzip", "application/x-tar", "application/zip"], "application/octet-stream"
)

# Real ids the fuzzer's path parameters are sometimes swapped for (filled by the `seeded` fixture).
REAL_IDS: dict[str, str] = {}


@pytest.fixture(scope="module")
def seeded(database: Database, platform: Platform, api_url: str) -> Iterator[tuple[Tenant, Platform]]:
    tenant = make_tenant()
    with httpx.Client(base_url=api_url, timeout=30.0) as client:
        approved = order_and_approve(client, tenant, platform)
        run_worker_until_idle()
        request = client.get(f"/v1/requests/{approved['id']}", headers=tenant.requester.headers).json()
        # A spare token for the token paths: revoking the one the fuzzer calls with would end the run.
        spare = client.post("/v1/tokens", json={"name": "spare"}, headers=tenant.requester.headers).json()
    REAL_IDS.update(
        {
            "request_id": approved["id"],
            "operation_id": approved["operation_id"],
            "service_id": request["service_id"],
            "ministry_id": str(tenant.ministry_id),
            "user_id": str(tenant.requester.user_id),
            "token_id": spare["id"],
        }
    )
    yield tenant, platform
    REAL_IDS.clear()


@schemathesis.hook
def map_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> dict[str, Any] | None:
    """About half the generated ids (by a bit of the id itself, so it stays reproducible) become real ones."""
    if not path_parameters:
        return path_parameters
    swapped = dict(path_parameters)
    for name, value in path_parameters.items():
        if name in REAL_IDS and isinstance(value, str) and value[-1:] in "02468ace":
            swapped[name] = REAL_IDS[name]
    return swapped


def account_for(role: str, seeded: tuple[Tenant, Platform]) -> Account:
    tenant, platform = seeded
    return {"requester": tenant.requester, "approver": tenant.approver, "operator": platform.operator}[role]


@pytest.mark.timeout(max(900, MAX_EXAMPLES * 60))
def test_no_server_errors(api_url: str, seeded: tuple[Tenant, Platform]) -> None:
    # The schema is loaded and walked here rather than through schemathesis' pytest plugin,
    # whose lazy loader does not run under pytest 9.
    api = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    for result in api.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"the schema has an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            for role in ROLES:
                response = case.call_and_validate(
                    base_url=api_url,
                    headers=account_for(role, seeded).headers,
                    checks=[not_a_server_error, response_schema_conformance],
                    timeout=30,
                )
                statuses[response.status_code] += 1

        try:
            fuzz()
        except (AssertionError, FailureGroup) as exc:  # every operation is fuzzed; failures are reported together
            failures.append(f"{operation.label}: {exc}")
    assert operations > 20, "the whole API was fuzzed"
    assert sum(statuses.values()) >= operations * len(ROLES), statuses
    assert any(200 <= status < 300 for status in statuses), f"some calls got through: {statuses}"
    assert not failures, "\n\n".join(failures)
