"""The OpenStack provider layer of the embedded engine: `openstack:*` type tokens -> openstacksdk."""
