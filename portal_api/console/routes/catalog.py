"""The catalogue and its order forms, generated from each offering's parameter schema."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from orchestrator import policy
from orchestrator.catalog import service as catalog
from orchestrator.catalog.models import Offering
from orchestrator.errors import DomainError, NotFound, PermissionDenied
from orchestrator.requests import service as requests
from orchestrator.requests.models import RequestCreate
from portal_api import problems
from portal_api.console import forms, i18n
from portal_api.console.csrf import CsrfDep
from portal_api.console.session import PATH, ConsoleActorDep
from portal_api.console.templating import page_language, render
from portal_api.deps import UowDep

router = APIRouter(prefix=PATH, include_in_schema=False)


async def submitted_form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(submitted_form)]


@router.get("/catalog")
def catalogue(request: Request, actor: ConsoleActorDep) -> Response:
    return render(
        request,
        "staff/catalog.html",
        {
            "nav": "catalog",
            "offerings": catalog.list_offerings(),
            "can_order": policy.allowed(actor, policy.Action.order),
        },
    )


def _order_page(
    request: Request,
    offering: Offering,
    *,
    values: dict[str, str],
    plan: str,
    justification: str,
    idempotency_key: str,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "staff/order.html",
        {
            "nav": "catalog",
            "offering": offering,
            "fields": forms.fields_for(offering.parameters),
            "values": values,
            "plan": plan,
            "justification": justification,
            "idempotency_key": idempotency_key,
            "errors": errors or {},
            "message": message,
        },
        status_code=status_code,
    )


@router.get("/catalog/{offering_id}/order")
def order_form(request: Request, offering_id: str, actor: ConsoleActorDep) -> Response:
    policy.require(actor, policy.Action.order)
    offering = catalog.get_offering(offering_id)
    fields = forms.fields_for(offering.parameters)
    return _order_page(
        request,
        offering,
        values=forms.form_values(fields, {}),
        plan=offering.plans[0].id,
        justification="",
        # One key per form shown: submitting it twice (a double click, a resent POST) orders once.
        idempotency_key=str(uuid.uuid4()),
    )


@router.post("/catalog/{offering_id}/order")
def place_order(
    request: Request,
    offering_id: str,
    uow: UowDep,
    actor: ConsoleActorDep,
    _: CsrfDep,
    form: FormDep,
    plan: Annotated[str, Form(max_length=64)] = "",
    justification: Annotated[str, Form(max_length=2000)] = "",
    idempotency_key: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    offering = catalog.get_offering(offering_id)
    fields = forms.fields_for(offering.parameters)
    submitted = {name: value for name, value in form.items() if isinstance(value, str)}
    parameters, shape_errors = forms.parameters_from(fields, submitted)

    def again(errors: dict[str, str], message: str | None, status_code: int) -> Response:
        # Fixed messages are in the catalogues; the orchestrator's own (English) show as they are.
        lang = page_language(request)
        errors = {name: i18n.gettext(lang, text) for name, text in errors.items()}
        return _order_page(
            request,
            offering,
            values=forms.form_values(fields, submitted),
            plan=plan,
            justification=justification,
            idempotency_key=idempotency_key or str(uuid.uuid4()),
            errors=errors,
            message=i18n.gettext(lang, message) if message else None,
            status_code=status_code,
        )

    if shape_errors:
        return again(shape_errors, None, 422)
    data: dict[str, Any] = {
        "offering_id": offering.id,
        "plan": plan,
        "parameters": parameters,
        "justification": justification,
    }
    try:
        submission = requests.submit(
            uow=uow,
            actor=actor,
            data=RequestCreate.model_validate(data),
            idempotency_key=idempotency_key or None,
        )
    except (NotFound, PermissionDenied):
        raise
    except DomainError as refused:
        uow.session.rollback()
        names = {f.name for f in fields} | {"plan", "justification"}
        placed, message = forms.field_errors(refused, names)
        if refused.field == "Idempotency-Key":
            idempotency_key = ""  # the key went with another order: this form gets a fresh one
        return again(placed, message, problems.status_for(refused))
    return RedirectResponse(f"{PATH}/requests/{submission.request.id}", status_code=303)
