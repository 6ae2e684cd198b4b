"""The JSON model card beside every trained model: write, load, check (no TensorFlow).

Every saved model is a set of files in one folder::

    <name>.keras        the model (raw [0, 255] RGB in, class probabilities out)
    <name>.weights.h5   its weights: rebuilt from the card, they load in any Keras 3
    <name>.json         its model card: class order, image size, data, seed, versions, metrics
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from course_utils import course

#: Keys every model card must hold (``load_card`` checks them).
REQUIRED_CARD_KEYS = (
    "class_names",
    "image_size",
    "colour_mode",
    "input_value_range",
    "preprocessing",
    "architecture",
    "dataset",
    "split_sizes",
    "seed",
    "library_versions",
    "training_seconds",
    "best_val_metrics",
    "phases",
)
INPUT_VALUE_RANGE = "[0,255] raw pixels; preprocessing inside the model"
CARD_VERSION = 1
#: What to do when a card is missing or incomplete.
TRAIN_FIX = "train it with notebook 02/03 or `python -m course_utils train`"


def dataset_facts(train_split: pd.DataFrame, dataset: Mapping | None = None) -> dict:
    """Say which data a model saw: source, root and a hash of the training file list.

    Args:
        train_split: The training table (``path`` relative to the root, or ``abs_path``).
        dataset: The ``dataset`` dict of ``load_splits``; None records ``"unknown"``.

    Returns:
        ``{"source", "root", "train_files_sha256"}``; the hash is over the sorted
        relative paths when known, so it is the same on every machine.
    """
    column = "path" if "path" in train_split.columns else "abs_path"
    files = sorted(map(str, train_split[column]))
    digest = hashlib.sha256("\n".join(files).encode()).hexdigest()
    dataset = dataset or {}
    root = dataset.get("root")
    if root is None and "abs_path" in train_split.columns and len(train_split):
        root = os.path.commonpath(list(map(str, train_split["abs_path"])))
    return {"source": dataset.get("source", "unknown"), "root": root, "train_files_sha256": digest}


def splits_match_card(card: Mapping, train_split: pd.DataFrame) -> bool | None:
    """Tell whether a training split is the one the model was trained on.

    Args:
        card: The model card (``dataset.train_files_sha256``).
        train_split: A training table.

    Returns:
        True or False, or None when the card records no hash.
    """
    recorded = (card.get("dataset") or {}).get("train_files_sha256")
    if not recorded:
        return None
    return dataset_facts(train_split)["train_files_sha256"] == recorded


def library_versions() -> dict[str, str]:
    """Return the versions a model card records, without importing TensorFlow.

    Returns:
        ``{"tensorflow", "keras", "numpy", "python"}`` version strings
        (``"not installed"`` for a missing package).
    """
    versions = {}
    for package in ("tensorflow", "keras", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["python"] = platform.python_version()
    return versions


def check_card(card: Mapping, path: str | Path) -> None:
    """Raise a ValueError naming the keys a card lacks.

    Args:
        card: The card's contents.
        path: Where it is (for the message).

    Raises:
        ValueError: If required keys are missing.
    """
    missing = [key for key in REQUIRED_CARD_KEYS if key not in card]
    if missing:
        raise ValueError(
            f"Model card {path} lacks {missing}. Re-train the model with notebook 02/03 (or "
            "`python -m course_utils train ...`) to write a complete card."
        )


def write_card(model_file: str | Path, card: Mapping) -> Path:
    """Write a model card next to its model, after checking it is complete.

    Adds ``library_versions``, ``card_version``, ``created``, ``model_file`` and
    ``weights_file`` when missing.

    Args:
        model_file: The model's ``.keras`` path.
        card: The card's facts; must hold ``REQUIRED_CARD_KEYS`` (versions are added).

    Returns:
        The card's path, ``<stem>.json``.

    Raises:
        ValueError: If required keys are missing.
    """
    path = course.card_path(model_file)
    full = {
        "card_version": CARD_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model_file": course.keras_path(model_file).name,
        "weights_file": course.weights_path(model_file).name,
        "library_versions": library_versions(),
        **card,
    }
    check_card(full, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(course.to_jsonable(full), indent=2, default=str))
    return path


def load_card(model_file: str | Path) -> dict:
    """Read and check a model card.

    Args:
        model_file: The model's ``.keras`` path (or its ``.json`` card, or the stem).

    Returns:
        The card.

    Raises:
        FileNotFoundError: If the card is missing.
        ValueError: If it is not valid JSON or lacks required keys.
    """
    path = course.card_path(model_file)
    if not path.is_file():
        raise FileNotFoundError(course.missing_model_message(path, "model card"))
    card = course.read_json(path, "model card", TRAIN_FIX + " again")
    check_card(card, path)
    return card


def find_models(
    artifacts_dir: str | Path, names: tuple[str, ...] = course.MODEL_NAMES
) -> tuple[dict[str, Path], dict[str, str]]:
    """Find the trained models (``<name>.json`` card with ``.keras`` or ``.weights.h5``).

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.
        names: Model names to look for.

    Returns:
        ``(found, missing)``: ``{name: .keras path}`` and ``{name: what is missing}``.

    Raises:
        FileNotFoundError: If none of the models is there.
    """
    folder, found, missing = Path(artifacts_dir), {}, {}
    for name in names:
        model_file = course.model_path(folder, name)
        card = course.card_path(model_file)
        has_model = model_file.is_file() or course.weights_path(model_file).is_file()
        if card.is_file() and has_model:
            found[name] = model_file
            continue
        absent = [str(card)] if not card.is_file() else []
        absent += [] if has_model else [str(model_file)]
        missing[name] = (
            f"{' and '.join(absent)} not found (run notebook {course.trained_by(name)} with this "
            "ARTIFACTS_DIR to train it)"
        )
    if not found:
        raise FileNotFoundError(
            f"No trained model in {folder} (looked for {', '.join(names)}). Run notebook "
            "02_transfer (Xception) and/or 03_cnn (CNN) with the same ARTIFACTS_DIR first, or "
            f"`python -m course_utils train cnn --out {folder}`."
        )
    return found, missing
