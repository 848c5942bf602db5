"""The Debian 12 base image: built once with mmdebstrap, cached, also shipped as a tar.

The tar (`base_image_tar`) is what devcloud/services uploads to Glance. A Glance image is a tar
of a root filesystem; the driver unpacks each image once (`image_rootfs`) and every instance
of it mounts that tree read-only as the lower layer of its own overlay. When the Glance image
is byte-identical to our base tar (same md5, Glance's `checksum`), the base tree itself is used: no unpacking.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devcloud.machines import host
from devcloud.machines._proc import HostCommandError, ok, run
from devcloud.machines.layout import Layout

log = logging.getLogger("devcloud.machines.image")

SUITE = "bookworm"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "openssh-server",
    "python3",
    "python3-yaml",
    "python3-apt",
    "sudo",
    "iproute2",
    "iputils-ping",
    "ca-certificates",
    "procps",
    "less",
    "netbase",
    "nftables",
)
#: Bump when the recipe below changes: a cached base with another stamp is rebuilt.
RECIPE_VERSION = "4"
# mmdebstrap installs through apt and dpkg in one pass: 23 s and 24 CPU-seconds here for the
# packages above, against debootstrap's 54 s and 52 (whose shell-driven second stage took 107 s
# on a fresh machine busy with the rest of `up`). The hook merges /usr through usr-is-merged, as
# debootstrap does, rather than pulling in usrmerge and Perl: the same packages as before, but
# for the empty transitional lsb-base.
MMDEBSTRAP_OPTIONS = ("--variant=minbase", "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr")
# Units that only cost time or take apt's lock under a playbook's feet in a lab machine.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "apt-daily.service",
    "apt-daily-upgrade.service",
    "e2scrub_reap.service",
    "systemd-networkd-wait-online.service",
    "getty@tty1.service",
)
GUEST_INIT = Path(__file__).with_name("guest_init.py")
#: Built bases shared by every devcloud data dir of this host, one folder per recipe.
HOST_CACHE = Path("/var/cache/tonle-devcloud/base")

EARLY_UNIT = """[Unit]
Description=devcloud user data: users, keys, files
After=local-fs.target systemd-tmpfiles-setup.service
Before=ssh.service systemd-user-sessions.service
ConditionPathExists=!/var/lib/tonle/early.done

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/tonle-init early
StandardOutput=journal+console
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""

