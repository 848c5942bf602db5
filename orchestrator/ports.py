"""The ports: what workflows need from the outside world, and nothing else.

A leaf module: it imports nothing from `orchestrator`. Adapters (the embedded engine's bridge,
Ansible, the OpenStack tenancy, backup targets, host keys, health checks) implement these
protocols and import only this module and their own helpers, never the workflows. Workflows
and the runner see adapters only through the `Adapters` bundle below, built once by
`orchestrator.bootstrap`.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

# --- progress and failure ------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressEvent:
    """What an adapter reports while it works. The runner turns each into an operation Event."""

    type: str  # e.g. "resource.pre", "resource.outcome", "ansible.task", "diagnostic", "summary"
    message: str
    level: str = "info"
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[ProgressEvent], None]


class StepFailed(Exception):
    """A step failed for a reason a retry will not fix by itself (bad playbook, quota, ...)."""


class TransientError(Exception):
    """A step failed for a reason that may pass (cloud API hiccup); the job is retried."""


# --- stacks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackSpec:
    """One service's stack: which program to run, and the config it reads.

    `program` names a module under `stacks/` whose `program()` is the Pulumi program.
    `config` is the stack's Pulumi configuration with fully qualified keys (`tonle:sizes`,
    `openstack:cloud`, ...; see `stacks/__init__.py` for the contract); values are JSON values.
    Keys in `secret_keys` hold secrets: engines keep them encrypted and out of events.
    """

    name: str
    program: str
    config: dict[str, Any]
    secret_keys: frozenset[str] = frozenset()
    tags: dict[str, str] = field(default_factory=dict)  # ministry, service, request


@dataclass(frozen=True)
class ChangeSummary:
    """Counts per change kind, e.g. {"create": 5, "update": 1, "same": 3}."""

    changes: dict[str, int]


class Engine(Protocol):
    name: str

    def preview(self, stack: StackSpec, on_event: EventSink) -> ChangeSummary: ...

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        """Make the cloud match the program; return the stack outputs."""
        ...

    def destroy(self, stack_name: str, on_event: EventSink) -> None: ...

    def refresh(self, stack_name: str, on_event: EventSink) -> ChangeSummary: ...

    def outputs(self, stack_name: str) -> dict[str, Any]: ...

    def export_state(self, stack_name: str) -> dict[str, Any]: ...

    def cancel(self, stack_name: str) -> None: ...


# --- configuring hosts and checking them -------------------------------------------------------


@dataclass(frozen=True)
class PlaybookRun:
    playbook: str
    hosts: dict[str, dict[str, Any]]  # inventory: host name -> variables (address, groups, ...)
    extra_vars: dict[str, Any] = field(default_factory=dict)
    # Never logged, never left on disk after the run: passwords, the service's SSH key.
    secret_vars: dict[str, Any] = field(default_factory=dict, repr=False)
    ssh_private_key: str | None = field(default=None, repr=False)
    label: str = ""  # names the run's artifacts, e.g. the operation id
    # Local files the run needs (uploads), by a name the orchestrator chose; playbooks find
    # their paths in `action.files.<name>`.
    files: dict[str, Path] = field(default_factory=dict)
    # The hosts' SSH keys (known_hosts lines): when given, ssh accepts no other key.
    # None: host keys are not checked.
    known_hosts: str | None = None
    # Further playbooks run after `playbook` in the same ansible-playbook run (one start-up, one
    # SSH connection per host): the configure step's, which share the hosts and the vars.
    then: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlaybookResult:
    ok: bool
    changed: int = 0
    failures: list[str] = field(default_factory=list)


class ConfigRunner(Protocol):
    name: str

    def run(self, run: PlaybookRun, on_event: EventSink) -> PlaybookResult: ...


class HealthChecker(Protocol):
    def check(
        self,
        spec: dict[str, Any],
        outputs: dict[str, Any],
        parameters: dict[str, Any],
        secret_vars: dict[str, Any],
        on_event: EventSink,
    ) -> bool:
        """`secret_vars`: the operation's (as its playbooks get them), e.g. the mail probe's passwords."""
        ...


# --- the cloud around a stack ------------------------------------------------------------------


class Tenancy(Protocol):
    def ensure(self, *, ministry_code: str, ministry_name: str, site_name: str, on_event: EventSink) -> dict[str, str]:
        """Make sure the ministry's project exists at the site; return the provider config."""
        ...


