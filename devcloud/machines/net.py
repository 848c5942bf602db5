"""L2/L3 plumbing on the host: one Linux bridge per Neutron network, one network namespace
per machine with a veth into the bridge, and floating IPs as nftables NAT.

Names (agreed with devcloud/services, whose ML2 driver reports them to Nova):
  bridge of network N   brq + N[:11]      (Linux caps interface names at 15 characters)
  host end of port P    tap + P[:11]      (what Nova puts in the VIF's `devname`)
  namespace of machine  tonle-<machine name>
Bridges we create carry the link alias `tonle-devcloud`, so teardown removes only ours.

The host is every network's gateway: it holds the subnet's gateway address on the bridge and
forwards between bridges. Floating IPs: the host DNATs the floating address to the fixed one
(prerouting for traffic arriving from a bridge, output for the host's own traffic), and
masquerades DNATed traffic leaving through a tenant bridge, so replies always return through
the host (this also makes a floating IP reachable from a neighbour on the same network; the
guest then sees the gateway address as the client). The host's own connections to a floating IP
are not masqueraded: the guest sees the host's address on the external network (the management
network, which security groups let in on SSH).

Security groups are enforced by secgroups.py inside each machine's namespace; here, the host
forwards between two tenant networks only when a Neutron router joins them (`sync_isolation`),
as Neutron's routers would: other networks are reached through floating IPs only.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devcloud.machines._proc import ok, run
from devcloud.machines.host import ACNG_PORT
from devcloud.machines.layout import Layout

log = logging.getLogger("devcloud.machines.net")

BRIDGE_ALIAS = "tonle-devcloud"
NETNS_PREFIX = "tonle-"
NFT_TABLE = "tonle_devcloud"  # family ip; never touch any other table
#: Linux allows 15 characters; Nova (NIC_NAME_LEN) and Neutron's Linux-bridge naming use 14.
NAME_LEN = 14


def bridge_name(network_id: str) -> str:
    """`brq` + the network id's first 11 characters, as devcloud/services/neutron_ml2.py."""
    return ("brq" + network_id)[:NAME_LEN]


def tap_name(port_id: str) -> str:
    """`tap` + the port id's first 11 characters: Nova's VIF `devname`."""
    return ("tap" + port_id)[:NAME_LEN]


def netns_name(machine: str) -> str:
    return NETNS_PREFIX + machine


@dataclass(frozen=True)
class Subnet:
    cidr: str  # 10.0.0.0/24
    gateway: str | None  # 10.0.0.1
    fixed_ips: tuple[str, ...] = ()
    #: Neutron's `dns_nameservers`: what the guest resolves with; nothing to do with plugging.
    dns: tuple[str, ...] = field(default=(), compare=False)

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.cidr, strict=False).prefixlen

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.cidr, strict=False).version


@dataclass(frozen=True)
class Nic:
    """One port of a machine, as Neutron describes it."""

    port_id: str
    mac: str
    network_id: str
    subnets: tuple[Subnet, ...]
    mtu: int = 1500
    bridge: str = ""  # defaults to bridge_name(network_id)
    floating_ips: tuple[str, ...] = field(default=(), compare=False)

    @property
    def bridge_or_default(self) -> str:
        return self.bridge or bridge_name(self.network_id)

    @property
    def tap(self) -> str:
        return tap_name(self.port_id)

    def to_json(self) -> dict[str, object]:
        return {
            "port_id": self.port_id,
            "mac": self.mac,
            "network_id": self.network_id,
            "mtu": self.mtu,
            "bridge": self.bridge,
            "floating_ips": list(self.floating_ips),
            "subnets": [
                {"cidr": s.cidr, "gateway": s.gateway, "fixed_ips": list(s.fixed_ips), "dns": list(s.dns)}
                for s in self.subnets
            ],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, object]) -> Nic:
        subnets = tuple(
            Subnet(
                str(s["cidr"]),
                s.get("gateway") and str(s["gateway"]),
                tuple(s["fixed_ips"]),
                tuple(s.get("dns") or ()),
            )
            for s in d["subnets"]  # type: ignore[attr-defined]
        )
        return cls(
            port_id=str(d["port_id"]),
            mac=str(d["mac"]),
            network_id=str(d["network_id"]),
            subnets=subnets,
            mtu=int(d.get("mtu") or 1500),  # type: ignore[call-overload]
            bridge=str(d.get("bridge") or ""),
            floating_ips=tuple(d.get("floating_ips") or ()),  # type: ignore[arg-type]
        )


