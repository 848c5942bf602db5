"""Each service backs up into a bucket of its own at the DR site, in its ministry's project,
over the S3 API with EC2 credentials from Keystone. The bucket outlives the service's stack:
a decommissioned service's backups stay for its retention period."""

import json
import logging
import secrets as random
from pathlib import Path
from typing import Any, Protocol

from orchestrator.cloud.sites import CloudConfigError, connect, site
from orchestrator.cloud.tenancy import Tenancy, project_name
from orchestrator.config import Settings
from orchestrator.pipeline.events import EventSink, ProgressEvent, StepFailed

log = logging.getLogger(__name__)


def bucket_name(stack_name: str) -> str:
    return f"tonle-backup-{stack_name}"[:63]


class BackupTargets(Protocol):
    def ensure(self, *, ministry_code: str, ministry_name: str, stack_name: str, on_event: EventSink) -> dict[str, Any]:
        """The bucket and S3 credentials (endpoint, bucket, access_key, secret_key)."""
        ...


class SwiftBackupTargets:
    """Buckets in the DR site's Swift (s3api), EC2 credentials for the site user in the project."""

    def __init__(self, settings: Settings, tenancy: Tenancy) -> None:
        self.settings = settings
        self.tenancy = tenancy

    def ensure(self, *, ministry_code: str, ministry_name: str, stack_name: str, on_event: EventSink) -> dict[str, Any]:
        site_name = self.settings.dr_site
        self.tenancy.ensure(
            ministry_code=ministry_code, ministry_name=ministry_name, site_name=site_name, on_event=on_event
        )
        try:
            target = site(self.settings, site_name)
            conn = connect(self.settings, target.cloud, project_name=project_name(ministry_code))
        except CloudConfigError as exc:
            raise StepFailed(str(exc)) from exc
        # A site may publish a separate endpoint for its instances (the backup agents run there).
        endpoint = conn.config.config.get("s3_endpoint_for_instances") or conn.config.config.get("s3_endpoint")
        if not endpoint:
            raise StepFailed(f"clouds.yaml entry '{target.cloud}' names no `s3_endpoint` for backups")
        bucket = bucket_name(stack_name)
        if not _exists(conn, bucket):
            conn.object_store.create_container(name=bucket)
            on_event(ProgressEvent(type="backup.bucket", message=f"created backup bucket {bucket} at {site_name}"))
        access, secret = _ec2_credentials(conn)
        ca_file = conn.config.config.get("s3_ca_file_for_instances")
        return {
            **({"ca_pem": Path(ca_file).read_text()} if ca_file else {}),
            "s3_endpoint": endpoint,
            "region": conn.config.config.get("s3_region", "us-east-1"),
            "bucket": bucket,
            "access_key": access,
            "secret_key": secret,
        }


def _exists(conn: Any, bucket: str) -> bool:
    from openstack import exceptions

    try:
        conn.object_store.get_container_metadata(bucket)
    except exceptions.NotFoundException:
        return False
    return True


def _ec2_credentials(conn: Any) -> tuple[str, str]:
    """The site user's EC2 credential in this project: reused if one exists, else created."""
    user_id, project_id = conn.current_user_id, conn.current_project_id
    for credential in conn.identity.credentials(type="ec2", user_id=user_id):
        if credential.project_id == project_id:
            blob = json.loads(credential.blob)
            return str(blob["access"]), str(blob["secret"])
    access, secret = random.token_hex(16), random.token_hex(20)
    conn.identity.create_credential(
        type="ec2", user_id=user_id, project_id=project_id, blob=json.dumps({"access": access, "secret": secret})
    )
    log.info("created EC2 credentials for backups in project %s", project_id)
    return access, secret


class NoBackupTargets:
    """For the no-op engine: nothing is built, so nothing is backed up."""

    def ensure(self, *, ministry_code: str, ministry_name: str, stack_name: str, on_event: EventSink) -> dict[str, Any]:
        return {}