class BackupTargets(Protocol):
    def ensure(
        self,
        *,
        ministry_code: str,
        ministry_name: str,
        stack_name: str,
        on_event: EventSink,
        for_instances: bool = True,
        quota_bytes: int | None = None,
    ) -> dict[str, Any]:
        """The bucket and S3 credentials (s3_endpoint, region, bucket, access_key, secret_key);
        the endpoint is the one the site publishes for its instances, or (`for_instances=False`)
        the one it publishes for the ministries' own machines. `quota_bytes` caps the bucket where
        the site's proxy runs Swift's container_quotas middleware."""
        ...

    def retire(self, *, ministry_code: str, stack_name: str, on_event: EventSink) -> None:
        """The service is gone: its agent's credential stops working; the bucket stays."""
        ...


@dataclass(frozen=True)
class Learned:
    server_id: str
    keys: list[str]


class HostKeySource(Protocol):
    def learn(
        self, *, host: str, spec: Mapping[str, Any], ministry_code: str, site_name: str, on_event: EventSink
    ) -> Learned:
        """The server's host keys from its console, waiting a bounded time for its first boot."""
        ...

    def verify(self, *, hosts: Mapping[str, Mapping[str, Any]], known_hosts: str) -> None:
        """Raise HostKeyChanged if a host presents a key other than the pinned ones."""
        ...


class DnsRecords(Protocol):
    """The data centre's DNS as a failover sees it: the A records a service's stack made."""

    def point(
        self, *, ministry_code: str, names: Sequence[str], address: str, on_event: EventSink
    ) -> dict[str, list[str]]:
        """Make every name's A record hold `address` alone; returns what each held before."""
        ...

    def addresses(self, *, ministry_code: str, names: Sequence[str]) -> dict[str, list[str]]:
        """What each name's A record holds now (a name without one: an empty list)."""
        ...


class LeftoverFinder(Protocol):
    def find(self, *, ministry_code: str, site_name: str, service_id: str, copy: str) -> list[str]:
        """Each resource of a copy of a service (a drill's, a failover's) still in the ministry's
        project at the site, as `<kind> <name> (<id>)`, asked of the cloud's own APIs; [] when
        nothing is left."""
        ...


# --- the data centre's DCIM (co-location) -------------------------------------------------------


class Depth(StrEnum):
    """Which faces of its units a device or reservation takes: a full-depth device both, a
    half-depth one only the face it is mounted on (another half-depth device may use the other)."""

    FULL = "full"
    FRONT = "front"
    REAR = "rear"


@dataclass(frozen=True)
class UnitSpan:
    """Units `position` .. `position + height - 1` of a rack (1 = the bottom unit), taken on `depth`."""

    position: int
    height: int
    depth: Depth = Depth.FULL

    @property
    def top(self) -> int:
        return self.position + self.height - 1


@dataclass(frozen=True)
class PowerFeed:
    """One power feed into a rack, as NetBox and Nautobot model it. `allocated_w` is the draw
    already promised to devices on it (installed or reserved)."""

    id: str
    name: str
    voltage: int
    amperage: int
    phase: str  # "single-phase" | "three-phase"
    max_utilization: int  # percent
    allocated_w: float = 0.0


@dataclass(frozen=True)
class RackInfo:
    """A rack as placement sees it: where it is, what is taken and what it can still carry.
    `occupied` holds installed devices and reservations alike (the DCIM does not enforce its own
    reservations; placement does)."""

    id: str
    name: str
    site: str
    room: str
    u_height: int
    max_weight_kg: float
    weight_kg: float
    feeds: tuple[PowerFeed, ...]
    occupied: tuple[UnitSpan, ...] = ()
    # Ministries (codes) with Tonle devices installed in the rack: placement keeps a ministry's
    # devices together (its reservations are known from `Dcim.reservations`).
    ministries: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Reservation:
    """Units held in a rack for one device of an order, made at approval time."""

    id: str
    rack_id: str
    span: UnitSpan
    ministry_code: str
    order_ref: str  # the service (or request) the reservation belongs to
    device_name: str
    feed_id: str
    draw_w: float
    weight_kg: float


