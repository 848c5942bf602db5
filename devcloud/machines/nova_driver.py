"""Nova compute driver: every instance is a devcloud machine (systemd-nspawn, see machine.py).

Loaded by nova-compute through the shim `nova.virt.tonle_nspawn` (see shim.py) with
`compute_driver = tonle_nspawn.NspawnDriver`. Builds on `FakeDriverWithoutFakeNodes` only for
the host/node bookkeeping (inventory, a node uuid kept in `<state_path>/compute_id` so
nova-compute can restart); everything about instances is real and read back from disk.
Whatever is not implemented raises NotImplementedError instead of pretending to work.

Config (nova.conf), all optional:
    [tonle_nspawn]
    data_dir = <devcloud data dir>          default: devcloud.context.data_root()
    floating_ip_sync_interval = 2           seconds; 0 disables the floating IP and security group sync
"""

from __future__ import annotations

import base64
import binascii
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from nova import context as nova_context
from nova import exception
from nova.compute import power_state
from nova.virt import fake, hardware
from oslo_config import cfg

from devcloud.machines import floating, image, net, secgroups
from devcloud.machines import host as hostprep
from devcloud.machines import snapshot as root_tar
from devcloud.machines._proc import HostCommandError
from devcloud.machines.cgroups import thaw
from devcloud.machines.layout import Layout
from devcloud.machines.machine import Machine, MachineError, MachineSpec, list_machines

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

OPTS = [
    cfg.StrOpt("data_dir", help="devcloud data directory (base image, machines, locks)."),
    cfg.FloatOpt(
        "floating_ip_sync_interval", default=2.0, help="Seconds between floating IP syncs from Neutron; 0 disables."
    ),
]
CONF.register_opts(OPTS, group="tonle_nspawn")

POWER = {
    "running": power_state.RUNNING,
    "shutdown": power_state.SHUTDOWN,
    "crashed": power_state.CRASHED,
}


def _not_supported(what: str) -> NotImplementedError:
    return NotImplementedError(f"devcloud's nspawn driver does not support {what}")


def nics_from_network_info(network_info: Any) -> list[net.Nic]:
    """Neutron's view of the ports (nova.network.model.NetworkInfo) as machine NICs."""
    nics: list[net.Nic] = []
    for vif in network_info or []:
        network = vif["network"]
        subnets = []
        floats: list[str] = []
        for s in network["subnets"]:
            gw = (s.get("gateway") or {}).get("address")
            ips = tuple(ip["address"] for ip in s["ips"])
            floats += [f["address"] for ip in s["ips"] for f in ip.get("floating_ips") or []]
            dns = tuple(d["address"] for d in s.get("dns") or [])  # the subnet's dns_nameservers
            subnets.append(net.Subnet(cidr=str(s["cidr"]), gateway=gw, fixed_ips=ips, dns=dns))
        mtu = network.get("mtu") or (network.get("meta") or {}).get("mtu") or 1500
        nics.append(
            net.Nic(
                port_id=vif["id"],
                mac=vif["address"],
                network_id=network["id"],
                subnets=tuple(subnets),
                mtu=int(mtu),
                bridge=network.get("bridge") or "",
                floating_ips=tuple(floats),
            )
        )
    return nics


