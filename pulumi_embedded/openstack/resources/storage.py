"""Cinder volumes and Swift containers."""

from typing import Any

from openstack.connection import Connection

from pulumi_embedded.openstack.resources.base import (
    POLL_SECONDS,
    WAIT_SECONDS,
    Handler,
    changed,
    integer,
    some,
    stringify,
)
from pulumi_embedded.provider import Created


class Volume(Handler):
    type_ = "openstack:blockstorage/volume:Volume"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        volume = conn.block_storage.create_volume(
            size=integer(inputs["size"]),
            **some(
                name=inputs.get("name"),
                description=inputs.get("description"),
                availability_zone=inputs.get("availabilityZone"),
                volume_type=inputs.get("volumeType"),
                image_id=inputs.get("imageId"),
                snapshot_id=inputs.get("snapshotId"),
                source_volume_id=inputs.get("sourceVolId"),
                metadata=stringify(inputs.get("metadata")) or None,
            ),
        )
        volume = conn.block_storage.wait_for_status(
            volume, status="available", failures=["error"], wait=WAIT_SECONDS, interval=POLL_SECONDS
        )
        return Created(volume.id, self._outputs(inputs, volume))

    def _outputs(self, inputs: dict[str, Any], volume: Any) -> dict[str, Any]:
        return {
            **inputs,
            "id": volume.id,
            "name": volume.name,
            "size": volume.size,
            "volumeType": volume.volume_type,
            "availabilityZone": volume.availability_zone,
            "allMetadata": dict(volume.metadata or {}),
            "attachments": [
                {"id": a.get("attachment_id", ""), "instanceId": a.get("server_id"), "device": a.get("device")}
                for a in volume.attachments or []
            ],
        }

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        volume = conn.block_storage.find_volume(id_, ignore_missing=True)
        return None if volume is None else self._outputs(inputs, volume)

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        storage = conn.block_storage
        if changed(old, new, "name", "description"):
            storage.update_volume(id_, **some(name=new.get("name"), description=new.get("description")))
        if changed(old, new, "metadata"):
            before, after = stringify(old.get("metadata")), stringify(new.get("metadata"))
            gone = [k for k in before if k not in after]
            if gone:
                storage.delete_volume_metadata(id_, gone)
            if after:
                storage.set_volume_metadata(id_, **after)
        size = integer(new.get("size"))
        if size is not None and size != integer(old.get("size")):
            storage.extend_volume(id_, size)
            volume = storage.get_volume(id_)
            # An attached volume extended online goes back to in-use; a detached one to available.
            settled = "in-use" if volume.attachments else "available"
            storage.wait_for_status(
                volume, status=settled, failures=["error", "error_extending"], wait=WAIT_SECONDS, interval=POLL_SECONDS
            )
        if changed(old, new, "volumeType"):
            storage.retype_volume(id_, new["volumeType"], migration_policy=new.get("volumeRetypePolicy") or "never")
        return self._outputs(new, storage.get_volume(id_))

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        volume = conn.block_storage.find_volume(id_, ignore_missing=True)
        if volume is None:
            return
        conn.block_storage.delete_volume(volume.id, ignore_missing=True)
        conn.block_storage.wait_for_delete(volume, wait=WAIT_SECONDS, interval=POLL_SECONDS)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        if not inputs.get("name"):
            return None
        for volume in conn.block_storage.volumes(name=inputs["name"]):
            volume = conn.block_storage.wait_for_status(
                volume, status="available", failures=["error"], wait=WAIT_SECONDS, interval=POLL_SECONDS
            )
            return Created(volume.id, self._outputs(inputs, volume))
        return None


class Container(Handler):
    """Its id is the container's name. Metadata become `X-Container-Meta-*` headers."""

    type_ = "openstack:objectstorage/container:Container"

    def _headers(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return some(
            read_ACL=inputs.get("containerRead"),
            write_ACL=inputs.get("containerWrite"),
            sync_to=inputs.get("containerSyncTo"),
            sync_key=inputs.get("containerSyncKey"),
            content_type=inputs.get("contentType"),
            versions_location=(inputs.get("versioningLegacy") or {}).get("location"),
        )

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        name = inputs["name"]
        conn.object_store.create_container(name=name, **self._headers(inputs))
        metadata = stringify(inputs.get("metadata"))
        if metadata:
            conn.object_store.set_container_metadata(name, True, **metadata)
        return Created(name, {**inputs, "id": name})

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        try:
            container = conn.object_store.get_container_metadata(id_)
        except Exception as exc:  # the object store answers 404 through several exception types
            if getattr(exc, "status_code", None) == 404 or "Not Found" in str(exc):
                return None
            raise
        metadata = {k: v for k, v in (container.metadata or {}).items()}
        declared = stringify(inputs.get("metadata"))
        # Swift title-cases header names; report metadata under the names the program used.
        by_lower = {k.lower(): v for k, v in metadata.items()}
        shown = {k: by_lower.get(k.lower()) for k in declared} if declared else metadata
        return {**inputs, "id": id_, "name": id_, "metadata": shown}

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        before, after = stringify(old.get("metadata")), stringify(new.get("metadata"))
        gone = [k for k in before if k not in after]
        if gone:
            conn.object_store.delete_container_metadata(id_, gone)
        if after:
            conn.object_store.set_container_metadata(id_, True, **after)
        headers = self._headers(new)
        if headers and changed(old, new, "containerRead", "containerWrite", "containerSyncTo", "containerSyncKey"):
            conn.object_store.set_container_metadata(id_, True, **headers)
        return {**new, "id": id_}

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        if self.read(conn, id_, {}) is None:
            return
        if outputs.get("forceDestroy"):
            for obj in list(conn.object_store.objects(id_)):
                conn.object_store.delete_object(obj, container=id_, ignore_missing=True)
        conn.object_store.delete_container(id_, ignore_missing=True)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        outputs = self.read(conn, inputs["name"], inputs)
        return None if outputs is None else Created(inputs["name"], outputs)


HANDLERS: list[Handler] = [Volume(), Container()]
