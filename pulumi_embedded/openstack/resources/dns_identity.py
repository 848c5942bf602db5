"""Designate zones and record sets; Keystone EC2 (S3) credentials."""

import logging
import time
from typing import Any

from openstack import exceptions
from openstack.connection import Connection

from pulumi_embedded.openstack.resources.base import POLL_SECONDS, WAIT_SECONDS, Handler, changed, integer, some
from pulumi_embedded.provider import Created

log = logging.getLogger(__name__)


# Designate can leave a zone PENDING for good when changes to it race: the worker reports the
# serial it pushed after central has moved the zone to a newer one, and nothing pushes again
# (seen with ten orders at once, two per ministry zone: one record set stayed PENDING while
# BIND already served it). Writing the record set again, unchanged, makes Designate push the
# zone once more; it was ACTIVE a second later.
NUDGE_AFTER_SECONDS = 30


def _wait_active(conn: Connection, resource: Any, inputs: dict[str, Any], rewrite: bool = False) -> Any:
    """Until ACTIVE; with `rewrite` (record sets), writing the resource again, unchanged, each
    NUDGE_AFTER_SECONDS it stays PENDING."""
    if inputs.get("disableStatusCheck"):
        return resource
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        left = int(deadline - time.monotonic())
        wait = max(1, min(NUDGE_AFTER_SECONDS, left)) if rewrite else max(1, left)
        try:
            return conn.dns.wait_for_status(
                resource, status="ACTIVE", failures=["ERROR"], wait=wait, interval=POLL_SECONDS
            )
        except exceptions.ResourceTimeout:
            if not rewrite or time.monotonic() >= deadline:
                raise
        current = conn.dns.get_recordset(resource.id, resource.zone_id)
        log.warning(
            "record set %s in zone %s still %s after %.0f s: writing it again to make Designate push the zone",
            current.name,
            current.zone_id,
            current.status,
            NUDGE_AFTER_SECONDS,
        )
        resource = conn.dns.update_recordset(current, records=list(current.records or []))


def _wait_zone_settled(conn: Connection, zone_id: str) -> None:
    """Until the zone's pending change is in BIND, or for NUDGE_AFTER_SECONDS at most.

    Designate removes a record set by updating its zone, and its BIND backend re-adds a zone that
    is missing when that update runs (`rndc addzone`). A destroy deletes the zone right after its
    last record set, so the zone's delete could overtake the update: BIND then served the
    ministry's domain again, for good, while Designate had forgotten the zone (seen in
    test_email_e2e's decommission). A change still PENDING after NUDGE_AFTER_SECONDS is stuck
    (see above), not in flight: the zone's delete may go ahead.
    """
    deadline = time.monotonic() + NUDGE_AFTER_SECONDS
    while True:
        zone = conn.dns.find_zone(zone_id, ignore_missing=True)
        if zone is None or zone.status != "PENDING":
            return
        if time.monotonic() >= deadline:
            log.warning(
                "zone %s still PENDING %.0f s after a record set's delete: going on", zone.name, NUDGE_AFTER_SECONDS
            )
            return
        time.sleep(POLL_SECONDS)


class Zone(Handler):
    type_ = "openstack:dns/zone:Zone"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        zone = conn.dns.create_zone(
            name=inputs["name"],
            **some(
                email=inputs.get("email"),
                ttl=integer(inputs.get("ttl")),
                description=inputs.get("description"),
                type=inputs.get("type"),
                masters=inputs.get("masters"),
            ),
        )
        zone = _wait_active(conn, zone, inputs)
        return Created(zone.id, self._outputs(inputs, zone))

    def _outputs(self, inputs: dict[str, Any], zone: Any) -> dict[str, Any]:
        return {
            **inputs,
            "id": zone.id,
            "name": zone.name,
            "email": zone.email,
            "ttl": zone.ttl,
            "description": zone.description,
        }

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        zone = conn.dns.find_zone(id_, ignore_missing=True)
        return None if zone is None else self._outputs(inputs, zone)

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        if changed(old, new, "email", "ttl", "description", "masters"):
            zone = conn.dns.update_zone(
                id_,
                **some(
                    email=new.get("email"),
                    ttl=integer(new.get("ttl")),
                    description=new.get("description"),
                    masters=new.get("masters"),
                ),
            )
            _wait_active(conn, zone, new)
        return self._outputs(new, conn.dns.get_zone(id_))

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        zone = conn.dns.find_zone(id_, ignore_missing=True)
        if zone is None:
            return
        conn.dns.delete_zone(zone, ignore_missing=True)
        conn.dns.wait_for_delete(zone, wait=WAIT_SECONDS, interval=POLL_SECONDS)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        zone = conn.dns.find_zone(inputs["name"], ignore_missing=True)
        return None if zone is None else Created(zone.id, self._outputs(inputs, zone))


