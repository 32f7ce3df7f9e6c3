"""The layout's import rules, read from the package source with ``ast`` (nothing is imported).

(a) Nothing under ``_core/``, ``_limits/``, ``_wire/``, ``_guards/`` imports aiohttp, structlog,
    rich, anyio or ``grok_scheduler.cli``. (b) Nothing under ``simulator/`` imports any other part
    of ``grok_scheduler``. (c) No import cycles between the package's modules. (d) No module is
    over 450 lines.

Every import statement counts wherever it is written: at module level, inside a function, and
under ``if TYPE_CHECKING:``. Type-only imports count for (a) because a layer that names a type
from aiohttp is coupled to aiohttp, and for (c) because a cycle kept alive only by type hints is
still two modules that cannot be understood apart. Imports built at run time
(``importlib.import_module``) are not seen.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "grok_scheduler"
SOURCE_ROOT = Path(__file__).resolve().parents[1]  # the checkout under test, not site-packages

INNER_LAYERS = ("_core", "_limits", "_wire", "_guards")
INNER_FORBIDDEN = ("aiohttp", "structlog", "rich", "anyio", f"{PACKAGE}.cli")
MAX_LINES = 450


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to an absolute dotted name."""

    module: str  # the importing module
    path: str  # its file, relative to the source root
    line: int
    target: str  # absolute: 'aiohttp.web', 'grok_scheduler._errors', ...
    statement: str  # the statement as written
    type_checking: bool  # written under `if TYPE_CHECKING:`

    def describe(self) -> str:
        where = " (under TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.path}:{self.line}{where}: {self.statement}"


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST, type_checking: bool = False) -> Iterator[tuple[ast.stmt, bool]]:
    """Every import statement in the tree, at any depth, with whether it is type-only."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, type_checking
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from _statements(ast.Module(body=[child], type_ignores=[]), True)
            for child in node.orelse:
                yield from _statements(ast.Module(body=[child], type_ignores=[]), type_checking)
        elif isinstance(node, ast.stmt | ast.excepthandler | ast.match_case):
            # Only these hold statements (an expression never holds an import): walking every
            # expression node too made the walk several times slower for nothing.
            yield from _statements(node, type_checking)


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def _source_segment(lines: list[str], node: ast.stmt) -> str | None:
    """``ast.get_source_segment`` on lines split once per file (it splits the whole source
    again, character by character, for every statement: most of this checker's time)."""
    if node.end_lineno is None or node.end_col_offset is None:
        return None
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first].encode()[node.col_offset : node.end_col_offset].decode()
    head = lines[first].encode()[node.col_offset :].decode()
    tail = lines[last].encode()[: node.end_col_offset].decode()
    return head + "".join(lines[first + 1 : last]) + tail


def imports(root: Path) -> list[Import]:
    """Every import in the package, with relative imports resolved against their module."""
    known = modules(root)
    found: list[Import] = []
    for name, path in known.items():
        source = path.read_text(encoding="utf-8")
        is_package = path.name == "__init__.py"
        lines = _LINE.findall(source)  # split as ast splits: on \r\n, \r and \n only
        for node, type_checking in _statements(ast.parse(source, str(path))):
            statement = _source_segment(lines, node) or ast.dump(node)
            statement = " ".join(statement.split())
            for target in _targets(node, name, is_package, known):
                found.append(
                    Import(
                        module=name,
                        path=str(path.relative_to(root)),
                        line=node.lineno,
                        target=target,
                        statement=statement,
                        type_checking=type_checking,
                    )
                )
    return found