class NspawnDriver(fake.FakeDriverWithoutFakeNodes):
    capabilities: ClassVar[dict[str, bool]] = {
        **fake.FakeDriver.capabilities,
        "has_imagecache": True,  # manage_image_cache drops trees of deleted Glance images
        "supports_evacuate": False,
        "supports_attach_interface": False,
        "supports_device_tagging": False,
        "supports_tagged_attach_interface": False,
        "supports_tagged_attach_volume": False,
        "supports_extend_volume": False,
        "supports_multiattach": False,
        "supports_trusted_certs": False,
        "supports_accelerators": False,
        "supports_remote_managed_ports": False,
        "supports_virtio_fs": False,
        "supports_mem_backing_file": False,
    }

    def __init__(self, virtapi: Any, read_only: bool = False) -> None:
        super().__init__(virtapi, read_only)
        if CONF.tonle_nspawn.data_dir:
            data_dir = Path(CONF.tonle_nspawn.data_dir)
        else:
            from devcloud.context import data_root

            data_dir = data_root()
        self.data_dir = data_dir
        # Shown by `openstack hypervisor show`; tests use it to tell this driver from the fake.
        self.host_status_base["hypervisor_type"] = "nspawn"  # a per-instance dict of FakeDriver
        self.layout = Layout(data_dir)
        self._sync_thread: threading.Thread | None = None

    # --- host ------------------------------------------------------------------------------
    def init_host(self, host: str) -> None:
        super().init_host(host)
        LOG.info("nspawn driver for host %s, machines in %s", host, self.layout.root)
        # Cheap and idempotent; `devcloud up` did them already unless nova-compute runs alone.
        hostprep.set_sysctls()
        net.ensure_nft_table(self.layout)
        # Snapshots this host was taking when it stopped: nobody will finish them, and a guest
        # frozen for one must not stay so.
        shutil.rmtree(self.layout.snapshots_dir(host), ignore_errors=True)
        for m in self._ours():
            thaw(m.name)
        interval = float(CONF.tonle_nspawn.floating_ip_sync_interval)
        if interval > 0 and self._sync_thread is None:
            self._sync_thread = threading.Thread(
                target=self._floating_ip_loop, args=(interval,), name="tonle-fip-sync", daemon=True
            )
            self._sync_thread.start()

    def get_host_ip_addr(self) -> str:
        return str(CONF.my_ip)

    def _floating_ip_loop(self, interval: float) -> None:
        """Neutron tells Nova nothing when a floating IP is (dis)associated, and there is no
        L3 agent: poll Neutron and program the host's NAT (floating.py)."""
        client = None
        while True:
            try:
                client = client or _neutron_admin_client()  # keeps its token between polls
                floating.sync_from_neutron(self.layout, client)
                # Security groups ride on the same poll: Neutron has no agent to tell us either.
                secgroups.sync_from_neutron(self.layout, client, host=str(CONF.host))
            except Exception:  # keep polling: a Neutron restart must not end the sync
                LOG.exception("floating IP sync failed; retrying in %.0fs", interval)
                client = None
            time.sleep(interval)

    # --- instance lookup -------------------------------------------------------------------
    def _machine(self, instance: Any) -> Machine:
        return Machine(self.layout, instance.uuid)

    def _ours(self) -> list[Machine]:
        return [m for m in list_machines(self.layout) if m.extra().get("host") == CONF.host]

    def list_instances(self) -> list[str]:
        return [m.extra().get("instance_name", m.name) for m in self._ours()]

    def list_instance_uuids(self) -> list[str]:
        return [m.name for m in self._ours()]

    def instance_exists(self, instance: Any) -> bool:
        return self._machine(instance).exists()

    def get_info(self, instance: Any, use_cache: bool = True) -> hardware.InstanceInfo:
        m = self._machine(instance)
        power = m.power()
        if power == "missing":
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        return hardware.InstanceInfo(state=POWER[power])

    def get_console_output(self, context: Any, instance: Any) -> bytes:
        m = self._machine(instance)
        if not m.exists():
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        return m.console()

    # --- lifecycle -------------------------------------------------------------------------
    def spawn(
        self,
        context: Any,
        instance: Any,
        image_meta: Any,
        injected_files: Any,
        admin_password: Any,
        allocations: Any,
        network_info: Any = None,
        block_device_info: Any = None,
        power_on: bool = True,
        accel_info: Any = None,
    ) -> None:
        t0 = time.monotonic()
        # Guests' apt goes through it; another data dir's `down` may have stopped a shared one.
        hostprep.start_apt_cacher(self.layout)
        lower = self._image_tree(context, image_meta)
        t_image = time.monotonic()
        # Nova allocates ports while the image is prepared; reading them waits for Neutron.
        nics = nics_from_network_info(network_info)
        t_net = time.monotonic()
        spec = MachineSpec(
            name=instance.uuid,
            hostname=instance.hostname or f"instance-{instance.uuid[:8]}",
            nics=nics,
            lower=lower,
            authorized_keys=instance.key_data or "",
            user_data=_decode_user_data(instance),
            extra={"host": str(CONF.host), "instance_name": str(instance.name)},
        )
        m = self._machine(instance)
        if m.exists():  # a retried build on this host: start clean
            m.destroy()
        try:
            m.create(spec)
            self._filter_before_boot(instance.uuid)
            if power_on:
                m.start()
        except Exception as exc:
            LOG.error("spawn of %s failed, cleaning up: %s", instance.uuid, exc)
            m.destroy()
            raise exception.InstanceDeployFailure(reason=str(exc)) from exc
        LOG.info(
            "spawned machine %s in %.2fs (image %.2fs, waiting for Neutron ports %.2fs, machine %.2fs)",
            instance.uuid, time.monotonic() - t0, t_image - t0, t_net - t_image, time.monotonic() - t_net,
        )  # fmt: skip

    def _filter_before_boot(self, uuid: str) -> None:
        """The guest's ports are filtered by its security groups from its first packet, not from
        the next poll; if Neutron cannot say which, they drop everything until then."""
        try:
            secgroups.sync_from_neutron(self.layout, _neutron_admin_client(), host=str(CONF.host), only=uuid)
        except Exception:
            LOG.exception("security groups of %s not read before boot: dropping all until the next sync", uuid)
            secgroups.deny_all(self.layout, uuid)

    def _image_tree(self, context: Any, image_meta: Any) -> Path:
        from nova.image import glance

        image_id = str(image_meta.id)
        checksum = image_meta.checksum if image_meta.obj_attr_is_set("checksum") else None

        def fetch(dest: Path) -> None:
            glance.API().download(context, image_id, dest_path=str(dest))

        try:
            return image.image_rootfs(self.data_dir, image_id, checksum, fetch)
        except Exception as exc:
            raise exception.InstanceDeployFailure(
                reason=f"image {image_id} is not usable as a machine root (a tar of a Debian "
                f"root filesystem is expected; devcloud uploads one): {exc}"
            ) from exc

    def manage_image_cache(self, context: Any, all_instances: Any) -> None:
        """Periodic (`[image_cache] manager_interval`): remove unpacked trees of images that
        Glance no longer has and no machine uses."""
        from nova.image import glance

        for image_id in image.unused_images(self.data_dir):
            try:
                glance.API().get(context, image_id)
            except exception.ImageNotFound:
                image.remove_image(self.data_dir, image_id)

    def reboot(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        reboot_type: str,
        block_device_info: Any = None,
        bad_volumes_callback: Any = None,
        accel_info: Any = None,
        share_info: Any = None,
    ) -> None:
        m = self._existing(instance)
        self._replug(m, network_info)
        try:
            m.reboot(hard=reboot_type.upper() == "HARD")
        except MachineError as exc:
            raise exception.InstanceRebootFailure(reason=str(exc)) from exc

    def power_off(self, instance: Any, timeout: int = 0, retry_interval: int = 0) -> None:
        self._existing(instance).stop(timeout=float(timeout))

    def power_on(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        block_device_info: Any = None,
        accel_info: Any = None,
        share_info: Any = None,
    ) -> None:
        m = self._existing(instance)
        self._replug(m, network_info)
        m.start()

    # --- snapshot (createImage) -------------------------------------------------------------------
    def snapshot(self, context: Any, instance: Any, image_id: str, update_task_state: Any) -> None:
        """Upload the machine's whole root filesystem (its image tree and its own layer) as a tar
        to the Glance image Nova's API made, raw/bare like the base image. A running guest is
        frozen while it is read, not stopped; it carries on afterwards. Task states and errors
        as Nova's libvirt driver: a missing machine is InstanceNotFound, a deleted image
        ImageNotFound (Nova's manager then cleans up), anything else fails the snapshot and
        Nova deletes the image."""
        from nova.compute import task_states
        from nova.image import glance

        t0 = time.monotonic()
        api = glance.API()
        target = api.get(context, image_id)  # ImageNotFound if it was deleted meanwhile
        m = self._existing(instance)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        with root_tar.work_dir(self.layout.snapshots_dir(str(CONF.host)), f"{image_id}-") as work:
            try:
                snap = root_tar.write_root_tar(m, work / "root.tar")
            except (MachineError, HostCommandError) as exc:
                if not m.exists():  # deleted while it was being read
                    raise exception.InstanceNotFound(instance_id=instance.uuid) from exc
                raise
            update_task_state(task_state=task_states.IMAGE_UPLOADING, expected_state=task_states.IMAGE_PENDING_UPLOAD)
            t_upload = time.monotonic()
            # The same bytes become this data dir's cached tree of the image meanwhile, so the
            # first server booted from it downloads and unpacks nothing.
            seeding = _Timed(image.seed_image, self.data_dir, image_id, snap.tar)
            try:
                with open(snap.tar, "rb") as data:  # streamed by glanceclient in chunks
                    api.update(context, image_id, snapshot_metadata(instance, target), data=data, purge_props=False)
            except Exception:
                seeding.join()
                image.remove_image(self.data_dir, image_id)
                raise
            finally:
                t_uploaded = time.monotonic()
            seeding.join()
            if seeding.error:  # only an optimisation: the first boot then downloads it
                LOG.warning("snapshot %s uploaded but not unpacked into the image cache: %s", image_id, seeding.error)
        LOG.info(
            "snapshot of %s as image %s: %.1f MiB in %.2fs (tar %.2fs, guest frozen %.2fs, upload %.2fs, "
            "image cache %.2fs alongside)",
            instance.uuid, image_id, snap.size / 2**20, time.monotonic() - t0, snap.seconds, snap.frozen_seconds,
            t_uploaded - t_upload, seeding.seconds,
        )  # fmt: skip

    # --- resize ----------------------------------------------------------------------------------
    # Flavors are nominal here (a machine is not held to the flavor's CPU or RAM), and every
    # compute host of the lab keeps its machines under one data directory, so a resize keeps the
    # machine and its disk, and only stops and starts it, as a real resize would.
    def migrate_disk_and_power_off(
        self,
        context: Any,
        instance: Any,
        dest: Any,
        flavor: Any,
        network_info: Any,
        block_device_info: Any = None,
        timeout: int = 0,
        retry_interval: int = 0,
    ) -> str:
        LOG.info("resizing %s to flavor %s: stopping the machine", instance.uuid, getattr(flavor, "name", flavor))
        self._existing(instance).stop(timeout=float(timeout))
        return ""  # no disk to copy: the machine stays where it is

    def finish_migration(
        self,
        context: Any,
        migration: Any,
        instance: Any,
        disk_info: Any,
        network_info: Any,
        image_meta: Any,
        resize_instance: bool,
        allocations: Any,
        block_device_info: Any = None,
        power_on: bool = True,
        share_info: Any = None,
    ) -> None:
        if power_on:
            self.power_on(context, instance, network_info)

    def confirm_migration(self, context: Any, migration: Any, instance: Any, network_info: Any) -> None:
        LOG.info("resize of %s confirmed", instance.uuid)

    def finish_revert_migration(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        migration: Any,
        block_device_info: Any = None,
        power_on: bool = True,
        share_info: Any = None,
    ) -> None:
        if power_on:
            self.power_on(context, instance, network_info)

    def resume_state_on_host_boot(
        self, context: Any, instance: Any, network_info: Any, share_info: Any, block_device_info: Any = None
    ) -> None:
        self.power_on(context, instance, network_info)

    def destroy(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        block_device_info: Any = None,
        destroy_disks: bool = True,
        destroy_secrets: bool = True,
    ) -> None:
        m = self._machine(instance)
        if not m.exists() and not m.dir.exists():
            LOG.info("destroy: no machine for %s on this host", instance.uuid)
        m.destroy()
        # Its floating IPs must stop pointing at a now-free fixed address right away.
        floating.prune(self.layout)

    def cleanup(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        block_device_info: Any = None,
        destroy_disks: bool = True,
        migrate_data: Any = None,
        destroy_vifs: bool = True,
        destroy_secrets: bool = True,
    ) -> None:
        if self._machine(instance).exists():
            raise exception.InstanceExists(name=instance.uuid)

    def plug_vifs(self, instance: Any, network_info: Any) -> None:
        m = self._machine(instance)
        if m.exists():
            self._replug(m, network_info)

    def unplug_vifs(self, instance: Any, network_info: Any) -> None:
        for nic in nics_from_network_info(network_info):
            net.unplug(self.layout, nic)

    def _existing(self, instance: Any) -> Machine:
        m = self._machine(instance)
        if not m.exists():
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        return m

    def _replug(self, m: Machine, network_info: Any) -> None:
        nics = nics_from_network_info(network_info)
        if nics:
            m.set_nics(nics)
        m.plug()

    # --- volumes: Cinder runs a fake backend, so there is no block device to give ---------------
    def attach_volume(
        self,
        context: Any,
        connection_info: Any,
        instance: Any,
        mountpoint: str,
        disk_bus: Any = None,
        device_type: Any = None,
        encryption: Any = None,
    ) -> None:
        # Accepted and recorded so the volume API works end to end; nothing appears in the guest.
        LOG.info("volume attach to %s at %s recorded (no block device in devcloud)", instance.uuid, mountpoint)
        super().attach_volume(context, connection_info, instance, mountpoint, disk_bus, device_type, encryption)