class RecordSet(Handler):
    """Its id is `<zone id>/<record set id>`, as in the provider."""

    type_ = "openstack:dns/recordSet:RecordSet"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        recordset = conn.dns.create_recordset(
            inputs["zoneId"],
            name=inputs["name"],
            type=inputs["type"],
            records=list(inputs.get("records") or []),
            **some(ttl=integer(inputs.get("ttl")), description=inputs.get("description")),
        )
        recordset = _wait_active(conn, recordset, inputs, rewrite=True)
        id_ = f"{inputs['zoneId']}/{recordset.id}"
        return Created(id_, self._outputs(inputs, id_, recordset))

    def _outputs(self, inputs: dict[str, Any], id_: str, recordset: Any) -> dict[str, Any]:
        declared = list(inputs.get("records") or [])
        records = list(recordset.records or [])
        return {
            **inputs,
            "id": id_,
            "records": declared if sorted(declared) == sorted(records) else records,
            "ttl": recordset.ttl,
            "description": recordset.description,
        }

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        zone_id, recordset_id = id_.split("/", 1)
        recordset = next(iter(conn.dns.recordsets(zone_id, id=recordset_id)), None)
        if recordset is None:
            try:
                recordset = conn.dns.get_recordset(recordset_id, zone_id)
            except Exception as exc:  # NotFound in its several shapes means gone
                if getattr(exc, "status_code", None) == 404:
                    return None
                raise
        return self._outputs(inputs, id_, recordset)

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        zone_id, recordset_id = id_.split("/", 1)
        recordset = conn.dns.get_recordset(recordset_id, zone_id)
        if changed(old, new, "records", "ttl", "description"):
            recordset = conn.dns.update_recordset(
                recordset,
                records=list(new.get("records") or []),
                **some(ttl=integer(new.get("ttl")), description=new.get("description")),
            )
            recordset = _wait_active(conn, recordset, new, rewrite=True)
        return self._outputs(new, id_, recordset)

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        zone_id, recordset_id = id_.split("/", 1)
        if conn.dns.find_zone(zone_id, ignore_missing=True) is None:
            return
        conn.dns.delete_recordset(recordset_id, zone_id, ignore_missing=True)
        _wait_zone_settled(conn, zone_id)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        for recordset in conn.dns.recordsets(inputs["zoneId"], name=inputs["name"], type=inputs["type"]):
            id_ = f"{inputs['zoneId']}/{recordset.id}"
            return Created(id_, self._outputs(inputs, id_, recordset))
        return None


class Ec2CredentialV3(Handler):
    """S3 keys for the current user and project (Keystone's OS-EC2 API); its id is the access key.

    The secret is generated by Keystone and only ever leaves as a secret output. A create the
    engine did not see finish cannot be told apart from other credentials, so `find` adopts
    nothing; an extra credential after a crash is harmless (it is deleted with the project).
    """

    type_ = "openstack:identity/ec2CredentialV3:Ec2CredentialV3"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        user_id = inputs.get("userId") or conn.current_user_id
        project_id = inputs.get("projectId") or conn.current_project_id
        response = conn.identity.post(f"/users/{user_id}/credentials/OS-EC2", json={"tenant_id": project_id})
        exceptions.raise_from_response(response)
        credential = response.json()["credential"]
        access = credential["access"]
        return Created(
            access,
            {
                **inputs,
                "id": access,
                "access": access,
                "secret": credential["secret"],
                "userId": credential.get("user_id") or user_id,
                "projectId": credential.get("tenant_id") or project_id,
                "trustId": credential.get("trust_id") or "",
            },
        )

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        user_id = inputs.get("userId") or conn.current_user_id
        response = conn.identity.get(f"/users/{user_id}/credentials/OS-EC2/{id_}")
        if response.status_code == 404:
            return None
        exceptions.raise_from_response(response)
        credential = response.json()["credential"]
        return {**inputs, "id": id_, "access": credential["access"], "projectId": credential.get("tenant_id")}

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        user_id = outputs.get("userId") or conn.current_user_id
        response = conn.identity.delete(f"/users/{user_id}/credentials/OS-EC2/{id_}")
        if response.status_code != 404:
            exceptions.raise_from_response(response)


HANDLERS: list[Handler] = [Zone(), RecordSet(), Ec2CredentialV3()]
