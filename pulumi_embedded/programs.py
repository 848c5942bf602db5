"""Finding a stack's Pulumi program by name."""

import importlib
from collections.abc import Callable

from pulumi_embedded.types import OperationFailed

Program = Callable[[], None]
ProgramLoader = Callable[[str], Program]


def module_programs(package: str) -> ProgramLoader:
    """A loader for programs kept one module each in `package`: name `x` is `<package>.x.program`."""

    def load(name: str) -> Program:
        try:
            module = importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name in (f"{package}.{name}", package):
                raise OperationFailed(f"stack program {name!r} does not exist (no module {package}.{name})") from exc
            raise OperationFailed(f"stack program {name!r} cannot be loaded: {exc}") from exc
        program = getattr(module, "program", None)
        if not callable(program):
            raise OperationFailed(f"stack program {package}.{name} defines no program() function")
        return program

    return load
