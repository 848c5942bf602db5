"""The playbooks' own filters (playbooks/filter_plugins, roles/*/filter_plugins): pure functions
the roles decide with, loaded here as Ansible loads them (by path, not as a package)."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def plugin(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"tonle_filter_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


volumes = plugin(PLAYBOOKS / "filter_plugins" / "volumes.py")
dpkg = plugin(PLAYBOOKS / "roles" / "image_seal" / "filter_plugins" / "dpkg.py")


def test_a_data_directory_mariadb_never_used_is_empty() -> None:
    assert volumes.datadir_state([]) == "empty"
    assert volumes.datadir_state(["lost+found"]) == "empty"


def test_a_baked_images_fresh_data_directory_may_move_onto_the_volume() -> None:
    # What `mariadb-install-db` makes on Debian 12, MariaDB's internal `#` folders included.
    assert volumes.datadir_state(["mysql", "performance_schema", "sys", "#rocksdb"]) == "fresh"


def test_a_data_directory_with_an_orders_database_is_in_use_and_named() -> None:
    directories = ["mysql", "performance_schema", "sys", "wordpress", "shop"]
    assert volumes.datadir_state(directories) == "in use"
    assert volumes.application_databases(directories) == ["shop", "wordpress"]
    # A database alone, without MariaDB's own schemas, is still one to keep.
    assert volumes.datadir_state(["wordpress"]) == "in use"


def test_the_image_records_only_installed_packages_with_their_versions() -> None:
    lines = [
        "nginx\t1.22.1-9+deb12u1\tinstalled",
        "php8.2-fpm\t8.2.28-1~deb12u1\tinstalled",
        "rspamd\t3.4-1\tconfig-files",  # removed, its configuration left: not in the image
        "garbage line",
        "restic\t0.14.0-1+b5\tinstalled",
    ]
    assert dpkg.dpkg_versions(lines) == {
        "nginx": "1.22.1-9+deb12u1",
        "php8.2-fpm": "8.2.28-1~deb12u1",
        "restic": "0.14.0-1+b5",
    }
