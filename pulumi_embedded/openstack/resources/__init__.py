"""Resource handlers, one class per `openstack:*` type token."""

from pulumi_embedded.openstack.resources import compute, dns_identity, networking, storage
from pulumi_embedded.openstack.resources.base import Handler

HANDLERS: dict[str, Handler] = {
    handler.type_: handler for module in (networking, compute, storage, dns_identity) for handler in module.HANDLERS
}
