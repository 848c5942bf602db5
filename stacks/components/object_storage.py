"""An object-storage container with S3 (EC2) credentials for the ministry's own tools."""

from dataclasses import dataclass

import pulumi_openstack as openstack

from stacks.labels import Labels

GIB = 1024**3


@dataclass(frozen=True)
class Bucket:
    container: openstack.objectstorage.Container
    credential: openstack.identity.Ec2CredentialV3


def s3_bucket(labels: Labels, *, quota_gb: int, retention_days: int) -> Bucket:
    container = openstack.objectstorage.Container(
        "bucket",
        name=labels.bucket(),
        metadata={
            **labels.header_metadata,
            # Swift's container_quotas middleware enforces this where the site runs it.
            "Quota-Bytes": str(quota_gb * GIB),
            # Recorded for the orchestrator's retention job; Swift has no container lifecycle.
            "Tonle-Retention-Days": str(retention_days),
        },
        # A DR backup target holds the only off-site copies: never empty it by accident.
        force_destroy=False,
    )
    # EC2 credentials belong to the user and project the provider runs as; the S3 API of the
    # site maps them to that project's containers.
    credential = openstack.identity.Ec2CredentialV3("s3-credential")
    return Bucket(container=container, credential=credential)
