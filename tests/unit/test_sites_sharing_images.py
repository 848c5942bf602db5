"""Sites of one OpenStack region share its image service: an image baked at one boots at all."""

from pathlib import Path

import pytest

from orchestrator.cloud.sites import sites_sharing_images
from orchestrator.config import Settings

pytestmark = pytest.mark.unit

CLOUDS = """
clouds:
  one-primary:
    auth: {auth_url: "http://keystone.one:5000/v3/", username: u, password: p, project_name: x}
    region_name: RegionOne
  one-dr:
    auth: {auth_url: "http://keystone.one:5000/v3", username: u, password: p, project_name: x}
    region_name: RegionOne
  other-region:
    auth: {auth_url: "http://keystone.one:5000/v3", username: u, password: p, project_name: x}
    region_name: RegionTwo
  elsewhere:
    auth: {auth_url: "http://keystone.two:5000/v3", username: u, password: p, project_name: x}
    region_name: RegionOne
"""


def settings_for(tmp_path: Path, site_clouds: dict[str, str]) -> Settings:
    path = tmp_path / "clouds.yaml"
    path.write_text(CLOUDS)
    return Settings(data_dir=tmp_path, clouds_yaml=path, site_clouds=site_clouds)


def test_sites_of_one_region_and_identity_endpoint_share_images(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        {"primary": "one-primary", "dr": "one-dr", "east": "other-region", "far": "elsewhere"},
    )
    assert sites_sharing_images(settings, "primary") == ["primary", "dr"]
    assert sites_sharing_images(settings, "dr") == ["dr", "primary"]
    assert sites_sharing_images(settings, "east") == ["east"]
    assert sites_sharing_images(settings, "far") == ["far"]


def test_a_site_that_cannot_be_read_shares_with_none(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, {"primary": "one-primary", "dr": "missing-entry"})
    assert sites_sharing_images(settings, "primary") == ["primary"]
    assert sites_sharing_images(settings, "dr") == ["dr"]
    assert sites_sharing_images(settings, "nowhere") == ["nowhere"]
