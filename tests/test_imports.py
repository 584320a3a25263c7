"""Every `from core... import name` in the code, lazy ones inside functions included, names
something that exists where it is imported from: a moved function fails here, not when a rarely
taken path runs, and nothing is imported through a module that only imports it itself."""

from __future__ import annotations

import ast
import importlib
import inspect

from tests.conftest import REPO

FOLDERS = ("core", "dashboard", "pages", "benchmarks", "tests")


def core_imports() -> list[tuple[str, str, str]]:
    """(where, module, name) for each `from core[.x] import name`; name "" for `import core.x`."""
    found = []
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            where = str(path.relative_to(REPO))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.level == 0
                    and (node.module or "").split(".")[0] == "core"
                ):
                    found += [(f"{where}:{node.lineno}", node.module, alias.name) for alias in node.names]
                elif isinstance(node, ast.Import):
                    found += [
                        (f"{where}:{node.lineno}", alias.name, "")
                        for alias in node.names
                        if alias.name.split(".")[0] == "core"
                    ]
    return found


def test_every_core_import_resolves_to_where_the_name_is_defined():
    missing, passed_on = [], []
    for where, module, name in core_imports():
        target = importlib.import_module(module)
        if not name:
            continue
        if not hasattr(target, name):
            try:
                importlib.import_module(f"{module}.{name}")  # a submodule: `from core import train`
            except ModuleNotFoundError:
                missing.append(f"{where}: {module}.{name}")
            continue
        home = getattr(getattr(target, name), "__module__", None)
        is_package = hasattr(target, "__path__")  # a package's __init__ may expose its API
        if inspect.isfunction(getattr(target, name)) or inspect.isclass(getattr(target, name)):
            if home != module and not is_package and (home or "").startswith("core"):
                passed_on.append(f"{where}: {module}.{name} (defined in {home})")
    assert not missing, "imports of names that do not exist:\n" + "\n".join(missing)
    assert not passed_on, "imports through a module that only imports the name:\n" + "\n".join(passed_on)
