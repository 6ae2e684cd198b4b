"""The quiz in a terminal: Markdown wrapped to width, a printed drill, an interactive drill.

``python -m course_utils quiz`` and the interview-practice notebook print questions from
``course_utils.quiz`` with these functions; they never import ipywidgets.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence

from course_utils.quiz import Question, QuizProgress, reference

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_LIST_ITEM = re.compile(r"^(\s*(?:[-*+]|\d+[.)])\s+)")


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
