"""Who Ansible runs as: an unprivileged account that cannot read the orchestrator's data.

A playbook runs code the orchestrator did not write on its own controller (lookups, filters,
`delegate_to: localhost`, whatever a future role does), so the process that runs it must not
be able to read what the orchestrator guards: the secrets key, the database and its socket,
clouds.yaml. When the worker is root, ansible-runner runs in a child process (`child.py`)
dropped to a system account (`TONLE_ANSIBLE_USER`) whose only writable place is its own home,
where the runs live. When the worker is not root (a developer's laptop) there is no one to
drop to: the run says so in a warning event.
"""

import logging
import os
import pwd
import site
import stat
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from orchestrator.config import PROJECT_ROOT

log = logging.getLogger("tonle.ansible")

CHILD_MODULE = "orchestrator.ansible.child"
# Entries of the data directory that the embedded PostgreSQL (its own system user) manages.
DATABASE_ENTRIES = frozenset({"postgres", "run"})
# How deep a folder owned by another account is looked for below the data directory (the local
# data centre's DCIM cluster is at `devcloud/state/nautobot-postgres`).
FOREIGN_DEPTH = 3


@dataclass(frozen=True)
class Account:
    """The OS account a playbook runs as."""

    name: str
    uid: int
    gid: int
    home: Path
    dropped: bool  # False: the worker's own account (it is not root, so it cannot drop)

    @property
    def owner(self) -> tuple[int, int] | None:
        """Who must own what the run reads and writes, when that is not the worker itself."""
        return (self.uid, self.gid) if self.dropped else None


def account(user: str) -> Account:
    """The account playbooks run as: `user` (created if missing) when we are root, else ourselves."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.getuid())
        return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir), dropped=False)
    if user == "root":
        raise ValueError("TONLE_ANSIBLE_USER must name an unprivileged account, not root")
    entry = ensure_user(user)
    if entry.pw_uid == 0:
        raise ValueError(f"TONLE_ANSIBLE_USER {user!r} has uid 0: name an unprivileged account")
    home = Path(entry.pw_dir)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o700)
    return Account(user, entry.pw_uid, entry.pw_gid, home, dropped=True)


def ensure_user(name: str) -> pwd.struct_passwd:
    """The system account `name`, created with a home of its own and no login shell."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    command = [
        "useradd",
        "--system",
        "--user-group",
        "--create-home",
        "--home-dir",
        f"/var/lib/{name}",
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "Tonle Ansible runs",
        name,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"could not create the Ansible account {name!r}: {done.stderr.strip()}") from None
    log.warning("created the system account %s to run Ansible playbooks", name)
    return entry


def child_command(who: Account, python: str) -> list[str]:
    """The command line of the child that runs ansible-runner as `who`."""
    command = [python, "-s", "-m", CHILD_MODULE]
    if not who.dropped:
        return command
    # no-new-privs: nothing the playbook starts can regain root through a setuid binary (sudo).
    return ["setpriv", f"--reuid={who.uid}", f"--regid={who.gid}", "--init-groups", "--no-new-privs", *command]


def python_path() -> str:
    """What the child needs importable: this project, and ansible and ansible-runner from
    wherever this process imports them."""
    import ansible
    import ansible_runner

    found = [str(PROJECT_ROOT)]
    for module_file in (ansible_runner.__file__, ansible.__file__, *site.getsitepackages()):
        folder = str(Path(module_file).parents[1]) if module_file.endswith(".py") else module_file
        if module_file and folder not in found:
            found.append(folder)
    return os.pathsep.join(found)


def child_environment(who: Account) -> dict[str, str]:
    """The whole environment of the child: nothing of the worker's (database URL, cloud
    credentials, keys) is inherited."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(who.home),
        "USER": who.name,
        "LOGNAME": who.name,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": python_path(),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@lru_cache
def child_python(who: Account) -> str:
    """An interpreter `who` can run that imports ansible-runner from this installation.

    This one first; where it lives somewhere the account cannot enter (pyenv under /root),
    the system's interpreter of the same version, given this installation's packages.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    tried: list[str] = []
    for python in candidates:
        if not Path(python).exists() or (who.dropped and not _open_to_others(Path(python))):
            continue
        probe = [*child_command(who, python)[:-2], "-c", "import ansible, ansible_runner, " + CHILD_MODULE]
        done = subprocess.run(
            probe, env=child_environment(who), cwd="/", capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode == 0:
            return python
        tried.append(f"{python}: {(done.stderr.strip().splitlines() or ['failed'])[-1]}")
    raise RuntimeError(f"no Python interpreter the account {who.name} can run imports ansible-runner: {tried}")


def _open_to_others(path: Path) -> bool:
    """Whether any account can reach and run `path` (links followed): every folder on the way
    searchable by others. A shell refuses to run an interpreter behind a closed folder."""
    real = path.resolve()
    if not real.stat().st_mode & stat.S_IXOTH:
        return False
    return all(folder.stat().st_mode & stat.S_IXOTH for folder in real.parents)


def protect_data_dir(data_dir: Path) -> None:
    """Take other users' access away from the data directory's contents.

    The directory itself keeps o+x only: the embedded PostgreSQL runs as its own system user
    and must pass through to its cluster (which it keeps 0700 itself). Everything else the
    orchestrator keeps there (secrets key, tokens, engine state, the local cloud's files) is
    closed to other users: files 0600-like, directories without any access for others. A folder
    on the way to one another account owns (the local data centre's DCIM PostgreSQL cluster)
    keeps o+x alone, and its own contents are closed by the same rule.
    """
    if not data_dir.is_dir():
        return
    _chmod(data_dir, 0o711)
    _close_contents(data_dir, me=os.geteuid(), depth=FOREIGN_DEPTH, top=True)


def _close_contents(folder: Path, *, me: int, depth: int, top: bool = False) -> None:
    for entry in folder.iterdir():
        try:
            info = entry.lstat()
        except FileNotFoundError:
            continue
        if info.st_uid != me or stat.S_ISLNK(info.st_mode) or (top and entry.name in DATABASE_ENTRIES):
            continue
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISDIR(info.st_mode):
            _chmod(entry, mode & ~0o077)
        elif top and (entry / "postgres").exists():
            continue  # another installation's data directory nested here (tests) keeps its own rules
        elif depth > 1 and _leads_to_foreign(entry, me=me, depth=depth - 1):
            _chmod(entry, (mode & ~0o007) | 0o001)
            _close_contents(entry, me=me, depth=depth - 1)
        else:
            _chmod(entry, mode & ~0o007)


def _leads_to_foreign(folder: Path, *, me: int, depth: int) -> bool:
    """Whether a folder another account owns is within `depth` levels below `folder`."""
    try:
        children = [c for c in folder.iterdir() if c.is_dir() and not c.is_symlink()]
    except OSError:
        return False
    for child in children:
        try:
            if child.stat().st_uid != me:
                return True
        except OSError:
            continue
    return depth > 1 and any(_leads_to_foreign(c, me=me, depth=depth - 1) for c in children)


def _chmod(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            path.chmod(mode)
    except OSError as exc:
        log.warning("could not restrict the permissions of %s: %s", path, exc)
