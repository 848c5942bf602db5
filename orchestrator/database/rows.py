"""New rows written as plain statements (the hot paths), with the same defaults as the models."""

from typing import Any

from pydantic_core import PydanticUndefined
from sqlmodel import SQLModel


def new_row(model: type[SQLModel], **given: Any) -> dict[str, Any]:
    """Every column of a new `model` row: the values given, the model's own defaults for the rest
    (factories called), so a column added to the model later is never silently left out."""
    row: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name in given:
            row[name] = given.pop(name)
        elif field.default_factory is not None:
            row[name] = field.default_factory()  # type: ignore[call-arg]
        elif field.default is not PydanticUndefined:
            row[name] = field.default
        else:
            raise TypeError(f"{model.__name__}.{name} has no default and no value was given")
    if given:
        raise TypeError(f"{model.__name__} has no column {', '.join(sorted(given))}")
    return row
