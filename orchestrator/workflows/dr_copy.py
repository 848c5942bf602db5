"""A copy of a service at the DR site, built from a restore point: the steps a drill runs and a
failover reuses.

`begin` chooses the restore point and writes down, on the operation, every fact a later step or a
resumed run needs (`operation.parameters["dr"]`: mode, start time, restore point, the time the
copy first passed its health check, the copy's host keys, what cleanup left). The other steps read
those facts back, so each may run again after a crash or a retry and do the same thing:

  build      the copy's own stack (`tonle:copy`, `stacks/__init__.py`) in the ministry's project
             at the DR site; a drill's is isolated, neither makes DNS records
  configure  the offering's playbooks except the backup agent (a copy must never write to the
             production repository)
  restore    the restore point's content paths and database dump into the copy (`restore.yml`)
  check_health / check_data   the offering's health check against the copy, by address with the
             service's name as SNI; the copy's content checksum against the restore point's
  destroy    the copy's stack
  verify_cleanup   the cloud's own APIs list nothing of the copy in the DR project

The production stack is never touched: every step builds its context with `copy_context`, whose
stack name, site and names are the copy's.
"""

import ipaddress
import socket
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session

from orchestrator.backup import restore_points
from orchestrator.backup.models import RestorePoint
from orchestrator.cloud import hostkeys
from orchestrator.config import get_settings
from orchestrator.errors import NotFound
from orchestrator.noop import NoopEngine
from orchestrator.operations import service as operations
from orchestrator.operations.models import Operation
from orchestrator.ports import ProgressEvent, StepFailed
from orchestrator.workflows import steps
from orchestrator.workflows.context import KnownHosts, StepContext, platform_at
from orchestrator.workflows.inputs import StackCopy

STATE = "dr"  # the key of `operation.parameters` holding the facts below
BACKUP_AGENT_PLAYBOOK = "backup_agent"
RESTORE_PLAYBOOK = "restore"
DATA_CHECK_PLAYBOOK = "data_check"
MODES = ("drill", "failover")


def now() -> datetime:
    return datetime.now(UTC)


def copy_id(operation_id: uuid.UUID) -> str:
    """In every name of the copy; from the operation, so a resumed run finds the same copy."""
    return operation_id.hex[:8]


def copy_stack_name(*, service_stack: str, mode: str, operation_id: uuid.UUID) -> str:
    return f"{service_stack}-{mode}-{copy_id(operation_id)}"


def state(ctx: StepContext) -> dict[str, Any]:
    """What earlier steps (of this run or an interrupted one) wrote down."""
    with ctx.transaction() as session:
        operation = session.get(Operation, ctx.operation_id)
        assert operation is not None
        return dict(operation.parameters.get(STATE) or {})


def remember(ctx: StepContext, **facts: Any) -> dict[str, Any]:
    """Add facts to the operation's record, committed at once (they must survive a crash)."""
    with ctx.transaction() as session:
        operation = operations.lock(session=session, operation_id=ctx.operation_id)
        known = {**dict(operation.parameters.get(STATE) or {}), **facts}
        # A new dict, so the JSON column sees the change.
        operation.parameters = {**operation.parameters, STATE: known}
        session.add(operation)
    return known


def timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- begin -------------------------------------------------------------------------------------


def begin(ctx: StepContext, *, mode: str, restore_point: dict[str, Any]) -> dict[str, Any]:
    """Write down the copy's facts once; a second call (a resumed run) keeps the first ones,
    so the start time and the restore point never move."""
    if mode not in MODES:
        raise ValueError(f"a copy is one of {MODES}, not {mode!r}")
    known = state(ctx)
    if known.get("mode"):
        return known
    return remember(
        ctx,
        mode=mode,
        started_at=now().isoformat(),
        copy_stack=copy_stack_name(service_stack=ctx.inputs.stack_name, mode=mode, operation_id=ctx.operation_id),
        copy_id=copy_id(ctx.operation_id),
        site=get_settings().dr_site,
        restore_point=restore_point,
        egress_allowed=_s3_cidrs(ctx) if mode == "drill" else [],
    )


def _s3_cidrs(ctx: StepContext) -> list[str]:
    """Where the copy's restore reads the backups from: the S3 endpoint for instances."""
    if ctx.inputs.offering.backup_tier == "none":
        return []
    endpoint = str(production_backup(ctx).get("s3_endpoint") or "")
    host = urlsplit(endpoint).hostname
    if not host:
        return []
    try:
        return [str(ipaddress.ip_network(host))]
    except ValueError:
        # A name: the addresses it has now (the copy lives minutes).
        found = {info[4][0] for info in socket.getaddrinfo(host, None, family=socket.AF_INET)}
        return sorted(f"{address}/32" for address in found)


