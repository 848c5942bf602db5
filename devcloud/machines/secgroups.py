"""Neutron security groups, enforced: each instance port's groups and rules as nftables rules.

There is no L2 agent, so nothing in Neutron filters; the Nova driver polls Neutron (with the
floating-IP sync, every couple of seconds) and programs, inside each machine's network namespace,
one table `inet tonle_sg` with a chain per port direction (`eth<n>_in`, `eth<n>_out`):

- default deny both ways; established/related connections pass (groups are stateful);
- each rule becomes one line: direction, ethertype, protocol, port range (ICMP type/code),
  remote_ip_prefix, or remote_group_id as the set of the fixed addresses (and allowed address
  pairs) of every port in that group;
- IPv6 neighbour discovery passes, as Neutron always lets it;
- a port with port security disabled gets no chain (nothing filtered); a port with port
  security and no group gets an empty chain (everything dropped), as in Neutron.

The table lives in the guest's namespace, where conntrack works per machine (this kernel has no
bridge conntrack, so per-port stateful filtering on the host bridge is not possible). A guest's
root could delete it: that only opens its own ports, and the sync puts it back within
`REAPPLY_S`. Between networks the host adds what Neutron's routers would: no forwarding between
two tenant networks unless a router joins them (floating IPs still work); see net.sync_isolation.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devcloud.machines import net
from devcloud.machines._proc import run
from devcloud.machines.layout import Layout
from devcloud.machines.machine import Machine, MachineError, list_machines

log = logging.getLogger("devcloud.machines.secgroups")

TABLE = "tonle_sg"  # family inet, inside each machine's network namespace
#: Seconds after which an unchanged table is written again, undoing a guest's `nft flush ruleset`.
REAPPLY_S = 60.0
#: At most one poll of Neutron per this many seconds for the whole data dir, whichever
#: nova-compute makes it: neutron-server runs one worker here, and a port list costs it
#: 0.2-0.5 s under load, so two computes polling every 2 s took half of it.
POLL_S = 3.0

#: Neutron's protocol names (and what it accepts besides numbers) as IP protocol numbers.
PROTOCOLS = {
    "icmp": 1, "igmp": 2, "tcp": 6, "egp": 8, "udp": 17, "ipv6-encap": 41, "ipv6-route": 43,
    "ipv6-frag": 44, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "ipv6-icmp": 58,
    "ipv6-nonxt": 59, "ipv6-opts": 60, "ospf": 89, "pgm": 113, "vrrp": 112, "sctp": 132,
    "udplite": 136, "dccp": 33,
}  # fmt: skip
#: Protocols whose port_range_min/max are ports.
PORTED = {6, 17, 33, 132, 136}
ICMP = {1, 58}
#: What Neutron's firewalls always let through, so IPv6 addressing works.
ND_TYPES = (
    "nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert, "
    "mld-listener-query, mld-listener-report, mld2-listener-report"
)
OWNERS_ROUTER_INTERFACE = (
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
)
OWNERS_EXTERNAL = ("network:floatingip", "network:router_gateway")


@dataclass(frozen=True)
class Rule:
    """One Neutron security group rule, as the API returns it."""

    direction: str  # ingress | egress
    ethertype: str  # IPv4 | IPv6
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> Rule:
        return cls(
            direction=str(d["direction"]),
            ethertype=str(d.get("ethertype") or "IPv4"),
            protocol=(str(d["protocol"]) if d.get("protocol") not in (None, "", "any") else None),
            port_range_min=d.get("port_range_min"),
            port_range_max=d.get("port_range_max"),
            remote_ip_prefix=d.get("remote_ip_prefix"),
            remote_group_id=d.get("remote_group_id"),
        )


def _protocol_number(protocol: str | None, version: int) -> int | None:
    if protocol is None:
        return None
    number = int(protocol) if protocol.isdigit() else PROTOCOLS.get(protocol.lower())
    if number is None:
        raise ValueError(f"unknown protocol {protocol!r}")
    # Neutron lets "icmp" stand for ICMPv6 in an IPv6 rule.
    return 58 if version == 6 and number == 1 else number


def rule_line(rule: Rule, members: Mapping[str, Sequence[str]]) -> str | None:
    """The nftables statement allowing what `rule` allows (`return` to the base chain), or None
    when it can match nothing (a remote group with no address of its ethertype)."""
    version = 6 if rule.ethertype.upper() == "IPV6" else 4
    ip = "ip6" if version == 6 else "ip"
    parts = [f"meta nfproto ipv{version}"]
    proto = _protocol_number(rule.protocol, version)
    if proto is not None:
        parts.append(f"meta l4proto {proto}")
    addr = "saddr" if rule.direction == "ingress" else "daddr"
    if rule.remote_ip_prefix:
        prefix = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
        if prefix.version != version:
            return None  # Neutron refuses these; never widen one into "anywhere"
        if prefix.prefixlen:
            parts.append(f"{ip} {addr} {prefix}")
    elif rule.remote_group_id:
        addresses = sorted(
            {a for a in members.get(rule.remote_group_id, ()) if ipaddress.ip_address(a).version == version},
            key=ipaddress.ip_address,
        )
        if not addresses:
            return None
        parts.append(f"{ip} {addr} {{ {', '.join(addresses)} }}")
    lo, hi = rule.port_range_min, rule.port_range_max
    if proto in PORTED and lo is not None:
        hi = lo if hi is None else hi
        parts.append(f"th dport {lo}" if lo == hi else f"th dport {lo}-{hi}")
    elif proto in ICMP and lo is not None:
        icmp = "icmpv6" if proto == 58 else "icmp"
        parts.append(f"{icmp} type {lo}")
        if hi is not None:
            parts.append(f"{icmp} code {hi}")
    return " ".join([*parts, "return"])


@dataclass(frozen=True)
class PortPolicy:
    """What one interface of a machine lets through; `rules` None: port security disabled."""

    interface: str  # eth<n> inside the namespace
    rules: tuple[Rule, ...] | None


def render(ports: Sequence[PortPolicy], members: Mapping[str, Sequence[str]]) -> str:
    """The nft script replacing the machine's `inet tonle_sg` table, in one transaction."""
    filtered = [p for p in ports if p.rules is not None]
    lines = [f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{"]
    chains: list[str] = []
    for port in filtered:
        for direction, suffix in (("ingress", "in"), ("egress", "out")):
            body = [
                "ct state established,related return",
                "ct state invalid drop",
                f"meta l4proto 58 icmpv6 type {{ {ND_TYPES} }} return",
            ]
            for rule in port.rules or ():
                if rule.direction == direction:
                    line = rule_line(rule, members)
                    if line and line not in body:
                        body.append(line)
            body.append("drop")
            chains.append(f"  chain {port.interface}_{suffix} {{\n" + "".join(f"    {b}\n" for b in body) + "  }")
    ins = ", ".join(f'"{p.interface}" : jump {p.interface}_in' for p in filtered)
    outs = ", ".join(f'"{p.interface}" : jump {p.interface}_out' for p in filtered)
    # Allowed traffic returns to the base chain: on `forward` both the leaving and the
    # arriving interface's chains must allow it.
    hooks = {
        "input": [f"iifname vmap {{ {ins} }}"] if ins else [],
        "output": [f"oifname vmap {{ {outs} }}"] if outs else [],
        "forward": [f"iifname vmap {{ {ins} }}", f"oifname vmap {{ {outs} }}"] if ins else [],
    }
    for hook, body in hooks.items():
        lines.append(f"  chain {hook} {{\n    type filter hook {hook} priority filter - 10; policy accept;")
        lines += [f"    {b}" for b in body]
        lines.append("  }")
    lines += chains
    lines.append("}")
    return "\n".join(lines) + "\n"


@dataclass
class _Applied:
    script: str
    at: float
    netns_inode: int  # a namespace made again (teardown, `up`) has lost the table


#: machine name -> the script last applied in its namespace (this process's memory).
_applied: dict[str, _Applied] = {}


def _group_members(ports: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for port in ports:
        addresses = [ip["ip_address"] for ip in port.get("fixed_ips") or []]
        addresses += [
            str(ipaddress.ip_network(pair["ip_address"], strict=False).network_address)
            for pair in port.get("allowed_address_pairs") or []
            if "/" not in pair["ip_address"] or pair["ip_address"].endswith(("/32", "/128"))
        ]
        for group in port.get("security_groups") or []:
            members.setdefault(group, []).extend(addresses)
    return members


def isolation_from_ports(ports: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[tuple[str, str]]]:
    """(bridges of tenant networks with instances, pairs of bridges a Neutron router joins)."""
    ports = list(ports)
    external = {p["network_id"] for p in ports if p.get("device_owner") in OWNERS_EXTERNAL}
    tenant = {
        p["network_id"]
        for p in ports
        if str(p.get("device_owner") or "").startswith("compute:") and p["network_id"] not in external
    }
    routers: dict[str, set[str]] = {}
    for p in ports:
        if p.get("device_owner") in OWNERS_ROUTER_INTERFACE and p["network_id"] in tenant:
            routers.setdefault(str(p["device_id"]), set()).add(p["network_id"])
    routed = {
        (net.bridge_name(a), net.bridge_name(b)) for nets in routers.values() for a in nets for b in nets if a != b
    }
    return {net.bridge_name(n) for n in tenant}, routed


def sync_from_neutron(layout: Layout, client: Any, *, host: str, only: str | None = None) -> int:
    """Make the filters of the data dir's Nova machines match Neutron.

    `client` is a neutronclient v2 Client with admin rights (remote groups span projects).
    `host`: the caller's compute host (for the log). Both nova-computes call this every couple
    of seconds; one poll per `POLL_S` does every machine of the data dir. `only`: just this
    machine, now (a spawn, before the guest starts). Returns how many tables were written.
    """
    if only:
        machines = [m for m in list_machines(layout) if m.name == only]
    else:
        if not _poll_due(layout):
            return 0
        machines = [m for m in list_machines(layout) if _host_of(m)]
    if not machines:
        return 0
    ports = _list_ports(client)
    by_id = {p["id"]: p for p in ports}
    if not only:
        net.sync_isolation(layout, *isolation_from_ports(ports))
    mine = {nic.port_id for m in machines for nic in _nics(m)}
    groups = {g for p in ports if p["id"] in mine for g in p.get("security_groups") or []}
    rules_by_group = _rules(client, groups, evict=not only)
    members = _group_members(ports)
    written = 0
    now = time.monotonic()
    for m in machines:
        nics = _nics(m)
        if not nics:
            continue
        try:
            inode = Path("/run/netns", m.netns).stat().st_ino
        except FileNotFoundError:
            continue
        policies: list[PortPolicy] = []
        for index, nic in enumerate(nics):
            port = by_id.get(nic.port_id)
            if port is None:
                # Deleted in Neutron under a live machine: it no longer has any right to traffic.
                policies.append(PortPolicy(f"eth{index}", ()))
                continue
            if port.get("port_security_enabled") is False:
                policies.append(PortPolicy(f"eth{index}", None))
                continue
            rules = [r for g in port.get("security_groups") or [] for r in rules_by_group.get(g, [])]
            policies.append(PortPolicy(f"eth{index}", tuple(rules)))
        script = render(policies, members)
        last = _applied.get(m.name)
        if last and last.script == script and last.netns_inode == inode and now - last.at < REAPPLY_S:
            continue
        if apply(m.name, m.netns, script, inode):
            if not last or last.script != script:
                log.info("security groups of %s applied by %s (%d ports)", m.name, host, len(policies))
            written += 1
    if not only:
        for gone in set(_applied) - {m.name for m in list_machines(layout)}:
            _applied.pop(gone, None)
    return written


def apply(name: str, netns: str, script: str, inode: int | None = None) -> bool:
    """Replace machine `name`'s table in its namespace with `script`, in one nft transaction."""
    proc = run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input_text=script, check=False)
    if proc.returncode != 0:
        log.error("security groups of %s not applied: %s", name, proc.stderr.strip()[-500:])
        _applied.pop(name, None)
        return False
    if inode is None:
        inode = Path("/run/netns", netns).stat().st_ino
    _applied[name] = _Applied(script, time.monotonic(), inode)
    return True


def deny_all(layout: Layout, name: str) -> bool:
    """Drop everything on every port of machine `name` (Neutron unreachable at its spawn): the
    next sync replaces this with its groups, so the guest is never open before it."""
    m = Machine(layout, name)
    policies = [PortPolicy(f"eth{i}", ()) for i in range(len(m.nics()))]
    return apply(name, m.netns, render(policies, {}))


PORT_FIELDS = [
    "id", "network_id", "fixed_ips", "security_groups", "port_security_enabled", "allowed_address_pairs",
    "device_owner", "device_id",
]  # fmt: skip


def _list_ports(client: Any) -> list[dict[str, Any]]:
    try:
        return list(client.list_ports(fields=PORT_FIELDS)["ports"])
    except Exception:  # noqa: BLE001 - one retry, below
        # A fresh neutron-server worker answers 500 to a port list (`Port` has no attribute
        # `port_forwardings`) until some other query has configured its ORM mappers.
        client.list_networks(limit=1)
        return list(client.list_ports(fields=PORT_FIELDS)["ports"])


RULE_FIELDS = [
    "security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
    "remote_ip_prefix", "remote_group_id",
]  # fmt: skip
#: group id -> (its revision_number, its rules). Listing rules is Neutron's slowest call here
#: (seconds under load, one policy check per rule), listing groups' revisions is cheap, and
#: every rule added or removed bumps its group's revision.
_rules_cache: dict[str, tuple[int, list[Rule]]] = {}


def _rules(client: Any, groups: set[str], *, evict: bool) -> dict[str, list[Rule]]:
    if not groups:
        return {}
    listed = client.list_security_groups(id=sorted(groups), fields=["id", "revision_number"])["security_groups"]
    revisions = {g["id"]: int(g["revision_number"]) for g in listed}
    stale = sorted(g for g, rev in revisions.items() if g not in _rules_cache or _rules_cache[g][0] != rev)
    if stale:
        fresh: dict[str, list[Rule]] = {g: [] for g in stale}
        for r in client.list_security_group_rules(security_group_id=stale, fields=RULE_FIELDS)["security_group_rules"]:
            fresh[r["security_group_id"]].append(Rule.from_api(r))
        # Revisions read before the rules: a rule added in between is fetched again next time.
        _rules_cache.update({g: (revisions[g], rules) for g, rules in fresh.items()})
    if evict:  # `groups` is every group of the data dir's machines
        for gone in set(_rules_cache) - set(revisions):
            _rules_cache.pop(gone, None)
    return {g: _rules_cache[g][1] for g in revisions}


def _poll_due(layout: Layout) -> bool:
    """True for one caller per POLL_S across the processes of this data dir."""
    stamp = layout.root / "secgroups-poll"
    try:
        if time.time() - stamp.stat().st_mtime < POLL_S:
            return False
    except FileNotFoundError:
        layout.root.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    return True


def _nics(m: Any) -> list[net.Nic]:
    try:
        return list(m.nics())
    except (OSError, ValueError, MachineError):  # being destroyed right now
        return []


def _host_of(m: Any) -> str | None:
    try:
        return m.extra().get("host")
    except (OSError, ValueError, MachineError):
        return None
