"""A backup agent's credential reaches its own service's bucket and nothing else.

Root on one server holds its backup agent's EC2 credential. Here three services of one
ministry get their targets from the real adapter (`SwiftBackupTargets`, with the admin and DR
entries of the local data centre's clouds.yaml); then, with boto3 through the S3 API as restic
would, service A's credential is tried against its own bucket, service B's, the account's
bucket list, and a decommissioned service's retained bucket.

The agents on instances use the site's relay (`s3_endpoint_for_instances`); these tests talk to
the same Swift proxy at `s3_endpoint`, which decides the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.backup.targets import AGENT_ROLE, SwiftBackupTargets, agent_user_name, history_container
from orchestrator.cloud.tenancy import OpenStackTenancy, project_name
from orchestrator.config import Settings
from orchestrator.ports import ProgressEvent, StepFailed
from tests.cloud import conftest as cloud_tier
from tests.cloud.conftest import DevCloud

pytestmark = [pytest.mark.security, pytest.mark.cloud]

# The cloud tier's fixture (the local data centre, started if it is not running), as `cloud` here.
cloud = cloud_tier.devcloud

try:
    import boto3
except ImportError as exc:  # a dev dependency: missing only on a broken install
    cloud_tier.unavailable(f"boto3 cannot be imported: {exc}")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from botocore.handlers import validate_bucket_name  # noqa: E402


@dataclass
class Agent:
    stack_name: str
    target: dict[str, Any]

    @property
    def bucket(self) -> str:
        return str(self.target["bucket"])


@dataclass
class Ministry:
    code: str
    targets: SwiftBackupTargets
    operator: Any  # openstacksdk connection as the project's operator (what the orchestrator restores with)
    s3_endpoint: str
    region: str
    events: list[ProgressEvent]

    def ensure(self, stack_name: str) -> Agent:
        target = self.targets.ensure(
            ministry_code=self.code,
            ministry_name="Ministry of Tests",
            stack_name=stack_name,
            on_event=self.events.append,
        )
        return Agent(stack_name, target)

    def s3(self, agent: Agent, *, any_name: bool = False) -> Any:
        client = boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name=self.region,
            aws_access_key_id=agent.target["access_key"],
            aws_secret_access_key=agent.target["secret_key"],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        if any_name:
            # An attacker's client sends names boto3 would refuse (the archive's `+`).
            client.meta.events.unregister("before-parameter-build.s3", validate_bucket_name)
        return client


@pytest.fixture(scope="module")
def ministry(cloud: DevCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ministry]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), clouds_yaml=Path(cloud.clouds_yaml))
    code = f"bk{uuid.uuid4().hex[:6]}"
    targets = SwiftBackupTargets(settings, OpenStackTenancy(settings))
    events: list[ProgressEvent] = []
    # The project exists once the first target is made; the operator connection is opened after.
    targets.ensure(ministry_code=code, ministry_name="Ministry of Tests", stack_name="probe", on_event=events.append)
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(cloud.clouds_yaml)], vendor_files=[])
    operator = openstack.connection.Connection(config=config.get_one(cloud="tonle-dr", project_name=project_name(code)))
    yield Ministry(
        code=code,
        targets=targets,
        operator=operator,
        s3_endpoint=operator.config.config["s3_endpoint"],
        region=operator.config.config.get("s3_region", "us-east-1"),
        events=events,
    )
    _clean_up(cloud, operator, code)
    operator.close()


def _clean_up(cloud: DevCloud, operator: Any, code: str) -> None:
    """The shared cloud keeps nothing of this module: containers, agent users, the project."""
    for container in list(operator.object_store.containers()):
        for obj in list(operator.object_store.objects(container.name)):
            operator.object_store.delete_object(obj, container=container.name)
        operator.object_store.delete_container(container.name)
    project = cloud.admin.identity.find_project(project_name(code), domain_id="default")
    if project is None:
        return
    for assignment in list(cloud.admin.identity.role_assignments(scope_project_id=project.id)):
        user = cloud.admin.identity.find_user(assignment.user["id"]) if assignment.user else None
        if user is not None and user.name.startswith("tonle-backup-"):
            cloud.admin.identity.delete_user(user)
    cloud.admin.identity.delete_project(project)


def _denied(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return str(caught.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def agents(ministry: Ministry) -> dict[str, Agent]:
    return {name: ministry.ensure(f"{ministry.code}-{name}") for name in ("a", "b", "c")}


def test_agent_reads_and_writes_its_own_bucket(ministry: Ministry, agents: dict[str, Agent]) -> None:
    a = agents["a"]
    s3 = ministry.s3(a)
    s3.head_bucket(Bucket=a.bucket)
    s3.put_object(Bucket=a.bucket, Key="repo/config", Body=b"restic config")
    s3.put_object(Bucket=a.bucket, Key="repo/locks/1", Body=b"lock")
    assert s3.get_object(Bucket=a.bucket, Key="repo/config")["Body"].read() == b"restic config"
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=a.bucket, Prefix="repo/")["Contents"]]
    assert listed == ["repo/config", "repo/locks/1"]
    # restic removes its own lock files: the agent may delete in its bucket.
    s3.delete_object(Bucket=a.bucket, Key="repo/locks/1")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=a.bucket, Prefix="repo/")["Contents"]] == ["repo/config"]


def test_what_an_agent_deletes_stays_in_an_archive_it_cannot_reach(
    ministry: Ministry, agents: dict[str, Agent]
) -> None:
    a = agents["a"]
    s3 = ministry.s3(a)
    snapshot = b"snapshot " + uuid.uuid4().bytes
    s3.put_object(Bucket=a.bucket, Key="repo/snapshots/1", Body=snapshot)
    s3.delete_object(Bucket=a.bucket, Key="repo/snapshots/1")
    assert _denied(s3.get_object, Bucket=a.bucket, Key="repo/snapshots/1") == "NoSuchKey"

    archive = history_container(a.bucket)
    kept = [o.name for o in ministry.operator.object_store.objects(archive) if "repo/snapshots/1" in o.name]
    contents = [ministry.operator.object_store.download_object(name, container=archive) for name in kept]
    assert snapshot in contents, "the deleted snapshot is kept in the archive"
    # The agent can neither list nor read nor empty the archive (no ACL on it for anyone).
    raw = ministry.s3(a, any_name=True)
    assert _denied(raw.list_objects_v2, Bucket=archive) in {"AccessDenied", "InvalidBucketName"}
    for name in kept:
        key = name.removeprefix(archive + "/")
        assert _denied(raw.get_object, Bucket=archive, Key=key) in {"AccessDenied", "InvalidBucketName"}


def test_agent_cannot_reach_another_services_bucket(ministry: Ministry, agents: dict[str, Agent]) -> None:
    a, b = agents["a"], agents["b"]
    ministry.s3(b).put_object(Bucket=b.bucket, Key="repo/config", Body=b"b's config")
    s3 = ministry.s3(a)
    assert _denied(s3.list_objects_v2, Bucket=b.bucket) == "AccessDenied"
    assert _denied(s3.get_object, Bucket=b.bucket, Key="repo/config") == "AccessDenied"
    assert _denied(s3.put_object, Bucket=b.bucket, Key="repo/snapshots/evil", Body=b"x") == "AccessDenied"
    assert _denied(s3.delete_object, Bucket=b.bucket, Key="repo/config") == "AccessDenied"
    assert ministry.s3(b).get_object(Bucket=b.bucket, Key="repo/config")["Body"].read() == b"b's config"


def test_agent_cannot_discover_or_make_buckets(ministry: Ministry, agents: dict[str, Agent]) -> None:
    s3 = ministry.s3(agents["a"])
    assert _denied(s3.list_buckets) == "AccessDenied"
    assert _denied(s3.create_bucket, Bucket=f"tonle-backup-{ministry.code}-squat") == "AccessDenied"
    # Nor change who else may use its own bucket.
    assert _denied(s3.delete_bucket, Bucket=agents["a"].bucket) in {"AccessDenied", "BucketNotEmpty"}


def test_decommissioned_service_bucket_is_kept_and_closed(ministry: Ministry, agents: dict[str, Agent]) -> None:
    a, c = agents["a"], agents["c"]
    ministry.s3(c).put_object(Bucket=c.bucket, Key="repo/snapshots/final", Body=b"final backup")
    ministry.targets.retire(ministry_code=ministry.code, stack_name=c.stack_name, on_event=ministry.events.append)

    assert _denied(ministry.s3(a).get_object, Bucket=c.bucket, Key="repo/snapshots/final") == "AccessDenied"
    assert _denied(ministry.s3(a).list_objects_v2, Bucket=c.bucket) == "AccessDenied"
    # The retired agent's own credential no longer works, even on its own bucket...
    assert _denied(ministry.s3(c).get_object, Bucket=c.bucket, Key="repo/snapshots/final") in {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
    }
    # ...while the orchestrator, as the project's operator, can still restore from it.
    assert ministry.operator.object_store.download_object("repo/snapshots/final", container=c.bucket) == b"final backup"
    # Nothing hands the retired agent a working credential again.
    with pytest.raises(StepFailed, match="retired"):
        ministry.ensure(c.stack_name)


def test_a_retry_reuses_the_user_and_credential(cloud: DevCloud, ministry: Ministry, agents: dict[str, Agent]) -> None:
    a = agents["a"]
    again = ministry.ensure(a.stack_name)
    assert (again.target["access_key"], again.target["secret_key"]) == (a.target["access_key"], a.target["secret_key"])
    admin = cloud.admin.identity
    user = admin.find_user(agent_user_name(a.stack_name), domain_id="default")
    assert user is not None
    assert len(list(admin.credentials(type="ec2", user_id=user.id))) == 1
    # The agent's only role in the project is the non-operator one.
    project = admin.find_project(project_name(ministry.code), domain_id="default")
    roles = {
        admin.get_role(r.role["id"]).name for r in admin.role_assignments(user_id=user.id, scope_project_id=project.id)
    }
    assert roles == {AGENT_ROLE}