@dataclass(frozen=True)
class InstalledDevice:
    """What a technician reports at mark-installed, turned into a DCIM device and its cables.
    `ip_addresses` (one per NIC, in order, as `address/prefixlen`) are the stack's fixed IPs;
    they are recorded in the DCIM's IPAM on the NICs, under `prefix` (made when missing)."""

    reservation: Reservation
    serial: str
    model: str
    nic_count: int
    ip_addresses: tuple[str, ...] = ()
    prefix: str | None = None


@dataclass(frozen=True)
class RackedDevice:
    """One of Tonle's devices as the DCIM holds it after installation: where it is, its serial,
    and what it is cabled to (the feeds of its PSUs, the patch-panel ports of its NICs)."""

    id: str
    name: str
    rack_id: str
    span: UnitSpan
    serial: str
    status: str
    ministry_code: str
    order_ref: str
    power_feeds: tuple[str, ...] = ()  # per cabled PSU, in PSU order
    power_sockets: tuple[str, ...] = ()  # the PDU outlet each of those PSUs is plugged into
    patch_ports: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()


class Dcim(Protocol):
    """The data centre's DCIM (Nautobot through pynautobot): the source of truth for racks,
    units, power and cabling. Tonle keeps nothing about racks only in its own tables."""

    def racks(self, *, site: str | None = None) -> list[RackInfo]:
        """Every rack (of one site, or all), with its occupied units (devices and reservations),
        its weight and its feeds' allocated draw as of now."""
        ...

    def reservations(self, *, ministry_code: str | None = None, order_ref: str | None = None) -> list[Reservation]:
        """Tonle's reservations, optionally only one ministry's or one order's."""
        ...

    def reserve(
        self,
        *,
        rack_id: str,
        span: UnitSpan,
        ministry_code: str,
        order_ref: str,
        device_name: str,
        feed_id: str,
        draw_w: float,
        weight_kg: float,
    ) -> Reservation:
        """Hold units in a rack and draw on a feed for one device."""
        ...

    def release(self, *, reservation_id: str) -> None:
        """Drop a reservation (nothing when it is already gone)."""
        ...

    def install(self, *, device: InstalledDevice) -> str:
        """Turn a reservation into a device (with its serial): PSU1 plugged into the reserved
        feed (through that feed's PDU in the rack), PSU2 into the rack's other feed, each NIC
        cabled to a free front port of the rack's patch panel with its IP address; returns the
        DCIM's device id. The reservation is gone afterwards. Safe to repeat: a retry finishes
        what an interrupted call began."""
        ...

    def installed(self, *, order_ref: str) -> list[RackedDevice]:
        """The devices installed for one order (service), as the DCIM holds them now."""
        ...

    def remove(self, *, device_id: str) -> None:
        """Take a device out of the DCIM: its cables, its IP addresses, the device (nothing
        when it is already gone). Its units, weight and draw are free again."""
        ...

    def free_patch_ports(self, *, rack_id: str) -> list[str]:
        """The names of the rack's patch-panel front ports with no cable, lowest first (what a
        work order proposes before installation)."""
        ...

    def move(self, *, device_id: str, reservation: Reservation) -> None:
        """An installed device moved to the units a reservation holds (in another rack, or
        other units of its own): its cables unplugged, the device at its new place, then cabled
        there as at installation (PSU1 on the reserved feed, PSU2 on the rack's other, each NIC
        to a free patch-panel front port); its serial and addresses stay. The reservation is
        gone afterwards. Safe to repeat: a retry finishes what an interrupted call began."""
        ...


@dataclass
class Adapters:
    """Everything a workflow step may call outside the database, chosen once at bootstrap."""

    engine: Engine
    config: ConfigRunner
    health: HealthChecker
    tenancy: Tenancy
    backup_targets: BackupTargets
    # Where SSH host keys are learned (servers' consoles); None: no servers, nothing to pin.
    host_keys: HostKeySource | None = None
    # Where failovers repoint names; None: no DNS service (the no-op adapters), nothing repointed.
    dns: DnsRecords | None = None
    # What a destroyed copy left in the cloud; None: no cloud to ask (the no-op adapters).
    leftovers: LeftoverFinder | None = None
    # The data centre's DCIM; None: no DCIM configured, co-location orders are refused.
    dcim: Dcim | None = None
