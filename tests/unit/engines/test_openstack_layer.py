"""The OpenStack provider layer's own logic (no cloud: its cloud calls are tested in tests/cloud)."""

import re
from pathlib import Path

import pulumi_openstack
import pytest
from openstack import exceptions as osx

from pulumi_embedded.openstack.errors import NotFound, translate
from pulumi_embedded.openstack.invokes import INVOKES
from pulumi_embedded.openstack.provider import OpenStackProvider
from pulumi_embedded.openstack.resources import HANDLERS
from pulumi_embedded.openstack.schema import FORCE_NEW
from pulumi_embedded.openstack.schema import INVOKES as DECLARED_INVOKES
from pulumi_embedded.provider import CloudError, UnknownType

pytestmark = pytest.mark.unit


def _sdk_tokens() -> set[str]:
    """Every type token pulumi_openstack spells (to check ours are the ones the SDK sends)."""
    root = Path(pulumi_openstack.__file__).parent
    return {m for f in root.rglob("*.py") for m in re.findall(r"'(openstack:[\w/]+:\w+)'", f.read_text())}


def test_every_handled_type_has_replace_rules_and_exists_in_the_sdk() -> None:
    assert set(HANDLERS) == set(FORCE_NEW)
    assert set(INVOKES) == set(DECLARED_INVOKES)
    known = _sdk_tokens()
    assert set(HANDLERS) <= known, set(HANDLERS) - known


def test_an_unknown_type_token_is_an_error_naming_it() -> None:
    provider = OpenStackProvider({"cloud": "nowhere"})
    with pytest.raises(UnknownType, match=r"openstack:loadbalancer/loadBalancer:LoadBalancer.*supported: "):
        provider.force_new("openstack:loadbalancer/loadBalancer:LoadBalancer")
    with pytest.raises(UnknownType, match="openstack:compute/getHypervisorV2:getHypervisorV2"):
        provider.invoke("openstack:compute/getHypervisorV2:getHypervisorV2", {})


def test_a_missing_cloud_entry_says_which_and_where(tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  other:\n    auth: {auth_url: 'http://127.0.0.1:1/v3'}\n")
    provider = OpenStackProvider({"cloud": "tonle-primary"}, clouds_yaml=clouds)
    with pytest.raises(CloudError, match=r"tonle-primary.*clouds.yaml"):
        provider.invoke("openstack:images/getImage:getImage", {"name": "debian-12"})
    with pytest.raises(CloudError, match="openstack:cloud"):
        OpenStackProvider({}).invoke("openstack:images/getImage:getImage", {})


@pytest.mark.parametrize(
    ("raised", "kind", "transient"),
    [
        (osx.NotFoundException("gone"), NotFound, False),
        (osx.HttpException("boom", http_status=503), CloudError, True),
        (osx.ConflictException("busy", http_status=409), CloudError, True),
        (osx.ConflictException("Duplicate Zone", http_status=409), CloudError, False),
        (osx.HttpException("quota", http_status=413), CloudError, False),
        (osx.BadRequestException("bad cidr", http_status=400), CloudError, False),
        (osx.ResourceTimeout("slow"), CloudError, True),
        (osx.ResourceFailure("ERROR"), CloudError, False),
    ],
)
def test_sdk_errors_map_to_cloud_errors_that_say_what_was_done(
    raised: Exception, kind: type[CloudError], transient: bool
) -> None:
    with pytest.raises(kind) as caught, translate("create openstack:networking/subnet:Subnet web-subnet"):
        raise raised
    assert caught.value.transient is transient
    assert "web-subnet" in str(caught.value)
