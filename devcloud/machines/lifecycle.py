"""Host-wide setup and teardown of the machine layer, called by `python -m devcloud up|down`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from devcloud.machines import host, image, net
from devcloud.machines.layout import Layout
from devcloud.machines.machine import list_machines

log = logging.getLogger("devcloud.machines")


def prepare_host(data_dir: Path) -> None:
    """Idempotent: host packages, sysctls, our nftables table, the base image (built once,
    ~80 s plus its tar), and apt-cacher-ng for the guests. Needs root."""
    if os.geteuid() != 0:
        raise PermissionError("devcloud machines need root (nspawn, mounts, bridges, nftables)")
    layout = Layout(data_dir)
    host.ensure_packages()
    host.set_sysctls()
    net.ensure_nft_table(layout)
    image.base_rootfs(data_dir)
    host.start_apt_cacher(layout)


def teardown_host(data_dir: Path, timeout: float = 20.0) -> None:
    """Power off every machine and remove every veth, netns, bridge and NAT rule we made.

    Instance directories (their disks) stay, so Nova finds its instances again after `up`
    (with `resume_guests_state_on_host_boot`). apt-cacher-ng is stopped; its cache stays.
    """
    layout = Layout(data_dir)
    machines = list_machines(layout)
    for m in machines:  # ask all first, so they shut down in parallel
        pid = m.supervisor_pid()
        if pid:
            os.kill(pid, 15)
    for m in machines:
        try:
            m.stop(timeout=timeout)
            m.unplug()
        except Exception:  # keep tearing down the rest; the log says which one failed
            log.exception("could not stop machine %s cleanly", m.name)
        net.delete_netns(m.netns)
        if os.path.ismount(m.rootfs):
            os.system(f"umount {m.rootfs} 2>/dev/null || umount --lazy {m.rootfs}")
    for ns in net.our_netns():
        net.delete_netns(ns)
    for br in net.our_bridges():
        os.system(f"ip link del dev {br}")
    net.delete_nft_table()
    host.stop_apt_cacher(layout)
