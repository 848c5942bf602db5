"""Steps several workflows share: run the stack, configure its hosts, check it, tear it down.

A step takes the `StepContext`, calls adapters through it and raises `StepFailed` for a failure a
retry will not fix. A workflow module picks the steps it needs and adds its own.
"""

from pathlib import Path
from typing import Any

from orchestrator.backup import policies
from orchestrator.dcim import work_orders
from orchestrator.noop import NoopEngine
from orchestrator.ports import Dcim, PlaybookRun, ProgressEvent, StepFailed
from orchestrator.services import service as services
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step, WaitingFor

FINAL_BACKUP_PLAYBOOK = "backup_now"


def plan(ctx: StepContext) -> None:
    summary = ctx.adapters.engine.preview(ctx.stack, ctx.emit)
    counts = ", ".join(f"{n} to {kind}" for kind, n in sorted(summary.changes.items())) or "no changes"
    ctx.emit(ProgressEvent(type="plan.summary", message=f"plan: {counts}", data={"changes": summary.changes}))


def apply(ctx: StepContext) -> None:
    ctx.outputs.update(ctx.adapters.engine.up(ctx.stack, ctx.emit))
    if ctx.inputs.offering.s3_bucket:
        _add_bucket(ctx)


def _add_bucket(ctx: StepContext) -> None:
    """An `s3_bucket` offering's bucket at the DR site, with a credential worth that bucket only.

    The orchestrator makes it, not the stack program: a user of its own and its EC2 credential
    need the admin entry of clouds.yaml, which a stack's provider never holds, and the bucket
    lives at the DR site while stacks are built at the primary one. The same code gives each
    service's backup agent its bucket (`orchestrator/backup/targets.py`); repeating it reuses the
    user, its ACLs and its one credential, so a retry hands out the same keys. The bucket is
    capped at what the plan reserves of the ministry's `object_gb` quota."""
    object_gb = ctx.inputs.plan.quota_cost.get("object_gb")
    target = ctx.adapters.backup_targets.ensure(
        ministry_code=ctx.inputs.ministry_code,
        ministry_name=ctx.inputs.ministry_name,
        stack_name=ctx.inputs.stack_name,
        on_event=ctx.emit,
        for_instances=False,
        quota_bytes=None if object_gb is None else object_gb * 1024**3,
    )
    if not target:  # the no-op adapters build nothing, and say so in their own events
        return
    ctx.outputs["endpoints"] = {
        **dict(ctx.outputs.get("endpoints") or {}),
        "bucket": target["bucket"],
        "s3_endpoint": target["s3_endpoint"],
        "s3_region": target["region"],
    }
    ctx.outputs["credentials"] = {
        **dict(ctx.outputs.get("credentials") or {}),
        "s3_access_key_id": target["access_key"],
        "s3_secret_access_key": target["secret_key"],
    }


def configure(ctx: StepContext) -> None:
    """The offering's playbooks, in order, on the hosts the stack made: in one ansible-playbook
    run, as they share the hosts and the vars (one start-up, one SSH connection per host)."""
    offering = ctx.inputs.offering
    if offering.playbooks and not ctx.outputs.get("hosts") and not isinstance(ctx.adapters.engine, NoopEngine):
        raise StepFailed(
            f"the stack outputs no hosts, but offering {offering.id} has playbooks to run: "
            "check the stack program's `hosts` output"
        )
    if offering.playbooks:
        run_playbook(ctx, offering.playbooks[0], then=tuple(offering.playbooks[1:]))


def verify(ctx: StepContext) -> None:
    offering = ctx.inputs.offering
    if offering.s3_bucket and "s3_access_key_id" not in (ctx.outputs.get("credentials") or {}):
        # A retry resuming here starts from the stack's own outputs, which hold no bucket keys.
        _add_bucket(ctx)
    if not ctx.adapters.health.check(
        offering.health_check, ctx.outputs, dict(ctx.inputs.parameters), dict(ctx.secret_vars), ctx.emit
    ):
        raise StepFailed("health check did not pass")


def final_backup(ctx: StepContext) -> None:
    """A last backup into the DR bucket, which outlives the stack for the retention period."""
    if ctx.inputs.offering.backup_tier == "none" or not ctx.outputs.get("hosts"):
        return
    run_playbook(ctx, FINAL_BACKUP_PLAYBOOK)


def destroy(ctx: StepContext) -> None:
    ctx.adapters.engine.destroy(ctx.inputs.stack_name, ctx.emit)


