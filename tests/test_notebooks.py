"""Papermill smoke runs of every notebook in fast mode on phantoms, plus notebook hygiene."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from course_utils import config, course, demo

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
REQUIRED_PARAMETERS = ("FAST_MODE", "DATA_DIR", "ARTIFACTS_DIR", "USE_DRIVE", "SEED")
ALL_NOTEBOOKS = (*course.NOTEBOOKS, *course.PRACTICE_NOTEBOOKS, course.APP_NOTEBOOK)


def test_readme_badges_come_from_the_one_repository_constant() -> None:
    readme = (NOTEBOOK_DIR.parent / "README.md").read_text()
    for name in ALL_NOTEBOOKS:
        assert config.colab_badge(name) in readme, f"README badge of {name}"
    assert readme.count("colab.research.google.com/github/") == len(ALL_NOTEBOOKS), (
        "no stale badge in the README"
    )


def test_the_install_cell_installs_in_colab_only_and_stops_on_failure(tmp_path: Path) -> None:
    source = config.colab_setup_source()
    compile(source, "setup", "exec")
    assert f"git+{config.REPO_URL}@{config.REPO_REF}" in source
    namespace: dict = {}
    exec(source, namespace)  # outside Colab: sets the log level, installs nothing
    assert "installed" not in namespace
    import sys
    import types

    fake_colab = types.ModuleType("google.colab")
    sys.modules["google.colab"] = fake_colab
    try:
        failing = source.replace(
            f"git+{config.REPO_URL}@{config.REPO_REF}", str(tmp_path / "nothing")
        )
        with pytest.raises(RuntimeError, match="Installing the course failed"):
            exec(failing, {})
    finally:
        del sys.modules["google.colab"]


def test_every_course_notebook_exists_in_order() -> None:
    present = [p.stem for p in NOTEBOOKS if p.stem in course.NOTEBOOKS]
    assert present == list(course.NOTEBOOKS[: len(present)]), "notebooks join in teaching order"
    assert present, "at least notebook 01 exists"
    known = set(ALL_NOTEBOOKS)
    assert {p.stem for p in NOTEBOOKS} <= known, "every notebook is a lesson, practice or the app"
    assert (NOTEBOOK_DIR / f"{course.APP_NOTEBOOK}.ipynb").is_file(), "`make app` serves it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path: Path) -> None:
    raw = path.read_text()
    assert '"output_type"' not in raw, f"{path.name} has outputs: run nbstripout"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert all(
        cell.get("execution_count") is None for cell in notebook.cells if cell.cell_type == "code"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_course_conventions(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    cells = notebook.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert config.colab_badge(path.stem) in cells[0].source, "the Colab badge of config.REPO_URL"
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one parameters cell"
    for name in REQUIRED_PARAMETERS:
        assert f"\n{name} =" in "\n" + tagged[0].source, f"parameter {name} missing"
    first_code = next(c for c in cells if c.cell_type == "code")
    assert first_code.source == config.colab_setup_source(), "the generated install cell first"
    sources = "\n".join(c.source for c in cells if c.cell_type == "code")
    assert "sys.path" not in sources, "no sys.path hacks"
    assert "plt.show()" not in sources or path.stem.startswith("05")
    if path.stem in course.NOTEBOOKS:  # a lesson ends with its own self-check from the bank
        assert cells[-2].cell_type == "markdown" and "## Check yourself" in cells[-2].source
        call = f'quiz_widget.build_quiz(notebook="{path.stem[:2]}"'
        assert cells[-1].cell_type == "code"
        assert cells[-1].source.startswith(call), cells[-1].source


def test_the_app_notebook_is_the_app_alone() -> None:
    """`make app` serves it: an intro with the notice, then the app; no lesson, no quiz."""
    from course_utils import wording

    notebook = nbformat.read(NOTEBOOK_DIR / f"{course.APP_NOTEBOOK}.ipynb", as_version=4)
    assert wording.NOTICE.removesuffix(".") in notebook.cells[0].source.replace("**", "")
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert code.count("app.build_app(") == 1 and "display(widget)" in code
    for lesson_call in ("quiz_widget", "plt.", "measure.", "viz", "analysis."):
        assert lesson_call not in code, f"lesson cell in the app notebook: {lesson_call}"
    assert course.APP_NOTEBOOK not in course.NOTEBOOKS + course.PRACTICE_NOTEBOOKS


@pytest.mark.notebook
@pytest.mark.parametrize(
    "path",
    [
        p
        for name in course.NOTEBOOKS + course.PRACTICE_NOTEBOOKS
        for p in NOTEBOOKS
        if p.stem == name
    ],
    ids=lambda p: p.stem,
)
def test_notebook_runs_in_fast_mode(path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Run the notebooks in order into one shared ARTIFACTS_DIR, as `make demo` does."""
    run_dir = tmp_path_factory.getbasetemp() / "notebook-run"
    parameters = {**demo.FAST_PARAMETERS, "ARTIFACTS_DIR": str(run_dir / "artifacts")}
    result = demo.run_notebook(path.stem, run_dir, parameters, NOTEBOOK_DIR)
    assert result["ok"], result["error"]
    executed = json.loads(Path(result["output"]).read_text())
    errors = [
        o
        for c in executed["cells"]
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    assert demo.log_noise(result["output"]) == [], "TensorFlow/absl/retracing lines in outputs"
    summary = run_dir / "artifacts" / "summary" / f"{path.stem}.md"
    assert summary.is_file() and summary.read_text().strip()


@pytest.mark.notebook
def test_the_fast_cnn_learned_the_phantoms(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The chain above (seed 42): the fast CNN beats chance by a wide margin, and its
    Grad-CAM points at the phantom lesions far more often than a random point would."""
    artifacts = tmp_path_factory.getbasetemp() / "notebook-run" / "artifacts"
    metrics_file = course.metrics_path(artifacts, "cnn")
    if not metrics_file.is_file():
        pytest.skip("runs after test_notebook_runs_in_fast_mode (04 writes the metrics)")
    metrics = json.loads(metrics_file.read_text())
    learning = metrics["splits"]["test_leakfree"]["learning"]
    assert learning["learned"], learning
    assert learning["images"] >= 200, learning  # the fast set's leak-free test split
    assert learning["low"] >= learning["majority_rate"] + 0.5, learning  # 25% -> at least 75%
    gradcam = metrics["localisation"]["methods"]["gradcam"]["all"]
    assert gradcam["images"] >= 60, gradcam
    assert gradcam["pointing_low"] >= gradcam["pointing_chance"] + 0.4, gradcam


def _parameters(name: str) -> dict:
    notebook = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign)
    }


@pytest.mark.parametrize(("name", "model"), [("02_transfer", "xception"), ("03_cnn", "cnn")])
def test_notebook_defaults_match_the_cli(name: str, model: str) -> None:
    """The notebook and `python -m course_utils train` train with the same defaults."""
    from course_utils.train import TrainConfig

    parameters = _parameters(name)
    defaults = TrainConfig.for_model(model)
    assert parameters["IMAGE_SIZE"] == defaults.image_size
    assert parameters["EPOCHS"] == defaults.num_epochs
    assert parameters["BATCH_SIZE"] == defaults.batch_size
    assert parameters["LEARNING_RATE"] == defaults.learning_rate


@pytest.mark.notebook
@pytest.mark.standalone
def test_lesson_runs_on_its_own(phantom_root: Path, tmp_path: Path) -> None:
    """Notebook 03 without notebook 01: it audits and splits DATA_DIR itself."""
    parameters = {
        **demo.FAST_PARAMETERS,
        "DATA_DIR": str(phantom_root),
        "ARTIFACTS_DIR": str(tmp_path / "artifacts"),
    }
    result = demo.run_notebook("03_cnn", tmp_path, parameters, NOTEBOOK_DIR)
    assert result["ok"], result["error"]
    assert (tmp_path / "artifacts" / "splits" / "dataset.json").is_file()
    assert (tmp_path / "artifacts" / "cnn.json").is_file()


def _output_text(executed_notebook: str | Path) -> str:
    """All stream and text outputs of an executed notebook, as one string."""
    notebook = json.loads(Path(executed_notebook).read_text())
    texts = [
        output.get("text") or output.get("data", {}).get("text/plain", "")
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
    ]
    return "\n".join("".join(text) if isinstance(text, list) else text for text in texts)


@pytest.mark.notebook
@pytest.mark.standalone
@pytest.mark.parametrize(
    ("name", "needed"), [("04_evaluate", ("xception", "cnn")), ("05_explain_app", ("cnn",))]
)
def test_lesson_trains_the_models_it_lacks(
    name: str, needed: tuple[str, ...], phantom_root: Path, tmp_path: Path
) -> None:
    """04 and 05 started alone on an EMPTY ARTIFACTS_DIR (a fresh Colab runtime) train them."""
    artifacts = tmp_path / "artifacts"
    parameters = {
        **demo.FAST_PARAMETERS,
        "DATA_DIR": str(phantom_root),
        "ARTIFACTS_DIR": str(artifacts),
    }
    result = demo.run_notebook(name, tmp_path, parameters, NOTEBOOK_DIR)
    assert result["ok"], result["error"]
    text = _output_text(result["output"])
    for model in needed:
        assert course.card_path(course.model_path(artifacts, model)).is_file()
        display = course.display_name(model)
        assert f"no {display} model: training it now in fast mode" in text
        assert f"Trained {display} in " in text
    assert text.count("Estimated time: about ") == len(needed)
    if name == "04_evaluate":
        assert all(course.metrics_path(artifacts, model).is_file() for model in needed)
    assert demo.log_noise(result["output"]) == [], "TensorFlow/absl/retracing lines in outputs"
