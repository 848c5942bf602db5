"""Real instances for the local data centre: systemd-nspawn machines and the Nova driver.

Entry points for `python -m devcloud up|down` (devcloud/services) are re-exported here:

    prepare_host(data_dir)    packages, base image, apt-cacher-ng, sysctls, nftables table
    teardown_host(data_dir)   stop every machine, remove its veths/netns/bridges/NAT
    base_image_tar(data_dir)  tar of the Debian 12 base tree, the image to upload to Glance
    install_shim(venv)        writes nova/virt/tonle_nspawn.py into the cloud venv

See devcloud/machines/README.md for the Nova settings the driver needs.
"""

from __future__ import annotations

from pathlib import Path

from devcloud.machines.lifecycle import prepare_host, teardown_host
from devcloud.machines.shim import install_shim


def base_image_tar(data_dir: Path) -> Path:
    """Tar of the base root filesystem (built and cached on first use, minutes)."""
    from devcloud.machines.image import base_image_tar as _tar

    return _tar(data_dir)


__all__ = ["base_image_tar", "install_shim", "prepare_host", "teardown_host"]
