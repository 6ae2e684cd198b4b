"""The quiz as an ipywidgets widget: one question at a time, filters, reveal, progress.

The logic (bank, filters, progress) is ``course_utils.quiz``; this module only wires it to
ipywidgets (``Quiz``, built by ``build_quiz``) and shows questions as HTML through
``render.markdown_html``. ipywidgets is imported when a quiz is built, not at import.
"""

from __future__ import annotations

import html
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from course_utils import widgets_compat
from course_utils.quiz import (
    DIFFICULTIES,
    GROUPS,
    Question,
    QuizProgress,
    filter_questions,
    load_questions,
    normalize_notebook,
    notebook_names,
    reference,
)
from course_utils.render import markdown_html


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

    Display the object itself in Jupyter (the value of a cell) or its ``widget``.

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

    def _ipython_display_(self, **_kwargs: Any) -> None:
        """Display the quiz's widget when the object is the value of a cell (ipywidgets 7 and 8).

        IPython asks for this before any ``_repr_*_``; ipywidgets 7 widgets display only
        this way.
        """
        widgets_compat.display_widget(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        """Return the quiz widget's display bundle (for front ends that ask for one)."""
        return widgets_compat.mimebundle(self.widget, **kwargs)

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
