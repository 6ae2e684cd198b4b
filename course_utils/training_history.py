"""Training histories as tables: one row per epoch, read from the files ``fit_model`` writes.

Pure pandas (no TensorFlow), so the figures in ``viz`` can use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd


def history_frame(history: Mapping | pd.DataFrame) -> pd.DataFrame:
    """Turn one training history into a table with one row per epoch.

    Args:
        history: A Keras ``History.history`` dict, the dict ``fitting.fit_model``
            returns or writes as ``<name>_history.json`` (with a ``"history"`` key), or
            the table of its ``<name>_history.csv``.

    Returns:
        The metrics as columns (``loss``, ``val_loss``, ``accuracy`` ...) and an
        ``epoch`` column counting from 1.

    Raises:
        ValueError: If there is no ``loss`` column.
    """
    if isinstance(history, pd.DataFrame):
        frame = history.copy()
        if "epoch" in frame:
            frame["epoch"] = frame["epoch"] - frame["epoch"].min() + 1
    else:
        values = history.get("history", history)
        frame = pd.DataFrame({key: list(column) for key, column in values.items()})
    if "loss" not in frame:
        raise ValueError(f"A training history needs a 'loss' column, got {list(frame.columns)}.")
    if "epoch" not in frame:
        frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def read_history(path: str | Path) -> pd.DataFrame:
    """Read a history file ``fitting.fit_model`` wrote (``.json`` or ``.csv``).

    Args:
        path: ``<name>_history.json`` or ``<name>_history.csv``.

    Returns:
        What ``history_frame`` returns.

    Raises:
        FileNotFoundError: If the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No training history at {path}; train the model first (notebook 02 or 03)."
        )
    if path.suffix == ".csv":
        return history_frame(pd.read_csv(path))
    return history_frame(json.loads(path.read_text()))


def overfitting_gap(history: Mapping | pd.DataFrame) -> dict[str, float | int]:
    """Measure over-fitting from one training history.

    Args:
        history: Anything ``history_frame`` takes; needs ``loss``, ``val_loss``,
            ``accuracy`` and ``val_accuracy``.

    Returns:
        ``best_epoch`` (lowest validation loss, from 1), ``epochs``, the training and
        validation accuracy at the best epoch and their ``gap`` (train - val), the
        same ``final_gap`` at the last epoch, and ``val_loss_rise``: how much the
        validation loss rose from its best to the last epoch.
    """
    frame = history_frame(history)
    best = int(frame["val_loss"].to_numpy().argmin())
    last = len(frame) - 1
    return {
        "best_epoch": best + 1,
        "epochs": len(frame),
        "train_accuracy": float(frame["accuracy"].iloc[best]),
        "val_accuracy": float(frame["val_accuracy"].iloc[best]),
        "gap": float(frame["accuracy"].iloc[best] - frame["val_accuracy"].iloc[best]),
        "final_gap": float(frame["accuracy"].iloc[last] - frame["val_accuracy"].iloc[last]),
        "val_loss_rise": float(frame["val_loss"].iloc[last] - frame["val_loss"].iloc[best]),
    }