def _link_exists(name: str, netns: str | None = None) -> bool:
    pre = ["ip", "-n", netns] if netns else ["ip"]
    return ok([*pre, "link", "show", "dev", name])


def _addresses(dev: str) -> set[str]:
    out = run(["ip", "-j", "addr", "show", "dev", dev]).stdout
    found: set[str] = set()
    for link in json.loads(out or "[]"):
        for a in link.get("addr_info", []):
            found.add(f"{a['local']}/{a['prefixlen']}")
    return found


def ensure_bridge(layout: Layout, name: str, subnets: Iterable[Subnet], mtu: int = 1500) -> None:
    """Create bridge `name` if missing and give the host each subnet's gateway address on it."""
    with layout.host_lock("net"):
        if not _link_exists(name):
            log.info("creating bridge %s", name)
            run(["ip", "link", "add", name, "type", "bridge", "forward_delay", "0", "stp_state", "0"])
            run(["ip", "link", "set", "dev", name, "alias", BRIDGE_ALIAS, "mtu", str(mtu), "up"])
        have = _addresses(name)
        for s in subnets:
            if not s.gateway:
                continue
            want = f"{s.gateway}/{s.prefixlen}"
            if want not in have:
                log.info("host takes gateway %s on %s", want, name)
                run(["ip", "addr", "add", want, "dev", name])
                flush_neighbour(s.gateway)


def remove_bridge_if_unused(layout: Layout, name: str) -> None:
    """Delete one of our bridges once no port is attached to it any more."""
    with layout.host_lock("net"):
        if name not in our_bridges():
            return
        ports = json.loads(run(["ip", "-j", "link", "show", "master", name]).stdout or "[]")
        if not ports:
            log.info("removing bridge %s (no ports left)", name)
            run(["ip", "link", "del", "dev", name], check=False)


def our_bridges() -> list[str]:
    links = json.loads(run(["ip", "-j", "-d", "link", "show", "type", "bridge"]).stdout or "[]")
    return [link["ifname"] for link in links if link.get("ifalias") == BRIDGE_ALIAS]


def ensure_netns(name: str) -> None:
    if not Path("/run/netns", name).exists():
        run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "dev", "lo", "up"])


def delete_netns(name: str) -> None:
    if Path("/run/netns", name).exists():
        run(["ip", "netns", "delete", name], check=False)


def our_netns() -> list[str]:
    d = Path("/run/netns")
    return sorted(p.name for p in d.iterdir() if p.name.startswith(NETNS_PREFIX)) if d.is_dir() else []


def flush_neighbour(address: str) -> None:
    """Forget the host's ARP entry for `address`: a new machine may reuse it with another MAC,
    and a stale entry makes the host's SSH hang for the minutes until it expires."""
    run(["ip", "neigh", "flush", "to", address], check=False)


def plug(layout: Layout, netns: str, index: int, nic: Nic) -> None:
    """Connect machine namespace `netns` to its network: a veth `tap…` on the bridge, the
    other end `eth<index>` inside with the port's MAC, MTU, fixed IPs and (first NIC) the default
    route. Idempotent; addresses live in the namespace, so they survive guest reboots."""
    ensure_bridge(layout, nic.bridge_or_default, nic.subnets, nic.mtu)
    ensure_netns(netns)
    inner = f"eth{index}"
    if not _link_exists(nic.tap):
        if _link_exists(inner, netns):  # a half-made pair from a crash
            run(["ip", "-n", netns, "link", "del", "dev", inner], check=False)
        run(["ip", "link", "add", nic.tap, "mtu", str(nic.mtu), "type", "veth", "peer", "name", inner, "netns", netns])
    run(["ip", "link", "set", "dev", nic.tap, "master", nic.bridge_or_default, "mtu", str(nic.mtu), "up"])
    ns = ["ip", "-n", netns]
    run([*ns, "link", "set", "dev", inner, "address", nic.mac, "mtu", str(nic.mtu), "up"])
    for s in nic.subnets:
        for addr in s.fixed_ips:
            run([*ns, "addr", "replace", f"{addr}/{s.prefixlen}", "dev", inner])
            flush_neighbour(addr)
        if index == 0 and s.gateway and s.version == 4:
            run([*ns, "route", "replace", "default", "via", s.gateway, "dev", inner])


