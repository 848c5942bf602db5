"""The `dns` service in Keystone's catalog, and Designate's service user.

One Designate serves both sites: `primary` and `dr` are availability zones of one region
(see devcloud/README.md), so a single endpoint in that region is what clients find.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devcloud.context import Endpoint
from devcloud.dns import daemons
from devcloud.dns import layout as L

if TYPE_CHECKING:
    from devcloud.context import Context


def register(ctx: Context) -> None:
    """Idempotent: the user `designate` (role `service`), service `designate`, type `dns`."""
    ctx.register_service(
        user=L.SERVICE_USER,
        password=L.SERVICE_PASSWORD,
        service_type="dns",
        service_name="designate",
        # openstacksdk appends /v2 itself; the catalog holds the API's root.
        endpoints=[Endpoint(url=daemons.API_URL.rstrip("/"), region=ctx.admin.region_name)],
        description="DNS (Designate with BIND9), devcloud",
    )
