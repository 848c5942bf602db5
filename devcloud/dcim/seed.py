"""Runs INSIDE Nautobot's venv (copied there as `tonle_nautobot_seed`), never in the project's.

    <dcim-venv>/bin/python -m tonle_nautobot_seed <token key>

with NAUTOBOT_CONFIG and the NAUTOBOT_* environment of devcloud/dcim/nautobot.py. Idempotent:
every object is looked up by its natural key and created when missing, so a second run changes
nothing. Makes:

* the superuser `tonle` and its API token (the key is chosen by devcloud and given here);
* the custom fields the orchestrator's placement needs and Nautobot lacks: a rack's maximum
  weight, a device's weight, draw and feed, and what a reservation holds (device, depth, feed,
  draw, weight, ministry, order);
* the demo data centre: sites `primary` and `dr` (location type Site), their rooms (Room),
  racks of 42 U with a patch panel at the top, a power panel per room with an A and a B feed
  (230 V, 32 A, single phase, 80 %) into every rack, the co-location VLANs and their prefixes.
"""

from __future__ import annotations

import sys
from typing import Any

#: site -> rooms -> racks per room
DATA_CENTRE: dict[str, dict[str, int]] = {"primary": {"hall-a": 6, "hall-b": 4}, "dr": {"hall-a": 4}}
RACK_HEIGHT = 42
RACK_MAX_WEIGHT_KG = 1000
FEED = {"voltage": 230, "amperage": 32, "max_utilization": 80}
PATCH_PORTS = 24
#: Co-location VLANs per site: (vid, name, prefix)
VLANS: dict[str, list[tuple[int, str, str]]] = {
    "primary": [(3000 + i, f"colo-{3000 + i}", f"10.210.{i}.0/24") for i in range(1, 5)],
    "dr": [(3100 + i, f"colo-{3100 + i}", f"10.220.{i}.0/24") for i in range(1, 3)],
}
CONTAINERS = {"primary": "10.210.0.0/16", "dr": "10.220.0.0/16"}
ADMIN_USER = "tonle"
ADMIN_EMAIL = "tonle@devcloud.tonle.test"
ADMIN_PASSWORD = "devcloud-nautobot"

#: (key, label, type, models) of the custom fields placement reads and writes.
CUSTOM_FIELDS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("tonle_max_weight_kg", "Maximum weight (kg)", "integer", ("dcim.rack",)),
    ("tonle_weight_kg", "Weight (kg)", "json", ("dcim.device", "dcim.rackreservation")),
    ("tonle_draw_w", "Power draw (W)", "json", ("dcim.device", "dcim.rackreservation")),
    ("tonle_feed", "Power feed", "text", ("dcim.device", "dcim.rackreservation")),
    ("tonle_depth", "Depth (full, front, rear)", "text", ("dcim.rackreservation",)),
    ("tonle_device", "Device name", "text", ("dcim.rackreservation",)),
    ("tonle_ministry", "Ministry code", "text", ("dcim.device", "dcim.rackreservation")),
    ("tonle_order", "Tonle order", "text", ("dcim.device", "dcim.rackreservation")),
]


def main(token_key: str) -> None:
    import nautobot

    nautobot.setup()
    from django.db import transaction

    with transaction.atomic():
        user = admin(token_key)
        custom_fields()
        data_centre(user)
    print("seeded")


def admin(token_key: str) -> Any:
    from django.contrib.auth import get_user_model
    from nautobot.users.models import Token

    user, _ = get_user_model().objects.get_or_create(username=ADMIN_USER, defaults={"email": ADMIN_EMAIL})
    user.is_superuser = True
    user.is_staff = True
    user.is_active = True
    user.email = ADMIN_EMAIL
    user.set_password(ADMIN_PASSWORD)
    user.save()
    Token.objects.filter(user=user).exclude(key=token_key).delete()
    Token.objects.get_or_create(
        key=token_key, defaults={"user": user, "write_enabled": True, "description": "tonle orchestrator"}
    )
    return user


def custom_fields() -> None:
    from django.contrib.contenttypes.models import ContentType
    from nautobot.extras.models import CustomField

    for key, label, kind, models in CUSTOM_FIELDS:
        field, _ = CustomField.objects.get_or_create(key=key, defaults={"label": label, "type": kind})
        for model in models:
            app_label, name = model.split(".")
            field.content_types.add(ContentType.objects.get(app_label=app_label, model=name))


