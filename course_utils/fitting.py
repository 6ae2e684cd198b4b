"""The fit loop: early stopping, checkpoints, logged history; and the head on cached features.

``fit_model`` is the one loop both models train with. It writes ``<name>_history.csv``
as epochs finish and ``<name>_history.json`` at the end, so the notebooks' plots read
files, not globals.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from course_utils import course
from course_utils.features import ArrayBatches
from course_utils.models import compile_model


def fit_model(
    model: keras.Model,
    train_data: tf.data.Dataset,
    val_data: tf.data.Dataset,
    out_dir: str | Path,
    name: str,
    num_epochs: int,
    seed: int,
    patience: int = 5,
    verbose: int | str = "auto",
    extra_callbacks: Sequence[keras.callbacks.Callback] | None = None,
    checkpoint: bool = True,
) -> dict:
    """Train a compiled model with early stopping, checkpoints and logged history.

    Writes ``out_dir/name.keras`` (best validation loss, when ``checkpoint``),
    ``name_history.csv`` (one row per epoch, written as training goes) and
    ``name_history.json``. The model ends with the weights of its best epoch (their moving
    average, when the optimizer keeps one: ``compile_model(ema_momentum=...)``).

    Args:
        model: A compiled model.
        train_data: Batches of ``(images, one-hot labels)``.
        val_data: Validation batches (not augmented).
        out_dir: Folder for the files (created if missing).
        name: Stem of the file names.
        num_epochs: Largest number of epochs.
        seed: Seed of Python, NumPy and TensorFlow (``keras.utils.set_random_seed``).
        patience: Epochs without a better validation loss before stopping; the
            learning rate halves after ``max(1, patience // 2)`` such epochs.
        verbose: Keras verbosity (2 = one line per epoch, used in fast mode).
        extra_callbacks: More callbacks, e.g. TensorBoard.
        checkpoint: Save the best model to ``name.keras`` during training.

    Returns:
        ``{"history", "seconds", "epochs_run", "best_epoch", "best_val_metrics",
        "model_path", "history_csv", "history_json"}`` (``best_epoch`` counts from 1).

    Raises:
        ValueError: If ``num_epochs`` or ``patience`` is below 1.
    """
    if num_epochs < 1 or patience < 1:
        raise ValueError(f"num_epochs ({num_epochs}) and patience ({patience}) must be >= 1.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    paths = {"model_path": course.model_path(out_dir, name), **course.history_paths(out_dir, name)}
    plateau = not _has_schedule(model)
    callbacks = _callbacks(paths, patience, checkpoint, plateau, _uses_ema(model))
    callbacks += list(extra_callbacks or [])
    started = time.perf_counter()
    fitted = model.fit(
        train_data,
        validation_data=val_data,
        epochs=num_epochs,
        callbacks=callbacks,
        shuffle=False,  # datasets shuffle themselves; Keras would only warn
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    result = _summarise_history(fitted.history, seconds)
    result.update({key: str(path) for key, path in paths.items()})
    result["model_path"] = str(paths["model_path"]) if checkpoint else None
    paths["history_json"].write_text(json.dumps(result, indent=2))
    return result


def _has_schedule(model: keras.Model) -> bool:
    """Tell whether the optimizer's learning rate follows a schedule (a serialised dict)."""
    return isinstance(model.optimizer.get_config().get("learning_rate"), dict)


def _uses_ema(model: keras.Model) -> bool:
    """Tell whether the optimizer (inside a mixed-float16 loss scaler too) keeps an EMA."""
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    return bool(getattr(optimizer, "use_ema", False))


def _callbacks(
    paths: dict[str, Path],
    patience: int,
    checkpoint: bool,
    plateau: bool = True,
    ema: bool = False,
) -> list:
    """Build the standard callbacks of ``fit_model`` (no plateau cuts under a schedule).

    With ``ema``, ``SwapEMAWeights`` comes first: validation, early stopping and the
    checkpoint then all see the averaged weights, and training ends with them.
    """
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        ),
        keras.callbacks.CSVLogger(str(paths["history_csv"])),
    ]
    if plateau:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=max(1, patience // 2), min_lr=1e-6
            )
        )
    if checkpoint:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(paths["model_path"]), monitor="val_loss", save_best_only=True
            )
        )
    if ema:
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    return callbacks


def _summarise_history(history: dict, seconds: float) -> dict:
    """Turn a Keras history into plain floats plus the best epoch's validation metrics."""
    clean = {key: [float(value) for value in values] for key, values in history.items()}
    val_loss = clean.get("val_loss") or [0.0]
    best = int(np.nanargmin(val_loss)) if np.isfinite(val_loss).any() else len(val_loss) - 1
    best_metrics = {
        key.removeprefix("val_"): values[best]
        for key, values in clean.items()
        if key.startswith("val_") and best < len(values)
    }
    return {
        "history": clean,
        "seconds": round(seconds, 2),
        "epochs_run": len(val_loss),
        "best_epoch": best + 1,
        "best_val_metrics": best_metrics,
    }