#: Operations the driver does not support, and what to tell the caller. Each raises
#: NotImplementedError instead of "succeeding" through the fake driver it builds on.
UNSUPPORTED: dict[str, str] = {
    "set_admin_password": "setting the admin password",
    "rescue": "rescue",
    "unrescue": "unrescue",
    "pause": "pause",
    "unpause": "unpause",
    "suspend": "suspend",
    "resume": "resume",
    "soft_delete": "soft delete",
    "restore": "restore of soft-deleted instances",
    "trigger_crash_dump": "crash dumps",
    "live_migration": "live migration",
    "check_can_live_migrate_destination": "live migration",
    "check_can_live_migrate_source": "live migration",
    "pre_live_migration": "live migration",
    "attach_interface": "attaching interfaces to a running instance",
    "detach_interface": "detaching interfaces from a running instance",
    "swap_volume": "swapping volumes",
    "extend_volume": "extending attached volumes",
    "get_vnc_console": "VNC consoles (use the console log, or SSH)",
    "get_spice_console": "SPICE consoles (use the console log, or SSH)",
    "get_serial_console": "serial consoles (use the console log, or SSH)",
    "get_mks_console": "MKS consoles (use the console log, or SSH)",
    "get_diagnostics": "diagnostics",
    "get_instance_diagnostics": "diagnostics",
    "block_stats": "block device statistics",
    "get_host_cpu_stats": "host CPU statistics",
    "quiesce": "quiesce",
    "unquiesce": "unquiesce",
    "host_power_action": "host power actions",
    "host_maintenance_mode": "host maintenance mode",
    "set_host_enabled": "enabling or disabling the host through the driver",
    "live_migration_force_complete": "live migration",
    "live_migration_abort": "live migration",
    "post_live_migration_at_destination": "live migration",
    "rollback_live_migration_at_destination": "live migration",
    "mount_share": "Manila shares",
    "umount_share": "Manila shares",
}


