"""The optional parts of the data centre, `devcloud.machines`, `devcloud.dns` and `devcloud.dcim`."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any


def optional(name: str) -> ModuleType | None:
    """`devcloud.machines` / `devcloud.dns`, if that part exists and is not switched off
    with `DEVCLOUD_WITHOUT=machines,dns,dcim` (to debug the OpenStack services alone)."""
    without = {p.strip() for p in os.environ.get("DEVCLOUD_WITHOUT", "").split(",")}
    if name.rsplit(".", 1)[-1] in without:
        return None
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def hook(module: ModuleType | None, name: str) -> Callable[..., Any] | None:
    fn = getattr(module, name, None) if module else None
    return fn if callable(fn) else None
