"""What the course is made of: its notebooks, its models and every file they hand each other.

Notebooks hand off through ``ARTIFACTS_DIR`` only (never through globals)::

    ARTIFACTS_DIR/
      audit.json                 01  the data audit                      -> 04 (card), 05
      splits/                    01  train/val/test/test_leakfree CSVs   -> 02, 03, 04, 05, CLI
      splits/dataset.json        01  where the files are, class names, seed
      <model>.keras              02/03  the trained model                 -> 04, 05, app, CLI
      <model>.weights.h5         02/03  its weights (load anywhere)       -> 04, 05, app, CLI
      <model>.json               02/03  its JSON model card               -> everyone
      <model>_history.csv/.json  02/03  one row per epoch                 -> 02/03 plots, 04
      metrics_<model>.json       04  every number of the evaluation       -> card, demo summary
      <model>_card.md            04  the Markdown model card (``card`` CLI)
      figures/                   every notebook: PNG figures
      summary/<notebook>.md      every notebook: computed lines for the demo summary
      quiz_progress.json         quizzes: which questions you knew

This module only names paths and says what exists; it imports nothing heavy and creates
nothing at import time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: The course's lessons in teaching order; ``demo`` runs those that exist.
NOTEBOOKS: tuple[str, ...] = (
    "01_data",
    "02_transfer",
    "03_cnn",
    "04_evaluate",
    "05_explain_app",
)
#: Notebooks outside the lesson chain (they need no model); ``demo`` runs them last.
PRACTICE_NOTEBOOKS: tuple[str, ...] = ("interview_practice",)
#: The mini-app alone, no lesson cells (``make app`` serves it; ``demo`` does not run it).
APP_NOTEBOOK = "app"


@dataclass(frozen=True)
class ModelInfo:
    """One of the course's models: its file stem, how people call it, who trains it."""

    name: str
    display_name: str
    trained_by: str
    gradcam_stride: int


#: The course's models, in the order tables and figures show them.
MODELS: dict[str, ModelInfo] = {
    "xception": ModelInfo("xception", "Xception", "02_transfer", 32),
    "cnn": ModelInfo("cnn", "CNN", "03_cnn", 16),
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def display_name(model_name: str) -> str:
    """Return how tables and sentences name a model.

    Args:
        model_name: A card's ``name`` (``"cnn"``, ``"xception"`` or any other stem).

    Returns:
        ``"CNN"``/``"Xception"`` for the course's models, else the name itself.
    """
    info = MODELS.get(model_name)
    return info.display_name if info else model_name


def trained_by(model_name: str) -> str:
    """Return the notebook that trains a model (a fix to print when it is missing).

    Args:
        model_name: The model's name.

    Returns:
        ``"02_transfer"``, ``"03_cnn"`` or ``"02_transfer or 03_cnn"`` for other names.
    """
    info = MODELS.get(model_name)
    return info.trained_by if info else "02_transfer or 03_cnn"


def missing_model_message(path: str | Path, what: str = "model file") -> str:
    """Explain a missing model file and how to make it.

    Args:
        path: The file that is not there.
        what: What it is, e.g. ``"model card"``.

    Returns:
        One sentence naming the path and both ways to train the model.
    """
    path = Path(path)
    return (
        f"The {what} {path} does not exist. Train the model first: run notebook 02_transfer "
        "(Xception) or 03_cnn (CNN) with the same ARTIFACTS_DIR, or `python -m course_utils "
        f"train ... --out {path.parent}`; both write <name>.keras and <name>.json."
    )


# --- the files notebooks hand each other --------------------------------------------------


def notebooks_dir() -> Path:
    """Return the repository's ``notebooks/`` folder (next to the package).

    Returns:
        The folder path.

    Raises:
        FileNotFoundError: If the package is not installed from a checkout of the course.
    """
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No notebooks folder at {folder}; run from a checkout of the course "
            "(pip install -e .), or pass --notebooks DIR."
        )
    return folder


def figures_dir(artifacts_dir: str | Path) -> Path:
    """Return ``ARTIFACTS_DIR/figures`` (not created here)."""
    return Path(artifacts_dir) / "figures"


def splits_dir(artifacts_dir: str | Path) -> Path:
    """Return ``ARTIFACTS_DIR/splits`` (not created here)."""
    return Path(artifacts_dir) / "splits"


def dataset_path(split_dir: str | Path) -> Path:
    """Return the ``dataset.json`` of a splits folder (not created here)."""
    return Path(split_dir) / "dataset.json"


def audit_path(artifacts_dir: str | Path) -> Path:
    """Return ``ARTIFACTS_DIR/audit.json`` (not created here)."""
    return Path(artifacts_dir) / "audit.json"


def model_path(artifacts_dir: str | Path, model_name: str) -> Path:
    """Return ``ARTIFACTS_DIR/<model>.keras`` (not created here)."""
    return Path(artifacts_dir) / f"{model_name}.keras"


