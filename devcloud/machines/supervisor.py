"""Keeps one machine's systemd-nspawn running, outside whoever asked for it.

Started detached (own session, `setsid`) by `machine.start`, so nova-compute or a test can
exit or restart without taking the machine down. Usage:

    python -m devcloud.machines.supervisor <instance dir>

Signals:  SIGTERM  clean power-off (nspawn forwards it to the guest's systemd), then exit
          SIGHUP   soft reboot (ctrl-alt-del to the guest's PID 1)
          SIGUSR1  hard reboot (kill the container, start it again)
nspawn exit 133 means the guest rebooted itself: start it again. Any other exit ends the
supervisor; state.json then says why, and the machine shows as shut off.
Only the standard library is used (and this package, which uses only it): this runs under
whatever python started it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from devcloud.machines import statefile
from devcloud.machines.cgroups import cgroup_dirs, enter_own_cgroup, remove_cgroups

REBOOT_EXIT = 133


class Supervisor:
    def __init__(self, idir: Path) -> None:
        self.idir = idir
        self.state_file = idir / "state.json"
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.hard_reboot = False

    def update(self, **changes: object) -> None:
        statefile.update(self.state_file, **changes)

    def log(self, msg: str) -> None:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}", flush=True)
        with open(self.idir / "console.log", "ab") as c:
            c.write(f"\n[devcloud] {msg}\n".encode())

    def leader(self) -> int | None:
        """PID of the guest's systemd: nspawn's (only) child."""
        if not self.proc:
            return None
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def on_term(self, _sig: int, _f: FrameType | None) -> None:
        self.stopping = True
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # --boot: nspawn asks the guest to power off

    def on_hup(self, _sig: int, _f: FrameType | None) -> None:
        pid = self.leader()
        if pid:
            os.kill(pid, signal.SIGINT)  # systemd: ctrl-alt-del.target -> reboot

    def on_usr1(self, _sig: int, _f: FrameType | None) -> None:
        self.hard_reboot = True
        self.kill_container()

    def on_usr2(self, _sig: int, _f: FrameType | None) -> None:
        self.stopping = True
        self.kill_container()

    def kill_container(self) -> None:
        """SIGKILL the guest's PID 1, which ends its whole PID namespace, then nspawn."""
        pid = self.leader()
        if pid:
            os.kill(pid, signal.SIGKILL)
        if self.proc and self.proc.poll() is None:
            self.proc.kill()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_term)
        signal.signal(signal.SIGHUP, self.on_hup)
        signal.signal(signal.SIGUSR1, self.on_usr1)
        # SIGUSR2: power off now, no clean shutdown (Nova's destroy, or a stop that timed out).
        signal.signal(signal.SIGUSR2, self.on_usr2)
        argv = [str(a) for a in statefile.read(self.state_file)["nspawn_argv"]]
        rc = 0
        while not self.stopping:
            self.hard_reboot = False
            with open(self.idir / "console.log", "ab") as console:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
            self.update(power="running", nspawn_pid=self.proc.pid, started_at=time.time())
            self.log(f"started nspawn pid {self.proc.pid}")
            while True:
                try:
                    rc = self.proc.wait()
                    break
                except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                    continue
            self.log(f"nspawn exited {rc}")
            if self.stopping:
                break
            if rc == REBOOT_EXIT or self.hard_reboot:
                self.log("guest rebooted; starting it again")
                continue
            # Powered off from inside (rc 0) or crashed: stay down, like a real machine.
            self.update(power="crashed" if rc else "shutdown", last_exit=rc)
            return rc
        self.update(power="shutdown", nspawn_pid=None, last_exit=rc)
        return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m devcloud.machines.supervisor <instance dir>", file=sys.stderr)
        return 2
    idir = Path(argv[1])
    (idir / "supervisor.pid").write_text(str(os.getpid()))
    enter_own_cgroup(idir.name)
    try:
        return Supervisor(idir).run()
    finally:
        # Out of our cgroup first: a cgroup with a process in it cannot be removed.
        with contextlib.suppress(OSError):
            for d in cgroup_dirs(idir.name):
                (d.parent.parent / "cgroup.procs").write_text(str(os.getpid()))
        remove_cgroups(idir.name)
        (idir / "supervisor.pid").unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