def _targets(node: ast.stmt, module: str, is_package: bool, known: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        # `from . import x` in a package's __init__ is relative to the package itself.
        anchor = module.split(".")
        if not is_package:
            anchor.pop()
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    # `from pkg import name` imports the submodule pkg.name when there is one.
    targets = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
    if len(targets) < len(node.names):
        targets.append(base)
    return targets


def _owner(target: str, known: dict[str, Path]) -> str | None:
    """The package module a target lives in (its longest known prefix), or None if external."""
    parts = target.split(".")
    while parts:
        if ".".join(parts) in known:
            return ".".join(parts)
        parts.pop()
    return None


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def inner_layer_violations(root: Path) -> list[str]:
    """Rule (a): inner layers import none of the I/O, logging, UI libraries nor the CLI."""
    layers = [f"{PACKAGE}.{layer}" for layer in INNER_LAYERS]
    return [
        f"{item.module} imports {item.target}: {item.describe()}"
        for item in imports(root)
        if any(_under(item.module, layer) for layer in layers)
        and any(_under(item.target, banned) for banned in INNER_FORBIDDEN)
    ]


def simulator_violations(root: Path) -> list[str]:
    """Rule (b): the simulator imports nothing of the client package."""
    simulator = f"{PACKAGE}.simulator"
    return [
        f"{item.module} imports {item.target}: {item.describe()}"
        for item in imports(root)
        if _under(item.module, simulator)
        and _under(item.target, PACKAGE)
        and not _under(item.target, simulator)
    ]


def import_graph(root: Path) -> dict[str, dict[str, list[Import]]]:
    """Module -> imported package module -> the statements that import it."""
    known = modules(root)
    graph: dict[str, dict[str, list[Import]]] = {name: {} for name in known}
    for item in imports(root):
        owner = _owner(item.target, known)
        if owner is not None and owner != item.module:
            graph[item.module].setdefault(owner, []).append(item)
    return graph


def _strongly_connected(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so a deep package cannot hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def cycle_violations(root: Path) -> list[str]:
    """Rule (c): each group of modules that import each other, with the imports that close it."""
    graph = import_graph(root)
    found: list[str] = []
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        members = set(component)
        edges = [
            f"    {module} -> {target}: {item.describe()}"
            for module in component
            for target, items in sorted(graph[module].items())
            if target in members
            for item in items
        ]
        found.append(f"import cycle among {', '.join(component)}:\n" + "\n".join(edges))
    return found


def size_violations(root: Path) -> list[str]:
    """Rule (d): no module over MAX_LINES lines."""
    found = []
    for name, path in modules(root).items():
        count = len(path.read_text(encoding="utf-8").splitlines())
        if count > MAX_LINES:
            found.append(f"{name} ({path.relative_to(root)}) has {count} lines (> {MAX_LINES})")
    return found


def _report(rule: str, violations: list[str]) -> str:
    return f"{rule}:\n" + "\n".join(f"  {v}" for v in violations)


# --------------------------------------------------------------------------- the package


def test_inner_layers_import_no_io_logging_ui_or_cli() -> None:
    """_core, _limits, _wire and _guards import no aiohttp, structlog, rich, anyio or cli."""
    violations = inner_layer_violations(SOURCE_ROOT)
    assert not violations, _report("forbidden imports in an inner layer", violations)


def test_simulator_imports_nothing_of_the_client() -> None:
    """The simulator stands alone: it imports no other part of grok_scheduler."""
    violations = simulator_violations(SOURCE_ROOT)
    assert not violations, _report("the simulator imports the client", violations)


def test_no_import_cycles() -> None:
    """No two modules of the package import each other, directly or around a loop."""
    violations = cycle_violations(SOURCE_ROOT)
    assert not violations, _report("import cycles", violations)


def test_no_module_over_450_lines() -> None:
    """Every module stays small enough to hold one concept."""
    violations = size_violations(SOURCE_ROOT)
    assert not violations, _report("modules too long", violations)


def test_the_checker_sees_the_real_package() -> None:
    """The rules read real source: known modules and imports are found, so they cannot pass
    on an empty walk."""
    known = modules(SOURCE_ROOT)
    assert {PACKAGE, f"{PACKAGE}._core._queue", f"{PACKAGE}.simulator._server"} <= set(known)
    graph = import_graph(SOURCE_ROOT)
    assert f"{PACKAGE}._errors" in graph[PACKAGE]
    assert f"{PACKAGE}._core._job" in graph[f"{PACKAGE}._core._queue"]  # under TYPE_CHECKING
    targets = {item.target for item in imports(SOURCE_ROOT)}
    assert "aiohttp" in targets or any(t.startswith("aiohttp.") for t in targets)


# --------------------------------------------------------------------------- the checker itself


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_flags_a_synthetic_bad_package(tmp_path: Path) -> None:
    """Each rule flags a planted offender, naming the module and the import."""
    _write(
        tmp_path,
        {
            "__init__.py": "",
            "_errors.py": "",
            "cli/__init__.py": "",
            "_core/__init__.py": "",
            "_core/_engine.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from structlog import BoundLogger\n"
                "def f():\n    import aiohttp.web\n"
            ),
            "_wire/__init__.py": "",
            "_wire/_wired.py": "from ..cli import main\nfrom grok_scheduler import cli\n",
            "simulator/__init__.py": "",
            "simulator/_sim.py": "from .._errors import APIError\n",
            "_a.py": "from . import _b\n",
            "_b.py": "def f():\n    from ._a import x\n",
            "_big.py": "x = 1\n" * (MAX_LINES + 1),
        },
    )
    inner = "\n".join(inner_layer_violations(tmp_path))
    assert "grok_scheduler._core._engine imports aiohttp.web" in inner
    assert "grok_scheduler/_core/_engine.py:5: import aiohttp.web" in inner
    assert "grok_scheduler._core._engine imports structlog" in inner
    assert "(under TYPE_CHECKING): from structlog import BoundLogger" in inner
    assert "grok_scheduler._wire._wired imports grok_scheduler.cli: " in inner
    assert "from ..cli import main" in inner and "from grok_scheduler import cli" in inner
    assert len(inner_layer_violations(tmp_path)) == 4

    (simulator,) = simulator_violations(tmp_path)
    assert simulator.startswith("grok_scheduler.simulator._sim imports grok_scheduler._errors")
    assert "from .._errors import APIError" in simulator

    (cycle,) = cycle_violations(tmp_path)
    assert "import cycle among grok_scheduler._a, grok_scheduler._b" in cycle
    assert "grok_scheduler/_a.py:1: from . import _b" in cycle
    assert "grok_scheduler/_b.py:2: from ._a import x" in cycle

    (size,) = size_violations(tmp_path)
    assert size.startswith(
        f"grok_scheduler._big (grok_scheduler/_big.py) has {MAX_LINES + 1} lines"
    )


def test_the_checker_passes_a_synthetic_clean_package(tmp_path: Path) -> None:
    """Allowed shapes are not flagged: a one-way chain, the simulator importing itself, a
    package __init__ re-exporting its own submodule, a module of exactly MAX_LINES lines."""
    _write(
        tmp_path,
        {
            "__init__.py": "from ._core._engine import run\n",
            "_core/__init__.py": "from . import _engine\n",
            "_core/_engine.py": "import json\nfrom .._errors import APIError\n",
            "_errors.py": "x = 1\n" * MAX_LINES,
            "simulator/__init__.py": "from ._server import Simulator\n",
            "simulator/_server.py": "from aiohttp import web\nfrom . import _limits\n",
            "simulator/_limits.py": "from grok_scheduler.simulator import _config as c\n",
            "simulator/_config.py": "",
        },
    )
    assert inner_layer_violations(tmp_path) == []
    assert simulator_violations(tmp_path) == []
    assert size_violations(tmp_path) == []
    assert cycle_violations(tmp_path) == []
