"""Each service backs up into a bucket of its own at the DR site, in its ministry's project,
over the S3 API with EC2 credentials from Keystone. The bucket outlives the service's stack:
a decommissioned service's backups stay for its retention period.

Least privilege: the credential a service's backup agent holds (root on the service's server
can read it) belongs to a Keystone user of its own, `tonle-backup-<stack>`, whose only role in
the ministry's project is `tonle-backup`. That role is not one of Swift's `operator_roles`, so
the user owns nothing in the account: it cannot list the buckets, create one, or touch another
service's; the orchestrator (an operator of the project) grants it read and write on its own
bucket with container ACLs (`<project_id>:<user_id>`).

Swift cannot separate delete from write in an ACL, and restic deletes its lock files. So the
bucket keeps history (`X-History-Location`): whatever the agent deletes or overwrites is first
copied, by the proxy, into an archive container `<bucket>+history` on which the agent has no
ACL. A compromised server can hide snapshots from the bucket, not destroy them.
"""

import json
import logging
import secrets as random
from pathlib import Path
from typing import Any

from orchestrator.cloud.sites import CloudConfigError, connect, site
from orchestrator.cloud.tenancy import project_name
from orchestrator.config import Settings
from orchestrator.ports import EventSink, ProgressEvent, StepFailed, Tenancy, TransientError

log = logging.getLogger(__name__)

#: The agents' role in a ministry's project. It must not be in the proxy's keystoneauth
#: `operator_roles` (nor `project_reader_roles`): such a user would own every bucket.
AGENT_ROLE = "tonle-backup"
DOMAIN = "default"


def bucket_name(stack_name: str) -> str:
    return f"tonle-backup-{stack_name}"[:63]


def history_container(bucket: str) -> str:
    # `+` is not valid in an S3 bucket name: the archive is reachable through Swift only.
    return f"{bucket}+history"


def agent_user_name(stack_name: str) -> str:
    return bucket_name(stack_name)


class SwiftBackupTargets:
    """Buckets in the DR site's Swift (s3api); one Keystone user and EC2 credential per service."""

    def __init__(self, settings: Settings, tenancy: Tenancy) -> None:
        self.settings = settings
        self.tenancy = tenancy

    def ensure(
        self,
        *,
        ministry_code: str,
        ministry_name: str,
        stack_name: str,
        on_event: EventSink,
        for_instances: bool = True,
        quota_bytes: int | None = None,
    ) -> dict[str, Any]:
        site_name = self.settings.dr_site
        self.tenancy.ensure(
            ministry_code=ministry_code, ministry_name=ministry_name, site_name=site_name, on_event=on_event
        )
        try:
            target = site(self.settings, site_name)
            # The site user is an operator of the project: it makes the buckets and sets their ACLs.
            conn = connect(self.settings, target.cloud, project_name=project_name(ministry_code))
            admin = connect(self.settings, self.settings.admin_cloud)
        except CloudConfigError as exc:
            raise StepFailed(str(exc)) from exc
        # A site may publish a separate endpoint for its instances (the backup agents run there);
        # a ministry's own machines (a DR-backup bucket) use the site's public one.
        for_instances_endpoint = conn.config.config.get("s3_endpoint_for_instances") if for_instances else None
        endpoint = for_instances_endpoint or conn.config.config.get("s3_endpoint")
        if not endpoint:
            raise StepFailed(f"clouds.yaml entry '{target.cloud}' names no `s3_endpoint` for backups")
        bucket = bucket_name(stack_name)
        try:
            project_id = conn.current_project_id
            user = _agent_user(admin, agent_user_name(stack_name), project_id, stack_name, on_event)
            _containers(
                conn,
                bucket,
                acl=f"{project_id}:{user.id}",
                site_name=site_name,
                on_event=on_event,
                quota_bytes=quota_bytes,
            )
            access, secret = _ec2_credentials(admin, user.id, project_id)
        except Exception as exc:
            if _is_transient(exc):
                raise TransientError(f"DR site: {exc}") from exc
            raise
        ca_file = conn.config.config.get("s3_ca_file_for_instances" if for_instances else "s3_ca_file")
        return {
            **({"ca_pem": Path(ca_file).read_text()} if ca_file else {}),
            "s3_endpoint": endpoint,
            "region": conn.config.config.get("s3_region", "us-east-1"),
            "bucket": bucket,
            "access_key": access,
            "secret_key": secret,
        }

    def retire(self, *, ministry_code: str, stack_name: str, on_event: EventSink) -> None:
        """Disable (not delete) the agent's user: its server is gone, so nobody should hold a
        working credential; the user and its ACL entries stay until the bucket's retention
        ends, and the orchestrator reads the bucket as the project's operator for restores."""
        try:
            admin = connect(self.settings, self.settings.admin_cloud)
        except CloudConfigError as exc:
            raise StepFailed(str(exc)) from exc
        try:
            user = admin.identity.find_user(agent_user_name(stack_name), domain_id=DOMAIN)
            if user is not None and user.is_enabled:
                admin.identity.update_user(user, is_enabled=False)
                on_event(
                    ProgressEvent(
                        type="backup.agent_disabled",
                        message=f"disabled the bucket credential of {stack_name}; its bucket is kept",
                    )
                )
        except Exception as exc:
            if _is_transient(exc):
                raise TransientError(f"identity service: {exc}") from exc
            raise


