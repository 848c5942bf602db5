"""S3 for the instances: Swift listens on 127.0.0.1 only, which instances cannot reach, so a
socat relay (Debian's) takes their connections on the host and hands them to the proxy.

The relay speaks TLS, with a certificate from a small CA of its own: over plain HTTP restic's S3
client signs uploads in aws-chunked streaming mode, which Swift's s3api refuses; over HTTPS it
sends ordinary signed payloads. Instances reach it at the external network's gateway address,
which the host holds once a floating IP exists (every service that backs up has one). The
relay listens on every address of the host, because that address appears only later, but
serves only the tenant subnet pool: socat closes any other connection at once.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from devcloud import ports
from devcloud.services.common import wait_for_port

if TYPE_CHECKING:
    from pathlib import Path

    from devcloud.context import Context

PROCESS = "s3-gateway"
ADDRESS = "172.24.4.1"  # the external subnet's gateway (services/bootstrap_cloud.py)
#: Where instances find S3.
INSTANCE_ENDPOINT = f"https://{ADDRESS}:{ports.S3_GATEWAY}"
#: The tenant subnet pool (services/bootstrap_cloud.py): instances' source addresses.
CLIENTS = "10.100.0.0/16"


def ca_file(ctx: Context) -> Path:
    """The CA instances must trust for INSTANCE_ENDPOINT."""
    return ctx.state_dir / "s3-gateway" / "ca.pem"


def _certificates(ctx: Context) -> Path:
    """The relay's key and certificate (one PEM file, as socat wants), made once."""
    folder = ctx.state_dir / "s3-gateway"
    server = folder / "server.pem"
    if server.exists():
        return server
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=devcloud S3 relay CA",
        "-keyout",
        str(folder / "ca.key"),
        "-out",
        str(ca_file(ctx)),
    )
    openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        f"/CN={ADDRESS}",
        "-keyout",
        str(folder / "server.key"),
        "-out",
        str(folder / "server.csr"),
    )
    (folder / "san.ext").write_text(f"subjectAltName=IP:{ADDRESS}\n")
    openssl(
        "x509",
        "-req",
        "-in",
        str(folder / "server.csr"),
        "-CA",
        str(ca_file(ctx)),
        "-CAkey",
        str(folder / "ca.key"),
        "-CAcreateserial",
        "-days",
        "3650",
        "-extfile",
        str(folder / "san.ext"),
        "-out",
        str(folder / "server.crt"),
    )
    server.write_text((folder / "server.key").read_text() + (folder / "server.crt").read_text())
    server.chmod(0o600)
    return server


def start(ctx: Context) -> None:
    pem = _certificates(ctx)
    argv = [
        "socat",
        f"OPENSSL-LISTEN:{ports.S3_GATEWAY},fork,reuseaddr,range={CLIENTS},cert={pem},verify=0",
        f"TCP:127.0.0.1:{ports.SWIFT_PROXY}",
    ]
    ctx.start_process(PROCESS, argv)
    wait_for_port(ctx, PROCESS, ports.S3_GATEWAY, timeout=30)