def keras_path(model_file: str | Path) -> Path:
    """Return ``x.keras`` for ``x.keras``, ``x.json``, ``x.weights.h5`` or the stem ``x``."""
    return _with_ending(model_file, ".keras")


def card_path(model_file: str | Path) -> Path:
    """Return the JSON card ``x.json`` for ``x.keras``, ``x.json``, ``x.weights.h5`` or ``x``."""
    return _with_ending(model_file, ".json")


def weights_path(model_file: str | Path) -> Path:
    """Return ``x.weights.h5`` for ``x.keras``, ``x.json``, ``x.weights.h5`` or ``x``."""
    return _with_ending(model_file, ".weights.h5")


def _with_ending(model_file: str | Path, ending: str) -> Path:
    """Swap a model file's ending (``.keras``, ``.json``, ``.weights.h5``) for another."""
    path = Path(model_file)
    name = path.name
    for known in (".weights.h5", ".keras", ".json"):
        if name.endswith(known):
            return path.with_name(name[: -len(known)] + ending)
    return path.with_name(name + ending)


def history_paths(out_dir: str | Path, run_name: str) -> dict[str, Path]:
    """Return a training run's history files (not created here).

    Args:
        out_dir: The folder the run writes to.
        run_name: The run's stem, e.g. ``"cnn"`` or ``"xception_phase1"``.

    Returns:
        ``{"history_csv": <run>_history.csv, "history_json": <run>_history.json}``.
    """
    out_dir = Path(out_dir)
    return {
        "history_csv": out_dir / f"{run_name}_history.csv",
        "history_json": out_dir / f"{run_name}_history.json",
    }


def metrics_path(artifacts_dir: str | Path, model_name: str) -> Path:
    """Return ``ARTIFACTS_DIR/metrics_<model>.json`` (not created here)."""
    return Path(artifacts_dir) / f"metrics_{model_name}.json"


def markdown_card_path(model_file: str | Path) -> Path:
    """Return the Markdown card ``<stem>_card.md`` beside a model (not created here)."""
    path = keras_path(model_file)
    return path.with_name(f"{path.stem}_card.md")


def quiz_progress_path(artifacts_dir: str | Path) -> Path:
    """Return ``ARTIFACTS_DIR/quiz_progress.json`` (not created here)."""
    return Path(artifacts_dir) / "quiz_progress.json"


def summary_path(artifacts_dir: str | Path, notebook: str) -> Path:
    """Return ``ARTIFACTS_DIR/summary/<notebook>.md`` (not created here)."""
    return Path(artifacts_dir) / "summary" / f"{notebook}.md"


def write_summary(artifacts_dir: str | Path, notebook: str, lines: list[str]) -> Path:
    """Leave a Markdown snippet that ``make demo`` adds to ``runs/demo/summary.md``.

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.
        notebook: The notebook's name, e.g. ``"01_data"``.
        lines: Markdown lines, computed from the run's numbers.

    Returns:
        The snippet's path.

    Raises:
        ValueError: If ``lines`` is empty.
    """
    if not lines:
        raise ValueError(f"The summary of {notebook} is empty; pass at least one line.")
    path = summary_path(artifacts_dir, notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# --- JSON ---------------------------------------------------------------------------------


def to_jsonable(value: object) -> object:
    """Turn NumPy values into Python ones and NaN / infinity into None, recursively.

    Args:
        value: Any mix of dicts, lists, tuples, NumPy arrays and scalars, paths.

    Returns:
        The same structure made of JSON types only (paths become strings).
    """
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()  # NumPy arrays and scalars
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(data: object, path: str | Path) -> Path:
    """Write strict JSON (NumPy values converted, NaN as null); the folder is created.

    Args:
        data: What to write.
        path: The file.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(data), indent=2, allow_nan=False))
    return path


def read_json(
    path: str | Path, what: str, fix: str, required: bool = True, expected: type = dict
) -> dict | list | None:
    """Read a JSON object (or list) with a clear error for a missing or corrupt file.

    Args:
        path: The file.
        what: What it is, for the message (``"model card"``).
        fix: What to do about it, for the message.
        required: Raise when the file is missing (else return None).
        expected: ``dict`` for a JSON object, ``list`` for a JSON list.

    Returns:
        The object (or list), or None when it is missing and not required.

    Raises:
        FileNotFoundError: If a required file is missing.
        ValueError: If the file is not valid JSON or not of the ``expected`` kind.
    """
    path = Path(path)
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"The {what} {path} does not exist; {fix}.")
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"The {what} {path} is not valid JSON ({error}); {fix}.") from error
    if not isinstance(data, expected):
        kind = "JSON list" if expected is list else "JSON object"
        raise ValueError(f"The {what} {path} is not a {kind}; {fix}.")
    return data
