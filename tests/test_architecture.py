"""Package architecture: no import circle, no module over 600 lines, TensorFlow only if needed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "course_utils"
MAX_LINES = 600


#: Modules that must load without TensorFlow or Keras (the card command, metrics, cards).
LIGHT_MODULES = (
    "course_utils.metrics",
    "course_utils.cards",
    "course_utils.model_card",
    "course_utils.run_times",
    "course_utils.cli",
)


def module_name(path: Path) -> str:
    """Return the dotted module name of a file of the package (packages by their folder)."""
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    """Map every module of ``course_utils`` to its file."""
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """Resolve a (possibly relative) ``from X import`` to an absolute module name."""
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(path: Path, known: set[str], importer: str | None = None) -> set[str]:
    """Return the package modules a file imports anywhere (module level or in functions).

    ``from course_utils import x`` and ``from course_utils.data import x`` count as imports
    of the module ``x`` when it is one; ``from course_utils.x import y`` as an import of
    ``course_utils.x`` (or of ``course_utils.x.y`` when that is a module).
    """
    importer = importer or module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, importer, path.name == "__init__.py")
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in known:
                    found.add(submodule)
                elif source in known:
                    found.add(source)
    found.discard(importer)
    return found


def import_graph() -> dict[str, set[str]]:
    """Return ``{module: modules it imports}`` for the whole package, packages excluded.

    A package's ``__init__`` is left out as a target: importing ``course_utils.x`` runs
    ``course_utils/__init__.py``, which must stay free of imports of its own (checked below).
    """
    modules = package_modules()
    known = set(modules)
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}
    return {
        name: imported_modules(path, known) - packages - {name} for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import circle as ``[a, b, ..., a]``, or None when there is none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


# ------------------------------------------------------------------------------- tests


def test_find_cycle_names_the_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_imported_modules_sees_every_import_form(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "import course_utils.config\n"
        "from course_utils import course\n"
        "from course_utils.data import splits\n"
        "from course_utils.quiz import Question\n"
        "from . import render\n"
        "import numpy\n"
        "def later():\n"
        "    from course_utils.data.phantoms import render_phantom\n"
    )
    known = {
        "course_utils",
        "course_utils.config",
        "course_utils.course",
        "course_utils.data",
        "course_utils.data.splits",
        "course_utils.data.phantoms",
        "course_utils.quiz",
        "course_utils.render",
    }
    assert imported_modules(source, known, importer="course_utils.example") == {
        "course_utils.config",
        "course_utils.course",
        "course_utils.data.splits",
        "course_utils.quiz",
        "course_utils.render",
        "course_utils.data.phantoms",
    }


def test_no_import_circle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_package_inits_import_nothing_from_the_package() -> None:
    modules = package_modules()
    for path in modules.values():
        if path.name == "__init__.py":
            assert not imported_modules(path, set(modules)), f"{path} imports package modules"


def test_no_module_over_600_lines() -> None:
    too_long = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            too_long[str(path.relative_to(PACKAGE_DIR.parent))] = lines
    assert not too_long, f"modules over {MAX_LINES} lines (split them by concern): {too_long}"


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_light_modules_load_no_tensorflow(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]", f"importing {module} loads {result.stdout.strip()}"


def test_card_command_loads_no_tensorflow() -> None:
    code = (
        "import runpy, sys\n"
        "sys.argv = ['course_utils', 'card', '--help']\n"
        "try:\n"
        "    runpy.run_module('course_utils', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout and "card" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout[-500:]
