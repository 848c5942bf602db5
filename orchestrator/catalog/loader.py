"""Reading and checking the catalogue folder. A bad file stops start-up, naming file and field."""

import logging
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import ValidationError

from orchestrator.catalog import validation
from orchestrator.catalog.models import Offering
from orchestrator.catalog.tiers import TIERS_FILE, TiersError, load_tiers

log = logging.getLogger(__name__)


class CatalogError(Exception):
    """A catalogue file that cannot be used, with where and why."""

    def __init__(self, path: Path, field: str, message: str) -> None:
        super().__init__(f"{path}: {field}: {message}")
        self.path = path
        self.field = field
        self.message = message


def load_catalog(folder: Path) -> dict[str, Offering]:
    if not folder.is_dir():
        raise CatalogError(folder, "-", "catalogue folder does not exist")
    offerings: dict[str, Offering] = {}
    seen_in: dict[str, Path] = {}
    for path in offering_files(folder):
        offering = load_offering(path)
        if offering.id in offerings:
            raise CatalogError(path, "id", f"offering '{offering.id}' is also defined in {seen_in[offering.id]}")
        offerings[offering.id] = offering
        seen_in[offering.id] = path
        if not offering.orderable:
            log.warning("catalogue: offering %s is not orderable: %s", offering.id, offering.not_orderable_reason)
    if not offerings:
        raise CatalogError(folder, "-", "no offerings (*.yaml) found")
    _check_tiers(folder, offerings, seen_in)
    log.info("catalogue: %d offerings from %s", len(offerings), folder)
    return offerings


def offering_files(folder: Path) -> list[Path]:
    """The catalogue's offering files: every YAML file but the tiers file."""
    return [path for path in sorted(folder.glob("*.yaml")) if path.name != TIERS_FILE]


def _check_tiers(folder: Path, offerings: dict[str, Offering], seen_in: dict[str, Path]) -> None:
    """Every tier an offering names is defined in the tiers file."""
    try:
        tiers = load_tiers(folder)
    except TiersError as exc:
        raise CatalogError(exc.path, exc.field, exc.message) from exc
    for offering_id, offering in offerings.items():
        for field in ("backup_tier", "dr_tier"):
            tier = getattr(offering, field)
            if tier != "none" and tier not in tiers:
                known = ", ".join(sorted(tiers)) or f"none defined: no {TIERS_FILE}"
                raise CatalogError(seen_in[offering_id], field, f"tier '{tier}' is not in {TIERS_FILE} ({known})")


def load_offering(path: Path) -> Offering:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogError(path, "-", f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(path, "-", "expected a mapping at the top level")
    try:
        offering = Offering.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "-"
        raise CatalogError(path, field, first["msg"]) from exc
    _check_parameter_schema(path, offering.parameters)
    _check_tls_names(path, offering)
    return offering


def _check_parameter_schema(path: Path, schema: dict[str, Any]) -> None:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = ".".join(str(p) for p in exc.absolute_path)
        raise CatalogError(path, f"parameters.{where}".rstrip("."), exc.message) from exc
    if schema.get("type") != "object":
        raise CatalogError(path, "parameters.type", "the parameter schema must describe an object")
    unguarded = validation.schema_problems(schema)
    if unguarded:
        where, why = unguarded[0]
        raise CatalogError(path, f"parameters.{where}", why)
    examples = schema.get("examples")
    if not isinstance(examples, list) or not examples:
        raise CatalogError(path, "parameters.examples", "give at least one complete, valid example")
    validator = validation.validator_for(schema)
    for index, example in enumerate(examples):
        error = jsonschema.exceptions.best_match(validator.iter_errors(example))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "-"
            raise CatalogError(path, f"parameters.examples.{index}.{where}", error.message)
        bad_text = validation.text_problems(example, (f"parameters.examples.{index}",))
        if bad_text:
            raise CatalogError(path, bad_text[0]["field"], bad_text[0]["message"])


def _check_tls_names(path: Path, offering: Offering) -> None:
    """A certificate is issued for the names `tls_names_from` points at, so each must be a DNS name
    the ministry owns: a top-level parameter marked `x-tonle-dns-name`, or a list of such."""
    properties = offering.parameters.get("properties") or {}
    for index, name in enumerate(offering.tls_names_from):
        schema = properties.get(name)
        if not isinstance(schema, dict):
            raise CatalogError(path, f"tls_names_from.{index}", f"'{name}' is not a parameter of the offering")
        items = schema.get("items") if schema.get("type") == "array" else schema
        if not isinstance(items, dict) or items.get(validation.DNS_NAME) is not True:
            raise CatalogError(
                path,
                f"tls_names_from.{index}",
                f"parameter '{name}' names the certificate, so mark it (or its items) `{validation.DNS_NAME}: true`",
            )
