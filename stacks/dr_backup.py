"""DR backup target: a bucket at the DR site for the ministry's own backup tools.

The offering says `s3_bucket: true`, so the orchestrator makes the bucket, a Keystone user of the
service's own whose only role reaches that bucket alone (container ACLs), and that user's EC2
credential, and hands out the site's S3 endpoint (`orchestrator/workflows/steps.py`). A stack
program cannot: that needs the admin entry of clouds.yaml, and the bucket lives at the DR site
while stacks are built at the primary one. What the program says is the plan's terms."""

from stacks.config import StackConfig
from stacks.outputs import export_outputs


def program() -> None:
    config = StackConfig()
    export_outputs(
        hosts={},
        endpoints={
            "quota_gb": config.sizes.number("object_gb"),
            "retention_days": config.sizes.number("retention_days"),
        },
        credentials={},
    )
