"""Nova: instances (with resize and rebuild in place), key pairs, volume attachments."""

import base64
import logging
import time
from typing import Any

from openstack import exceptions
from openstack.connection import Connection

from pulumi_embedded.openstack.resources.base import POLL_SECONDS, WAIT_SECONDS, Handler, changed, some, stringify
from pulumi_embedded.provider import CloudError, Created

log = logging.getLogger("pulumi_embedded.openstack.compute")

# A delete the compute host failed leaves the server in ERROR with no task; Nova ignores a repeat
# while the first is still running, so asking again is safe and only ever acts on a failed one.
DELETE_ATTEMPTS = 3


def _user_data(value: str | None) -> str | None:
    if value is None:
        return None
    return base64.b64encode(value.encode()).decode()


def _image_id(conn: Connection, inputs: dict[str, Any]) -> str | None:
    if inputs.get("imageId"):
        return str(inputs["imageId"])
    if inputs.get("imageName"):
        return str(conn.image.find_image(inputs["imageName"], ignore_missing=False).id)
    return None


def _flavor_id(conn: Connection, inputs: dict[str, Any]) -> str:
    if inputs.get("flavorId"):
        return str(inputs["flavorId"])
    if inputs.get("flavorName"):
        return str(conn.compute.find_flavor(inputs["flavorName"], ignore_missing=False).id)
    raise CloudError("an instance needs flavorId or flavorName")


