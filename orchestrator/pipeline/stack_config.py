"""The stack configuration a service's program reads (the contract is in `stacks/__init__.py`)."""

from typing import Any

from orchestrator.catalog.models import Offering, Plan
from orchestrator.config import Settings

SECRET_KEYS: frozenset[str] = frozenset()


def stack_config(
    *,
    settings: Settings,
    ministry_code: str,
    service_id: str,
    request_id: str,
    offering: Offering,
    plan: Plan,
    parameters: dict[str, Any],
    ssh_public_key: str | None,
) -> dict[str, Any]:
    """Everything but the site and provider keys, which come from the ministry's tenancy."""
    config: dict[str, Any] = {
        "tonle:ministry": ministry_code,
        "tonle:serviceId": service_id,
        "tonle:requestId": request_id,
        "tonle:offering": offering.id,
        "tonle:plan": plan.id,
        "tonle:sizes": dict(plan.sizes),
        "tonle:parameters": dict(parameters),
        "tonle:externalNetwork": settings.external_network,
        "tonle:managementCidr": settings.management_cidr,
        "tonle:image": settings.server_image,
        "tonle:subnetPool": settings.subnet_pool,
    }
    if ssh_public_key:
        config["tonle:sshPublicKey"] = ssh_public_key
    return config
