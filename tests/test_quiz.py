"""The question bank: schema, references to the notebooks, filters, terminal drill, widget, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import yaml

from course_utils import cli, course, quiz, quiz_drill, quiz_widget

# ---------------------------------------------------------------- helpers


def _entry(question_id: str, **changes: object) -> dict:
    """A valid bank entry, with some keys changed (None removes a key)."""
    entry = {
        "id": question_id,
        "group": "technical",
        "notebook": "02",
        "section": "5. The learning rate",
        "difficulty": "medium",
        "question": f"What does **{question_id}** mean?",
        "answer": f"It means {question_id}. <script>alert(1)</script>",
        "tags": ["xception"],
    }
    entry.update(changes)
    return {key: value for key, value in entry.items() if value is not None}


def _small_bank() -> list[dict]:
    """Six questions over three notebooks, groups and difficulties."""
    return [
        _entry("alpha", notebook="01", section="Exact duplicates", difficulty="easy"),
        _entry("beta", group="conceptual"),
        _entry("gamma", difficulty="hard", group="project"),
        _entry("delta", notebook="03", section="Over-fitting", group="improve"),
        _entry("epsilon", notebook="03", section="Over-fitting", difficulty="easy"),
        _entry("zeta", notebook="01", section="Exact duplicates", group="conceptual"),
    ]


def _write_bank(path: Path, entries: list, version: object = 1) -> Path:
    path.write_text(yaml.safe_dump({"version": version, "questions": entries}, sort_keys=False))
    return path


def _write_notebook(path: Path, markdown: list[str]) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell(text) for text in markdown]
    notebook.cells.append(nbformat.v4.new_code_cell("# Not a heading\nx = 1"))
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def bank_file(tmp_path: Path) -> Path:
    return _write_bank(tmp_path / "bank.yaml", _small_bank())


@pytest.fixture
def questions(bank_file: Path) -> list[quiz.Question]:
    return quiz.load_questions(bank_file)


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _write_notebook(folder / "01_data.ipynb", ["# 01 · Data\n\n## 4. Audit\n### Exact duplicates"])
    _write_notebook(
        folder / "02_transfer.ipynb",
        ["# 02 · Transfer", "## 5. The learning rate ##\n```\n# not a heading\n```"],
    )
    return folder


# ------------------------------------------------------- the packaged bank
# These fail while questions.yaml is the one-question placeholder.


def test_packaged_bank_loads() -> None:
    questions = quiz.load_questions()
    assert questions and all(isinstance(q, quiz.Question) for q in questions)
    assert len({q.id for q in questions}) == len(questions)


def test_packaged_bank_references_are_headings() -> None:
    assert quiz.check_references(quiz.load_questions()) == []


def test_packaged_bank_coverage() -> None:
    questions = quiz.load_questions()
    assert len(questions) >= 40
    assert {q.group for q in questions} == set(quiz.GROUPS)
    assert {q.notebook for q in questions} == {"01", "02", "03", "04", "05"}
    assert {q.difficulty for q in questions} == set(quiz.DIFFICULTIES)


# --------------------------------------------------------------- loading


def test_load_valid_bank(questions: list[quiz.Question]) -> None:
    assert [q.id for q in questions] == ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    alpha = questions[0]
    assert alpha.notebook == "01" and alpha.section == "Exact duplicates"
    assert alpha.tags == ("xception",)
    with pytest.raises(AttributeError):
        alpha.id = "other"  # frozen


def test_text_is_stripped_and_tags_optional(tmp_path: Path) -> None:
    entry = _entry("one", answer="  Padded.\n\n", tags=None)
    (question,) = quiz.load_questions(_write_bank(tmp_path / "b.yaml", [entry]))
    assert question.answer == "Padded." and question.tags == ()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [_entry("same"), _entry("other"), _entry("same")],
            r"Duplicate question id 'same'.*#1.*#3",
        ),
        ([_entry("no-answer", answer=None)], r"'no-answer' is missing \['answer'\]"),
        ([_entry("extra", hint="x")], r"'extra' has unknown key\(s\) \['hint'\].*allowed keys"),
        ([_entry("bad-group", group="trivia")], r"'bad-group': group 'trivia'.*'conceptual'"),
        ([_entry("bad-level", difficulty="expert")], r"difficulty 'expert'.*'easy', 'medium'"),
        ([_entry("blank", answer="   \n")], r"'blank': `answer` is empty"),
        ([_entry("nb", notebook="06")], r"'nb': notebook '06' is not allowed.*'05'"),
        ([_entry("nb-int", notebook=2)], r"`notebook` must be text, got int 2 \(quote it"),
        ([_entry("Bad_Id")], r"'Bad_Id': the id must be lower-case kebab-case"),
        ([_entry("tagged", tags="one")], r"'tagged': `tags` must be a list"),
        ([_entry(None)], r"Question #1 is missing \['id'\]"),
        (["just text"], r"Question #1 is a str, not a mapping"),
    ],
)
def test_schema_errors(tmp_path: Path, entries: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quiz.load_questions(_write_bank(tmp_path / "bank.yaml", entries))


def test_top_level_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="version 2; this course reads `version: 1`"):
        quiz.load_questions(_write_bank(tmp_path / "v2.yaml", [], version=2))
    (tmp_path / "list.yaml").write_text("- id: x\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        quiz.load_questions(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("version: 1\nquestions: [\n")
    with pytest.raises(ValueError, match="broken.yaml is not valid YAML"):
        quiz.load_questions(tmp_path / "broken.yaml")


def test_missing_bank(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No question bank at .*nowhere.yaml"):
        quiz.load_questions(tmp_path / "nowhere.yaml")


# ------------------------------------------------------------ references


def test_notebook_headings(notebooks: Path) -> None:
    assert quiz.notebook_headings(notebooks / "01_data.ipynb") == [
        "01 · Data",
        "4. Audit",
        "Exact duplicates",
    ]
    assert quiz.notebook_headings(notebooks / "02_transfer.ipynb") == [
        "02 · Transfer",
        "5. The learning rate",
    ]
    with pytest.raises(FileNotFoundError, match="No notebook at"):
        quiz.notebook_headings(notebooks / "missing.ipynb")


def test_check_references(questions: list[quiz.Question], notebooks: Path) -> None:
    good = [q for q in questions if q.notebook in ("01", "02")]
    assert quiz.check_references(good, notebooks) == []
    typo = quiz.Question(**{**vars(good[0]), "section": "Exact duplicate"})
    problems = quiz.check_references([typo, questions[3]], notebooks)
    assert len(problems) == 2
    assert problems[0].startswith("alpha: section 'Exact duplicate' is not a heading")
    assert "did you mean 'Exact duplicates'?" in problems[0]
    assert problems[1].startswith("delta: notebook 03 has no file")


def test_real_notebooks_have_headings() -> None:
    headings = quiz.notebook_headings(course.notebooks_dir() / "02_transfer.ipynb")
    assert "5. The learning rate" in headings and "Check yourself" in headings


# ------------------------------------------------------- filter and pick


def test_filter_questions(questions: list[quiz.Question]) -> None:
    def ids(**filters: object) -> list[str]:
        return [q.id for q in quiz.filter_questions(questions, **filters)]

    assert ids(notebook="03") == ["delta", "epsilon"]
    assert ids(notebook=3) == ids(notebook="3") == ids(notebook="03_cnn") == ["delta", "epsilon"]
    assert ids(notebook="01_data.ipynb", group="conceptual") == ["zeta"]
    assert ids(difficulty="easy") == ["alpha", "epsilon"]
    assert ids(notebook="02", difficulty="easy") == []
    assert ids() == [q.id for q in questions]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"notebook": "07"}, r"Unknown notebook '07'; use one of 01 \(01_data\)"),
        ({"notebook": "transfer"}, "05 \\(05_explain_app\\)"),
        ({"difficulty": "expert"}, r"Unknown difficulty 'expert'; use one of \['easy'"),
        ({"group": "misc"}, r"Unknown group 'misc'; use one of \['conceptual'"),
    ],
)
def test_filter_errors(questions: list[quiz.Question], filters: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quiz.filter_questions(questions, **filters)


def test_pick_questions(questions: list[quiz.Question]) -> None:
    first = quiz.pick_questions(questions, 3, seed=5)
    assert len(first) == 3 and len({q.id for q in first}) == 3
    assert quiz.pick_questions(questions, 3, seed=5) == first
    draws = {tuple(q.id for q in quiz.pick_questions(questions, 3, seed=s)) for s in range(10)}
    assert len(draws) > 1
    everything = quiz.pick_questions(questions, 100, seed=1)
    assert sorted(q.id for q in everything) == sorted(q.id for q in questions)
    assert len(quiz.pick_questions(questions, seed=2)) == len(questions)
    with pytest.raises(ValueError, match="at least 1"):
        quiz.pick_questions(questions, 0)


# ------------------------------------------------------------- terminal


def test_format_question(questions: list[quiz.Question]) -> None:
    beta = questions[1]
    text = quiz_drill.format_question(beta, number=7)
    assert text.splitlines()[0] == "7. [02 · conceptual · medium] beta"
    assert "What does **beta** mean?" in text
    assert "It means beta." in text
    assert 'Reread: notebook 02 (02_transfer.ipynb), section "5. The learning rate"' in text
    hidden = quiz_drill.format_question(beta, show_answer=False)
    assert hidden.startswith("[02 · conceptual · medium] beta")
    assert "It means beta" not in hidden and "Reread" not in hidden


def test_long_lines_are_wrapped(questions: list[quiz.Question]) -> None:
    long = quiz.Question(**{**vars(questions[0]), "answer": "word " * 60 + "\n\n- item " * 2})
    text = quiz_drill.format_question(long, width=60)
    assert max(len(line) for line in text.splitlines()) <= 60
    code = "```\n" + "x = 1  # " + "long " * 30 + "\n```"
    assert quiz_drill.wrap_markdown(code, width=40) == code


def test_wrapping_reflows_soft_line_breaks() -> None:
    text = "One paragraph broken\nin the middle.\n\n- An item\n  that goes on.\n- Next | item"
    assert quiz_drill.wrap_markdown(text, width=80, indent="  ") == (
        "  One paragraph broken in the middle.\n\n  - An item that goes on.\n  - Next | item"
    )
    wrapped = quiz_drill.wrap_markdown("- " + "word " * 30, width=40).splitlines()
    assert wrapped[0].startswith("- word") and all(
        line.startswith("  word") for line in wrapped[1:]
    )
    table = "| a | b |\n|---|---|"
    assert quiz_drill.wrap_markdown(table, width=5) == table


def test_format_drill(questions: list[quiz.Question]) -> None:
    drill = quiz_drill.format_drill(questions[:2])
    assert drill.startswith("1. [01") and "\n\n2. [02" in drill
    assert "It means alpha" in drill and "It means beta" in drill
    assert "It means" not in quiz_drill.format_drill(questions[:2], show_answers=False)
    assert quiz_drill.format_drill([]) == "No questions."


def test_interactive_drill(questions: list[quiz.Question], capsys: pytest.CaptureFixture) -> None:
    replies = iter(["", "y", "", "n", "", "YES"])
    progress = quiz.QuizProgress({"beta"})
    known, asked = quiz_drill.interactive_drill(
        questions[:3], progress, ask=lambda _p: next(replies)
    )
    assert (known, asked) == (2, 3)
    assert progress.known == {"alpha", "gamma"}
    assert "It means gamma" in capsys.readouterr().out


def test_interactive_drill_stops_at_end_of_input(questions: list[quiz.Question]) -> None:
    def ask(_prompt: str) -> str:
        raise EOFError

    assert quiz_drill.interactive_drill(questions, ask=ask) == (0, 0)


# -------------------------------------------------------------- progress


def test_progress_round_trip(tmp_path: Path, questions: list[quiz.Question]) -> None:
    path = tmp_path / "deep" / "progress.json"
    assert quiz.QuizProgress.load(path).known == set()
    progress = quiz.QuizProgress()
    progress.mark("alpha", True)
    progress.mark("beta", True)
    progress.mark("beta", False)
    progress.mark("gone", False)
    assert progress.save(path) == path
    assert json.loads(path.read_text()) == {"version": 1, "known": ["alpha"]}
    loaded = quiz.QuizProgress.load(path)
    assert loaded.known == {"alpha"} and loaded.known_among(questions[:2]) == 1


@pytest.mark.parametrize("content", ["{not json", '{"known": "alpha"}', "[1, 2]", '{"other": 1}'])
def test_corrupt_progress(tmp_path: Path, content: str) -> None:
    path = tmp_path / "progress.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"progress file .*progress.json is corrupt.*delete it"):
        quiz.QuizProgress.load(path)


# ---------------------------------------------------------------- widget


def test_quiz_widget_reveal_and_mark(questions: list[quiz.Question], tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    widget = quiz_widget.build_quiz(questions, progress_path=path)
    assert widget.status.value.startswith("Question 1 of 6 · 0 known (0 in this selection)")
    assert "alpha" in widget.question.value and widget.answer.value == ""
    assert widget.previous_button.disabled and not widget.next_button.disabled
    widget.reveal_button.click()
    assert "It means alpha." in widget.answer.value
    assert "&lt;script&gt;" in widget.answer.value and "<script>" not in widget.answer.value
    assert "Reread: notebook 01 (01_data.ipynb), section" in widget.answer.value
    widget.your_answer.value = "my attempt"
    widget.known_button.click()
    assert json.loads(path.read_text())["known"] == ["alpha"]
    assert widget.current.id == "beta" and widget.answer.value == ""
    assert widget.your_answer.value == ""
    assert widget.status.value.startswith("Question 2 of 6 · 1 known (1 in this selection)")
    widget.unknown_button.click()
    assert widget.current.id == "gamma" and widget.progress.known == {"alpha"}
    widget.previous_button.click()
    widget.previous_button.click()
    assert widget.current.id == "alpha" and "✓ known" in widget.question.value


def test_quiz_widget_end_and_display(questions: list[quiz.Question]) -> None:
    widget = quiz_widget.build_quiz(questions[:2])
    widget.next_button.click()
    assert widget.next_button.disabled
    widget.known_button.click()
    assert widget.current.id == "beta" and widget.status.value.endswith("end of the selection")
    bundle = widget._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == widget.widget.model_id


def test_quiz_displays_as_a_cell_value_in_ipywidgets_7_and_8(
    questions: list[quiz.Question],
) -> None:
    """A lesson's closing cell is ``build_quiz(...)``: IPython must show the quiz's VBox."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    widget = quiz_widget.build_quiz(questions[:2])
    with capture_output() as captured:
        shell.display_formatter.format(widget)  # what the cell's display hook does first
    (output,) = captured.outputs
    view = output.data["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == widget.widget.model_id


def test_quiz_widget_filters(questions: list[quiz.Question], tmp_path: Path) -> None:
    path = quiz.QuizProgress({"delta"}).save(tmp_path / "progress.json")
    widget = quiz_widget.build_quiz(questions, notebook=3, progress_path=path)
    assert [q.id for q in widget.selection] == ["delta", "epsilon"]
    assert widget.status.value == "Question 1 of 2 · 1 known (1 in this selection)"
    widget.next_button.click()
    widget.difficulty.value = "easy"
    assert widget.current.id == "epsilon" and widget.index == 0
    widget.notebook.value = ""
    assert [q.id for q in widget.selection] == ["alpha", "epsilon"]
    assert widget.status.value.startswith("Question 1 of 2 · 1 known (0 in this selection)")
    widget.group.value = "improve"
    assert widget.current is None
    assert "No questions match these filters" in widget.question.value
    assert widget.reveal_button.disabled and widget.known_button.disabled
    widget.reveal_button.click()
    widget.known_button.click()
    assert widget.answer.value == ""
    widget.group.value = ""
    assert widget.current.id == "alpha"


def test_quiz_widget_only_not_yet_known(questions: list[quiz.Question], tmp_path: Path) -> None:
    path = quiz.QuizProgress({"delta"}).save(tmp_path / "progress.json")
    widget = quiz_widget.build_quiz(questions, notebook="03", progress_path=path)
    widget.only_unknown.value = True
    assert [q.id for q in widget.selection] == ["epsilon"]
    widget.known_button.click()  # now every question of 03 is known; the selection stays
    assert widget.progress.known == {"delta", "epsilon"}
    widget.only_unknown.value = False
    widget.only_unknown.value = True
    assert widget.current is None and "No questions match" in widget.question.value


def test_quiz_widget_seed_and_bad_filter(questions: list[quiz.Question]) -> None:
    first = [q.id for q in quiz_widget.build_quiz(questions, seed=3).selection]
    assert first == [q.id for q in quiz_widget.build_quiz(questions, seed=3).selection]
    assert sorted(first) == sorted(q.id for q in questions)
    with pytest.raises(ValueError, match="Unknown group"):
        quiz_widget.build_quiz(questions, group="misc")


# ------------------------------------------------------------------- CLI


def test_cli_drill(bank_file: Path, capsys: pytest.CaptureFixture) -> None:
    arguments = ["quiz", "--bank", str(bank_file), "--n", "2", "--seed", "1", "--no-interactive"]
    assert cli.main(arguments) == 0
    out = capsys.readouterr().out
    assert out.count("Answer:") == 2 and "1. [" in out and "2. [" in out and "3. [" not in out
    assert cli.main(arguments) == 0
    assert capsys.readouterr().out == out


def test_cli_filters_and_no_answers(bank_file: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["quiz", "--bank", str(bank_file), "--notebook", "3", "--no-answers"]) == 0
    out = capsys.readouterr().out
    assert "1. [03 · improve · medium] delta" in out and "2. [03" in out
    assert "It means" not in out and "Answer:" not in out


def test_cli_empty_selection(bank_file: Path, capsys: pytest.CaptureFixture) -> None:
    arguments = ["quiz", "--bank", str(bank_file), "--notebook", "02", "--difficulty", "easy"]
    assert cli.main(arguments) == 1
    assert "No questions match these filters" in capsys.readouterr().err


def test_cli_bad_input(bank_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["quiz", "--bank", str(bank_file), "--notebook", "9"]) == 2
    assert "Unknown notebook '9'" in capsys.readouterr().err
    assert cli.main(["quiz", "--bank", str(tmp_path / "none.yaml")]) == 2
    assert "No question bank at" in capsys.readouterr().err


def _replies(*answers: str):
    """Stand-in for ``input``: the given answers, then end of input (EOFError)."""
    remaining = iter(answers)

    def ask(_prompt: str = "") -> str:
        try:
            return next(remaining)
        except StopIteration:
            raise EOFError from None

    return ask


def test_cli_interactive(
    bank_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    progress = tmp_path / "progress.json"
    arguments = ["quiz", "--bank", str(bank_file), "--notebook", "01", "--interactive"]
    monkeypatch.setattr("builtins.input", _replies("", "y", "", "n"))
    assert cli.main([*arguments, "--progress", str(progress)]) == 0
    out = capsys.readouterr().out
    assert "1. [01 · technical · easy] alpha" in out and "It means zeta" in out
    assert "Score: 1 of 2 known (50%)." in out
    assert json.loads(progress.read_text())["known"] == ["alpha"]
    monkeypatch.setattr("builtins.input", _replies("", "y"))  # then Ctrl-D at the next question
    assert cli.main([*arguments, "--progress", str(progress)]) == 0
    out = capsys.readouterr().out
    assert "Stopped." in out and "Score: 1 of 1 known (100%)." in out
    assert "(1 questions known in all)" in out


def test_bank_and_drill_do_not_import_ipywidgets() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from course_utils import quiz, quiz_drill; "
        "quiz_drill.format_drill(quiz.load_questions()[:2]); "
        "print('ipywidgets' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
