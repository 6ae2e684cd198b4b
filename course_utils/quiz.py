"""The course's question bank: load it, check it against the notebooks, filter and drill it.

The bank is ``course_utils/questions.yaml`` (``BANK_PATH``): interview and self-check
questions, each tied to a notebook and to a Markdown heading of that notebook, so a learner
who misses one knows exactly where to reread. The logic is pure functions that tests call
directly:

- ``load_questions``: read and validate the bank (clear ``ValueError`` for every mistake);
- ``check_references``: every question's notebook exists and its section is a heading there;
- ``filter_questions``, ``pick_questions``: choose what to drill;
- ``format_question``, ``format_drill``, ``interactive_drill``: the terminal quiz
  (``python -m course_utils quiz``);
- ``QuizProgress``: which questions a learner knew, saved as JSON.

``build_quiz`` wires them to ipywidgets (``Quiz``): one question at a time, filters, reveal,
"I knew it" / "Not yet". Nothing happens at import (ipywidgets, nbformat, mistune and the CLI
module are imported when used).
"""

from __future__ import annotations

import dataclasses
import difflib
import html
import json
import random
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
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
_LIST_ITEM = re.compile(r"^(\s*(?:[-*+]|\d+[.)])\s+)")


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


# -------------------------------------------------------------- terminal


def _markdown_blocks(text: str) -> list[tuple[str, list[str]]]:
    """Split Markdown into ``("keep", lines)`` (code, tables, blank lines) and ``("flow", lines)``.

    A ``flow`` block is one paragraph or one list item with its continuation lines: its
    single line breaks are soft, as in Markdown, so it can be re-wrapped as a whole.
    """
    blocks: list[tuple[str, list[str]]] = []
    in_fence = False
    for line in text.splitlines():
        fence = bool(_FENCE.match(line))
        keep = in_fence or fence or not line.strip() or line.lstrip().startswith("|")
        in_fence = in_fence != fence
        if keep:
            blocks.append(("keep", [line]))
        elif _LIST_ITEM.match(line) or not blocks or blocks[-1][0] != "flow":
            blocks.append(("flow", [line]))
        else:
            blocks[-1][1].append(line)
    return blocks


def wrap_markdown(text: str, width: int = 88, indent: str = "") -> str:
    """Re-wrap Markdown paragraphs and list items for the terminal.

    Line breaks inside a paragraph are soft (as Markdown renders them), so each
    paragraph or list item is joined and wrapped to ``width``; list items keep a
    hanging indent; fenced code, tables and blank lines are kept as they are.

    Args:
        text: Markdown text.
        width: The line width.
        indent: Put before every line.

    Returns:
        The wrapped text.
    """
    lines = []
    for kind, block in _markdown_blocks(text):
        if kind == "keep":
            lines += [indent + line if line else "" for line in block]
            continue
        marker = _LIST_ITEM.match(block[0])
        prefix = marker.group(1).lstrip() if marker else ""
        body = " ".join(part.strip() for part in block)[len(prefix.strip()) :].strip()
        lines += textwrap.wrap(
            prefix + body,
            width=width,
            initial_indent=indent,
            subsequent_indent=indent + " " * len(prefix),
            break_on_hyphens=False,
        )
    return "\n".join(lines)


def format_answer(question: Question, width: int = 88) -> str:
    """Format a question's model answer and where to reread, for the terminal.

    Args:
        question: The question.
        width: The line width.

    Returns:
        ``Answer:``, the indented answer, and the ``Reread:`` line.
    """
    answer = wrap_markdown(question.answer, width, indent="    ")
    where = textwrap.fill(reference(question), width, initial_indent="  ", subsequent_indent="    ")
    return f"  Answer:\n{answer}\n{where}"


def format_question(
    question: Question, number: int | None = None, show_answer: bool = True, width: int = 88
) -> str:
    """Format one question for the terminal.

    The header names the lesson, group, difficulty and id, e.g.
    ``7. [02 · technical · medium] fine-tune-batch-norm``.

    Args:
        question: The question.
        number: Its number in the drill, or None for none.
        show_answer: Add the model answer and the notebook section to reread.
        width: The line width.

    Returns:
        The text (no trailing newline).
    """
    prefix = f"{number}. " if number is not None else ""
    header = (
        f"{prefix}[{question.notebook} · {question.group} · {question.difficulty}] {question.id}"
    )
    parts = [header, wrap_markdown(question.question, width, indent="  ")]
    if show_answer:
        parts.append(format_answer(question, width))
    return "\n".join(parts)


def format_drill(questions: Sequence[Question], show_answers: bool = True) -> str:
    """Format numbered questions as a drill for the terminal.

    Args:
        questions: The questions, in drill order.
        show_answers: Follow each question by its answer; False prints the questions only.

    Returns:
        The text, questions separated by blank lines.
    """
    if not questions:
        return "No questions."
    blocks = [
        format_question(question, number, show_answer=show_answers)
        for number, question in enumerate(questions, start=1)
    ]
    return "\n\n".join(blocks)


