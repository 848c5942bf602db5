from pathlib import Path

import pytest
import yaml

from orchestrator.catalog.loader import CatalogError, load_catalog, load_offering
from orchestrator.catalog.service import validate_parameters
from orchestrator.config import PROJECT_ROOT
from orchestrator.errors import InvalidInput

pytestmark = pytest.mark.unit

CATALOG = PROJECT_ROOT / "catalog"


def test_the_shipped_catalogue_has_the_five_offerings() -> None:
    assert set(load_catalog(CATALOG)) == {"web-hosting", "email", "cms", "colocation", "dr-backup"}


@pytest.mark.parametrize("path", sorted(CATALOG.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_is_a_valid_order(path: Path) -> None:
    offering = load_offering(path)
    assert offering.parameters["examples"]
    for example in offering.parameters["examples"]:
        validate_parameters(offering, example)


def write_variant(tmp_path: Path, change: dict[str, object], drop: str | None = None) -> Path:
    data = yaml.safe_load((CATALOG / "web-hosting.yaml").read_text())
    data.update(change)
    if drop:
        del data[drop]
    path = tmp_path / "web-hosting.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("change", "drop", "field"),
    [
        ({}, "plans", "plans"),
        ({"approval": {"stages": ["requester"]}}, None, "approval.stages"),
        ({"plans": [{"id": "x", "title": "X", "quota_cost": {"unicorns": 1}}]}, None, "plans.0.quota_cost"),
        ({"parameters": {"type": "object", "properties": {}}}, None, "parameters.examples"),
        ({"parameters": {"type": "object", "required": ["a"], "examples": [{}]}}, None, "parameters.examples.0.-"),
        ({"parameters": {"type": "wobbly", "examples": [{}]}}, None, "parameters.type"),
        ({"colour": "blue"}, None, "colour"),
    ],
)
def test_a_bad_file_names_file_and_field(
    tmp_path: Path, change: dict[str, object], drop: str | None, field: str
) -> None:
    path = write_variant(tmp_path, change, drop)
    with pytest.raises(CatalogError) as raised:
        load_catalog(tmp_path)
    assert raised.value.path == path
    assert raised.value.field == field, raised.value


def test_broken_yaml_is_reported(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n")
    with pytest.raises(CatalogError, match=r"broken\.yaml: -: not valid YAML"):
        load_catalog(tmp_path)


def test_parameter_errors_list_every_field() -> None:
    offering = load_offering(CATALOG / "web-hosting.yaml")
    with pytest.raises(InvalidInput) as raised:
        validate_parameters(offering, {"name": "UPPER", "admin_email": "x@y.example"})
    fields = sorted(e["field"] for e in raised.value.errors)
    assert fields == ["parameters.domain", "parameters.name"]
