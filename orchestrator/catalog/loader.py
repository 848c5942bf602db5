"""Reading and checking the catalogue folder. A bad file stops start-up, naming file and field."""

import logging
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import ValidationError

from orchestrator.catalog.models import Offering

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
    for path in sorted(folder.glob("*.yaml")):
        offering = load_offering(path)
        if offering.id in offerings:
            raise CatalogError(path, "id", f"offering '{offering.id}' is also defined in {seen_in[offering.id]}")
        offerings[offering.id] = offering
        seen_in[offering.id] = path
    if not offerings:
        raise CatalogError(folder, "-", "no offerings (*.yaml) found")
    log.info("catalogue: %d offerings from %s", len(offerings), folder)
    return offerings


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
    return offering


def _check_parameter_schema(path: Path, schema: dict[str, Any]) -> None:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = ".".join(str(p) for p in exc.absolute_path)
        raise CatalogError(path, f"parameters.{where}".rstrip("."), exc.message) from exc
    if schema.get("type") != "object":
        raise CatalogError(path, "parameters.type", "the parameter schema must describe an object")
    examples = schema.get("examples")
    if not isinstance(examples, list) or not examples:
        raise CatalogError(path, "parameters.examples", "give at least one complete, valid example")
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for index, example in enumerate(examples):
        error = jsonschema.exceptions.best_match(validator.iter_errors(example))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "-"
            raise CatalogError(path, f"parameters.examples.{index}.{where}", error.message)