def train_head_on_features(
    head: keras.Model,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_labels: np.ndarray,
    num_epochs: int,
    batch_size: int,
    out_dir: str | Path,
    name: str = "head",
    seed: int = 42,
    learning_rate: float = 1e-3,
    patience: int = 5,
    verbose: int | str = "auto",
) -> dict:
    """Phase 1 of transfer learning: train only the head, on cached base features.

    This trains the same function as ``fit`` on the full model with a frozen base,
    just faster. In phase 1 the base is frozen and runs in inference mode (batch norm
    uses its stored statistics, nothing is random), so it maps each image to the same
    feature map in every epoch; and phase 1 uses no augmentation, so the images are
    the same in every epoch too. Computing those feature maps once and training the
    head on them gives the head the same inputs and the same gradients, without
    paying for 20 million base parameters in every epoch.

    Args:
        head: The head sub-model (``models.get_head(model)``); trained in place.
        train_features: Feature maps of the training images.
        train_labels: Their one-hot labels.
        val_features: Feature maps of the validation images.
        val_labels: Their one-hot labels.
        num_epochs: Largest number of epochs.
        batch_size: Feature maps per batch.
        out_dir: Folder for the history files (the head is not checkpointed).
        name: Stem of the history file names.
        seed: Seed of the shuffle and the dropout.
        learning_rate: Learning rate of Adamax.
        patience: Early-stopping patience, see ``fit_model``.
        verbose: Keras verbosity.

    Returns:
        What ``fit_model`` returns.

    Raises:
        ValueError: If features and labels do not pair up.
    """
    for features, labels, split in (
        (train_features, train_labels, "train"),
        (val_features, val_labels, "val"),
    ):
        if len(features) != len(labels) or len(features) == 0:
            raise ValueError(
                f"{split}: {len(features)} feature maps but {len(labels)} labels; "
                "extract both from the same non-empty dataset."
            )
    train_data = ArrayBatches(train_features, train_labels, batch_size, seed=seed)
    val_data = ArrayBatches(val_features, val_labels, batch_size, seed=None)
    compile_model(head, learning_rate=learning_rate)
    return fit_model(
        head,
        train_data,
        val_data,
        out_dir,
        name,
        num_epochs,
        seed,
        patience=patience,
        verbose=verbose,
        checkpoint=False,
    )


def float32_copy(model: keras.Model) -> keras.Model:
    """Copy a model, weights included, with every layer computing in float32.

    A model trained under ``mixed_float16`` (GPU) or ``mixed_bfloat16`` (CPU) keeps its
    weights in float32 already; only its layers' compute dtype changes here, so the copy
    predicts the same classes at full precision on any device.

    Args:
        model: A functional model, trained under any dtype policy.

    Returns:
        The float32 copy.
    """

    def to_float32(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("float32")  # the new input layer takes the global one
    try:
        clone = keras.models.clone_model(model, clone_function=to_float32)
    finally:
        keras.mixed_precision.set_dtype_policy(policy)
    clone.set_weights(model.get_weights())
    return clone


def training_precision(model: keras.Model) -> str:
    """Name the dtype policy a model computes in: its mixed policy if any layer has one.

    Args:
        model: A built model.

    Returns:
        E.g. ``"mixed_bfloat16"``, or ``"float32"`` when every layer computes in float32
        (the softmax stays float32 under a mixed policy, so one layer is not enough).
    """
    mixed = sorted({layer.dtype_policy.name for layer in model.layers} - {"float32"})
    return mixed[0] if mixed else "float32"


def as_saved(model: keras.Model) -> keras.Model:
    """The model as ``save_for_inference`` writes it: float32, whatever policy trained it.

    Scoring this copy rather than the model in memory gives the numbers that lessons 04
    and 05 (and ``python -m course_utils evaluate``) measure on the saved file.

    Args:
        model: The trained model.

    Returns:
        ``model`` itself when it computes in float32, else ``float32_copy(model)``.
    """
    return model if training_precision(model) == "float32" else float32_copy(model)


def save_for_inference(model: keras.Model, path: str | Path) -> Path:
    """Save a float32 copy of a model without its optimizer state (a third of the size).

    Args:
        model: The trained model (under any dtype policy: see ``float32_copy``).
        path: The ``.keras`` file to write.

    Returns:
        The path written; ``keras.models.load_model`` gives an uncompiled float32 model,
        ready to predict (compile it again to train further).
    """
    float32_copy(model).save(path)
    return Path(path)
