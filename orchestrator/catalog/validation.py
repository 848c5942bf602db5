"""How order parameters are checked against an offering's JSON Schema, beyond plain JSON Schema.

Order parameters are hostile input that ends up in stack config, DNS, certificates and Ansible.
Every offering gets these guards from its YAML alone:

- `pattern` means what JSON Schema (ECMA-262) says it means. There, `$` matches only at the
  very end of the value; Python's `re` also lets it match before a final newline, so
  `"^[a-z]+$"` would accept `"portal\\n"`. Writing `\\Z` in the catalogue is not portable JSON
  Schema (other validators, the web console, OpenAPI clients read the same schema), so the
  catalogue keeps `^...$` and the validator compiles each unescaped `$` outside a character
  class as `\\Z`. Patterns also run with `re.ASCII`, as ECMA-262's `\\d` and `\\w` are ASCII.
- `format: email` is checked by `email-validator` (syntax only: no DNS lookups), not by the
  default "contains an @" test.
- `x-tonle-dns-name: true` marks a string that names DNS (a domain, an alias, a mail domain):
  it must be a valid host name of two labels or more, and (see `dns_names`) the ordering
  ministry must own it.
- Every string anywhere in the parameters (values and keys) refuses control characters,
  including NUL, and the template delimiters `{{`, `{%`, `{#`. Ansible is given parameters as
  data that it does not template; this is the second line, and it holds for offerings whose
  authors forget a pattern.
"""

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import email_validator
import jsonschema
from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from orchestrator.ministry import domains

DNS_NAME = "x-tonle-dns-name"
TEMPLATE_DELIMITERS = ("{{", "{%", "{#")
# Keywords under which a schema holds instance data, not subschemas.
_DATA_KEYWORDS = frozenset({"examples", "default", "const", "enum"})
# A string schema must say what it accepts; with none of these it would be unbounded free text.
_STRING_GUARDS = ("pattern", "enum", "const", "format", "maxLength")
# Where JSON Schema 2020-12 holds subschemas: the value of these keywords is one ...
_ONE_SCHEMA = frozenset(
    {"items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames"}
    | {"unevaluatedItems", "unevaluatedProperties"}
)
# ... each value of these mappings is one ...
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "dependentSchemas"})
# ... and each element of these lists is one.
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})