def unplug(layout: Layout, nic: Nic) -> None:
    """Remove the port's veth pair (deleting one end deletes both) and forget its addresses."""
    if _link_exists(nic.tap):
        run(["ip", "link", "del", "dev", nic.tap], check=False)
    for s in nic.subnets:
        for addr in s.fixed_ips:
            flush_neighbour(addr)
    remove_bridge_if_unused(layout, nic.bridge_or_default)


# --- floating IPs ---------------------------------------------------------------------------

# Forwarded floating-IP traffic into a tenant bridge is masqueraded so replies return through the
# host; the host's own is not, so the guest sees the host's external address (management network).
_POSTROUTING_RULES = """        ct status dnat oifname "brq*" fib saddr type != local masquerade
        oifname != "brq*" snat to ip saddr map @fip_snat"""

_NFT_SKELETON = f"""
table ip {NFT_TABLE} {{
    map fip_dnat {{ type ipv4_addr : ipv4_addr; }}
    map fip_snat {{ type ipv4_addr : ipv4_addr; }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        dnat to ip daddr map @fip_dnat
    }}
    chain output {{
        type nat hook output priority -100; policy accept;
        dnat to ip daddr map @fip_dnat
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
{_POSTROUTING_RULES}
    }}
}}
"""

# apt-cacher-ng listens on all addresses (bridges come and go); serve only the host itself
# and the instances, never the host's uplink network.
_NFT_ACNG_GUARD = f"""
table ip {NFT_TABLE} {{
    chain acng_guard {{
        type filter hook input priority filter; policy accept;
        tcp dport {ACNG_PORT} iifname != "lo" iifname != "brq*" drop
    }}
}}
"""


# Neutron routers are database-only here and the host forwards between all its bridges: keep
# tenant networks apart unless a router joins them. DNATed traffic (floating IPs) passes, as it
# would through the external network.
_NFT_ISOLATION = f"""
table ip {NFT_TABLE} {{
    set tenant_bridges {{ type ifname; }}
    set routed_pairs {{ type ifname . ifname; }}
    chain isolation {{
        type filter hook forward priority filter; policy accept;
        iifname @tenant_bridges oifname @tenant_bridges ct status dnat accept
        iifname @tenant_bridges oifname @tenant_bridges iifname . oifname != @routed_pairs drop
    }}
}}
"""


def ensure_nft_table(layout: Layout) -> None:
    """Create our own nftables table (never the host's whole ruleset) if missing, and bring a
    table made by an older version up to date. One `nft list` when nothing is missing: the
    floating-IP sync calls this every couple of seconds."""
    with layout.host_lock("nft"):
        proc = run(["nft", "list", "table", "ip", NFT_TABLE], check=False)
        if proc.returncode != 0:
            run(["nft", "-f", "-"], input_text=_NFT_SKELETON)
            proc = run(["nft", "list", "table", "ip", NFT_TABLE])
        have = proc.stdout
        if "chain acng_guard" not in have:
            run(["nft", "-f", "-"], input_text=_NFT_ACNG_GUARD)
        if "chain isolation" not in have:
            run(["nft", "-f", "-"], input_text=_NFT_ISOLATION)
        if "fib saddr" not in have:  # made before the host's own traffic kept its source address
            rules = [f"add rule ip {NFT_TABLE} postrouting {r.strip()}" for r in _POSTROUTING_RULES.splitlines()]
            run(["nft", "-f", "-"], input_text="\n".join([f"flush chain ip {NFT_TABLE} postrouting", *rules]) + "\n")


def delete_nft_table() -> None:
    if ok(["nft", "list", "table", "ip", NFT_TABLE]):
        run(["nft", "delete", "table", "ip", NFT_TABLE], check=False)