FINAL_UNIT = """[Unit]
Description=devcloud user data: packages, runcmd, scripts
After=ssh.service network.target tonle-init-early.service
ConditionPathExists=!/var/lib/tonle/final.done

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/tonle-init final
StandardOutput=journal+console
TimeoutStartSec=0
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""

SSHD_CONF = """# devcloud: one ed25519 host key, generated per machine by the host at spawn (RSA keys cost
# about a second of CPU each); no DNS lookups (the lab has no resolver for clients).
HostKey /etc/ssh/ssh_host_ed25519_key
UseDNS no
PasswordAuthentication no
"""


def _stamp() -> str:
    h = hashlib.sha256()
    h.update(RECIPE_VERSION.encode())
    h.update(" ".join(PACKAGES).encode())
    h.update(" ".join(MMDEBSTRAP_OPTIONS).encode())
    return h.hexdigest()[:16]


def base_rootfs(data_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """The cached base tree, built first if missing or stale. Safe to call concurrently."""
    return _ensure_base(Layout(data_dir), progress) / "rootfs"


def base_image_tar(data_dir: Path) -> Path:
    """Tar of the base tree (built first if needed): upload it to Glance as the lab's image
    (disk_format=raw, container_format=bare; the driver only needs it to be a tar)."""
    return _ensure_base(Layout(data_dir), None) / "rootfs.tar"


def _ensure_base(layout: Layout, progress: Callable[[str], None] | None) -> Path:
    stamp = _stamp()
    d = layout.base_version_dir(stamp)
    if (d / "rootfs.tar").exists():
        return d
    say = progress or (lambda m: log.info("%s", m))
    with layout.lock("image-base"):
        if (d / "rootfs.tar").exists():
            return d
        shared = HOST_CACHE / stamp
        if (shared / "rootfs.tar.md5").exists():
            say(f"base image {stamp} from the host's cache {shared}")
            _copy_tree(shared, d)
            return d
        _build(layout, d, say)
        try:  # offer it to other data dirs of this host (test runs, other checkouts)
            with Layout.host_lock("image-base"):
                if not shared.exists():
                    _copy_tree(d, shared)
                for old in HOST_CACHE.iterdir():  # other recipes: data dirs keep their links
                    if old != shared:
                        shutil.rmtree(old, ignore_errors=True)
        except (OSError, HostCommandError) as exc:
            log.warning("could not share the base image in %s: %s", HOST_CACHE, exc)
    return d


def _copy_tree(src: Path, dst: Path) -> None:
    """Hard-link copy (instant, no extra space) when on one file system, else a real copy.
    Safe to share: the tree is only ever a read-only overlay lower layer, the tar only read."""
    tmp = dst.with_name(dst.name + ".new")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if not ok(["cp", "-a", "--link", str(src), str(tmp)]):
        shutil.rmtree(tmp, ignore_errors=True)
        run(["cp", "-a", str(src), str(tmp)], timeout=1800)
    tmp.rename(dst)


def _build(layout: Layout, final: Path, progress: Callable[[str], None]) -> None:
    host.ensure_packages()
    mirror = host.debian_mirror()
    work = final.with_name(final.name + ".new")
    if work.exists():
        shutil.rmtree(work)
    tree = work / "rootfs"
    work.mkdir(parents=True)
    t0 = time.monotonic()
    progress(f"mmdebstrap {SUITE} from {mirror} (about 25 s, once)")
    argv = ["mmdebstrap", *MMDEBSTRAP_OPTIONS, f"--include={','.join(PACKAGES)}", SUITE, str(tree), mirror]
    try:
        # Through the host's apt-cacher-ng when it runs: a rebuild then downloads nothing.
        run(argv, env={**os.environ, "http_proxy": host.apt_proxy_url()}, timeout=1800)
    except HostCommandError as exc:
        log.warning("mmdebstrap through apt-cacher-ng failed (%s); retrying directly", exc)
        shutil.rmtree(tree, ignore_errors=True)
        run(argv, timeout=1800)
    _customise(tree)
    progress(f"base tree built in {time.monotonic() - t0:.0f}s; writing its tar")
    tar = work / "rootfs.tar"
    run(["tar", "--numeric-owner", "--xattrs", "--acls", "-C", str(tree), "-cf", str(tar), "."], timeout=1800)
    (work / "rootfs.tar.md5").write_text(_md5(tar) + "\n")
    work.rename(final)
    progress(f"base image ready in {time.monotonic() - t0:.0f}s: {final}")
    _forget_old_bases(layout, keep=final)


def _forget_old_bases(layout: Layout, keep: Path) -> None:
    """Delete base trees of older recipes that no machine uses as its lower layer any more."""
    in_use = {str(m.state().get("lower", "")) for m in _machines(layout)}
    for d in layout.base_dir.iterdir():
        if d.is_dir() and d != keep and str(d / "rootfs") not in in_use and not d.name.endswith(".new"):
            log.info("removing unused old base image %s", d)
            shutil.rmtree(d, ignore_errors=True)
        elif d.is_file():  # leftovers of the first, unversioned layout
            d.unlink()


def _machines(layout: Layout) -> list[Any]:
    from devcloud.machines.machine import list_machines  # machine imports this module

    return list(list_machines(layout))


def _customise(root: Path) -> None:
    """Make the bootstrapped tree a lab machine: default user, sshd, first-boot user data."""

    def write(rel: str, text: str, mode: int = 0o644) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)

    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # per machine, generated by the host at spawn
    write("etc/ssh/sshd_config.d/10-devcloud.conf", SSHD_CONF)
    run(
        [
            "chroot",
            str(root),
            "useradd",
            "--create-home",
            "--shell",
            "/bin/bash",
            "--groups",
            "sudo",
            "--comment",
            "Debian",
            "debian",
        ]
    )
    write("etc/sudoers.d/90-debian", "debian ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    shutil.copyfile("/etc/apt/sources.list.d/debian.sources", root / "etc/apt/sources.list.d/debian.sources")
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    # A copy for images used without devcloud's spawn; spawn writes the current one anyway.
    shutil.copyfile(GUEST_INIT, root / "usr/local/sbin/tonle-init")
    (root / "usr/local/sbin/tonle-init").chmod(0o755)
    write("etc/systemd/system/tonle-init-early.service", EARLY_UNIT)
    write("etc/systemd/system/tonle-init-final.service", FINAL_UNIT)
    run(
        ["systemctl", f"--root={root}", "enable", "tonle-init-early.service", "tonle-init-final.service", "ssh.service"]
    )
    run(["systemctl", f"--root={root}", "mask", *MASKED_UNITS])
    # Journal in memory only: smaller instances, no fsync storms with 10 machines booting.
    write("etc/systemd/journald.conf.d/10-devcloud.conf", "[Journal]\nStorage=volatile\n")
    (root / "etc/machine-id").write_text("")  # written per machine at spawn
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    run(["chroot", str(root), "apt-get", "clean"])
    for lists in (root / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()  # guests fetch fresh lists through the host's apt-cacher-ng


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)  # what Glance records as an image's `checksum`
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def current_base(data_dir: Path) -> tuple[Path, str] | None:
    """(tree, md5 of its tar) of the current recipe's base, if it is built."""
    d = Layout(data_dir).base_version_dir(_stamp())
    f = d / "rootfs.tar.md5"
    return (d / "rootfs", f.read_text().strip()) if f.exists() else None


