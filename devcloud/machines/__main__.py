"""Operator commands for the machine layer (run as root from the repository root).

python -m devcloud.machines list                 machines, power state, addresses
python -m devcloud.machines console <uuid>       tail of a machine's console log
python -m devcloud.machines bench [--count 10]   boot N machines in parallel to SSH-ready
"""

from __future__ import annotations

import argparse
import logging
import sys

from devcloud.context import data_root
from devcloud.machines.layout import Layout
from devcloud.machines.machine import Machine, list_machines


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m devcloud.machines")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    c = sub.add_parser("console")
    c.add_argument("uuid")
    b = sub.add_parser("bench")
    b.add_argument("--count", type=int, default=10)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    layout = Layout(data_root())
    if args.cmd == "list":
        for m in list_machines(layout):
            ips = [ip for n in m.nics() for s in n.subnets for ip in s.fixed_ips]
            print(f"{m.name}  {m.power():9}  {m.state().get('hostname', '')}  {' '.join(ips)}")
    elif args.cmd == "console":
        sys.stdout.buffer.write(Machine(layout, args.uuid).console())
    elif args.cmd == "bench":
        from devcloud.machines.bench import boot_to_ssh

        r = boot_to_ssh(layout.data_dir, 1)
        print(f"1 machine: SSH-ready in {r['slowest_s']:.2f}s, {r['mem_per_machine_mib']:.1f} MiB")
        r = boot_to_ssh(layout.data_dir, args.count)
        print(
            f"{args.count} machines in parallel: all SSH-ready in {r['wall_s']:.2f}s "
            f"(median {r['median_s']:.2f}s), {r['mem_per_machine_mib']:.1f} MiB each"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