def interactive_drill(
    questions: Sequence[Question],
    progress: QuizProgress | None = None,
    ask: Callable[[str], str] | None = None,
) -> tuple[int, int]:
    """Ask the questions one by one in the terminal: Enter reveals, then "did you know it?".

    End of input (Ctrl-D) or Ctrl-C stops early; the questions answered so far count.

    Args:
        questions: The questions, in drill order.
        progress: Updated with each answer (not saved here), or None.
        ask: Reads one line after a prompt; None means ``input``.

    Returns:
        ``(known, asked)``: how many the learner knew, of how many they answered.
    """
    ask = ask or input
    known = asked = 0
    for number, question in enumerate(questions, start=1):
        print(f"\n{format_question(question, number, show_answer=False)}")
        try:
            ask("  Press Enter to reveal the answer… ")
            print(format_answer(question))
            reply = ask("  Did you know it? [y/N] ")
        except (EOFError, KeyboardInterrupt):
            print("\n  Stopped.")
            break
        knew = reply.strip().lower() in ("y", "yes")
        known, asked = known + knew, asked + 1
        if progress is not None:
            progress.mark(question.id, knew)
    return known, asked


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


# --------------------------------------------------------------- widgets


def markdown_html(text: str) -> str:
    """Render Markdown as HTML, showing any raw HTML in it as text (never run).

    Also the app's renderer of explanations, whose text may come from an LLM.

    Args:
        text: Markdown text.

    Returns:
        HTML text.
    """
    import mistune

    return mistune.create_markdown(escape=True)(text.strip())


def question_html(question: Question, known: bool = False) -> str:
    """Show a question (not its answer) as HTML.

    Args:
        question: The question.
        known: Whether the learner already marked it known (adds a ✓).

    Returns:
        HTML text.
    """
    tick = " · <span style='color:#080'>✓ known</span>" if known else ""
    header = html.escape(
        f"Notebook {question.notebook} · {question.group} · {question.difficulty} · {question.id}"
    )
    return f"<p><small>{header}{tick}</small></p>" + markdown_html(question.question)


def answer_html(question: Question) -> str:
    """Show a question's model answer and where to reread as HTML.

    Args:
        question: The question.

    Returns:
        HTML text.
    """
    return (
        "<p><b>Model answer</b></p>"
        + markdown_html(question.answer)
        + f"<p><i>{html.escape(reference(question))}</i></p>"
    )


