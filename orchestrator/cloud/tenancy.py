"""Each ministry gets its own OpenStack project per site; stacks are built inside it.

The site's own user (from clouds.yaml) is given the `member` role in the project, and the
stack's provider is pointed at that project: `openstack:cloud` + `openstack:tenantName`.
"""

import logging
from typing import Any

from orchestrator.cloud.sites import CloudConfigError, Site, connect, site
from orchestrator.config import Settings
from orchestrator.ports import EventSink, ProgressEvent, StepFailed, TransientError

log = logging.getLogger(__name__)

MEMBER_ROLE = "member"


def project_name(ministry_code: str) -> str:
    return f"tonle-{ministry_code}"


def provider_config(target: Site, ministry_code: str) -> dict[str, str]:
    """The provider keys of a stack built for the ministry at the site, and the site's zone."""
    config = {
        "openstack:cloud": target.cloud,
        "openstack:tenantName": project_name(ministry_code),
        "tonle:site": target.availability_zone,
    }
    if target.region:
        config["openstack:region"] = target.region
    return config


class OpenStackTenancy:
    """Creates projects and role assignments with the admin entry of clouds.yaml."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def ensure(self, *, ministry_code: str, ministry_name: str, site_name: str, on_event: EventSink) -> dict[str, str]:
        try:
            target = site(self.settings, site_name)
        except CloudConfigError as exc:
            raise StepFailed(str(exc)) from exc
        name = project_name(ministry_code)
        try:
            admin = connect(self.settings, self.settings.admin_cloud)
            project = admin.identity.find_project(name, domain_id="default")
            if project is None:
                project = _create_project(admin, name, ministry_name)
                on_event(ProgressEvent(type="cloud.project", message=f"created project {name} at {site_name}"))
            if target.username:
                _grant_member(admin, project, target.username)
        except Exception as exc:
            if _is_transient(exc):
                raise TransientError(f"identity service: {exc}") from exc
            raise
        return provider_config(target, ministry_code)


class SiteNamesOnly:
    """For the no-op engine: names the project without creating it (no cloud is touched)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def ensure(self, *, ministry_code: str, ministry_name: str, site_name: str, on_event: EventSink) -> dict[str, str]:
        cloud = self.settings.site_clouds.get(site_name, site_name)
        return {"openstack:cloud": cloud, "openstack:tenantName": project_name(ministry_code), "tonle:site": site_name}


def _create_project(admin: Any, name: str, ministry_name: str) -> Any:
    from openstack import exceptions

    try:
        return admin.identity.create_project(name=name, domain_id="default", description=f"Tonle: {ministry_name}")
    except exceptions.ConflictException:
        # Another operation for the same ministry created it a moment ago: use that one.
        project = admin.identity.find_project(name, domain_id="default")
        if project is None:
            raise
        return project


def _grant_member(admin: Any, project: Any, username: str) -> None:
    user = admin.identity.find_user(username, domain_id="default")
    role = admin.identity.find_role(MEMBER_ROLE)
    if user is None or role is None:
        raise RuntimeError(f"cannot give '{username}' the '{MEMBER_ROLE}' role: user or role not found")
    if not admin.identity.validate_user_has_project_role(project, user, role):
        admin.identity.assign_project_role_to_user(project, user, role)
        log.info("gave %s the %s role in %s", username, MEMBER_ROLE, project.name)


def _is_transient(exc: Exception) -> bool:
    from keystoneauth1 import exceptions as ks

    return isinstance(exc, ks.ConnectFailure | ks.ConnectTimeout | ks.ServiceUnavailable | ks.GatewayTimeout)