def unused_images(data_dir: Path) -> list[str]:
    """Ids of unpacked Glance images that no machine uses as its lower layer."""
    layout = Layout(data_dir)
    if not layout.images_dir.is_dir():
        return []
    in_use = {str(m.state().get("lower", "")) for m in _machines(layout)}
    return [d.name for d in layout.images_dir.iterdir() if str(d / "rootfs") not in in_use]


def remove_image(data_dir: Path, image_id: str) -> None:
    layout = Layout(data_dir)
    with layout.lock(f"image-{image_id}"):
        log.info("removing unpacked image %s (deleted in Glance, unused)", image_id)
        shutil.rmtree(layout.images_dir / image_id, ignore_errors=True)


def image_rootfs(data_dir: Path, image_id: str, checksum: str | None, fetch: Callable[[Path], None]) -> Path:
    """Unpacked tree of Glance image `image_id`, shared lower layer of its instances.

    `fetch(dest)` downloads the image's tar to `dest`; it is called only the first time.
    """
    layout = Layout(data_dir)
    base = current_base(data_dir)
    if checksum and base and checksum == base[1]:
        return base[0]
    target = layout.images_dir / image_id / "rootfs"
    if target.is_dir():
        return target
    with layout.lock(f"image-{image_id}"):
        if target.is_dir():
            return target
        work = layout.images_dir / image_id
        work.mkdir(parents=True, exist_ok=True)
        tar = work / "image.tar"
        log.info("downloading image %s", image_id)
        try:
            fetch(tar)
            _unpack(tar, target, image_id)
        finally:
            tar.unlink(missing_ok=True)
    return target


def seed_image(data_dir: Path, image_id: str, tar: Path) -> Path:
    """Unpack `tar`, the very bytes just uploaded as Glance image `image_id` (a snapshot), as
    that image's tree, so the first server booted from it downloads nothing."""
    layout = Layout(data_dir)
    target = layout.images_dir / image_id / "rootfs"
    with layout.lock(f"image-{image_id}"):
        if not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            _unpack(tar, target, image_id)
    return target


def _unpack(tar: Path, target: Path, image_id: str) -> None:
    tmp = target.with_name("rootfs.new")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        run(["tar", "--numeric-owner", "--xattrs", "--acls", "-C", str(tmp), "-xf", str(tar)], timeout=1800)
        if not (tmp / "sbin/init").exists() and not (tmp / "lib/systemd/systemd").exists():
            raise RuntimeError(f"image {image_id} is not a tar of a systemd root filesystem")
        tmp.rename(target)
    finally:
        if tmp.exists():  # a failed unpack must not be taken for a tree next time
            shutil.rmtree(tmp, ignore_errors=True)
