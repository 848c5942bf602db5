"""Sites are OpenStack clouds named in clouds.yaml; this reads them and opens connections."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config import Settings


class CloudConfigError(Exception):
    """The clouds.yaml or a site in it is missing or unusable."""


@dataclass(frozen=True)
class Site:
    name: str
    cloud: str  # entry in clouds.yaml
    availability_zone: str
    region: str | None
    username: str | None  # who the entry signs in as: that user is given a role in each ministry's project


def clouds_yaml(settings: Settings) -> Path:
    path = settings.resolved_clouds_yaml
    if path is None or not path.exists():
        raise CloudConfigError(
            "no clouds.yaml: set TONLE_CLOUDS_YAML or OS_CLIENT_CONFIG_FILE, or start the local data centre "
            "(`make devcloud-up`)"
        )
    return path


def cloud_config(settings: Settings, cloud: str, **overrides: Any) -> Any:
    import openstack.config
    from openstack.config.exceptions import OpenStackConfigException

    path = clouds_yaml(settings)
    config = openstack.config.OpenStackConfig(config_files=[str(path)], vendor_files=[])
    try:
        return config.get_one(cloud=cloud, **overrides)
    except OpenStackConfigException as exc:
        raise CloudConfigError(f"{path}: cloud '{cloud}': {exc}") from exc


def connect(settings: Settings, cloud: str, **overrides: Any) -> Any:
    import openstack.connection

    return openstack.connection.Connection(config=cloud_config(settings, cloud, **overrides))


def site(settings: Settings, name: str) -> Site:
    cloud = settings.site_clouds.get(name)
    if cloud is None:
        raise CloudConfigError(f"unknown site '{name}'; TONLE_SITE_CLOUDS names {sorted(settings.site_clouds)}")
    config = cloud_config(settings, cloud)
    raw = config.config
    return Site(
        name=name,
        cloud=cloud,
        availability_zone=str(raw.get("availability_zone") or name),
        region=config.region_name or None,
        username=(raw.get("auth") or {}).get("username"),
    )


def sites_sharing_images(settings: Settings, name: str) -> list[str]:
    """`name` and every other site that is the same OpenStack region (same identity endpoint and
    region): they share one image service, so a public image built at one boots at all of them.
    A site whose clouds.yaml entry cannot be read shares with none."""
    try:
        mine = _image_service(settings, name)
    except CloudConfigError:
        return [name]
    shared = [name]
    for other in sorted(set(settings.site_clouds) - {name}):
        try:
            if _image_service(settings, other) == mine:
                shared.append(other)
        except CloudConfigError:
            continue
    return shared


def _image_service(settings: Settings, name: str) -> tuple[str, str]:
    cloud = settings.site_clouds.get(name)
    if cloud is None:
        raise CloudConfigError(f"unknown site '{name}'")
    config = cloud_config(settings, cloud)
    auth_url = str((config.config.get("auth") or {}).get("auth_url") or "").rstrip("/")
    if not auth_url:
        raise CloudConfigError(f"site '{name}' names no identity endpoint")
    return auth_url, str(config.region_name or "")
