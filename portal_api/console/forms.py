"""Order forms generated from an offering's parameter JSON Schema, and a problem's field put back
on the form.

Each field's form name is the path the orchestrator names in its errors (`parameters.domain`),
so an error lands next to the input it is about. The browser gets the schema's constraints as
HTML attributes, as hints only: the orchestrator validates everything again.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.errors import DomainError, InvalidInput

PREFIX = "parameters."

Kind = Literal["text", "email", "date", "number", "select", "checkbox", "lines", "json"]

# Characters that must be escaped inside a class under the `v` flag browsers compile `pattern` with.
_CLASS_SYNTAX = set("()[]{}/|")


@dataclass(frozen=True)
class FormField:
    name: str  # the form's name: `parameters.<key>`, as errors name it
    key: str
    label: str
    kind: Kind
    required: bool
    hint: str = ""
    options: tuple[str, ...] = ()
    attrs: dict[str, str] = field(default_factory=dict)
    default: str = ""


def html_pattern(pattern: str) -> str | None:
    """The schema's ECMA-262 pattern as an HTML `pattern` (implicitly anchored, `v` flag), or None
    when it cannot be carried over safely (then only the server checks it)."""
    body = pattern.removeprefix("^").removesuffix("$")
    if "(?" in body or "\\p" in body or "\\P" in body:
        return None
    out: list[str] = []
    in_class = False
    class_start = 0
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            out.append(body[i : i + 2])
            i += 2
            continue
        if not in_class:
            if char == "[":
                in_class = True
                out.append(char)
                if body[i + 1 : i + 2] == "^":
                    out.append("^")
                    i += 1
                class_start = len(out)
            else:
                out.append(char)
        elif char == "]":
            in_class = False
            out.append(char)
        elif char == "-" and (len(out) == class_start or body[i + 1 : i + 2] == "]"):
            out.append("\\-")  # a literal dash at either end of a class
        elif char in _CLASS_SYNTAX:
            out.append("\\" + char)
        else:
            out.append(char)
        i += 1
    return None if in_class else "".join(out)


def _label(key: str, schema: Mapping[str, Any]) -> str:
    title = schema.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    words = key.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


def _text_attrs(schema: Mapping[str, Any]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if isinstance(schema.get("maxLength"), int):
        attrs["maxlength"] = str(schema["maxLength"])
    if isinstance(schema.get("minLength"), int):
        attrs["minlength"] = str(schema["minLength"])
    if isinstance(schema.get("pattern"), str):
        converted = html_pattern(schema["pattern"])
        if converted:
            attrs["pattern"] = converted
    return attrs


def _field(key: str, schema: Mapping[str, Any], required: bool) -> FormField:
    kind_of: str | None = schema.get("type") if isinstance(schema.get("type"), str) else None
    hint = " ".join(str(schema.get("description", "")).split())
    default = schema.get("default")
    common: dict[str, Any] = {
        "name": PREFIX + key,
        "key": key,
        "label": _label(key, schema),
        "required": required,
        "hint": hint,
        "default": "" if default is None or isinstance(default, (dict, list, bool)) else str(default),
    }
    if isinstance(schema.get("enum"), list):
        return FormField(kind="select", options=tuple(str(o) for o in schema["enum"]), **common)
    if kind_of == "boolean":
        return FormField(kind="checkbox", **{**common, "default": "on" if default is True else ""})
    if kind_of == "integer" or kind_of == "number":
        attrs = {"step": "1" if kind_of == "integer" else "any", "inputmode": "numeric"}
        for bound, attr in (("minimum", "min"), ("maximum", "max")):
            if isinstance(schema.get(bound), (int, float)):
                attrs[attr] = str(schema[bound])
        return FormField(kind="number", attrs=attrs, **common)
    if kind_of == "string":
        fmt = schema.get("format")
        kind: Kind = "email" if fmt == "email" else "date" if fmt == "date" else "text"
        return FormField(kind=kind, attrs=_text_attrs(schema), **common)
    items = schema.get("items")
    if kind_of == "array" and isinstance(items, Mapping) and items.get("type") == "string":
        if isinstance(default, list):
            common["default"] = "\n".join(str(d) for d in default)
        return FormField(kind="lines", **common)
    # Objects and lists of objects: written as JSON, which the orchestrator's schema checks.
    if default is not None:
        common["default"] = json.dumps(default, ensure_ascii=False)
    return FormField(kind="json", **common)


def fields_for(schema: Mapping[str, Any]) -> list[FormField]:
    """The form of an offering's parameter schema, in the schema's order."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    required = set(schema.get("required") or [])
    return [_field(str(key), sub, key in required) for key, sub in properties.items() if isinstance(sub, Mapping)]


def form_values(fields: list[FormField], form: Mapping[str, str]) -> dict[str, str]:
    """What to show in each field: the submitted text, or the schema's default on a fresh form."""
    return {f.name: form.get(f.name, f.default) for f in fields}


def parameters_from(fields: list[FormField], form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The order's parameters from the submitted form, and the fields that are not even of the
    right shape (a number that is not one, JSON that does not parse)."""
    parameters: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        raw = form.get(f.name, "")
        if f.kind == "checkbox":
            parameters[f.key] = raw != ""
            continue
        text = raw.strip()
        if f.kind == "lines":
            values = [line.strip() for line in text.splitlines() if line.strip()]
            if values or f.required:
                parameters[f.key] = values
            continue
        if text == "":
            continue  # left out: the schema says whether it was required
        if f.kind == "number":
            try:
                parameters[f.key] = int(text) if f.attrs.get("step") == "1" else float(text)
            except ValueError:
                errors[f.name] = "must be a number"
            continue
        if f.kind == "json":
            try:
                parameters[f.key] = json.loads(text)
            except (ValueError, RecursionError):  # hostile nesting is refused like any bad JSON
                errors[f.name] = "must be JSON"
            continue
        parameters[f.key] = text
    return parameters, errors


_INDEXED = re.compile(r"^(parameters\.[^.]+)\..*$")


def field_errors(error: DomainError, names: set[str]) -> tuple[dict[str, str], str | None]:
    """A problem as messages per form field, and what is left for the top of the page (a problem
    about no field of the form, e.g. the quota)."""
    problems = error.errors if isinstance(error, InvalidInput) else []
    if not problems and error.field:
        problems = [{"field": error.field, "message": error.detail}]
    placed: dict[str, str] = {}
    for problem in problems:
        name = str(problem.get("field") or "")
        if name not in names:
            # `parameters.aliases.1` belongs to the `aliases` field.
            match = _INDEXED.match(name)
            name = match.group(1) if match and match.group(1) in names else name
        if name in names:
            placed.setdefault(name, str(problem.get("message") or error.detail))
    return placed, None if placed else error.detail
