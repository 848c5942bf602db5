"""`pulumi_embedded` is a package of its own: nothing in it imports `orchestrator`."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "pulumi_embedded"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args:
            # importlib.import_module("...") with a literal (or an f-string's leading literal).
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
            elif isinstance(first, ast.JoinedStr) and first.values and isinstance(first.values[0], ast.Constant):
                names.add(str(first.values[0].value))
    return names


def test_no_module_of_the_package_imports_orchestrator() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20  # the engine and its OpenStack layer, not an empty directory
    offenders = {
        str(path.relative_to(REPO)): sorted(n for n in _imported_modules(path) if n.split(".")[0] == "orchestrator")
        for path in modules
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_every_module_of_the_package_imports_with_orchestrator_unimportable() -> None:
    """In a fresh interpreter where `import orchestrator` fails, every module still imports."""
    modules = [
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in sorted(PACKAGE.rglob("*.py"))
    ]
    script = (
        "import importlib, sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'orchestrator' or name.startswith('orchestrator.'):\n"
        "            raise ImportError(f'{name} must not be imported by pulumi_embedded')\n"
        "sys.meta_path.insert(0, Refuse())\n"
        f"names = {modules!r}\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'orchestrator'], 'orchestrator was imported'\n"
        "print('imported', len(names))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"imported {len(modules)}"
