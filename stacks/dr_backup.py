"""DR backup target: an S3-compatible container at the DR site (the orchestrator points the
provider there) with S3 credentials for the ministry's own backup tools."""

from typing import Any

from stacks.components.object_storage import s3_bucket
from stacks.config import StackConfig
from stacks.labels import Labels
from stacks.outputs import export_outputs


def program() -> None:
    config = StackConfig()
    labels = Labels.from_config(config)
    quota_gb = config.sizes.number("object_gb")
    retention_days = config.sizes.number("retention_days")
    bucket = s3_bucket(labels, quota_gb=quota_gb, retention_days=retention_days)
    endpoints: dict[str, Any] = {
        "bucket": bucket.container.name,
        "quota_gb": quota_gb,
        "retention_days": retention_days,
    }
    if config.s3_endpoint:
        endpoints["s3_endpoint"] = config.s3_endpoint
    export_outputs(
        hosts={},
        endpoints=endpoints,
        credentials={"s3_access_key_id": bucket.credential.access, "s3_secret_access_key": bucket.credential.secret},
    )
