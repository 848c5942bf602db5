"""Write `<data>/devcloud/clouds.yaml`: `tonle-primary`, `tonle-dr` and `tonle-admin`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devcloud import ports
from devcloud.services import s3_gateway
from devcloud.services.resources import SITE_PASSWORD, SITE_PROJECT, SITE_USER

if TYPE_CHECKING:
    from devcloud.context import Context


def _entry(ctx: Context, username: str, password: str, project: str) -> dict[str, Any]:
    return {
        "auth": {
            "auth_url": ctx.admin.auth_url,
            "username": username,
            "password": password,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": ctx.admin.region_name,
        "identity_api_version": 3,
        "interface": "public",
        # Not openstacksdk keys; it keeps them in conn.config.config for our own code.
        "s3_endpoint": f"http://127.0.0.1:{ports.SWIFT_PROXY}",
        # Instances cannot reach 127.0.0.1 of the host; their backup agents use the relay.
        "s3_endpoint_for_instances": s3_gateway.INSTANCE_ENDPOINT,
        "s3_ca_file_for_instances": str(s3_gateway.ca_file(ctx)),
        "s3_region": "us-east-1",
    }


def content(ctx: Context) -> dict[str, Any]:
    clouds: dict[str, Any] = {}
    for site in ctx.sites:
        entry = _entry(ctx, SITE_USER, SITE_PASSWORD, SITE_PROJECT)
        entry["availability_zone"] = site
        entry["tonle_site"] = site
        clouds[f"tonle-{site}"] = entry
    admin = _entry(ctx, ctx.admin.username, ctx.admin.password, ctx.admin.project_name)
    clouds["tonle-admin"] = admin
    return {"clouds": clouds}


def write(ctx: Context) -> None:
    import yaml  # here, so `status` and `down` run under a bare python3 too

    ctx.clouds_yaml.parent.mkdir(parents=True, exist_ok=True)
    text = "# Written by `python -m devcloud up`; the local data centre (see devcloud/README.md).\n"
    # Write-then-rename: a test reading it while a second `up` rewrites it sees a whole file.
    tmp = ctx.clouds_yaml.with_suffix(".tmp")
    tmp.write_text(text + yaml.safe_dump(content(ctx), sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(ctx.clouds_yaml)
