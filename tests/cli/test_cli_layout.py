"""The cli package's shape: no import cycles between its modules, none over ~400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import grok_scheduler.cli

CLI = Path(grok_scheduler.cli.__file__).parent


def _sibling_imports(path: Path) -> set[str]:
    """Sibling cli modules ``path`` imports anywhere (``from . import x`` means ``__init__``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.add(node.module or "__init__")
    return found


def test_cli_modules_import_each_other_without_cycles() -> None:
    """Following imports (even those inside functions) from a cli module never leads back."""
    graph = {path.stem: _sibling_imports(path) for path in CLI.glob("*.py")}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for name in graph.get(start, ()):
            if name == target or (name not in seen and reaches(name, target, seen | {name})):
                return True
        return False

    assert "_demo" in graph["__init__"] and "_run" in graph["__init__"]
    for name in graph:
        assert not reaches(name, name, {name}), f"{name} imports itself through a cycle"


def test_cli_modules_stay_small() -> None:
    """Every cli module stays around 400 lines or under."""
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in CLI.glob("*.py")}
    assert max(sizes.values()) <= 420, sizes
