"""The package's architecture as a test: imports flow one way, and sit at module top.

Layers, lowest first; a module may import its own package and any layer below it:

    errors, faults, machine -> io, archives, constants, clock, quiet, freshness -> viz -> models
    -> saving -> data -> training -> retrieval -> evaluation -> experiments, notebooks -> cli

An import inside a function needs a ``# lazy:`` comment saying why (on its line or on
the comment line just above the import block).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rol_hashing"

# Each entry: the top-level parts (module or subpackage names) of one layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "faults", "machine"),
    ("io", "archives", "constants", "clock", "quiet"),
    ("viz", "freshness"),
    ("models",),
    ("saving",),
    ("data",),
    ("training",),
    ("retrieval",),
    ("evaluation",),
    ("experiments", "notebooks", "serve"),
    ("cli",),
    ("__main__",),
)
LEVEL = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _part(path: Path) -> str | None:
    """The layer part of a module file (``models`` for models/vgg.py); None for the
    package's own ``__init__.py``."""
    rel = path.relative_to(PACKAGE)
    if rel.parts == ("__init__.py",):
        return None
    return rel.parts[0].removesuffix(".py")


def _imported_part(name: str) -> str | None:
    """``models`` for ``rol_hashing.models.vgg``; None for other packages and for the
    package root itself (``rol_hashing.__version__``)."""
    parts = name.split(".")
    if parts[0] != "rol_hashing" or len(parts) == 1 or parts[1] not in LEVEL:
        return None
    return parts[1]


def _imports(tree: ast.Module) -> list[tuple[ast.stmt, list[str]]]:
    """Every import statement with the module names it reads (``from rol_hashing import
    viz`` reads ``rol_hashing.viz``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.append((node, [a.name for a in node.names]))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "rol_hashing":
                found.append((node, [f"rol_hashing.{a.name}" for a in node.names]))
            else:
                found.append((node, [node.module]))
    return found


def _function_import_lines(tree: ast.Module) -> set[int]:
    """First lines of the imports inside functions (``if TYPE_CHECKING:`` ones excluded)."""
    lines: set[int] = set()
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    lines.add(node.lineno)
    return lines


def test_every_module_belongs_to_a_layer():
    unknown = {_part(p) for p in _modules()} - set(LEVEL) - {None}
    assert not unknown, f"add these to LAYERS in tests/test_import_layers.py: {sorted(unknown)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_down(path):
    own = _part(path)
    if own is None:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    upward = []
    for node, names in _imports(tree):
        for name in names:
            other = _imported_part(name)
            if other is None or other == own:
                continue
            if LEVEL[other] >= LEVEL[own]:
                upward.append(f"line {node.lineno}: {name} ({other} is not below {own})")
    assert not upward, "upward or sideways imports:\n" + "\n".join(upward)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_sit_at_module_top_unless_marked_lazy(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    inside = _function_import_lines(tree)
    unmarked = []
    for node, _ in _imports(tree):
        if node.lineno not in inside:
            continue
        # the import's own lines, then upwards through its import block and comments
        marked = any("lazy:" in lines[i] for i in range(node.lineno - 1, node.end_lineno))
        i = node.lineno - 2
        while not marked and i >= 0:
            text = lines[i].strip()
            if "lazy:" in text:
                marked = True
            elif not (text.startswith(("#", "import ", "from ")) or text == ""):
                break
            i -= 1
        if not marked:
            unmarked.append(f"line {node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not unmarked, "imports inside functions without a '# lazy:' reason:\n" + "\n".join(
        unmarked
    )


def test_the_layer_rule_catches_an_upward_import(tmp_path):
    """The checker itself: a training module importing evaluation is reported."""
    tree = ast.parse("from rol_hashing.evaluation.map import ranking_metrics\n")
    (node, names), *_ = _imports(tree)
    assert LEVEL[_imported_part(names[0])] > LEVEL["training"]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def test_no_import_cycle_between_modules():
    """No module reaches itself through module-level imports (``if TYPE_CHECKING:``
    ones included; the lazy imports inside functions excluded): e.g. the circle
    generated -> splits -> registry -> generated of issue 23."""
    names = {_module_name(p): p for p in _modules()}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside = _function_import_lines(tree)
        targets = set()
        for node, imported in _imports(tree):
            if node.lineno in inside:
                continue
            if isinstance(node, ast.ImportFrom):  # `from pkg import submodule` reads pkg.submodule
                subs = [f"{node.module}.{a.name}" for a in node.names]
                imported = [t for t in subs if t in names] or imported
            for target in imported:
                while target and target not in names:  # a name inside a module
                    target = target.rpartition(".")[0]
                if target and target != name and target != "rol_hashing":
                    targets.add(target)
        graph[name] = targets
    cycles = []

    def visit(node: str, trail: list[str], done: set[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in trail:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in done:
                visit(nxt, [*trail, nxt], done)
        done.add(node)

    finished: set[str] = set()
    for start in sorted(graph):
        if start not in finished:
            visit(start, [start], finished)
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles))[:10])