def production_backup(ctx: StepContext) -> dict[str, Any]:
    """The service's own backup target (its bucket, its agent's keys): where the copy restores
    from. Never one for the copy's stack, which would be a bucket and a user of its own."""
    if "backup" not in ctx.secret_vars:
        ctx.secret_vars["backup"] = steps.backup_vars(ctx)
    return dict(ctx.secret_vars["backup"])


# --- the copy's context --------------------------------------------------------------------------


def copy_context(ctx: StepContext) -> StepContext:
    """The step context of the copy: its stack, at the DR site, with the service's secrets, the
    production backup target and host keys pinned on the operation (never on the service)."""
    known = state(ctx)
    if not known.get("mode"):
        raise StepFailed("the copy was never begun: no mode, start time or restore point on the operation")
    with ctx.transaction() as session:
        # The copy's servers boot from the offering's current baked image at the DR site, if it has one.
        platform = platform_at(
            session=session,
            settings=get_settings(),
            platform=ctx.inputs.platform,
            offering=ctx.inputs.offering,
            site=known["site"],
        )
    inputs = replace(
        ctx.inputs,
        stack_name=known["copy_stack"],
        platform=platform,
        copy=StackCopy(
            mode=known["mode"], copy_id=known["copy_id"], egress_allowed=tuple(known.get("egress_allowed") or ())
        ),
    )
    secret_vars = dict(ctx.secret_vars)
    if ctx.inputs.offering.backup_tier != "none":
        secret_vars["backup"] = production_backup(ctx)
    return replace(
        ctx,
        inputs=inputs,
        outputs=dict(ctx.adapters.engine.outputs(known["copy_stack"])),
        secret_vars=secret_vars,
        known_hosts=_copy_host_keys(ctx, site_name=known["site"]),
        _stack=None,
    )


def _copy_host_keys(ctx: StepContext, *, site_name: str) -> KnownHosts | None:
    """Host keys of the copy's servers, learned from their consoles and pinned on the operation:
    pinning them on the service would replace the production servers' pins."""
    source = ctx.adapters.host_keys
    if source is None:
        return None

    def known_hosts(hosts: dict[str, dict[str, Any]]) -> str | None:
        pinning = hostkeys.pin(
            pins=state(ctx).get("host_keys") or {},
            hosts=hosts,
            learn=lambda host, spec: source.learn(
                host=host, spec=spec, ministry_code=ctx.inputs.ministry_code, site_name=site_name, on_event=ctx.emit
            ),
        )
        if pinning.learned:
            remember(ctx, host_keys=pinning.pins)
        text = hostkeys.known_hosts(pinning.pins, hosts)
        source.verify(hosts=hosts, known_hosts=text)
        return text

    return known_hosts


# --- the steps ---------------------------------------------------------------------------------


def build(ctx: StepContext) -> None:
    if state(ctx).get("destroyed_at"):
        # A retry of an operation whose cleanup already ran: its destroy step has succeeded and
        # will not run again, so a copy built now would be left behind.
        raise StepFailed("this operation's copy was destroyed already; start a new one")
    copy = copy_context(ctx)
    remember(ctx, build_started_at=state(ctx).get("build_started_at") or now().isoformat())
    copy.outputs.update(copy.adapters.engine.up(copy.stack, copy.emit))
    endpoints = copy.outputs.get("endpoints") or {}
    copy.emit(
        ProgressEvent(
            type="dr.copy",
            message=f"copy {copy.inputs.stack_name} built at {copy.inputs.platform.site_name}"
            + (f", address {endpoints['public_address']}" if endpoints.get("public_address") else ""),
            data={"stack": copy.inputs.stack_name, "site": copy.inputs.platform.site_name},
        )
    )


def configure(ctx: StepContext) -> None:
    copy = copy_context(ctx)
    playbooks = [name for name in copy.inputs.offering.playbooks if name != BACKUP_AGENT_PLAYBOOK]
    if playbooks and not copy.outputs.get("hosts") and not isinstance(copy.adapters.engine, NoopEngine):
        raise StepFailed(f"the copy's stack {copy.inputs.stack_name} outputs no hosts to configure")
    for playbook in playbooks:
        steps.run_playbook(copy, playbook)


def restore(ctx: StepContext) -> None:
    point = state(ctx).get("restore_point")
    if not point:
        raise StepFailed("no restore point to restore from")
    copy = copy_context(ctx)
    steps.run_playbook(copy, RESTORE_PLAYBOOK, extra_vars={"restore": restore_vars(point)})


