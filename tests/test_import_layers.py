"""Imports of every module of the package: no circle, no upward import.

The imports are read from the source (module level and inside functions; those under
``if TYPE_CHECKING:`` are for annotations only and left out), so a lazy import that closes
a circle fails as well as an eager one.  The layers are DESIGN.md's, bottom to top.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "simbench"

# bottom to top; a module may import its own layer and the ones below
LAYERS = [
    (
        "simbench.errors",
        "simbench._version",
        "simbench._jit",
        "simbench._link_only",
        "simbench._threads",
    ),
    ("simbench._validation",),
    ("simbench._registry", "simbench._domains"),
    ("simbench.kernels",),
    (
        "simbench.families",
        "simbench.links",
        "simbench.losses",
        "simbench.activations",
        "simbench.optimizers",
    ),
    (
        "simbench.data",
        "simbench.design",
        "simbench.truth",
        "simbench.sampling",
        "simbench.columns",
        "simbench.expression",
    ),
    ("simbench.fit",),
    ("simbench.metrics",),
    ("simbench.sweep",),
    ("simbench.report",),
    ("simbench.cli", "simbench.__main__", "simbench"),
]

# every module of the package is held to the rules
CHECKED = ("simbench",)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip |= {id(n) for n in ast.walk(child)}
    return skip


def _owner(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@functools.cache
def imports_of(module: str) -> frozenset[str]:
    """The simbench modules that ``module`` imports (at any depth of its code)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names = [f"{base}.{a.name}" for a in node.names]
        for name in names:
            owner = _owner(name)
            if owner is not None and owner != module:
                out.add(owner)
    return frozenset(out)


def _layer(module: str) -> int:
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"{module} is in no layer of this test"
    return best[0]


def _checked(module: str) -> bool:
    return any(module == c or module.startswith(c + ".") for c in CHECKED)


CHECKED_MODULES = sorted(m for m in MODULES if _checked(m))


@pytest.mark.parametrize("module", CHECKED_MODULES)
def test_no_upward_import(module):
    upward = sorted(m for m in imports_of(module) if _layer(m) > _layer(module))
    assert not upward, f"{module} imports from above its layer: {upward}"


def _cycle_through(start: str) -> list[str] | None:
    """A path start -> ... -> start through the import graph, if there is one."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in imports_of(node):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


@pytest.mark.parametrize("module", CHECKED_MODULES)
def test_no_import_circle(module):
    cycle = _cycle_through(module)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_reader_sees_lazy_imports_and_skips_annotations():
    # truth imports data only for annotations; the report modules import lazily inside
    # functions, which the reader must see
    assert "simbench.data" not in imports_of("simbench.truth")
    assert "simbench.design" in imports_of("simbench.truth")
    assert "simbench.metrics" in imports_of("simbench.report.frame")  # inside a function
    assert "simbench.report.markdown" in imports_of("simbench.report.crossover")
    # and the circle finder finds a circle where there is one
    assert _cycle_through("simbench.report.summary") is None
    assert _layer("simbench.report.summary") > _layer("simbench.sweep.store")
