"""Cleanup verification: what a copy of a service (a drill's, a failover's) left in the ministry's
project at a site, asked of the cloud's own APIs after its stack was destroyed.

The engine's word that a destroy succeeded is not the proof: its state can miss what a crash
made between a create call and the checkpoint. So every kind of resource a copy's stack makes is
listed in the project and matched on the copy's marks (`stacks/labels.py`): Neutron tags
`copy=<copy>` and `service=<id>`, Nova and Cinder metadata `tonle_copy` / `tonle_service`, and
names `<ministry>-<service>-<short id>-<copy>-<role>`.
Router interfaces and volume attachments carry no marks; they cannot outlive their router or
server, which do.
"""

from collections.abc import Iterable
from typing import Any

from orchestrator.cloud.sites import CloudConfigError, connect, site
from orchestrator.cloud.tenancy import project_name
from orchestrator.config import Settings
from orchestrator.ports import StepFailed, TransientError


class OpenStackLeftovers:
    """Looks as the site's own user, in the ministry's project (where the copy was built)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def find(self, *, ministry_code: str, site_name: str, service_id: str, copy: str) -> list[str]:
        try:
            target = site(self.settings, site_name)
            conn = connect(self.settings, target.cloud, project_name=project_name(ministry_code))
        except CloudConfigError as exc:
            raise StepFailed(str(exc)) from exc
        tags = {f"copy={copy}", f"service={service_id}"}
        metadata = {"tonle_copy": copy, "tonle_service": service_id}
        # Names carry the copy too: a crash between a create call and its tagging leaves a name.
        named = f"-{service_id.replace('-', '')[:8]}-{copy}-"
        try:
            found = [
                *_with_metadata("server", conn.compute.servers(), metadata, named),
                *_with_metadata("volume", conn.block_storage.volumes(), metadata, named),
                *_tagged("floating ip", conn.network.ips(), tags, named),
                *_tagged("port", conn.network.ports(), tags, named),
                *_tagged("router", conn.network.routers(), tags, named),
                *_tagged("subnet", conn.network.subnets(), tags, named),
                *_tagged("network", conn.network.networks(), tags, named),
                *_tagged("security group", conn.network.security_groups(), tags, named),
            ]
        except Exception as exc:
            from keystoneauth1 import exceptions as ks

            if isinstance(exc, ks.ConnectFailure | ks.ConnectTimeout | ks.ServiceUnavailable | ks.GatewayTimeout):
                raise TransientError(f"listing what the copy left: {exc}") from exc
            raise
        finally:
            conn.close()
        return found


def _tagged(kind: str, resources: Iterable[Any], marks: set[str], name_mark: str) -> list[str]:
    """Neutron resources whose tags hold every mark, or whose name carries the copy's."""
    return [
        _label(kind, resource)
        for resource in resources
        if marks <= set(resource.tags or []) or name_mark in (resource.name or "")
    ]


def _with_metadata(kind: str, resources: Iterable[Any], marks: dict[str, str], name_mark: str) -> list[str]:
    """Nova and Cinder resources whose metadata hold every mark, or whose name carries the copy's."""
    return [
        _label(kind, resource)
        for resource in resources
        if all((resource.metadata or {}).get(key) == value for key, value in marks.items())
        or name_mark in (resource.name or "")
    ]


def _label(kind: str, resource: Any) -> str:
    name = getattr(resource, "name", None) or getattr(resource, "floating_ip_address", None)
    return f"{kind} {name} ({resource.id})" if name else f"{kind} {resource.id}"
