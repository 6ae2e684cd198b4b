"""The course's question bank: load it, check it against the notebooks, filter and drill it.

The bank is ``course_utils/questions.yaml`` (``BANK_PATH``): interview and self-check
questions, each tied to a notebook and to a Markdown heading of that notebook, so a learner
who misses one knows exactly where to reread. The logic is pure functions that tests call
directly:

- ``load_questions``: read and validate the bank (clear ``ValueError`` for every mistake);
- ``check_references``: every question's notebook exists and its section is a heading there;
- ``filter_questions``, ``pick_questions``: choose what to drill;
- ``QuizProgress``: which questions a learner knew, saved as JSON.

The terminal drill is ``course_utils.quiz_drill`` and the notebook widget
``course_utils.quiz_widget``; this module never imports ipywidgets.
Nothing happens at import (nbformat is imported when used).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

#: The question groups, in the order the course presents them.
GROUPS = ("conceptual", "technical", "project", "improve")
#: The difficulty levels, easiest first.
DIFFICULTIES = ("easy", "medium", "hard")
#: The packaged question bank (package data next to this module).
BANK_PATH = Path(__file__).resolve().with_name("questions.yaml")
#: The bank format this module reads.
BANK_VERSION = 1
#: Keys every question must have.
REQUIRED_KEYS = ("id", "group", "notebook", "section", "difficulty", "question", "answer")
#: Keys a question may have.
OPTIONAL_KEYS = ("tags",)
#: What a question id looks like: lower-case kebab-case.
ID_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


@dataclasses.dataclass(frozen=True)
class Question:
    """One question of the bank.

    Attributes:
        id: Unique kebab-case id.
        group: One of ``GROUPS``.
        notebook: The lesson, ``"01"`` to ``"05"``.
        section: A Markdown heading of that notebook (without the leading #s).
        difficulty: One of ``DIFFICULTIES``.
        question: The question (Markdown).
        answer: The model answer (Markdown).
        tags: Free keywords.
    """

    id: str
    group: str
    notebook: str
    section: str
    difficulty: str
    question: str
    answer: str
    tags: tuple[str, ...] = ()


# ------------------------------------------------------------------ notebooks


def notebook_names() -> dict[str, str]:
    """Map each lesson number to its notebook name, e.g. ``{"02": "02_transfer", …}``.

    Returns:
        ``{number: name}`` in teaching order (from ``course.NOTEBOOKS``).
    """
    from course_utils import course

    return {name.split("_", 1)[0]: name for name in course.NOTEBOOKS}


def normalize_notebook(value: str | int) -> str:
    """Turn ``"02"``, ``2``, ``"2"``, ``"02_transfer"`` or ``"02_transfer.ipynb"`` into ``"02"``.

    Args:
        value: A lesson number or notebook name.

    Returns:
        The two-digit lesson number.

    Raises:
        ValueError: If the value names no lesson of the course (the message lists them).
    """
    names = notebook_names()
    text = str(value).strip().removesuffix(".ipynb")
    number = text.zfill(2) if text.isdigit() else text
    if number in names:
        return number
    for key, name in names.items():
        if text == name:
            return key
    allowed = ", ".join(f"{key} ({name})" for key, name in names.items())
    raise ValueError(f"Unknown notebook {value!r}; use one of {allowed}.")


def notebook_headings(path: str | Path) -> list[str]:
    """List a notebook's Markdown headings (any level), without the #s, in order.

    Lines inside fenced code blocks of Markdown cells are skipped.

    Args:
        path: The ``.ipynb`` file.

    Returns:
        The heading texts, stripped.

    Raises:
        FileNotFoundError: If the notebook does not exist.
    """
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {path}; check the path or the notebooks folder.")
    headings = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        in_fence = False
        for line in cell.source.splitlines():
            if _FENCE.match(line):
                in_fence = not in_fence
            elif not in_fence and (match := _HEADING.match(line)) and match.group(1).strip():
                headings.append(match.group(1).strip())
    return headings


def check_references(
    questions: Iterable[Question], notebooks_dir: str | Path | None = None
) -> list[str]:
    """Check that each question's notebook exists and its section is a heading there.

    Args:
        questions: The questions (``load_questions``).
        notebooks_dir: The notebooks folder; None means ``course.notebooks_dir()``.

    Returns:
        One human-readable problem per line, each naming the question id and the fix;
        an empty list when every reference is good.
    """
    from course_utils import course

    folder = Path(notebooks_dir) if notebooks_dir is not None else course.notebooks_dir()
    names = notebook_names()
    headings: dict[str, list[str] | None] = {}
    problems = []
    for question in questions:
        path = folder / f"{names[question.notebook]}.ipynb"
        if question.notebook not in headings:
            headings[question.notebook] = notebook_headings(path) if path.is_file() else None
        found = headings[question.notebook]
        if found is None:
            problems.append(
                f"{question.id}: notebook {question.notebook} has no file {path}; restore it "
                "or give the question another notebook."
            )
        elif question.section not in found:
            problems.append(_section_problem(question, path.name, found))
    return problems


def _section_problem(question: Question, notebook: str, headings: list[str]) -> str:
    """Say that a section is not a heading of its notebook, suggesting close matches."""
    close = difflib.get_close_matches(question.section, headings, n=3, cutoff=0.5)
    if close:
        hint = "did you mean " + " or ".join(repr(text) for text in close) + "?"
    else:
        hint = "use the text of one of its headings, e.g. " + ", ".join(
            repr(text) for text in headings[:5]
        )
    return f"{question.id}: section {question.section!r} is not a heading of {notebook}; {hint}"


def reference(question: Question) -> str:
    """Say where to reread for a question.

    Args:
        question: The question.

    Returns:
        E.g. ``Reread: notebook 02 (02_transfer.ipynb), section "5. The learning rate"``.
    """
    name = notebook_names().get(question.notebook, question.notebook)
    return f'Reread: notebook {question.notebook} ({name}.ipynb), section "{question.section}"'


# ----------------------------------------------------------------- loading


def load_questions(path: str | Path | None = None) -> list[Question]:
    """Read and validate a question bank (everything but the notebook headings).

    Args:
        path: The YAML file; None means the packaged bank, ``BANK_PATH``.

    Returns:
        The questions in file order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the YAML is malformed or a question breaks the schema (missing or
            unknown key, bad value, empty text, duplicate id); the message names the
            question and what is allowed.
    """
    path = Path(path) if path is not None else BANK_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"No question bank at {path}; pass the path of a YAML file with `version: 1` and a "
            f"`questions:` list (the course's own bank is {BANK_PATH})."
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"The question bank {path} is not valid YAML: {error}") from error
    entries = _question_entries(document, path)
    questions = [_parse_question(entry, index) for index, entry in enumerate(entries)]
    first_index: dict[str, int] = {}
    for index, question in enumerate(questions):
        if question.id in first_index:
            raise ValueError(
                f"Duplicate question id {question.id!r} (questions #{first_index[question.id] + 1}"
                f" and #{index + 1} in {path}); give each question its own id."
            )
        first_index[question.id] = index
    return questions


def _question_entries(document: Any, path: Path) -> list:
    """Check the bank's top level (``version: 1``, ``questions:`` list) and return the list."""
    if not isinstance(document, dict):
        raise ValueError(
            f"The question bank {path} must be a mapping with `version: {BANK_VERSION}` and "
            f"`questions:`; got {type(document).__name__}."
        )
    unknown = sorted(set(document) - {"version", "questions"})
    if unknown:
        raise ValueError(
            f"Unknown top-level key(s) {unknown} in {path}; only `version` and `questions` "
            "are allowed."
        )
    if document.get("version") != BANK_VERSION:
        raise ValueError(
            f"The question bank {path} has version {document.get('version')!r}; this course "
            f"reads `version: {BANK_VERSION}`."
        )
    entries = document.get("questions")
    if not isinstance(entries, list):
        raise ValueError(
            f"`questions:` in {path} must be a list of questions (one `- id: …` each)."
        )
    return entries


def _parse_question(entry: Any, index: int) -> Question:
    """Validate one bank entry (``index`` counts from 0) and build its ``Question``."""
    if not isinstance(entry, dict):
        raise ValueError(
            f"Question #{index + 1} is a {type(entry).__name__}, not a mapping; write it as "
            "`- id: …` followed by its keys."
        )
    label = repr(entry["id"]) if isinstance(entry.get("id"), str) else f"#{index + 1}"
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    if missing:
        raise ValueError(
            f"Question {label} is missing {missing}; every question needs {list(REQUIRED_KEYS)}."
        )
    unknown = sorted(set(entry) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ValueError(
            f"Question {label} has unknown key(s) {unknown}; the allowed keys are "
            f"{list(REQUIRED_KEYS + OPTIONAL_KEYS)} (check the spelling)."
        )
    values = {key: _text(entry[key], key, label) for key in REQUIRED_KEYS}
    _check_values(values, label)
    return Question(**values, tags=_tags(entry.get("tags", []), label))


def _text(value: Any, key: str, label: str) -> str:
    """Return a text field stripped; raise if it is not a string or is blank."""
    if not isinstance(value, str):
        hint = ' (quote it: notebook: "02")' if key == "notebook" else ""
        raise ValueError(
            f"Question {label}: `{key}` must be text, got {type(value).__name__} {value!r}{hint}."
        )
    if not value.strip():
        raise ValueError(f"Question {label}: `{key}` is empty; write the {key} text.")
    return value.strip()


def _check_values(values: dict[str, str], label: str) -> None:
    """Check the id's form and the group, difficulty and notebook against what is allowed."""
    if not ID_PATTERN.match(values["id"]):
        raise ValueError(
            f"Question {label}: the id must be lower-case kebab-case (letters, digits, single "
            "hyphens), e.g. 'softmax-vs-sigmoid'."
        )
    numbers = tuple(notebook_names())
    for key, allowed in (("group", GROUPS), ("difficulty", DIFFICULTIES), ("notebook", numbers)):
        if values[key] not in allowed:
            raise ValueError(
                f"Question {label}: {key} {values[key]!r} is not allowed; use one of "
                f"{list(allowed)}."
            )


def _tags(value: Any, label: str) -> tuple[str, ...]:
    """Check the optional tags (a list of non-empty strings) and return them as a tuple."""
    if not isinstance(value, list) or not all(
        isinstance(tag, str) and tag.strip() for tag in value
    ):
        raise ValueError(
            f"Question {label}: `tags` must be a list of non-empty strings, e.g. "
            f"[xception, fine-tuning]; got {value!r}."
        )
    return tuple(tag.strip() for tag in value)


# -------------------------------------------------------------- choosing


def filter_questions(
    questions: Iterable[Question],
    notebook: str | int | None = None,
    difficulty: str | None = None,
    group: str | None = None,
) -> list[Question]:
    """Keep the questions of one notebook, difficulty and/or group (None keeps all).

    Args:
        questions: The questions.
        notebook: ``"02"``, ``2`` or ``"02_transfer"``, or None.
        difficulty: One of ``DIFFICULTIES``, or None.
        group: One of ``GROUPS``, or None.

    Returns:
        The matching questions, in their original order (possibly none).

    Raises:
        ValueError: If a filter value is unknown (the message lists the valid ones).
    """
    number = normalize_notebook(notebook) if notebook is not None else None
    for name, value, allowed in (
        ("difficulty", difficulty, DIFFICULTIES),
        ("group", group, GROUPS),
    ):
        if value is not None and value not in allowed:
            raise ValueError(f"Unknown {name} {value!r}; use one of {list(allowed)}.")
    return [
        question
        for question in questions
        if (number is None or question.notebook == number)
        and (difficulty is None or question.difficulty == difficulty)
        and (group is None or question.group == group)
    ]


def pick_questions(
    questions: Sequence[Question], n: int | None = None, seed: int | None = None
) -> list[Question]:
    """Draw ``n`` questions at random, in random (shuffled) order.

    The same seed gives the same questions in the same order.

    Args:
        questions: The questions to draw from.
        n: How many; None, or more than there are, draws all of them (shuffled).
        seed: Random seed; None draws differently each time.

    Returns:
        The drawn questions.

    Raises:
        ValueError: If ``n`` is smaller than 1.
    """
    if n is not None and n < 1:
        raise ValueError(f"Cannot draw {n} questions; ask for at least 1 (or all with None).")
    count = len(questions) if n is None else min(n, len(questions))
    return random.Random(seed).sample(list(questions), count)


# -------------------------------------------------------------- progress


@dataclasses.dataclass
class QuizProgress:
    """Which questions a learner knew, by id (saved as JSON).

    Attributes:
        known: The ids of the questions the learner marked "I knew it".
    """

    known: set[str] = dataclasses.field(default_factory=set)

    def mark(self, question_id: str, known: bool) -> None:
        """Record that the learner knew (or did not know) a question.

        Args:
            question_id: The question's id.
            known: True for "I knew it", False for "Not yet" (forgets an earlier "known").
        """
        if known:
            self.known.add(question_id)
        else:
            self.known.discard(question_id)

    def known_among(self, questions: Iterable[Question]) -> int:
        """Count the known questions among some questions.

        Args:
            questions: The questions.

        Returns:
            How many of them are known.
        """
        return sum(question.id in self.known for question in questions)

    def save(self, path: str | Path) -> Path:
        """Write the progress as JSON (``{"version": 1, "known": [ids]}``).

        Args:
            path: The file; its folder is created if needed.

        Returns:
            The path.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": 1, "known": sorted(self.known)}, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> QuizProgress:
        """Read saved progress; a missing file means no progress yet.

        Args:
            path: The JSON file written by ``save``.

        Returns:
            The progress.

        Raises:
            ValueError: If the file is not a progress file (corrupt JSON or wrong content).
        """
        path = Path(path)
        if not path.is_file():
            return cls()
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            known = document["known"]
            if not isinstance(known, list) or not all(isinstance(i, str) for i in known):
                raise TypeError("`known` is not a list of question ids")
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"The quiz progress file {path} is corrupt ({error}); delete it to start "
                "afresh (this forgets which questions you knew)."
            ) from error
        return cls(set(known))