class Instance(Handler):
    """Flavor changes resize and image changes rebuild, in place, as the provider does."""

    type_ = "openstack:compute/instance:Instance"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        networks = [
            some(uuid=n.get("uuid"), port=n.get("port"), fixed_ip=n.get("fixedIpV4"))
            for n in inputs.get("networks") or []
        ]
        block_devices = [
            some(
                uuid=b.get("uuid"),
                source_type=b.get("sourceType"),
                destination_type=b.get("destinationType"),
                boot_index=b.get("bootIndex"),
                volume_size=b.get("volumeSize"),
                delete_on_termination=b.get("deleteOnTermination"),
            )
            for b in inputs.get("blockDevices") or []
        ]
        server = conn.compute.create_server(
            name=inputs["name"],
            flavor_id=_flavor_id(conn, inputs),
            networks=networks or "auto",
            **some(
                image_id=_image_id(conn, inputs),
                availability_zone=inputs.get("availabilityZone"),
                user_data=_user_data(inputs.get("userData")),
                metadata=stringify(inputs.get("metadata")) or None,
                key_name=inputs.get("keyPair"),
                security_groups=[{"name": g} for g in inputs.get("securityGroups") or []] or None,
                config_drive=inputs.get("configDrive"),
                admin_password=inputs.get("adminPass"),
                block_device_mapping=block_devices or None,
                tags=inputs.get("tags"),
            ),
        )
        server = conn.compute.wait_for_server(
            server, status="ACTIVE", failures=["ERROR"], wait=WAIT_SECONDS, interval=POLL_SECONDS
        )
        return Created(server.id, self._outputs(conn, inputs, server))

    def _outputs(self, conn: Connection, inputs: dict[str, Any], server: Any) -> dict[str, Any]:
        networks = []
        first_v4 = server.access_ipv4 or None
        first_v6 = server.access_ipv6 or None
        for name, addresses in (server.addresses or {}).items():
            for address in addresses:
                if address.get("OS-EXT-IPS:type", "fixed") != "fixed":
                    continue
                v4 = address.get("version") == 4
                if v4 and not first_v4:
                    first_v4 = address["addr"]
                if not v4 and not first_v6:
                    first_v6 = address["addr"]
                networks.append(
                    {
                        "name": name,
                        "fixedIpV4": address["addr"] if v4 else "",
                        "fixedIpV6": "" if v4 else address["addr"],
                        "mac": address.get("OS-EXT-IPS-MAC:mac_addr", ""),
                    }
                )
        declared = inputs.get("networks") or []
        # Keep the declared networks (port/uuid), filled in with the addresses the cloud gave.
        merged = [{**d, **(networks[i] if i < len(networks) else {})} for i, d in enumerate(declared)] or networks
        flavor = server.flavor or {}
        return {
            **inputs,
            "id": server.id,
            "name": server.name,
            "accessIpV4": first_v4 or "",
            "accessIpV6": first_v6 or "",
            "networks": merged,
            "flavorName": flavor.get("original_name") or flavor.get("name") or inputs.get("flavorName"),
            "flavorId": inputs.get("flavorId") or flavor.get("id"),
            "imageId": (server.image or {}).get("id") or inputs.get("imageId"),
            "allMetadata": dict(server.metadata or {}),
            "availabilityZone": server.availability_zone,
            "powerState": "shutoff" if server.status == "SHUTOFF" else "active",
            "allTags": list(server.tags or []),
        }

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        server = conn.compute.find_server(id_, ignore_missing=True)
        if server is None or server.status == "DELETED":
            return None
        server = conn.compute.get_server(server.id)
        outputs = self._outputs(conn, inputs, server)
        # Nova reports the flavor by name only; resolve the id so a resize behind our back shows.
        name = (server.flavor or {}).get("original_name")
        if inputs.get("flavorId") and name:
            flavor = conn.compute.find_flavor(name, ignore_missing=True)
            outputs["flavorId"] = flavor.id if flavor is not None else outputs["flavorId"]
        return outputs

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        compute = conn.compute
        if changed(old, new, "name"):
            compute.update_server(id_, name=new["name"])
        if changed(old, new, "metadata"):
            before, after = stringify(old.get("metadata")), stringify(new.get("metadata"))
            gone = [k for k in before if k not in after]
            if gone:
                compute.delete_server_metadata(id_, gone)
            if after:
                compute.set_server_metadata(id_, **after)
        if changed(old, new, "securityGroups"):
            before_groups, after_groups = set(old.get("securityGroups") or []), set(new.get("securityGroups") or [])
            for group in sorted(after_groups - before_groups):
                compute.add_security_group_to_server(id_, group)  # Nova takes the name
            for group in sorted(before_groups - after_groups):
                compute.remove_security_group_from_server(id_, group)
        if changed(old, new, "flavorId", "flavorName"):
            flavor = _flavor_id(conn, new)
            compute.resize_server(id_, flavor)
            server = compute.wait_for_server(
                compute.get_server(id_),
                status="VERIFY_RESIZE",
                failures=["ERROR"],
                wait=WAIT_SECONDS,
                interval=POLL_SECONDS,
            )
            compute.confirm_server_resize(server)
            compute.wait_for_server(
                server, status="ACTIVE", failures=["ERROR"], wait=WAIT_SECONDS, interval=POLL_SECONDS
            )
        if changed(old, new, "imageId", "imageName"):
            image = _image_id(conn, new)
            if image is None:
                raise CloudError("an instance's image cannot be removed; give imageId or imageName")
            compute.rebuild_server(id_, image=image, **some(admin_password=new.get("adminPass")))
            compute.wait_for_server(
                compute.get_server(id_), status="ACTIVE", failures=["ERROR"], wait=WAIT_SECONDS, interval=POLL_SECONDS
            )
        if changed(old, new, "powerState"):
            server = compute.get_server(id_)
            if new.get("powerState") == "shutoff":
                compute.stop_server(server)
                compute.wait_for_server(
                    server, status="SHUTOFF", failures=["ERROR"], wait=WAIT_SECONDS, interval=POLL_SECONDS
                )
            else:
                compute.start_server(server)
                compute.wait_for_server(
                    server, status="ACTIVE", failures=["ERROR"], wait=WAIT_SECONDS, interval=POLL_SECONDS
                )
        if changed(old, new, "tags"):
            compute.get_server(id_).set_tags(compute, list(new.get("tags") or []))
        return self._outputs(conn, new, compute.get_server(id_))

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        server = conn.compute.find_server(id_, ignore_missing=True)
        if server is None:
            return
        _delete_and_wait(conn, server.id, force=bool(outputs.get("forceDelete")))

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        for server in conn.compute.servers(name=f"^{inputs['name']}$"):
            if server.name == inputs["name"] and server.status != "DELETED":
                server = conn.compute.wait_for_server(
                    server, status="ACTIVE", failures=["ERROR"], wait=WAIT_SECONDS, interval=POLL_SECONDS
                )
                return Created(server.id, self._outputs(conn, inputs, server))
        return None