def _unsupported(name: str, what: str) -> Any:
    def method(self: NspawnDriver, *args: Any, **kwargs: Any) -> None:
        raise _not_supported(what)

    method.__name__ = name
    return method


for _name, _what in UNSUPPORTED.items():
    setattr(NspawnDriver, _name, _unsupported(_name, _what))


class _Timed(threading.Thread):
    """Runs `fn(*args)` in a thread of its own; after `join`, its duration and any error."""

    def __init__(self, fn: Any, *args: Any) -> None:
        super().__init__(name="tonle-snapshot-cache", daemon=True)
        self.fn, self.args = fn, args
        self.seconds = 0.0
        self.error: Exception | None = None
        self.start()

    def run(self) -> None:
        t0 = time.monotonic()
        try:
            self.fn(*self.args)
        except Exception as exc:  # noqa: BLE001 - the caller reports it
            self.error = exc
        self.seconds = time.monotonic() - t0


def snapshot_metadata(instance: Any, image: dict[str, Any]) -> dict[str, Any]:
    """What Nova's libvirt driver sets on a snapshot image (its `_create_snapshot_metadata`),
    for a tar of a root filesystem: raw/bare, as the base image. The user's metadata, set by
    Nova's API when it made the image, is kept (the caller does not purge properties)."""
    properties = {
        "image_location": "snapshot",
        "image_state": "available",
        "owner_id": instance.project_id,
    }
    for key in ("kernel_id", "ramdisk_id", "os_type"):
        value = getattr(instance, key, None)
        if value:
            properties[key] = value
    return {
        "name": image["name"],
        "status": "active",
        "disk_format": "raw",
        "container_format": "bare",
        "properties": properties,
    }


def _decode_user_data(instance: Any) -> bytes | None:
    raw = instance.user_data
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError):
        LOG.warning("user data of %s is not base64; passing it as is", instance.uuid)
        return raw.encode() if isinstance(raw, str) else bytes(raw)


def _neutron_admin_client() -> Any:
    from nova.network import neutron

    return neutron.get_client(nova_context.get_admin_context(), admin=True)