def floating_ips() -> dict[str, str]:
    """Current floating → fixed mapping as programmed in the kernel."""
    proc = run(["nft", "-j", "list", "map", "ip", NFT_TABLE, "fip_dnat"], check=False)
    if proc.returncode != 0:
        return {}
    result: dict[str, str] = {}
    for item in json.loads(proc.stdout).get("nftables", []):
        for elem in (item.get("map") or {}).get("elem", []):
            result[str(elem[0])] = str(elem[1])
    return result


def _owned_file(layout: Layout, owner: str) -> Path:
    return layout.root / f"floating-{owner}.json"


def owned_floating_ips(layout: Layout, owner: str) -> dict[str, str]:
    """The floating → fixed entries `owner` of this data dir programmed last."""
    f = _owned_file(layout, owner)
    return dict(json.loads(f.read_text())) if f.exists() else {}


def sync_floating_ips(layout: Layout, wanted: Mapping[str, str], owner: str = "nova") -> bool:
    """Make `owner`'s floating → fixed entries exactly `wanted`, in one nft transaction.

    The NAT table is the host's, shared by every devcloud data dir on it (a test run beside
    the cloud) and every owner in one (the Nova driver, a test): each replaces only the
    entries it programmed itself, recorded in `floating-<owner>.json`.
    Returns True if the kernel's table changed. Changed addresses get their neighbour
    entries flushed.
    """
    ensure_nft_table(layout)
    with layout.host_lock("nft"):
        current = floating_ips()
        mine = owned_floating_ips(layout, owner)
        others = {f: x for f, x in current.items() if f not in mine and f not in wanted}
        table = {**others, **wanted}
        changed = table != current
        if changed:
            lines = [f"flush map ip {NFT_TABLE} fip_dnat", f"flush map ip {NFT_TABLE} fip_snat"]
            if table:
                dnat = ", ".join(f"{f} : {x}" for f, x in table.items())
                snat = ", ".join(f"{x} : {f}" for f, x in table.items())
                lines.append(f"add element ip {NFT_TABLE} fip_dnat {{ {dnat} }}")
                lines.append(f"add element ip {NFT_TABLE} fip_snat {{ {snat} }}")
            run(["nft", "-f", "-"], input_text="\n".join(lines) + "\n")
            for _floating, fixed in set(current.items()) ^ set(table.items()):
                flush_neighbour(fixed)
            log.info("floating IPs of %s now %s", owner, dict(wanted))
        if dict(wanted) != mine:
            layout.root.mkdir(parents=True, exist_ok=True)
            _owned_file(layout, owner).write_text(json.dumps(dict(wanted)))
        return changed


# --- isolation between tenant networks ----------------------------------------------------------

_isolation_applied: tuple[frozenset[str], frozenset[tuple[str, str]], float] | None = None
#: Seconds after which unchanged sets are written again (another process may have rewritten them).
ISOLATION_REAPPLY_S = 60.0


def sync_isolation(layout: Layout, bridges: Iterable[str], routed: Iterable[tuple[str, str]]) -> bool:
    """Make the host forward between tenant `bridges` only for the `routed` (in, out) pairs.

    Computed from all of Neutron's ports, so every nova-compute of the cloud writes the same
    sets. Returns True if the sets were written.
    """
    global _isolation_applied
    want_b, want_r = frozenset(bridges), frozenset(routed)
    now = time.monotonic()
    last = _isolation_applied
    if last and last[0] == want_b and last[1] == want_r and now - last[2] < ISOLATION_REAPPLY_S:
        return False
    ensure_nft_table(layout)
    lines = [f"flush set ip {NFT_TABLE} tenant_bridges", f"flush set ip {NFT_TABLE} routed_pairs"]
    if want_b:
        lines.append(f"add element ip {NFT_TABLE} tenant_bridges {{ {', '.join(sorted(want_b))} }}")
    if want_r:
        pairs = ", ".join(f"{a} . {b}" for a, b in sorted(want_r))
        lines.append(f"add element ip {NFT_TABLE} routed_pairs {{ {pairs} }}")
    with layout.host_lock("nft"):
        run(["nft", "-f", "-"], input_text="\n".join(lines) + "\n")
    if not last or last[0] != want_b or last[1] != want_r:
        log.info("tenant bridges %s, routed pairs %s", sorted(want_b), sorted(want_r))
    _isolation_applied = (want_b, want_r, now)
    return True