def data_centre(user: Any) -> None:
    from django.contrib.contenttypes.models import ContentType
    from nautobot.dcim.models import (
        Device,
        DeviceType,
        FrontPortTemplate,
        Location,
        LocationType,
        Manufacturer,
        PowerFeed,
        PowerPanel,
        Rack,
        RearPortTemplate,
    )
    from nautobot.extras.models import Role, Status
    from nautobot.ipam.models import VLAN, Namespace, Prefix, VLANGroup

    active = Status.objects.get(name="Active")

    def allow(obj: Any, *models: Any) -> None:
        for model in models:
            obj.content_types.add(ContentType.objects.get_for_model(model))
            if hasattr(active, "content_types"):
                active.content_types.add(ContentType.objects.get_for_model(model))

    site_type, _ = LocationType.objects.get_or_create(name="Site", defaults={"nestable": False})
    room_type, _ = LocationType.objects.get_or_create(name="Room", defaults={"parent": site_type})
    allow(site_type, Rack, Device, PowerPanel, VLAN, Prefix, VLANGroup)
    allow(room_type, Rack, Device, PowerPanel)
    allow(active, Location, Rack, Device, PowerFeed, VLAN, Prefix)

    manufacturer, _ = Manufacturer.objects.get_or_create(name="Generic")
    panel_type, created = DeviceType.objects.get_or_create(
        manufacturer=manufacturer,
        model=f"Patch panel {PATCH_PORTS}-port",
        defaults={"u_height": 1, "is_full_depth": False},
    )
    if created:
        for n in range(1, PATCH_PORTS + 1):
            rear = RearPortTemplate.objects.create(device_type=panel_type, name=f"rear-{n}", type="8p8c", positions=1)
            FrontPortTemplate.objects.create(
                device_type=panel_type, name=f"port-{n}", type="8p8c", rear_port_template=rear, rear_port_position=1
            )
    panel_role, _ = Role.objects.get_or_create(name="Patch panel")
    colo_role, _ = Role.objects.get_or_create(name="Co-location")
    allow(panel_role, Device)
    allow(colo_role, Device, Rack)

    namespace = Namespace.objects.get(name="Global")
    for site_name, rooms in DATA_CENTRE.items():
        site, _ = Location.objects.get_or_create(
            name=site_name, location_type=site_type, defaults={"status": active, "description": f"{site_name} site"}
        )
        for room_name, count in rooms.items():
            room, _ = Location.objects.get_or_create(
                name=room_name, parent=site, defaults={"location_type": room_type, "status": active}
            )
            panel, _ = PowerPanel.objects.get_or_create(name=f"{site_name}-{room_name}-pp", location=room)
            prefix = f"{site_name[0].upper()}-{room_name[-1].upper()}"
            for n in range(1, count + 1):
                rack, _ = Rack.objects.get_or_create(
                    name=f"{prefix}{n:02d}",
                    location=room,
                    defaults={"status": active, "u_height": RACK_HEIGHT, "role": colo_role},
                )
                if rack.cf.get("tonle_max_weight_kg") is None:
                    rack.cf["tonle_max_weight_kg"] = RACK_MAX_WEIGHT_KG
                    rack.validated_save()
                for side, kind in (("A", "primary"), ("B", "redundant")):
                    PowerFeed.objects.get_or_create(
                        power_panel=panel,
                        name=f"{rack.name}-{side}",
                        defaults={
                            "rack": rack,
                            "status": active,
                            "type": kind,
                            "supply": "ac",
                            "phase": "single-phase",
                            **FEED,
                        },
                    )
                if not Device.objects.filter(rack=rack, role=panel_role).exists():
                    Device(
                        name=f"{rack.name}-patch",
                        device_type=panel_type,
                        role=panel_role,
                        status=active,
                        location=room,
                        rack=rack,
                        position=RACK_HEIGHT,
                        face="front",
                    ).validated_save()
        group, _ = VLANGroup.objects.get_or_create(name=f"colocation-{site_name}", defaults={"location": site})
        container, _ = Prefix.objects.get_or_create(
            prefix=CONTAINERS[site_name],
            namespace=namespace,
            defaults={"status": active, "type": "container", "description": f"co-location, {site_name}"},
        )
        container.locations.add(site)
        for vid, name, cidr in VLANS[site_name]:
            vlan, _ = VLAN.objects.get_or_create(vid=vid, vlan_group=group, defaults={"name": name, "status": active})
            vlan.locations.add(site)
            net, _ = Prefix.objects.get_or_create(
                prefix=cidr,
                namespace=namespace,
                defaults={"status": active, "type": "network", "vlan": vlan, "description": f"co-location {name}"},
            )
            net.locations.add(site)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tonle_nautobot_seed <token key>")
    main(sys.argv[1])
