"""Add a device to a co-location service (`POST /v1/services/{id}/actions/add-device`, the body
one device as an item of the offering's devices): placed and reserved as an order's are (the
ministry's racks first), added to the service's devices so `apply` makes its NIC ports, then
the technicians' mark-installed as at provisioning. The service stays active throughout; a
device that does not fit fails the first step with the reason, holding nothing."""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlmodel import Session

from orchestrator.catalog import service as catalog
from orchestrator.dcim import service as dcim_placement
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.policy import Action
from orchestrator.ports import StepFailed
from orchestrator.services.models import Service
from orchestrator.workflows import devices, steps
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step, Workflow

KIND = "add-device"


def check_parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("name"), str):
        raise InvalidInput("the device needs a name", field="name")
    return {"device": dict(body)}


def check_for_service(session: Session, service: Service, checked: dict[str, Any]) -> dict[str, Any]:
    """The device as the offering's schema takes an item of its devices (422 naming the body's
    field), with a name the service does not have yet, and sizes a rack could take."""
    offering = catalog.get_offering(service.offering_id)
    field = devices.devices_from(offering)
    device = checked["device"]
    present = devices.listed(service.parameters, field)
    if any(d.get("name") == device["name"] for d in present):
        raise InvalidInput(f"service {service.id} already has a device named '{device['name']}'", field="name")
    wanted = {**service.parameters, field: [*present, device]}
    prefix = f"parameters.{field}.{len(present)}"
    try:
        catalog.validate_parameters(offering, wanted)
        dcim_placement.check_request(offering=offering, parameters={field: [device]}, sizes={})
    except InvalidInput as exc:
        errors = [{**e, "field": _body_field(str(e.get("field")), prefix, field)} for e in exc.errors]
        first = errors[0] if errors else {"field": "body", "message": exc.detail}
        raise InvalidInput(f"{first['field']}: {first['message']}", field=first["field"], errors=errors) from None
    dcim_placement.within_plan(
        sizes=catalog.get_plan(offering, service.plan).sizes,
        devices=[*present, device],
        fields=("rack_units", "power_watts"),
    )
    return checked


def _body_field(found: str, prefix: str, field: str) -> str:
    """`parameters.devices.3.rack_units` (or the one-device check's `parameters.devices.0...`) -> `rack_units`."""
    for start in (f"{prefix}.", f"parameters.{field}.0."):
        if found.startswith(start):
            return found[len(start) :]
    return found


def place(ctx: StepContext) -> None:
    """Reserve the device's units and draw under the site's lock and add it to the service's
    devices, in one transaction. A resumed run finds it added and reserves nothing more."""
    device = devices.operation_parameters(ctx)["device"]
    dcim = steps.dcim_of(ctx)
    field = devices.devices_from(ctx.inputs.offering)
    with ctx.transaction() as session:
        service = devices.locked(ctx, session)
        present = devices.listed(service.parameters, field)
        if any(d.get("name") == device["name"] for d in present):
            ctx.inputs = replace(ctx.inputs, parameters=dict(service.parameters))
            return
        name = str(service.parameters.get("name") or ctx.inputs.offering.id)
        dcim_name = dcim_placement.dcim_device_name(
            ministry_code=ctx.inputs.ministry_code, service_name=name, device=device["name"]
        )
        (request,) = dcim_placement.device_requests({field: [device]}, ctx.inputs.offering)
        try:
            dcim_placement.reserve(
                session=session,
                dcim=dcim,
                ministry_code=ctx.inputs.ministry_code,
                order_ref=str(ctx.inputs.service_id),
                devices=[replace(request, name=dcim_name)],
                labels={dcim_name: device["name"]},
            )
        except Conflict as refused:
            raise StepFailed(refused.detail) from None
        devices.set_devices(ctx, session, service, [*present, device])


WORKFLOW = Workflow(
    kind=KIND,
    summary="place, reserve and rack one more co-located device",
    steps=(
        Step("place_device", place),
        Step("apply", steps.apply),
        Step("install_devices", steps.install_devices),
    ),
    signals={"installed": Action.install_devices},
    day2_action=True,
    check_parameters=check_parameters,
    check_for_service=check_for_service,
)