def run_playbook(
    ctx: StepContext,
    playbook: str,
    *,
    files: dict[str, Path] | None = None,
    extra_vars: dict[str, Any] | None = None,
    then: tuple[str, ...] = (),
) -> None:
    """`extra_vars` add to the inputs' vars what one run needs (a restore's snapshot); `then`
    names further playbooks for the same run (their failures name the playbook)."""
    secret_vars = dict(ctx.secret_vars)
    if ctx.inputs.offering.backup_tier != "none" and "backup" not in secret_vars:
        secret_vars["backup"] = ctx.secret_vars["backup"] = backup_vars(ctx)
    hosts = ctx.outputs.get("hosts") or {}
    run = PlaybookRun(
        playbook=playbook,
        hosts=hosts,
        extra_vars={**ctx.inputs.ansible_vars(endpoints=ctx.outputs.get("endpoints") or {}), **(extra_vars or {})},
        secret_vars=secret_vars,
        ssh_private_key=ctx.ssh_private_key,
        label=ctx.label,
        files=dict(files or {}),
        known_hosts=ctx.known_hosts(hosts) if ctx.known_hosts and hosts else None,
        then=then,
    )
    result = ctx.adapters.config.run(run, ctx.emit)
    if not result.ok:
        names = " + ".join((playbook, *then))
        raise StepFailed(f"playbook {names} failed: {'; '.join(result.failures) or 'see events'}")


def backup_vars(ctx: StepContext) -> dict[str, Any]:
    """Where and how the service's backup agent writes: its bucket at the DR site."""
    target = ctx.adapters.backup_targets.ensure(
        ministry_code=ctx.inputs.ministry_code,
        ministry_name=ctx.inputs.ministry_name,
        stack_name=ctx.inputs.stack_name,
        on_event=ctx.emit,
    )
    return {
        **target,
        "restic_password": ctx.restic_password,
        # The service's backup policy's (made from its tier on first use): what forget/prune keeps.
        "retention": _policy_retention(ctx),
    }


def _policy_retention(ctx: StepContext) -> dict[str, int]:
    with ctx.transaction() as session:
        return dict(policies.get(session=session, service_id=ctx.inputs.service_id).retention)


# --- co-located devices: the technicians' part ----------------------------------------------


def install_devices(ctx: StepContext) -> None:
    """The work order for the devices still to rack, then wait until every device of the order
    is installed in the DCIM (technicians' mark-installed; the last one signals `installed`).
    Runs again from the start on each signal, so it asks the DCIM rather than the payload."""
    devices_from = ctx.inputs.offering.rack_devices_from
    if devices_from is None:
        return
    dcim = dcim_of(ctx)
    subject = subject_of(ctx, devices_from)
    wanted = {d.dcim_name for d in work_orders.order_devices(subject)}
    racked = {d.name for d in dcim.installed(order_ref=subject.service_id)} & wanted
    if racked == wanted:
        ctx.emit(ProgressEvent(type="dcim.installed", message=f"all {len(wanted)} devices are installed"))
        return
    order = work_orders.build(dcim=dcim, subject=subject, kind="installation")
    ctx.emit(
        ProgressEvent(
            type="dcim.work_order",
            message=f"installation work order: {len(wanted) - len(racked)} of {len(wanted)} devices to rack",
            data=order,
        )
    )
    raise WaitingFor(
        "installed", f"{len(racked)} of {len(wanted)} devices installed; waiting for the technicians' mark-installed"
    )


def remove_devices(ctx: StepContext) -> None:
    """The removal work order, then wait until no device of the order is left in the DCIM
    (technicians' mark-removed; the last one signals `removed`)."""
    devices_from = ctx.inputs.offering.rack_devices_from
    if devices_from is None:
        return
    dcim = dcim_of(ctx)
    subject = subject_of(ctx, devices_from)
    left = dcim.installed(order_ref=subject.service_id)
    if not left:
        return
    order = work_orders.build(dcim=dcim, subject=subject, kind="removal")
    ctx.emit(
        ProgressEvent(
            type="dcim.work_order", message=f"removal work order: {len(left)} devices to take out", data=order
        )
    )
    raise WaitingFor("removed", f"{len(left)} devices still racked; waiting for the technicians' mark-removed")


def dcim_of(ctx: StepContext) -> Dcim:
    if ctx.adapters.dcim is None:
        raise StepFailed(
            f"offering {ctx.inputs.offering.id} racks devices, but this orchestrator has no DCIM configured "
            "(TONLE_DCIM_URL/TONLE_DCIM_CONFIG)"
        )
    return ctx.adapters.dcim


def subject_of(ctx: StepContext, devices_from: str) -> work_orders.Subject:
    """The work order's subject, with the stack's addresses kept on the service first: the work
    order and mark-installed read them there while the operation waits (it may wait for days)."""
    endpoints = dict(ctx.outputs.get("endpoints") or {})
    with ctx.transaction() as session:
        service = services.lock(session=session, service_id=ctx.inputs.service_id)
        if endpoints and service.endpoints != endpoints:
            service.endpoints = endpoints
            session.add(service)
        endpoints = dict(service.endpoints)
    return work_orders.Subject(
        service_id=str(ctx.inputs.service_id),
        service_name=str(ctx.inputs.parameters.get("name") or ctx.inputs.offering.id),
        ministry_code=ctx.inputs.ministry_code,
        ministry_name=ctx.inputs.ministry_name,
        parameters=ctx.inputs.parameters,
        endpoints=endpoints,
        devices_from=devices_from,
    )


# Build (or rebuild) the stack, rack its devices (co-location), configure its hosts, check it
# answers: provision and modify.
BUILD = (
    Step("plan", plan),
    Step("apply", apply),
    Step("install_devices", install_devices),
    Step("configure", configure),
    Step("verify", verify),
)
