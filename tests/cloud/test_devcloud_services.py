"""The local data centre's OpenStack services, used as an outside client would: openstacksdk
and boto3 only, through the clouds.yaml that `python -m devcloud up` writes."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.cloud.conftest import DevCloud

pytestmark = pytest.mark.cloud


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(what: str, check: Callable[[], bool], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit:.0f}s waiting for {what}")
        time.sleep(0.5)


def test_both_sites_authenticate_and_are_zones(devcloud: DevCloud) -> None:
    for site, conn in (("primary", devcloud.primary), ("dr", devcloud.dr)):
        assert conn.authorize()
        assert conn.config.config["availability_zone"] == site
        for service in ("compute", "network", "image", "block-storage", "object-store"):
            assert conn.endpoint_for(service), f"{service} missing from the catalog"
    compute_zones = {z.name for z in devcloud.admin.compute.availability_zones()}
    assert {"primary", "dr"} <= compute_zones
    volume_zones = {z.name for z in devcloud.admin.block_storage.availability_zones()}
    assert {"primary", "dr"} <= volume_zones


def test_network_subnet_port_router_floating_ip(devcloud: DevCloud) -> None:
    net_api = devcloud.primary.network
    public = net_api.find_network("public")
    assert public is not None and public.is_router_external
    pool = net_api.find_subnet_pool("tenant-pool")
    assert pool is not None
    net = net_api.create_network(name=unique("net"))
    other = devcloud.dr.network.create_network(name=unique("net"))
    try:
        subnet = net_api.create_subnet(network_id=net.id, ip_version=4, subnet_pool_id=pool.id, name=unique("sub"))
        other_subnet = devcloud.dr.network.create_subnet(
            network_id=other.id, ip_version=4, use_default_subnet_pool=True, name=unique("sub")
        )
        # The pool hands out distinct prefixes, so ministries' networks never overlap.
        assert subnet.cidr != other_subnet.cidr
        assert subnet.cidr.startswith("10.100.") and other_subnet.cidr.startswith("10.100.")
        port = net_api.create_port(network_id=net.id, name=unique("port"))
        assert port.fixed_ips[0]["subnet_id"] == subnet.id
        router = net_api.create_router(name=unique("router"), external_gateway_info={"network_id": public.id})
        net_api.add_interface_to_router(router, subnet_id=subnet.id)
        fip = net_api.create_ip(floating_network_id=public.id, port_id=port.id)
        assert fip.floating_ip_address.startswith("172.24.4.")
        assert net_api.get_ip(fip.id).fixed_ip_address == port.fixed_ips[0]["ip_address"]
    finally:
        for conn, network in ((devcloud.primary, net), (devcloud.dr, other)):
            _delete_network_with_everything(conn, network)
    assert net_api.find_network(net.id) is None
    assert devcloud.dr.network.find_network(other.id) is None
    assert not [p for p in net_api.ports(network_id=net.id)]


def _delete_network_with_everything(conn: Any, network: Any) -> None:
    api = conn.network
    subnets = {s.id for s in api.subnets(network_id=network.id)}
    for port in api.ports(network_id=network.id):
        for fip in api.ips(port_id=port.id):
            api.delete_ip(fip)
    for router in api.routers(project_id=conn.current_project_id):
        for port in api.ports(device_id=router.id, device_owner="network:router_interface"):
            for fixed in port.fixed_ips:
                if fixed["subnet_id"] in subnets:
                    api.remove_interface_from_router(router, subnet_id=fixed["subnet_id"])
        if not list(api.ports(device_id=router.id, device_owner="network:router_interface")):
            api.delete_router(router)
    for port in api.ports(network_id=network.id):
        if not port.device_owner.startswith("network:"):
            api.delete_port(port)
    api.delete_network(network)


def test_volume_in_each_site(devcloud: DevCloud) -> None:
    created = []
    for site, conn in (("primary", devcloud.primary), ("dr", devcloud.dr)):
        volume = conn.block_storage.create_volume(size=1, name=unique("vol"), availability_zone=site)
        created.append((conn, volume))
        volume = conn.block_storage.wait_for_status(volume, status="available", failures=["error"], wait=120)
        assert volume.availability_zone == site
    for conn, volume in created:
        conn.block_storage.delete_volume(volume)
        conn.block_storage.wait_for_delete(volume, wait=120)
        assert conn.block_storage.find_volume(volume.id) is None


def test_image_upload_and_download(devcloud: DevCloud) -> None:
    data = uuid.uuid4().bytes * 4096  # 64 KiB
    image = devcloud.primary.image.create_image(
        name=unique("img"), data=data, disk_format="raw", container_format="bare", allow_duplicates=True
    )
    try:
        image = devcloud.primary.image.get_image(image)
        assert image.status == "active"
        assert image.size == len(data)
        downloaded = devcloud.primary.image.download_image(image)
        assert hashlib.sha256(downloaded.content).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        devcloud.primary.image.delete_image(image)
    assert devcloud.primary.image.find_image(image.id) is None


def test_s3_put_and_get_with_ec2_credentials(devcloud: DevCloud) -> None:
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    conn = devcloud.dr
    access, secret = uuid.uuid4().hex, uuid.uuid4().hex
    credential = conn.identity.create_credential(
        type="ec2",
        user_id=conn.current_user_id,
        project_id=conn.current_project_id,
        blob=json.dumps({"access": access, "secret": secret}),
    )
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=conn.config.config["s3_endpoint"],
            region_name=conn.config.config["s3_region"],
            aws_access_key_id=access,
            aws_secret_access_key=secret,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        bucket = unique("backups")
        s3.create_bucket(Bucket=bucket)
        body = b"restore point " + uuid.uuid4().bytes
        s3.put_object(Bucket=bucket, Key="db/latest.dump", Body=body)
        assert s3.get_object(Bucket=bucket, Key="db/latest.dump")["Body"].read() == body
        # The same object is there through Swift's own API.
        assert conn.object_store.download_object("db/latest.dump", container=bucket) == body
        s3.delete_object(Bucket=bucket, Key="db/latest.dump")
        s3.delete_bucket(Bucket=bucket)
        assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        conn.identity.delete_credential(credential)
    assert conn.identity.find_credential(credential.id) is None


def test_server_in_the_dr_site_with_a_volume_attached(devcloud: DevCloud) -> None:
    """Nova schedules into the requested zone and Cinder attaches and detaches through it."""
    conn = devcloud.dr
    image = conn.image.find_image("debian-12") or pytest.fail("image debian-12 missing: `up` uploads it")
    flavor = conn.compute.find_flavor("m1.small")
    net = conn.network.create_network(name=unique("net"))
    server = volume = None
    try:
        conn.network.create_subnet(network_id=net.id, ip_version=4, use_default_subnet_pool=True, name=unique("sub"))
        server = conn.compute.create_server(
            name=unique("srv"),
            image_id=image.id,
            flavor_id=flavor.id,
            networks=[{"uuid": net.id}],
            availability_zone="dr",
        )
        server = conn.compute.wait_for_server(server, wait=180)
        assert server.availability_zone == "dr"
        volume = conn.block_storage.create_volume(size=1, name=unique("vol"), availability_zone="dr")
        volume = conn.block_storage.wait_for_status(volume, status="available", failures=["error"], wait=120)
        conn.compute.create_volume_attachment(server, volume_id=volume.id)
        volume = conn.block_storage.wait_for_status(
            volume, status="in-use", failures=["error", "error_attaching"], wait=120
        )
        assert [a["server_id"] for a in volume.attachments] == [server.id]
        conn.compute.delete_volume_attachment(server, volume.id)
        conn.block_storage.wait_for_status(volume, status="available", failures=["error"], wait=120)
    finally:
        if volume is not None:
            conn.block_storage.delete_volume(volume, ignore_missing=True)
            conn.block_storage.wait_for_delete(volume, wait=120)
        if server is not None:
            conn.compute.delete_server(server, ignore_missing=True)
            conn.compute.wait_for_delete(server, wait=180)
        _delete_network_with_everything(conn, net)
    assert conn.compute.find_server(server.id) is None
    assert conn.block_storage.find_volume(volume.id) is None
    assert conn.network.find_network(net.id) is None
