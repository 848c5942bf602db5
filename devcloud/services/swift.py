"""Swift: one-replica rings on a directory, proxy with Keystone auth and the S3 API.

S3 clients (boto3) sign with EC2 credentials created through Keystone
(`POST /v3/users/{id}/credentials/OS-EC2`); s3api turns the request into a Swift one and
s3token asks Keystone to check the signature, then keystoneauth authorises as usual.
Region for boto3: `us-east-1` (s3api's default `location`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devcloud import ports
from devcloud.services import s3_gateway
from devcloud.services.common import (
    keystone_auth_options,
    run_logged,
    wait_for_http,
    wait_for_port,
)

if TYPE_CHECKING:
    from pathlib import Path

    from devcloud.context import Context

PROXY = "swift-proxy"
#: Storage servers (ring name, port), started before the proxy.
SERVERS = (
    ("account", ports.SWIFT_ACCOUNT),
    ("container", ports.SWIFT_CONTAINER),
    ("object", ports.SWIFT_OBJECT),
)
PROCESSES = tuple(f"swift-{ring}" for ring, _port in SERVERS)
DEVICE = "d1"

PROXY_PIPELINE = (
    "catch_errors gatekeeper healthcheck proxy-logging listing_formats "
    # authtoken first (delay_auth_decision) so S3 requests pass through to s3api/s3token.
    "authtoken s3api s3token keystoneauth copy slo dlo versioned_writes symlink "
    "proxy-logging proxy-server"
)


def _common(ctx: Context, port: int, name: str) -> str:
    # swift_dir in every server config; root, no mount checks; logs go to stdout (-v).
    return (
        f"[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nswift_dir = {ctx.etc_dir / 'swift'}\n"
        f"devices = {ctx.state_dir / 'swift'}\nmount_check = false\nuser = root\nworkers = 0\n"
        f"log_name = {name}\nlog_level = INFO\n"
    )


def _server_conf(ctx: Context, ring: str, port: int) -> str:
    return (
        _common(ctx, port, f"swift-{ring}")
        + f"\n[pipeline:main]\npipeline = {ring}-server\n\n[app:{ring}-server]\nuse = egg:swift#{ring}\n"
        + (f"\n[{ring}-replicator]\n[{ring}-auditor]\n" if ring != "object" else "\n[object-replicator]\n")
        + ("\n[container-updater]\n[container-sync]\n" if ring == "container" else "")
    )


def _proxy_conf(ctx: Context) -> str:
    return (
        _common(ctx, ports.SWIFT_PROXY, "swift-proxy")
        + f"""
[pipeline:main]
pipeline = {PROXY_PIPELINE}

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
# X-History-Location: what a backup agent deletes or overwrites is kept in an archive
# container it has no ACL on (its write ACL cannot be split from delete).
allow_versioned_writes = true
[filter:symlink]
use = egg:swift#symlink

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = {ctx.admin.auth_url}
{keystone_auth_options(ctx, "swift")}delay_auth_decision = true
service_token_roles_required = true

[filter:s3api]
use = egg:swift#s3api

[filter:s3token]
use = egg:swift#s3token
auth_uri = {ctx.admin.auth_url}
reseller_prefix = AUTH_
delay_auth_decision = false
{keystone_auth_options(ctx, "swift")}
[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member, manager
reseller_admin_role = ResellerAdmin
"""
    )


def _rings(ctx: Context, etc: Path) -> None:
    builder = str(ctx.venv_bin("swift-ring-builder"))
    for ring, port in SERVERS:
        if (etc / f"{ring}.ring.gz").exists():
            continue
        path = str(etc / f"{ring}.builder")
        # 2^8 partitions, 1 replica, no min-hours between moves: one device, nothing to balance.
        run_logged(ctx, "swift-ring-builder", [builder, path, "create", "8", "1", "0"])
        run_logged(
            ctx,
            "swift-ring-builder",
            [builder, path, "add", f"r1z1-127.0.0.1:{port}/{DEVICE}", "100"],
        )
        run_logged(ctx, "swift-ring-builder", [builder, path, "rebalance"])


def start(ctx: Context) -> None:
    etc = ctx.etc_dir / "swift"
    etc.mkdir(parents=True, exist_ok=True)
    (ctx.state_dir / "swift" / DEVICE).mkdir(parents=True, exist_ok=True)
    (etc / "swift.conf").write_text(
        "[swift-hash]\nswift_hash_path_suffix = tonle-devcloud\nswift_hash_path_prefix = tonle\n\n"
        "[storage-policy:0]\nname = Policy-0\ndefault = yes\n"
    )
    _rings(ctx, etc)
    for ring, port in SERVERS:
        conf = etc / f"{ring}-server.conf"
        conf.write_text(_server_conf(ctx, ring, port))
        ctx.start_process(
            f"swift-{ring}",
            [str(ctx.venv_bin(f"swift-{ring}-server")), str(conf), "-v"],
        )
    for ring, port in SERVERS:
        wait_for_port(ctx, f"swift-{ring}", port, timeout=60)
    conf = etc / "proxy-server.conf"
    text = _proxy_conf(ctx)
    if conf.exists() and conf.read_text() != text and ctx.process_alive(PROXY):
        # A running proxy keeps the configuration it started with: restart it (only it) so
        # `up` applies a changed pipeline without `down`.
        ctx.stop_process(PROXY)
    conf.write_text(text)
    ctx.start_process(PROXY, [str(ctx.venv_bin("swift-proxy-server")), str(conf), "-v"])
    wait_for_http(ctx, PROXY, f"http://127.0.0.1:{ports.SWIFT_PROXY}/healthcheck")
    s3_gateway.start(ctx)
