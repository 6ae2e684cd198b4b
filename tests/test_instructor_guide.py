"""The instructor guide and the README stay true to the code: their Python solutions use
names the package has, and their command lines parse with the CLI's own parser."""

from __future__ import annotations

import ast
import importlib
import re
import shlex
from pathlib import Path

import pytest

from course_utils import cli

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "instructor_guide.md"
DOCS = [GUIDE, REPO / "README.md"]
#: How the notebooks (and so the guide's solutions) name the package's modules.
MODULES = {
    "app": "course_utils.app",
    "audit": "course_utils.data.audit",
    "cards": "course_utils.cards",
    "course": "course_utils.course",
    "demo": "course_utils.demo",
    "evaluate": "course_utils.evaluate",
    "explain": "course_utils.explain",
    "explore": "course_utils.data.explore",
    "lessons": "course_utils.lessons",
    "llm": "course_utils.llm",
    "measure": "course_utils.measure",
    "metrics": "course_utils.metrics",
    "model_card": "course_utils.model_card",
    "models": "course_utils.models",
    "phantom_dataset": "course_utils.data.phantom_dataset",
    "phantoms": "course_utils.data.phantoms",
    "pipeline": "course_utils.data.pipeline",
    "predict": "course_utils.predict",
    "quiz": "course_utils.quiz",
    "quiz_drill": "course_utils.quiz_drill",
    "quiz_widget": "course_utils.quiz_widget",
    "render": "course_utils.render",
    "run_summary": "course_utils.data.run_summary",
    "sources": "course_utils.data.sources",
    "splits": "course_utils.data.splits",
    "train": "course_utils.train",
    "viz": "course_utils.viz",
}


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)


def _python_blocks() -> list[str]:
    return [block for block in _blocks(GUIDE, "python") if "<<'EOF'" not in block]


def _cli_lines() -> list[str]:
    """Every documented ``python -m course_utils`` command, continuation lines joined."""
    lines = []
    for path in DOCS:
        for block in _blocks(path, "bash"):
            joined = re.sub(r"\\\n\s*", " ", block)
            lines += [
                line.split("#", 1)[0].strip()
                for line in joined.splitlines()
                if line.strip().startswith("python -m course_utils ")
            ]
    return lines


def _argv(command: str) -> list[str]:
    """The arguments after ``python -m course_utils``, ready to parse.

    ``[optional]`` parts are kept, the first of ``a|b|c`` alternatives is taken,
    ``$VARS`` and ``...`` become a word and one-letter metavariables (``N``) a number.
    """
    command = re.sub(r"\[([^\]]*)\]", r"\1", command)
    command = re.sub(r"(\S+?)\|\S+", r"\1", command)
    words = [re.sub(r"\$\w+|\.\.\.", "X", word) for word in shlex.split(command)]
    return [re.sub(r"^[A-Z]$", "1", word) for word in words][3:]  # N, S, K: numbers


def test_the_guide_has_solutions_and_no_placeholders() -> None:
    text = GUIDE.read_text()
    assert "@@" not in text, "a measured figure was never filled in"
    assert len(_python_blocks()) >= 10
    for number in ("01", "02", "03", "04", "05"):
        exercises = re.findall(rf"\*{number}-[A-Z]\. ", text)
        assert len(exercises) >= 2, f"lesson {number} needs at least two exercises"
    assert text.count("<summary>Solution</summary>") >= 10


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_solution_code_uses_names_the_package_has(index: int) -> None:
    tree = ast.parse(_python_blocks()[index])  # also: it is valid Python
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = MODULES.get(node.value.id)
            if module:
                assert hasattr(importlib.import_module(module), node.attr), (
                    f"{node.value.id}.{node.attr} no longer exists (guide block {index})"
                )


@pytest.mark.parametrize("command", _cli_lines())
def test_documented_commands_parse(command: str) -> None:
    arguments = cli.build_parser().parse_args(_argv(command))
    assert callable(arguments.handler)


def test_documented_commands_cover_the_cli() -> None:
    used = {shlex.split(line)[3] for line in _cli_lines()}
    assert {"data", "train", "evaluate", "predict", "card", "quiz", "demo"} <= used