def _agent_user(admin: Any, name: str, project_id: str, stack_name: str, on_event: EventSink) -> Any:
    """The service's agent user, with the agent role (and only that) in the project."""
    from openstack import exceptions

    user = admin.identity.find_user(name, domain_id=DOMAIN)
    if user is None:
        try:
            # No password: it signs in only with its EC2 credential, through s3token.
            user = admin.identity.create_user(
                name=name,
                domain_id=DOMAIN,
                description=f"Tonle backup agent of {stack_name}: its own bucket only",
                is_enabled=True,
            )
            on_event(ProgressEvent(type="backup.agent_user", message=f"created backup user {name}"))
        except exceptions.ConflictException:
            # A concurrent operation on the same service made it a moment ago.
            user = admin.identity.find_user(name, domain_id=DOMAIN)
            if user is None:
                raise
    elif not user.is_enabled:
        # Disabled when its service was decommissioned: a retired service's bucket is written
        # by nobody again, and silently re-enabling a credential is not something to do here.
        raise StepFailed(f"the backup agent of {stack_name} was retired (Keystone user {name} is disabled)")
    role = _agent_role(admin)
    if not admin.identity.validate_user_has_project_role(project_id, user, role):
        admin.identity.assign_project_role_to_user(project_id, user, role)
    return user


def _agent_role(admin: Any) -> Any:
    from openstack import exceptions

    role = admin.identity.find_role(AGENT_ROLE)
    if role is None:
        try:
            role = admin.identity.create_role(name=AGENT_ROLE, description="Tonle backup agent: ACL-granted buckets")
        except exceptions.ConflictException:
            role = admin.identity.find_role(AGENT_ROLE)
            if role is None:
                raise
    return role


def _containers(
    conn: Any, bucket: str, *, acl: str, site_name: str, on_event: EventSink, quota_bytes: int | None = None
) -> None:
    """The archive, then the bucket with its ACLs and history; a PUT on an existing container
    only updates its metadata, so buckets made before the agents had users of their own get
    their ACLs on the next run."""
    history = history_container(bucket)
    existed = _exists(conn, bucket)
    conn.object_store.create_container(name=history)
    conn.object_store.create_container(name=bucket, read_ACL=acl, write_ACL=acl, history_location=history)
    if quota_bytes is not None:
        # Set on every run, so a plan change moves the cap (X-Container-Meta-Quota-Bytes).
        conn.object_store.set_container_metadata(bucket, refresh=False, **{"Quota-Bytes": str(quota_bytes)})
    # s3api writes the parts of multipart uploads (large packs) here, as the uploading user.
    conn.object_store.create_container(name=f"{bucket}+segments", read_ACL=acl, write_ACL=acl)
    if not existed:
        on_event(ProgressEvent(type="backup.bucket", message=f"created backup bucket {bucket} at {site_name}"))


def _exists(conn: Any, bucket: str) -> bool:
    from openstack import exceptions

    try:
        conn.object_store.get_container_metadata(bucket)
    except exceptions.NotFoundException:
        return False
    return True


def _ec2_credentials(admin: Any, user_id: str, project_id: str) -> tuple[str, str]:
    """The agent user's EC2 credential in this project: reused if one exists (Keystone keeps
    it encrypted, so the orchestrator stores no copy), else created."""
    for credential in admin.identity.credentials(type="ec2", user_id=user_id):
        if credential.project_id == project_id:
            blob = json.loads(credential.blob)
            return str(blob["access"]), str(blob["secret"])
    access, secret = random.token_hex(16), random.token_hex(20)
    admin.identity.create_credential(
        type="ec2", user_id=user_id, project_id=project_id, blob=json.dumps({"access": access, "secret": secret})
    )
    log.info("created an EC2 credential for backup user %s in project %s", user_id, project_id)
    return access, secret


def _is_transient(exc: Exception) -> bool:
    from keystoneauth1 import exceptions as ks

    return isinstance(exc, ks.ConnectFailure | ks.ConnectTimeout | ks.ServiceUnavailable | ks.GatewayTimeout)


class NoBackupTargets:
    """For the no-op engine: nothing is built, so nothing is backed up."""

    def ensure(
        self,
        *,
        ministry_code: str,
        ministry_name: str,
        stack_name: str,
        on_event: EventSink,
        for_instances: bool = True,
        quota_bytes: int | None = None,
    ) -> dict[str, Any]:
        return {}

    def retire(self, *, ministry_code: str, stack_name: str, on_event: EventSink) -> None:
        return None
