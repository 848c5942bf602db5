"""The A records of a service's names in Designate, repointed by a failover and a failback.

The records belong to the service's stack at the primary site (`stacks/components/dns.py`), in
zones of the ministry's project there. A failover changes what they hold, not who owns them, so
the stack's next run at the primary site (the failback) finds its own records again.
"""

import logging
import time
from collections.abc import Sequence
from typing import Any

from orchestrator.cloud.sites import CloudConfigError, connect, site
from orchestrator.cloud.tenancy import project_name
from orchestrator.config import Settings
from orchestrator.ports import EventSink, ProgressEvent, StepFailed, TransientError

log = logging.getLogger(__name__)


def fqdn(name: str) -> str:
    return name if name.endswith(".") else f"{name}."


def zone_for(name: str, zones: Sequence[str]) -> str | None:
    """The zone a name lives in: the longest zone that is the name or a parent of it."""
    wanted = fqdn(name)
    matching = [z for z in zones if wanted == z or wanted.endswith(f".{z}")]
    return max(matching, key=len) if matching else None


class DesignateRecords:
    """Designate through the ministry's project at the primary site, where its stacks' zones are."""

    def __init__(self, settings: Settings, *, propagation_timeout_seconds: float = 120) -> None:
        self.settings = settings
        self.propagation_timeout_seconds = propagation_timeout_seconds

    def _connection(self, ministry_code: str) -> Any:
        try:
            cloud = site(self.settings, self.settings.primary_site).cloud
            return connect(self.settings, cloud, project_name=project_name(ministry_code))
        except CloudConfigError as exc:
            raise StepFailed(str(exc)) from exc

    def _record_sets(self, conn: Any, names: Sequence[str]) -> dict[str, Any]:
        zones = {z.name: z for z in conn.dns.zones()}
        found: dict[str, Any] = {}
        for name in names:
            zone_name = zone_for(name, list(zones))
            if zone_name is None:
                found[name] = None
                continue
            found[name] = next(iter(conn.dns.recordsets(zones[zone_name], name=fqdn(name), type="A")), None)
        return found

    def _wait_until_served(self, conn: Any, record_set: Any, name: str) -> None:
        """Designate marks a change ACTIVE once its DNS servers answer it: the moment that counts
        for a failover's RTO."""
        deadline = time.monotonic() + self.propagation_timeout_seconds
        while True:
            current = conn.dns.get_recordset(record_set, record_set.zone_id)
            if current.status == "ACTIVE":
                return
            if current.status == "ERROR":
                raise StepFailed(f"Designate could not publish the new record of {name} (status ERROR)")
            if time.monotonic() > deadline:
                raise TransientError(
                    f"the new record of {name} is still {current.status} after {self.propagation_timeout_seconds:.0f} s"
                )
            time.sleep(1)

    def addresses(self, *, ministry_code: str, names: Sequence[str]) -> dict[str, list[str]]:
        conn = self._connection(ministry_code)
        return {
            name: sorted(record_set.records or []) if record_set is not None else []
            for name, record_set in self._record_sets(conn, names).items()
        }

    def point(
        self, *, ministry_code: str, names: Sequence[str], address: str, on_event: EventSink
    ) -> dict[str, list[str]]:
        conn = self._connection(ministry_code)
        before: dict[str, list[str]] = {}
        for name, record_set in self._record_sets(conn, names).items():
            if record_set is None:
                raise StepFailed(
                    f"no A record for {name} in the ministry's zones at the primary site: "
                    "the service's stack makes them; was it built?"
                )
            before[name] = sorted(record_set.records or [])
            if before[name] == [address]:
                # A retry after a crash: already repointed, perhaps not yet published.
                self._wait_until_served(conn, record_set, name)
                continue
            conn.dns.update_recordset(record_set, records=[address])
            self._wait_until_served(conn, record_set, name)
            on_event(
                ProgressEvent(
                    type="dns.repointed",
                    message=f"{name} now answers {address} (was {', '.join(before[name]) or 'nothing'})",
                    data={"name": name, "address": address, "before": before[name]},
                )
            )
        return before
