"""Host-wide setup and teardown of the machine layer, called by `python -m devcloud up|down`."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from devcloud.machines import host, image, net
from devcloud.machines._proc import ok, run
from devcloud.machines.layout import Layout
from devcloud.machines.machine import MachineError, list_machines

log = logging.getLogger("devcloud.machines")


def prepare_host(data_dir: Path) -> None:
    """Idempotent: host packages, sysctls, our nftables table, apt-cacher-ng for the guests,
    and the base image (built once, about 90 s). Needs root."""
    if os.geteuid() != 0:
        raise PermissionError("devcloud machines need root (nspawn, mounts, bridges, nftables)")
    layout = Layout(data_dir)
    host.ensure_packages()
    host.set_sysctls()
    net.ensure_nft_table(layout)
    host.start_apt_cacher(layout)
    image.base_rootfs(data_dir)


def teardown_host(data_dir: Path, timeout: float = 20.0) -> None:
    """Power off every machine of `data_dir` and remove its veths, namespaces, mounts and NAT
    entries, then any of our bridges left without ports.

    Scoped to this data dir: another devcloud on the same host (a test run with its own
    TONLE_DATA_DIR) keeps its machines. Instance directories (their disks) stay, so Nova finds
    its instances again after `up` and, with `resume_guests_state_on_host_boot`, boots the
    ones that were running. apt-cacher-ng is stopped; its cache stays.
    """
    layout = Layout(data_dir)
    machines = list_machines(layout)
    for m in machines:  # ask all first, so they shut down in parallel
        pid = m.supervisor_pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
    for m in machines:
        try:
            m.stop(timeout=timeout)
            m.unplug()
        except (OSError, MachineError) as exc:  # keep tearing down the rest
            log.error("could not stop machine %s cleanly: %s", m.name, exc)
        net.delete_netns(m.netns)
        if os.path.ismount(m.rootfs) and not ok(["umount", str(m.rootfs)]):
            run(["umount", "--lazy", str(m.rootfs)], check=False)
    for owned in layout.root.glob("floating-*.json"):
        net.sync_floating_ips(layout, {}, owned.stem.removeprefix("floating-"))
    for br in net.our_bridges():
        net.remove_bridge_if_unused(layout, br)
    if not net.floating_ips() and not net.our_bridges():
        net.delete_nft_table()
    host.stop_apt_cacher(layout)