@lru_cache(maxsize=256)
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled with ECMA-262's end anchor: an unescaped `$` outside `[...]` is `\\Z`."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # As in Python's parser: a `]` right after `[` or `[^` is a literal, not the end.
            j = i + 1 + (pattern[i + 1 : i + 2] == "^")
            if pattern[j : j + 1] == "]":
                out.append(pattern[i : j + 1])
                i = j + 1
                continue
        elif char == "$":
            out.append(r"\Z")
            i += 1
            continue
        out.append(char)
        i += 1
    return re.compile("".join(out), re.ASCII)


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _dns_name(validator: Any, marked: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if marked is True and validator.is_type(instance, "string"):
        problem = domains.problem_with_name(instance)
        if problem:
            yield ValidationError(f"{instance!r} is not a DNS name: it {problem}")


ParameterValidator = jsonschema.validators.extend(Draft202012Validator, {"pattern": _pattern, DNS_NAME: _dns_name})


def _email_checker(*, smtputf8: bool) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        if isinstance(value, str):
            problem = _email_problem(value, smtputf8) if len(value) <= _LONGEST_EMAIL else _email_check(value, smtputf8)
            if problem is not None:
                raise email_validator.EmailNotValidError(problem)
        return True

    return check


# No address is longer (RFC 3696 errata 1690); a longer string is checked, never remembered.
_LONGEST_EMAIL = 254


def _email_check(value: str, smtputf8: bool) -> str | None:
    """Why `value` is not an e-mail address, or None."""
    try:
        # No deliverability check: that is a DNS query per order, and the mail domain may not
        # exist yet (an e-mail offering creates it).
        email_validator.validate_email(value, check_deliverability=False, allow_smtputf8=smtputf8)
    except email_validator.EmailNotValidError as error:
        return str(error)
    return None


# The same addresses come back order after order (a ministry's webmaster), and the check's IDNA
# walk is a seventh of an order's CPU: answers are remembered, for short strings only.
_email_problem = lru_cache(maxsize=4096)(_email_check)


def _format_checker() -> FormatChecker:
    checker = FormatChecker()
    # `email` is ASCII, as JSON Schema defines it (RFC 5321); `idn-email` may be internationalised.
    for name, smtputf8 in (("email", False), ("idn-email", True)):
        checker.checks(name, raises=email_validator.EmailNotValidError)(_email_checker(smtputf8=smtputf8))
    return checker


FORMAT_CHECKER = _format_checker()


def validator_for(schema: dict[str, Any]) -> Any:
    return ParameterValidator(schema, format_checker=FORMAT_CHECKER)


# Unicode's Cc (C0 controls: NUL, newline, escape ...; DEL; C1) and Cs (lone surrogates, which
# JSON can carry but UTF-8 and PostgreSQL cannot).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why a string from a user cannot be accepted anywhere in parameters, or None."""
    control = _CONTROL.search(text)
    if control:
        return f"must not contain control characters (found U+{ord(control.group()):04X})"
    found = next((d for d in TEMPLATE_DELIMITERS if d in text), None)
    if found:
        return f"must not contain template delimiters ({found!r})"
    return None


def text_problems(value: Any, path: tuple[str, ...]) -> list[dict[str, str]]:
    """A problem (`field`, `message`) per string in `value` (keys included) that `text_problem` refuses."""
    problems: list[dict[str, str]] = []
    # Iterative: parameters nest as deep as the JSON parser allowed, deeper than Python's stack.
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                problems.append({"field": ".".join(where), "message": problem})
        elif isinstance(item, dict):
            for key, sub in item.items():
                problem = text_problem(str(key))
                if problem:
                    problems.append({"field": ".".join(where), "message": f"a key {problem}"})
                    continue
                stack.append((sub, (*where, str(key))))
        elif isinstance(item, list):
            stack.extend((sub, (*where, str(i))) for i, sub in enumerate(item))
    return sorted(problems, key=lambda p: p["field"])


def dns_names(schema: dict[str, Any], instance: Any, path: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(field, name) for every string in `instance` whose schema is marked `x-tonle-dns-name`.

    Follows `properties` and `items`; the loader refuses the marker anywhere else, so no marked
    value is missed.
    """
    found: list[tuple[str, str]] = []
    if schema.get(DNS_NAME) is True and isinstance(instance, str):
        found.append((".".join(path), instance))
    if isinstance(instance, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in instance and isinstance(sub, dict):
                found.extend(dns_names(sub, instance[key], (*path, key)))
    items = schema.get("items")
    if isinstance(instance, list) and isinstance(items, dict):
        for index, item in enumerate(instance):
            found.extend(dns_names(items, item, (*path, str(index))))
    return found


def schema_problems(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, why) for each place the parameter schema is not guarded as the rules above need."""
    problems: list[tuple[str, str]] = []
    _walk(schema, (), problems)
    return problems


def _walk(node: Any, where: tuple[str, ...], problems: list[tuple[str, str]]) -> None:
    if isinstance(node, list):
        for index, item in enumerate(node):
            _walk(item, (*where, str(index)), problems)
        return
    if not isinstance(node, dict):
        return
    parent, grandparent = (where[-1:] or ("",))[0], (where[-2:-1] or ("",))[0]
    is_schema = not where or parent in _ONE_SCHEMA or grandparent in _SCHEMA_MAPS or grandparent in _SCHEMA_LISTS
    if is_schema:
        _check_subschema(node, where, problems)
    for key, value in node.items():
        if key in _DATA_KEYWORDS and is_schema:
            continue
        _walk(value, (*where, str(key)), problems)


def _check_subschema(node: dict[str, Any], where: tuple[str, ...], problems: list[tuple[str, str]]) -> None:
    def add(key: str, why: str) -> None:
        problems.append((".".join((*where, key)), why))

    types = node.get("type")
    is_string = types == "string" or (isinstance(types, list) and "string" in types)
    if is_string and not any(guard in node for guard in _STRING_GUARDS):
        add("type", f"a string parameter needs one of {', '.join(_STRING_GUARDS)}, so it is never unbounded")
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        if not (pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$")):
            add("pattern", "anchor the pattern at both ends (^...$): it must describe the whole value")
        else:
            try:
                ecma_regex(pattern)
            except re.error as exc:
                add("pattern", f"not a regular expression Python can use: {exc}")
    if DNS_NAME in node:
        if not isinstance(node[DNS_NAME], bool):
            add(DNS_NAME, "must be true or false")
        elif node[DNS_NAME] and not is_string:
            add(DNS_NAME, "only a string parameter can name DNS")
        elif node[DNS_NAME] and not _dns_reachable(where):
            add(DNS_NAME, "only under `properties` and `items` (so every marked value is checked)")


def _dns_reachable(where: tuple[str, ...]) -> bool:
    i = 0
    while i < len(where):
        if where[i] == "properties" and i + 1 < len(where):
            i += 2
        elif where[i] == "items":
            i += 1
        else:
            return False
    return True
