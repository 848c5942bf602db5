"""What an image of a role is built from, as one hash: a baked image whose hash differs from
the current one was built from another install phase and is never picked.

The install phase of a role (playbooks/README.md) is `playbooks/image_<role>.yml` and, for every
role that playbook names, its files under `tasks/install*`, `files/install*` and
`templates/install*`. Roles that exist only for images (`image_*`, e.g. the seal) are hashed
whole: nothing of theirs runs per order, everything of theirs shapes the image.
"""

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

INSTALL_FOLDERS = ("tasks", "files", "templates")
IMAGE_ONLY_PREFIX = "image_"


class DigestError(Exception):
    """The role has no image playbook, or the playbook is not one the digest can read."""


def image_playbook(playbooks_dir: Path, role: str) -> Path:
    return playbooks_dir / f"image_{role}.yml"


def install_digest(*, playbooks_dir: Path, role: str) -> str:
    """sha256 over the sorted relative paths and bytes of everything the role's install phase runs."""
    playbook = image_playbook(playbooks_dir, role)
    if not playbook.is_file():
        raise DigestError(f"no image playbook for role '{role}' (playbooks/{playbook.name})")
    digest = hashlib.sha256()
    for path in sorted({playbook, *_install_files(playbooks_dir, _roles_named(playbook))}):
        digest.update(str(path.relative_to(playbooks_dir)).encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _roles_named(playbook: Path) -> list[str]:
    try:
        plays = yaml.safe_load(playbook.read_text())
    except yaml.YAMLError as exc:
        raise DigestError(f"playbooks/{playbook.name} is not valid YAML: {exc}") from exc
    if not isinstance(plays, list):
        raise DigestError(f"playbooks/{playbook.name} is not a list of plays")
    names: list[str] = []
    for play in plays:
        if isinstance(play, dict):
            names.extend(_role_names(play.get("roles") or []))
            for section in ("pre_tasks", "tasks", "post_tasks"):
                names.extend(_included_roles(play.get(section) or []))
    return names


def _role_names(roles: list[Any]) -> Iterator[str]:
    for entry in roles:
        name = (entry.get("role") or entry.get("name")) if isinstance(entry, dict) else entry
        if isinstance(name, str):
            yield name


def _included_roles(tasks: list[Any]) -> Iterator[str]:
    for task in tasks:
        if not isinstance(task, dict):
            continue
        for key in ("include_role", "import_role", "ansible.builtin.include_role", "ansible.builtin.import_role"):
            if isinstance(task.get(key), dict) and isinstance(task[key].get("name"), str):
                yield task[key]["name"]
        for key in ("block", "rescue", "always"):
            yield from _included_roles(task.get(key) or [])


def _install_files(playbooks_dir: Path, roles: list[str]) -> Iterator[Path]:
    roles_dir = playbooks_dir / "roles"
    for role in roles:
        # A role name is the playbook's text: it must name a folder under roles/ and nothing else.
        folder = roles_dir / role
        if "/" in role or role.startswith(".") or not folder.is_dir():
            raise DigestError(f"the image playbook names role '{role[:64]}', which playbooks/roles does not have")
        if role.startswith(IMAGE_ONLY_PREFIX):
            yield from (path for path in folder.rglob("*") if path.is_file())
            continue
        for section in INSTALL_FOLDERS:
            base = folder / section
            if base.is_dir():
                yield from (
                    path
                    for path in base.rglob("*")
                    if path.is_file() and path.relative_to(base).parts[0].startswith("install")
                )