def choose_restore_point(session: Session, service_id: uuid.UUID, named: uuid.UUID | None) -> dict[str, Any]:
    """The restore point named (not pruned), or else the latest, as `restore_point_facts`."""
    if named is not None:
        try:
            found: RestorePoint | None = restore_points.get(
                session=session, service_id=service_id, restore_point_id=named
            )
        except NotFound as exc:
            raise StepFailed(str(exc)) from exc
        assert found is not None
        if found.pruned_at is not None:
            raise StepFailed(f"restore point {named} was pruned at {found.pruned_at.isoformat()}; choose another")
    else:
        found = restore_points.latest(session=session, service_id=service_id)
        if found is None:
            raise StepFailed("the service has no restore point yet: back it up first")
    return restore_point_facts(found)


def restore_point_facts(point: RestorePoint) -> dict[str, Any]:
    """A restore point as the operation writes it down (and the report shows it)."""
    return {
        "id": str(point.id),
        "host": point.host,
        "snapshot_id": point.snapshot_id,
        "taken_at": point.taken_at.isoformat(),
        "checksum": point.checksum or None,
        "size_bytes": point.size_bytes,
    }


def restore_vars(point: dict[str, Any]) -> dict[str, Any]:
    return {"host": point["host"], "snapshot_id": point["snapshot_id"], "checksum": point.get("checksum") or ""}


def check_health(ctx: StepContext) -> None:
    """The offering's health check against the copy; the first pass is written down (RTO)."""
    copy = copy_context(ctx)
    known = state(ctx)
    spec = dict(copy.inputs.offering.health_check)
    spec.update(known.get("health_overrides") or {})
    seen: list[str] = []

    def watch(event: ProgressEvent) -> None:
        if event.type == "health.probe":
            seen.append(event.message)
        copy.emit(event)

    passed = copy.adapters.health.check(spec, copy.outputs, dict(copy.inputs.parameters), dict(copy.secret_vars), watch)
    if not passed:
        what = seen[-1] if seen else f"{spec.get('kind', 'health')} probe of the copy"
        raise StepFailed(f"health check {what}")
    if not known.get("healthy_at"):
        remember(ctx, healthy_at=now().isoformat())


def check_data(ctx: StepContext) -> None:
    """The copy's content checksum (`tonle-checksum`) equals the restore point's."""
    point = state(ctx).get("restore_point")
    if not point:
        raise StepFailed("data check: no restore point to compare with")
    if not point.get("checksum"):
        raise StepFailed(f"data check: restore point {point.get('id')} has no checksum to compare with")
    copy = copy_context(ctx)
    try:
        steps.run_playbook(copy, DATA_CHECK_PLAYBOOK, extra_vars={"restore": restore_vars(point)})
    except StepFailed as exc:
        raise StepFailed(f"data check: {exc}") from exc
    remember(ctx, data_checked_at=now().isoformat())


def destroy(ctx: StepContext) -> None:
    """Destroy the copy's stack, if a build ever started (a destroy of no stack is a no-op)."""
    known = state(ctx)
    if not known.get("build_started_at"):
        return
    ctx.adapters.engine.destroy(known["copy_stack"], ctx.emit)
    if not known.get("destroyed_at"):
        remember(ctx, destroyed_at=now().isoformat())


def verify_cleanup(ctx: StepContext) -> None:
    """Ask the cloud, not the engine, whether anything of the copy is left at the DR site."""
    known = state(ctx)
    finder = ctx.adapters.leftovers
    if finder is None:
        ctx.emit(
            ProgressEvent(
                type="dr.cleanup",
                message="no cloud to look in (no-op adapters): cleanup not verified",
                level="warning",
            )
        )
        remember(ctx, cleanup_verified=None, leftovers=[])
        return
    site = known.get("site") or get_settings().dr_site
    mode = known.get("mode") or "drill"
    left = finder.find(
        ministry_code=ctx.inputs.ministry_code,
        site_name=site,
        service_id=str(ctx.inputs.service_id),
        # A failback destroys the copy its failover made: that operation's id names it.
        copy=f"{mode}-{known.get('copy_id') or copy_id(ctx.operation_id)}",
    )
    remember(ctx, cleanup_verified=not left, leftovers=left)
    if left:
        raise StepFailed(f"cleanup: {len(left)} resource(s) of the copy left at {site}: {'; '.join(left)}")
    ctx.emit(
        ProgressEvent(
            type="dr.cleanup",
            message=f"nothing of the copy is left in the ministry's project at {site}",
            data={"site": site},
        )
    )
