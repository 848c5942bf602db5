"""A ministry orders dr-backup through the real API (real worker, embedded engine, the local data
centre): the `s3` health check passes with the ministry's own keys, the keys are revealed once,
and with boto3 at the revealed endpoint they read and write the service's bucket, and nothing
else: not another container of the same ministry's project, not another ministry's bucket, and
not their own bucket once the service is decommissioned (the bucket itself is kept)."""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from orchestrator.cloud.tenancy import project_name
from tests.cloud import conftest as cloud_tier
from tests.cloud.conftest import DevCloud, System
from tests.cloud.test_web_hosting_e2e import follow
from tests.conftest import Tenant, make_tenant

pytestmark = [pytest.mark.cloud, pytest.mark.timeout(1200)]

try:
    import boto3
except ImportError as exc:  # a dev dependency: missing only on a broken install
    cloud_tier.unavailable(f"boto3 cannot be imported: {exc}")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402


@pytest.fixture(scope="module")
def system_settings() -> dict[str, str]:
    return {"TONLE_HEALTH_TIMEOUT_SECONDS": "120"}


def s3_client(endpoints: dict[str, Any], credentials: dict[str, Any]) -> Any:
    """What a ministry's tool does with what Tonle handed out, and nothing more."""
    return boto3.client(
        "s3",
        endpoint_url=endpoints["s3_endpoint"],
        region_name=endpoints.get("s3_region", "us-east-1"),
        aws_access_key_id=credentials["s3_access_key_id"],
        aws_secret_access_key=credentials["s3_secret_access_key"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def denied(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def operator_of(devcloud: DevCloud, tenant: Tenant) -> Any:
    """openstacksdk as the DR site's user in the ministry's project (the project's operator)."""
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(devcloud.clouds_yaml)], vendor_files=[])
    return openstack.connection.Connection(
        config=config.get_one(cloud="tonle-dr", project_name=project_name(tenant.code))
    )


@pytest.fixture(scope="module")
def ministries(system: System, devcloud: DevCloud) -> Iterator[tuple[Tenant, Tenant]]:
    """Two ministries; afterwards nothing of theirs is left in the shared cloud."""
    tenants = (make_tenant(), make_tenant())
    yield tenants
    for tenant in tenants:
        project = devcloud.admin.identity.find_project(project_name(tenant.code), domain_id="default")
        if project is None:
            continue
        operator = operator_of(devcloud, tenant)
        for container in list(operator.object_store.containers()):
            for obj in list(operator.object_store.objects(container.name)):
                operator.object_store.delete_object(obj, container=container.name)
            operator.object_store.delete_container(container.name)
        operator.close()
        for assignment in list(devcloud.admin.identity.role_assignments(scope_project_id=project.id)):
            user = devcloud.admin.identity.find_user(assignment.user["id"]) if assignment.user else None
            if user is not None and user.name.startswith("tonle-backup-"):
                devcloud.admin.identity.delete_user(user)
        devcloud.admin.identity.delete_project(project)


def order_dr_backup(client: httpx.Client, tenant: Tenant, system: System) -> dict[str, Any]:
    """Ordered by the requester, approved by the ministry's head (the offering's one stage),
    built; the active service."""
    body = {
        "offering_id": "dr-backup",
        "plan": "archive-500g",
        "parameters": {"name": "tax-archive", "purpose": "Off-site copies of the tax archive dumps"},
    }
    request = client.post("/v1/requests", json=body, headers=tenant.requester.headers)
    assert request.status_code == 201, request.text
    approved = client.post(
        f"/v1/requests/{request.json()['id']}/approvals",
        json={"decision": "approve", "reference": "MOF/IT/007"},
        headers=tenant.approver.headers,
    ).json()
    assert approved["status"] == "approved", approved
    operation = follow(client, tenant.requester.headers, approved["operation_id"], system)
    assert [s["status"] for s in operation["steps"]] == ["succeeded"] * len(operation["steps"])
    events = client.get(f"/v1/operations/{operation['id']}/events", headers=tenant.requester.headers).json()
    probes = [e for e in events if e["type"] == "health.probe"]
    assert probes and probes[-1]["data"]["passed"] is True, probes
    service: dict[str, Any] = client.get(
        f"/v1/services/{approved['service_id']}", headers=tenant.requester.headers
    ).json()
    assert service["status"] == "active"
    return service


def test_dr_backup_keys_reach_the_services_bucket_and_nothing_else(
    system: System, devcloud: DevCloud, ministries: tuple[Tenant, Tenant]
) -> None:
    finance, health = ministries
    with httpx.Client(base_url=system.url, timeout=60) as client:
        service = order_dr_backup(client, finance, system)
        other_service = order_dr_backup(client, health, system)

        endpoints = service["endpoints"]
        site_endpoint = operator_of(devcloud, finance).config.config["s3_endpoint"]
        assert endpoints["s3_endpoint"] == site_endpoint, "the DR site's S3 endpoint from clouds.yaml"
        assert endpoints["bucket"] != other_service["endpoints"]["bucket"]
        assert "s3_secret_access_key" not in str(service), "keys are not part of the service's view"

        revealed = client.post(f"/v1/services/{service['id']}/credentials", headers=finance.requester.headers)
        assert revealed.status_code == 200, revealed.text
        keys = revealed.json()["credentials"]
        again = client.post(f"/v1/services/{service['id']}/credentials", headers=finance.requester.headers)
        assert again.status_code == 409, "revealed once"
        other_keys = client.post(
            f"/v1/services/{other_service['id']}/credentials", headers=health.requester.headers
        ).json()["credentials"]

        # The bucket lives in the ministry's project at the DR site, not the primary one.
        dr = operator_of(devcloud, finance)
        bucket = dr.object_store.get_container_metadata(endpoints["bucket"])
        assert bucket.name == endpoints["bucket"]
        # Capped at the plan's 500 GB where the proxy runs container_quotas.
        metadata = {key.lower(): value for key, value in (bucket.metadata or {}).items()}
        assert metadata["quota-bytes"] == str(500 * 1024**3)

        s3 = s3_client(endpoints, keys)
        body = b"restic pack " + uuid.uuid4().bytes
        s3.put_object(Bucket=endpoints["bucket"], Key="repo/data/00/pack", Body=body)
        assert s3.get_object(Bucket=endpoints["bucket"], Key="repo/data/00/pack")["Body"].read() == body
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket=endpoints["bucket"])["Contents"]]
        assert listed == ["repo/data/00/pack"], "the health check left nothing behind"

        # Another container of the same ministry's project, made by the project's operator.
        private = f"finance-payroll-{uuid.uuid4().hex[:6]}"
        dr.object_store.create_container(name=private)
        dr.object_store.upload_object(container=private, name="salaries.csv", data=b"secret payroll")
        assert denied(s3.get_object, Bucket=private, Key="salaries.csv") == "AccessDenied"
        assert denied(s3.list_objects_v2, Bucket=private) == "AccessDenied"
        assert denied(s3.put_object, Bucket=private, Key="planted", Body=b"x") == "AccessDenied"
        assert denied(s3.list_buckets) == "AccessDenied"
        assert denied(s3.create_bucket, Bucket=f"squat-{uuid.uuid4().hex[:6]}") == "AccessDenied"

        # Another ministry's bucket, both ways.
        theirs = other_service["endpoints"]["bucket"]
        s3_client(other_service["endpoints"], other_keys).put_object(Bucket=theirs, Key="repo/config", Body=b"h")
        assert denied(s3.get_object, Bucket=theirs, Key="repo/config") in {"AccessDenied", "NoSuchBucket"}
        assert denied(s3.put_object, Bucket=theirs, Key="planted", Body=b"x") in {"AccessDenied", "NoSuchBucket"}
        assert denied(
            s3_client(other_service["endpoints"], other_keys).get_object,
            Bucket=endpoints["bucket"],
            Key="repo/data/00/pack",
        ) in {"AccessDenied", "NoSuchBucket"}

        # Decommissioned: the keys stop working; the bucket and its data are kept.
        retired = client.post(f"/v1/services/{service['id']}/decommission", headers=finance.requester.headers)
        assert retired.status_code == 202, retired.text
        follow(client, finance.requester.headers, retired.json()["id"], system)
        assert denied(s3.get_object, Bucket=endpoints["bucket"], Key="repo/data/00/pack") in {
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
        }
        assert dr.object_store.download_object("repo/data/00/pack", container=endpoints["bucket"]) == body
        dr.close()