class Keypair(Handler):
    type_ = "openstack:compute/keypair:Keypair"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        key = conn.compute.create_keypair(**some(name=inputs["name"], public_key=inputs.get("publicKey")))
        return Created(key.name, self._outputs(inputs, key))

    def _outputs(self, inputs: dict[str, Any], key: Any) -> dict[str, Any]:
        return some(
            **inputs, id=key.name, fingerprint=key.fingerprint, publicKey=key.public_key, privateKey=key.private_key
        )

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        key = conn.compute.find_keypair(id_, ignore_missing=True)
        return None if key is None else self._outputs(inputs, key)

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        conn.compute.delete_keypair(id_, ignore_missing=True)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        key = conn.compute.find_keypair(inputs["name"], ignore_missing=True)
        return None if key is None else Created(key.name, self._outputs(inputs, key))


class VolumeAttach(Handler):
    """Its id is `<instance id>/<volume id>`, as in the provider."""

    type_ = "openstack:compute/volumeAttach:VolumeAttach"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        instance, volume = inputs["instanceId"], inputs["volumeId"]
        attachment = conn.compute.create_volume_attachment(instance, volume, **some(device=inputs.get("device")))
        conn.block_storage.wait_for_status(
            conn.block_storage.get_volume(volume),
            status="in-use",
            failures=["error"],
            wait=WAIT_SECONDS,
            interval=POLL_SECONDS,
        )
        id_ = f"{instance}/{volume}"
        return Created(id_, {**inputs, "id": id_, "device": attachment.device})

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        instance, volume = id_.split("/", 1)
        for attachment in conn.compute.volume_attachments(instance):
            if attachment.volume_id == volume:
                return {**inputs, "id": id_, "instanceId": instance, "volumeId": volume, "device": attachment.device}
        return None

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        return {**new, "id": id_}  # only `device` is not force-new, and Nova picks it anyway

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        instance, volume = id_.split("/", 1)
        if conn.compute.find_server(instance, ignore_missing=True) is None:
            return
        conn.compute.delete_volume_attachment(instance, volume, ignore_missing=True)
        found = conn.block_storage.find_volume(volume, ignore_missing=True)
        if found is not None:
            conn.block_storage.wait_for_status(
                found, status="available", failures=["error"], wait=WAIT_SECONDS, interval=POLL_SECONDS
            )

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        id_ = f"{inputs['instanceId']}/{inputs['volumeId']}"
        outputs = self.read(conn, id_, inputs)
        return None if outputs is None else Created(id_, outputs)


HANDLERS: list[Handler] = [Instance(), Keypair(), VolumeAttach()]


def _delete_and_wait(conn: Connection, server_id: str, *, force: bool) -> None:
    """Delete the server and wait until Nova no longer has it, asking again if its host failed the
    delete; a server still there at the deadline is reported with the state it is stuck in."""
    deadline = time.monotonic() + WAIT_SECONDS
    conn.compute.delete_server(server_id, force=force)
    attempts = 1
    while True:
        try:
            server = conn.compute.get_server(server_id)
        except exceptions.NotFoundException:
            return
        if server.status == "DELETED":
            return
        if server.status == "ERROR" and not server.task_state and attempts < DELETE_ATTEMPTS:
            log.warning(
                "server %s went to ERROR while being deleted (%s); deleting it again",
                server_id,
                (server.fault or {}).get("message", "no fault recorded"),
            )
            conn.compute.delete_server(server_id, force=force)
            attempts += 1
        elif time.monotonic() >= deadline:
            raise CloudError(
                f"server {server_id} still exists {WAIT_SECONDS} s after {attempts} delete request(s): "
                f"status {server.status}, task {server.task_state}, vm state {server.vm_state}, "
                f"host {server.compute_host or 'not shown'}",
                transient=True,
            )
        time.sleep(POLL_SECONDS)
