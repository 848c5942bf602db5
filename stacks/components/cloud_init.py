"""First-boot user data for service servers (`#cloud-config`).

Nova replaces a server whose user data changes, so this holds only what never changes for a
service's life: its hostname, its SSH key and who it belongs to. Everything else is Ansible's.
Only keys that both cloud-init and the local data centre's stand-in understand are used.
"""

import json

import yaml

from stacks.labels import Labels

IDENTITY_FILE = "/etc/tonle/service.json"


def user_data(labels: Labels, *, hostname: str, ssh_public_key: str) -> str:
    identity = {
        "ministry": labels.ministry,
        "service": labels.service_id,
        "offering": labels.offering,
    }
    config = {
        "hostname": hostname,
        "manage_etc_hosts": True,
        "ssh_authorized_keys": [ssh_public_key.strip()],
        "ssh_pwauth": False,
        "disable_root": True,
        # Lets log shipping and the backup agent say whose machine they run on.
        "write_files": [
            {
                "path": IDENTITY_FILE,
                "permissions": "0644",
                "content": json.dumps(identity, sort_keys=True) + "\n",
            }
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=True)
