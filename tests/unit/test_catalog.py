import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from orchestrator.catalog import validation
from orchestrator.catalog.loader import CatalogError, load_catalog, load_offering, offering_files
from orchestrator.catalog.service import dns_names, validate_parameters
from orchestrator.config import PROJECT_ROOT
from orchestrator.errors import InvalidInput
from orchestrator.ministry import domains
from orchestrator.ministry.models import MinistryCreate

pytestmark = pytest.mark.unit

CATALOG = PROJECT_ROOT / "catalog"


def test_the_shipped_catalogue_has_the_five_offerings() -> None:
    assert set(load_catalog(CATALOG)) == {"web-hosting", "email", "cms", "colocation", "dr-backup"}


@pytest.mark.parametrize("path", offering_files(CATALOG), ids=lambda p: p.stem)
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
        (
            {"plans": [{"id": "x", "title": "X", "quota_cost": {"unicorns": 1}, "price_riel_per_month": 1}]},
            None,
            "plans.0.quota_cost",
        ),
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


# --- Hostile input: what every offering's parameters refuse, from its YAML alone. ---

OFFERINGS = {path.stem: load_offering(path) for path in offering_files(CATALOG)}


def string_fields(value: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of every string in an example order."""
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for key, sub in value.items() for p in string_fields(sub, (*path, key))]
    if isinstance(value, list):
        return [p for index, sub in enumerate(value) for p in string_fields(sub, (*path, str(index)))]
    return []


def with_value(example: dict[str, Any], path: tuple[str, ...], change: Callable[[str], str]) -> dict[str, Any]:
    order = copy.deepcopy(example)
    parent: Any = order
    for key in path[:-1]:
        parent = parent[int(key)] if isinstance(parent, list) else parent[key]
    last: Any = int(path[-1]) if isinstance(parent, list) else path[-1]
    parent[last] = change(parent[last])
    return order


def every_string_field() -> list[Any]:
    cases = []
    for offering_id, offering in OFFERINGS.items():
        example = offering.parameters["examples"][0]
        cases += [
            pytest.param(offering_id, path, id=f"{offering_id}:{'.'.join(path)}") for path in string_fields(example)
        ]
    return cases


def messages_for(offering_id: str, order: dict[str, Any], field: str) -> list[str]:
    with pytest.raises(InvalidInput) as raised:
        validate_parameters(OFFERINGS[offering_id], order)
    return [e["message"] for e in raised.value.errors if e["field"] == field]


@pytest.mark.parametrize(("offering_id", "path"), every_string_field())
@pytest.mark.parametrize("payload", ["{{ lookup('pipe', 'id') }}", "{% raw %}", "{# note #}"])
def test_template_delimiters_are_refused_in_every_string_field(
    offering_id: str, path: tuple[str, ...], payload: str
) -> None:
    order = with_value(OFFERINGS[offering_id].parameters["examples"][0], path, lambda v: v[:1] + payload)
    field = ".".join(("parameters", *path))
    assert any("template delimiters" in m for m in messages_for(offering_id, order, field))


@pytest.mark.parametrize(("offering_id", "path"), every_string_field())
@pytest.mark.parametrize("control", ["\x00", "\n", "\r", "\x1b", "\x7f", "\x85", "\ud800"])
def test_control_characters_are_refused_in_every_string_field(
    offering_id: str, path: tuple[str, ...], control: str
) -> None:
    order = with_value(OFFERINGS[offering_id].parameters["examples"][0], path, lambda v: v + control)
    field = ".".join(("parameters", *path))
    assert any("control characters" in m for m in messages_for(offering_id, order, field))


def test_keys_are_checked_as_well_as_values() -> None:
    order = {**OFFERINGS["web-hosting"].parameters["examples"][0], "{{ evil }}": 1}
    with pytest.raises(InvalidInput) as raised:
        validate_parameters(OFFERINGS["web-hosting"], order)
    assert {
        "field": "parameters",
        "message": "a key must not contain template delimiters ('{{')",
    } in raised.value.errors


@pytest.mark.parametrize(
    ("offering_id", "field", "value"),
    [
        ("web-hosting", "name", "portal\n"),
        ("web-hosting", "domain", "portal.health.gov.example\n"),
        ("email", "mail_domain", "finance.gov.example\n"),
        ("colocation", "contact_phone", "+855 23 000 000\n"),
    ],
)
def test_a_trailing_newline_does_not_satisfy_a_pattern(offering_id: str, field: str, value: str) -> None:
    schema = OFFERINGS[offering_id].parameters
    order = {**schema["examples"][0], field: value}
    # The pattern alone refuses it (not only the control-character rule).
    pattern_errors = [e for e in validation.validator_for(schema).iter_errors(order) if e.validator == "pattern"]
    assert [list(e.absolute_path) for e in pattern_errors] == [[field]]
    assert messages_for(offering_id, order, f"parameters.{field}")


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("^a$", "a", True),
        ("^a$", "a\n", False),
        ("^a$|^b$", "b\n", False),
        ("^[$]$", "$", True),  # a `$` in a class is a dollar sign
        ("^\\$$", "$", True),  # so is an escaped one
        ("^[]$]+$", "]$", True),  # `]` first in a class is a literal
        ("^[^]$]$", "x", True),
        ("^\\d$", "\u0663", False),  # ECMA-262's \d is ASCII digits only
    ],
)
def test_patterns_mean_what_json_schema_says(pattern: str, value: str, matches: bool) -> None:
    assert bool(validation.ecma_regex(pattern).search(value)) is matches


@pytest.mark.parametrize(
    "email",
    [
        "a@b",
        "x@@y.gov.example",
        '"a b"@x.gov.example',
        "a..b@health.gov.example",
        ".a@health.gov.example",
        "a@health..gov.example",
        "a@-health.gov.example",
        "a@[10.0.0.1]",
        "a@localhost",
        "a b@health.gov.example",
        "web@health.gov.example,other@evil.example",
        "no-at-sign.gov.example",
        "dara@héalth.gov.example" + "x" * 300,
        "ünï@health.gov.example",  # `format: email` is ASCII (`idn-email` is the internationalised one)
    ],
)
def test_bad_emails_are_refused(email: str) -> None:
    order = {**OFFERINGS["web-hosting"].parameters["examples"][0], "admin_email": email}
    assert messages_for("web-hosting", order, "parameters.admin_email")


def test_an_address_checked_again_gets_the_same_answer_and_only_short_ones_are_remembered() -> None:
    bad = {**OFFERINGS["web-hosting"].parameters["examples"][0], "admin_email": "a..b@health.gov.example"}
    first = messages_for("web-hosting", bad, "parameters.admin_email")
    assert first and messages_for("web-hosting", bad, "parameters.admin_email") == first
    assert "two periods in a row" in first[0]  # email-validator's reason, not only "is not a 'email'"
    remembered = validation._email_problem.cache_info().currsize
    long = {**bad, "admin_email": "web@" + "a" * 250 + ".gov.example"}
    assert messages_for("web-hosting", long, "parameters.admin_email")
    assert validation._email_problem.cache_info().currsize == remembered


@pytest.mark.parametrize(
    "email",
    ["webmaster@health.gov.example", "first.last+tag@health.gov.example", "it_helpdesk@mail.health.gov.example"],
)
def test_good_emails_are_accepted(email: str) -> None:
    validate_parameters(
        OFFERINGS["web-hosting"], {**OFFERINGS["web-hosting"].parameters["examples"][0], "admin_email": email}
    )


@pytest.mark.parametrize("offering_id", sorted(OFFERINGS))
def test_every_string_parameter_of_every_offering_is_guarded(offering_id: str) -> None:
    # Guarded = pattern, enum, const, format or a length bound; on top, every string refuses
    # control characters and template delimiters (tests above).
    assert validation.schema_problems(OFFERINGS[offering_id].parameters) == []


def test_the_names_an_order_gives_are_found_from_the_schema() -> None:
    web = OFFERINGS["web-hosting"]
    order = {**web.parameters["examples"][0], "aliases": ["a.health.gov.example", "b.health.gov.example"]}
    assert dns_names(web, order) == [
        ("parameters.domain", "portal.health.gov.example"),
        ("parameters.aliases.0", "a.health.gov.example"),
        ("parameters.aliases.1", "b.health.gov.example"),
    ]
    assert dns_names(OFFERINGS["email"], OFFERINGS["email"].parameters["examples"][0]) == [
        ("parameters.mail_domain", "finance.gov.example")
    ]
    assert dns_names(OFFERINGS["dr-backup"], OFFERINGS["dr-backup"].parameters["examples"][0]) == []


def write_parameters(tmp_path: Path, edit: Callable[[dict[str, Any]], None], **top: object) -> Path:
    data = yaml.safe_load((CATALOG / "web-hosting.yaml").read_text())
    edit(data["parameters"])
    data.update(top)
    path = tmp_path / "web-hosting.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _parent(schema: dict[str, Any], where: str) -> tuple[Any, Any]:
    *path, last = where.split(".")
    node: Any = schema
    for key in path:
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node, int(last) if isinstance(node, list) else last


def _set(where: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(schema: dict[str, Any]) -> None:
        node, key = _parent(schema, where)
        node[key] = value

    return edit


def _drop(where: str) -> Callable[[dict[str, Any]], None]:
    def edit(schema: dict[str, Any]) -> None:
        node, key = _parent(schema, where)
        del node[key]

    return edit


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (_set("properties.motto", {"type": "string"}), "parameters.properties.motto.type"),
        (_set("properties.name.pattern", "[a-z]+"), "parameters.properties.name.pattern"),
        (_set("properties.name.pattern", "^[a-z]+"), "parameters.properties.name.pattern"),
        (_set("properties.domain.x-tonle-dns-name", "yes"), "parameters.properties.domain.x-tonle-dns-name"),
        (_set("properties.aliases.x-tonle-dns-name", True), "parameters.properties.aliases.x-tonle-dns-name"),
        (
            _set("properties.extra", {"anyOf": [{"type": "string", "maxLength": 9, "x-tonle-dns-name": True}]}),
            "parameters.properties.extra.anyOf.0.x-tonle-dns-name",
        ),
        (_drop("properties.domain.x-tonle-dns-name"), "tls_names_from.0"),
        (_drop("properties.aliases.items.x-tonle-dns-name"), "tls_names_from.1"),
        (_set("examples.0.name", "{{ x }}"), "parameters.examples.0.name"),
    ],
)
def test_the_loader_refuses_unguarded_parameters(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], field: str
) -> None:
    write_parameters(tmp_path, edit)
    with pytest.raises(CatalogError) as raised:
        load_catalog(tmp_path)
    assert raised.value.field == field, raised.value


def test_tls_names_must_be_parameters(tmp_path: Path) -> None:
    write_parameters(tmp_path, lambda schema: None, tls_names_from=["domain", "hostname"])
    with pytest.raises(CatalogError) as raised:
        load_catalog(tmp_path)
    assert raised.value.field == "tls_names_from.1"


# --- DNS names and suffixes. ---


@pytest.mark.parametrize(
    ("name", "suffix", "under"),
    [
        ("health.gov.example", "health.gov.example", True),
        ("portal.health.gov.example", "health.gov.example", True),
        ("a.b.health.gov.example", "health.gov.example", True),
        ("Portal.Health.gov.example.", "health.gov.example", True),
        ("portal.health.gov.example", "HEALTH.gov.example.", True),
        ("evil-health.gov.example", "health.gov.example", False),
        ("healthgov.example", "health.gov.example", False),
        ("health.gov.example.evil.example", "health.gov.example", False),
        ("gov.example", "health.gov.example", False),
        ("www.google.com", "health.gov.example", False),
    ],
)
def test_a_name_is_under_a_suffix_on_label_boundaries(name: str, suffix: str, under: bool) -> None:
    assert domains.is_under(name, suffix) is under


@pytest.mark.parametrize(
    "suffix",
    [
        "example",
        "health..gov.example",
        "-health.gov.example",
        "he_alth.gov.example",
        "a.b.c.1",
        "",
        "x" * 64 + ".example",
    ],
)
def test_a_ministry_cannot_own_a_malformed_suffix(suffix: str) -> None:
    with pytest.raises(ValidationError) as raised:
        MinistryCreate(code="health", name="Ministry of Health", dns_suffixes=["ok.gov.example", suffix])
    assert raised.value.errors()[0]["loc"] == ("dns_suffixes", 1)


def test_suffixes_are_stored_normalised() -> None:
    ministry = MinistryCreate(code="health", name="Ministry of Health", dns_suffixes=["Health.Gov.Example."])
    assert ministry.dns_suffixes == ["health.gov.example"]