class Quiz:
    """The quiz's widgets and thin callbacks (logic lives in the functions above).

    Display the object itself in Jupyter (``_repr_mimebundle_``) or its ``widget``.

    Args:
        questions: The whole bank; the filter menus choose among them.
        progress: The learner's progress (updated by "I knew it" / "Not yet").
        progress_path: Where to save the progress after each mark, or None to keep it in memory.
        seed: None shows a selection in bank order; a seed shuffles it reproducibly.
    """

    def __init__(
        self,
        questions: Sequence[Question],
        progress: QuizProgress,
        progress_path: str | Path | None = None,
        seed: int | None = None,
    ):
        self.questions, self.progress, self.seed = list(questions), progress, seed
        self.progress_path = Path(progress_path) if progress_path is not None else None
        self.selection: list[Question] = []
        self.index, self.revealed = 0, False
        self._build_widgets()
        self.widget = self._layout()
        for menu in (self.notebook, self.difficulty, self.group, self.only_unknown):
            menu.observe(lambda _change: self.apply_filters(), names="value")
        self.reveal_button.on_click(lambda _button: self.reveal())
        self.known_button.on_click(lambda _button: self.mark(True))
        self.unknown_button.on_click(lambda _button: self.mark(False))
        self.previous_button.on_click(lambda _button: self.go(-1))
        self.next_button.on_click(lambda _button: self.go(1))
        self.apply_filters()

    def _build_widgets(self) -> None:
        """Create the menus, texts and buttons."""
        import ipywidgets as w

        notebooks = [(f"{key} · {name}", key) for key, name in notebook_names().items()]
        self.notebook = w.Dropdown(options=[("All", "")] + notebooks, description="Notebook")
        self.difficulty = w.Dropdown(
            options=[("All", "")] + [(level, level) for level in DIFFICULTIES], description="Level"
        )
        self.group = w.Dropdown(
            options=[("All", "")] + [(group, group) for group in GROUPS], description="Group"
        )
        self.only_unknown = w.Checkbox(description="Only questions not yet known", indent=False)
        self.question = w.HTML("")
        self.your_answer = w.Textarea(
            placeholder="Your answer (optional): write it down before you reveal the model answer.",
            layout=w.Layout(width="100%", height="6em"),
        )
        self.answer = w.HTML("")
        self.status = w.HTML("")
        self.reveal_button = w.Button(description="Reveal answer", button_style="primary")
        self.known_button = w.Button(description="I knew it", button_style="success")
        self.unknown_button = w.Button(description="Not yet", button_style="warning")
        self.previous_button = w.Button(description="Previous")
        self.next_button = w.Button(description="Next")
        for widget, name in [
            (self.question, "question"),
            (self.answer, "answer"),
            (self.status, "status"),
        ]:
            widget.add_class(f"btmri-quiz-{name}")

    def _layout(self) -> Any:
        """Arrange the widgets."""
        import ipywidgets as w

        menus = w.HBox([self.notebook, self.difficulty, self.group, self.only_unknown])
        buttons = w.HBox(
            [self.previous_button, self.reveal_button, self.known_button, self.unknown_button,
             self.next_button]
        )  # fmt: skip
        return w.VBox([menus, self.status, self.question, self.your_answer, buttons, self.answer])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Display the quiz's widget when the object is the value of a Jupyter cell."""
        return self.widget._repr_mimebundle_(**kwargs)

    @property
    def current(self) -> Question | None:
        """The question on show, or None when the selection is empty."""
        return self.selection[self.index] if self.selection else None

    def apply_filters(self) -> None:
        """Select the questions matching the menus (shuffled if seeded) and show the first.

        Called whenever a filter menu (or "only questions not yet known") changes: the quiz
        starts again at the first match.
        """
        selection = filter_questions(
            self.questions,
            notebook=self.notebook.value or None,
            difficulty=self.difficulty.value or None,
            group=self.group.value or None,
        )
        if self.only_unknown.value:
            selection = [q for q in selection if q.id not in self.progress.known]
        if self.seed is not None:
            random.Random(self.seed).shuffle(selection)
        self.selection, self.index = selection, 0
        self.show()

    def go(self, offset: int) -> None:
        """Move by ``offset`` questions (clamped to the selection) and show that question.

        Args:
            offset: E.g. 1 for next, -1 for previous.
        """
        self.index = min(max(self.index + offset, 0), max(len(self.selection) - 1, 0))
        self.show()

    def reveal(self) -> None:
        """Show the current question's model answer and where to reread."""
        if self.current is not None:
            self.revealed = True
            self.answer.value = answer_html(self.current)

    def mark(self, known: bool) -> None:
        """Record whether the learner knew the current question, save, and move on.

        Args:
            known: True for "I knew it", False for "Not yet".
        """
        if self.current is None:
            return
        self.progress.mark(self.current.id, known)
        if self.progress_path is not None:
            self.progress.save(self.progress_path)
        if self.index < len(self.selection) - 1:
            self.go(1)
        else:
            self.show()
            self.status.value += " · end of the selection"

    def show(self) -> None:
        """Show the current question (answer hidden) and the status line."""
        self.revealed, self.answer.value, self.your_answer.value = False, "", ""
        question = self.current
        for button in (self.reveal_button, self.known_button, self.unknown_button):
            button.disabled = question is None
        self.previous_button.disabled = question is None or self.index == 0
        self.next_button.disabled = question is None or self.index >= len(self.selection) - 1
        if question is None:
            self.question.value = (
                "<p><i>No questions match these filters. Set a menu back to All.</i></p>"
            )
            self.status.value = "No questions match these filters."
            return
        self.question.value = question_html(question, question.id in self.progress.known)
        self.status.value = (
            f"Question {self.index + 1} of {len(self.selection)} · "
            f"{self.progress.known_among(self.questions)} known "
            f"({self.progress.known_among(self.selection)} in this selection)"
        )


def build_quiz(
    questions: Sequence[Question] | None = None,
    notebook: str | int | None = None,
    difficulty: str | None = None,
    group: str | None = None,
    progress_path: str | Path | None = None,
    seed: int | None = None,
) -> Quiz:
    """Build the quiz widget, optionally starting with filters set.

    Args:
        questions: The bank; None loads the packaged one (``load_questions``).
        notebook: Start with this lesson (``"02"``, ``2``, ``"02_transfer"``), or None for all.
        difficulty: Start with this difficulty, or None for all.
        group: Start with this group, or None for all.
        progress_path: A JSON file to load progress from and save it to after each mark;
            None keeps progress in memory only.
        seed: None keeps bank order; a seed shuffles each selection reproducibly.

    Returns:
        The ``Quiz``; display it (it is the value of the cell) or its ``.widget``.

    Raises:
        ValueError: If a filter value is unknown or the progress file is corrupt.
    """
    questions = load_questions() if questions is None else list(questions)
    filter_questions([], notebook, difficulty, group)  # validates the filter values
    progress = QuizProgress.load(progress_path) if progress_path is not None else QuizProgress()
    quiz = Quiz(questions, progress, progress_path, seed)
    quiz.notebook.value = normalize_notebook(notebook) if notebook is not None else ""
    quiz.difficulty.value = difficulty or ""
    quiz.group.value = group or ""
    return quiz
