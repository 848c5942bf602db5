"""The loaded catalogue and validation of order parameters against an offering's schema."""

from functools import lru_cache
from typing import Any

from orchestrator.catalog import validation
from orchestrator.catalog.loader import load_catalog
from orchestrator.catalog.models import Offering, Plan
from orchestrator.catalog.tiers import DrTier, load_tiers
from orchestrator.config import get_settings
from orchestrator.errors import Conflict, InvalidInput, NotFound


@lru_cache
def catalog() -> dict[str, Offering]:
    return load_catalog(get_settings().catalog_dir)


@lru_cache
def dr_tiers() -> dict[str, DrTier]:
    """The catalogue's backup and DR tiers; `catalog()` has checked every offering's tier is one."""
    return load_tiers(get_settings().catalog_dir)


def list_offerings() -> list[Offering]:
    return sorted(catalog().values(), key=lambda o: o.id)


def get_offering(offering_id: str) -> Offering:
    offering = catalog().get(offering_id)
    if offering is None:
        raise NotFound(f"offering '{offering_id}' is not in the catalogue", field="offering_id")
    return offering


def require_orderable(*, offering: Offering) -> None:
    """Refuse an order for an offering the catalogue marks as not orderable yet: it names a
    playbook, health check or workflow that does not exist, so its service could never work."""
    if not offering.orderable:
        raise Conflict(
            f"offering '{offering.id}' cannot be ordered yet: {offering.not_orderable_reason}",
            field="offering_id",
            offering_id=offering.id,
        )


def get_plan(offering: Offering, plan_id: str) -> Plan:
    plan = offering.plan(plan_id)
    if plan is None:
        known = ", ".join(p.id for p in offering.plans)
        raise InvalidInput(f"offering '{offering.id}' has no plan '{plan_id}' (plans: {known})", field="plan")
    return plan


def validate_parameters(offering: Offering, parameters: dict[str, Any]) -> None:
    """Raise InvalidInput naming every field at fault, as `parameters.<path>`.

    The offering's schema with Tonle's guards (see `validation`): ECMA-262 anchors, real
    e-mail addresses, DNS-name syntax, and no control characters or template delimiters in
    any string. Whether the ordering ministry owns the DNS names is `dns_names`' part.
    """
    validator = validation.validator_for(offering.parameters)
    errors = sorted(validator.iter_errors(parameters), key=lambda e: list(e.absolute_path))
    problems = validation.text_problems(parameters, ("parameters",))
    for error in errors:
        path = ["parameters", *(str(p) for p in error.absolute_path)]
        if error.validator == "required" and isinstance(error.validator_value, list):
            missing = next((name for name in error.validator_value if name not in (error.instance or {})), None)
            if missing:
                path.append(missing)
        # A format checker's reason (e.g. email-validator's) says more than "is not a 'email'".
        reason = f" ({error.cause})" if error.validator == "format" and error.cause else ""
        problems.append({"field": ".".join(path), "message": error.message + reason})
    if not problems:
        return
    problems.sort(key=lambda p: p["field"])
    raise InvalidInput(
        f"parameters do not match offering '{offering.id}': {problems[0]['field']}: {problems[0]['message']}",
        field=problems[0]["field"],
        errors=problems,
    )


def dns_names(offering: Offering, parameters: dict[str, Any]) -> list[tuple[str, str]]:
    """(`parameters.<path>`, name) for every DNS name the order gives, which the ministry must own."""
    return validation.dns_names(offering.parameters, parameters, ("parameters",))
