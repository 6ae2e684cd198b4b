"""Training: device setup, the fit loop, two-phase transfer learning, model cards.

Nothing happens at import: no seed is set, no dtype policy is changed, no device is
touched. Notebooks call ``configure_devices()`` once, then ``train_transfer`` or
``train_cnn``; every other notebook loads the result with ``load_model_with_card``.

Every saved model is a pair of files in one folder::

    <name>.keras   the model (raw [0, 255] RGB in, class probabilities out)
    <name>.json    its model card: class order, image size, data, seed, versions, metrics
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from course_utils.data.pipeline import dataset_from_split
from course_utils.models import (
    FEATURE_LAYER,
    HEAD_NAME,
    build_cnn,
    build_xception_classifier,
    compile_model,
    feature_extractor,
    get_head,
    set_trainable_for_phase,
    trainable_counts,
)

#: Keys every model card must hold (``load_model_with_card`` checks them).
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

#: Default settings of each model: the notebooks' parameter cells and the CLI use these.
TRAINING_DEFAULTS: dict[str, dict] = {
    "xception": {"image_size": 299, "num_epochs": 10, "batch_size": 32, "learning_rate": 1e-3},
    "cnn": {"image_size": 128, "num_epochs": 30, "batch_size": 32, "learning_rate": 2e-3},
}
#: What fast mode changes: small images, few epochs, no ImageNet download.
FAST_OVERRIDES: dict[str, dict] = {
    "xception": {"image_size": 96, "num_epochs": 2, "weights": None},
    "cnn": {"image_size": 96, "num_epochs": 3},
}


def training_settings(model_name: str, fast: bool = False, **overrides: object) -> dict:
    """Return the settings of one model's training run.

    Args:
        model_name: ``"xception"`` or ``"cnn"``.
        fast: Apply ``FAST_OVERRIDES`` (small images, few epochs, no download).
        **overrides: Values that win over both (None values are ignored).

    Returns:
        A dict with ``image_size``, ``num_epochs``, ``batch_size``, ``learning_rate``
        (and ``weights`` for Xception).

    Raises:
        ValueError: If the model name is unknown.
    """
    if model_name not in TRAINING_DEFAULTS:
        raise ValueError(f"Unknown model {model_name!r}; use one of {list(TRAINING_DEFAULTS)}.")
    settings = dict(TRAINING_DEFAULTS[model_name])
    if model_name == "xception":
        settings["weights"] = "imagenet"
    if fast:
        settings.update(FAST_OVERRIDES[model_name])
    settings.update({key: value for key, value in overrides.items() if value is not None})
    return settings


# --- devices -------------------------------------------------------------------------


def configure_devices(mixed_precision: bool | str = "auto") -> tf.distribute.Strategy:
    """Choose the dtype policy and distribution strategy for this machine.

    Mixed precision (``mixed_float16``) roughly doubles speed on modern GPUs but slows a
    CPU down, so ``"auto"`` turns it on only when a GPU is visible. Several GPUs get a
    ``MirroredStrategy``; one GPU or a CPU get TensorFlow's default strategy. Build and
    compile models inside ``strategy.scope()``; ``describe_devices`` says what was chosen.

    Args:
        mixed_precision: ``"auto"``, True (force ``mixed_float16``) or False (float32).

    Returns:
        The strategy chosen.

    Raises:
        ValueError: If ``mixed_precision`` is not ``"auto"``, True or False.
    """
    if mixed_precision not in ("auto", True, False):
        raise ValueError(f"mixed_precision must be 'auto', True or False, got {mixed_precision!r}.")
    gpus = tf.config.list_physical_devices("GPU")
    use_mixed = bool(gpus) if mixed_precision == "auto" else bool(mixed_precision)
    keras.mixed_precision.set_dtype_policy("mixed_float16" if use_mixed else "float32")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def describe_devices(strategy: tf.distribute.Strategy | None = None) -> str:
    """Describe the devices, strategy and dtype policy in one line.

    Args:
        strategy: What ``configure_devices`` returned; None means the current strategy.

    Returns:
        E.g. ``"CPU only (no GPU visible); _DefaultDistributionStrategy with 1 replica;
        dtype policy float32"``.
    """
    strategy = strategy or tf.distribute.get_strategy()
    gpus = tf.config.list_physical_devices("GPU")
    devices = f"{len(gpus)} GPU(s)" if gpus else "CPU only (no GPU visible)"
    replicas = strategy.num_replicas_in_sync
    policy = keras.mixed_precision.dtype_policy().name
    return (
        f"{devices}; {type(strategy).__name__} with {replicas} replica"
        f"{'s' if replicas > 1 else ''}; dtype policy {policy}"
    )


def _scope(strategy: tf.distribute.Strategy | None) -> contextlib.AbstractContextManager:
    """Return ``strategy.scope()``, or a no-op context without a strategy."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


# --- the fit loop --------------------------------------------------------------------


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
    ``name_history.json``. The model ends with the weights of its best epoch.

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
    paths = {
        "model_path": out_dir / f"{name}.keras",
        "history_csv": out_dir / f"{name}_history.csv",
        "history_json": out_dir / f"{name}_history.json",
    }
    plateau = not _has_schedule(model)
    callbacks = _callbacks(paths, patience, checkpoint, plateau) + list(extra_callbacks or [])
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


def _callbacks(
    paths: dict[str, Path], patience: int, checkpoint: bool, plateau: bool = True
) -> list:
    """Build the standard callbacks of ``fit_model`` (no plateau cuts under a schedule)."""
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


# --- phase 1: the head on cached features -------------------------------------------


def feature_cache_key(
    paths: Sequence[str], image_size: int, weights: str | Path | None, seed: int | None = None
) -> str:
    """Hash what decides the features: the files (in order), image size and weights.

    Args:
        paths: Image paths in dataset order.
        image_size: Side of the images fed to the base.
        weights: ``"imagenet"``, a weights file (hashed by content), or None (random
            weights are only reproducible with the same ``seed``).
        seed: Seed the base was built with; only used when ``weights`` is None.

    Returns:
        A 16-character hex key for a file name.
    """
    if weights is None:
        weights_id = f"random-seed-{seed}"
    elif str(weights) == "imagenet":
        weights_id = "imagenet"
    else:
        weights_id = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    blob = json.dumps(
        {
            "paths": list(map(str, paths)),
            "size": int(image_size),
            "weights": weights_id,
            "layer": FEATURE_LAYER,
            "keras": keras.__version__,
        },
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def extract_features(
    model: keras.Model,
    dataset: tf.data.Dataset,
    cache_path: str | Path | None = None,
    dtype: type = np.float16,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the frozen base once over a dataset and keep its feature maps.

    Args:
        model: A feature extractor (image → feature map), or a full Xception
            classifier, which is cut at ``block14_sepconv2_act``.
        dataset: Batches of ``(images, one-hot labels)``, **not** augmented and not
            shuffled between epochs.
        cache_path: Optional ``.npz`` file: read if it exists, else written. Name it
            with ``feature_cache_key`` so other files, sizes or weights miss the cache.
        dtype: Storage type of the features. float16 halves the memory (at 299 px one
            image's 10 x 10 x 2048 features take 400 kB instead of 800 kB: 2.3 GB rather
            than 4.6 GB for 5,700 images, which matters on Colab) and keeps about three
            significant digits, far finer than what the head learns from.

    Returns:
        ``(features, labels)``: features in ``dtype``, one-hot labels as float32.

    Raises:
        ValueError: If the dataset is empty.
    """
    if cache_path is not None and Path(cache_path).is_file():
        with np.load(cache_path) as cached:
            return cached["features"], cached["labels"]
    extractor = _as_extractor(model)
    features, labels = [], []
    for images, onehot in dataset:
        features.append(np.asarray(extractor.predict_on_batch(images), dtype=dtype))
        labels.append(np.asarray(onehot, dtype=np.float32))
    if not features:
        raise ValueError("The dataset gave no batches; check the split it was built from.")
    features, labels = np.concatenate(features), np.concatenate(labels)
    if cache_path is not None:
        _save_npz_atomically(Path(cache_path), features=features, labels=labels)
    return features, labels


def _as_extractor(model: keras.Model) -> keras.Model:
    """Cut a full Xception classifier at its feature layer; pass other models through."""
    if any(layer.name == HEAD_NAME for layer in model.layers):
        return feature_extractor(model)
    return model


def _save_npz_atomically(path: Path, **arrays: np.ndarray) -> None:
    """Write an ``.npz`` through a temporary file, so a crash never leaves half a cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".npz", dir=path.parent)
    os.close(handle)
    try:
        np.savez(temporary, **arrays)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


class ArrayBatches(keras.utils.PyDataset):
    """Batches of in-memory arrays, reshuffled each epoch, without copying the arrays.

    ``tf.data.Dataset.from_tensor_slices`` would copy gigabytes of cached features into
    a TensorFlow constant; this slices the NumPy arrays one batch at a time instead and
    hands the model float32.

    Args:
        features: Array (n, ...), any float dtype.
        labels: One-hot labels (n, classes).
        batch_size: Rows per batch.
        seed: Seed of the per-epoch shuffle; None keeps the order (validation).
    """

    def __init__(
        self, features: np.ndarray, labels: np.ndarray, batch_size: int, seed: int | None = None
    ) -> None:
        super().__init__()
        self.features, self.labels, self.batch_size = features, labels, batch_size
        self.rng = None if seed is None else np.random.default_rng(seed)
        self.order = np.arange(len(features))
        self.on_epoch_end()

    def __len__(self) -> int:
        """Number of batches per epoch."""
        return int(np.ceil(len(self.features) / self.batch_size))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return batch ``index`` as float32 arrays."""
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        return self.features[rows].astype(np.float32), self.labels[rows].astype(np.float32)

    def on_epoch_end(self) -> None:
        """Draw a new order of the rows (training only)."""
        if self.rng is not None:
            self.order = self.rng.permutation(len(self.features))


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


# --- whole trainings -----------------------------------------------------------------


def train_transfer(
    train_split: pd.DataFrame,
    val_split: pd.DataFrame,
    class_names: Sequence[str],
    out_dir: str | Path,
    image_size: int = TRAINING_DEFAULTS["xception"]["image_size"],
    num_epochs_phase1: int = TRAINING_DEFAULTS["xception"]["num_epochs"],
    num_epochs_phase2: int = TRAINING_DEFAULTS["xception"]["num_epochs"],
    batch_size: int = TRAINING_DEFAULTS["xception"]["batch_size"],
    weights: str | Path | None = "imagenet",
    learning_rate: float = TRAINING_DEFAULTS["xception"]["learning_rate"],
    seed: int = 42,
    fast: bool = False,
    name: str = "xception",
    dataset: dict | None = None,
    feature_cache_dir: str | Path | None = None,
    patience: int = 5,
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[keras.Model, dict]:
    """Two-phase transfer learning with Xception; saves ``name.keras`` and its card.

    Phase 1 trains the head on features of the frozen base, computed once
    (``train_head_on_features``). Phase 2 unfreezes the exit flow (blocks 13-14,
    batch norms stay frozen) and fine-tunes the whole model on augmented images at a
    tenth of the learning rate, so the pretrained filters change gently. The head
    trained in phase 1 is the very sub-model the full model calls, so its weights are
    in place for phase 2 without copying.

    Args:
        train_split: Training table of ``load_splits`` (``abs_path``, ``label``).
        val_split: Validation table.
        class_names: Class order of the outputs.
        out_dir: Folder for the model, its card and the history files.
        image_size: Side of the input images (>= 71).
        num_epochs_phase1: Largest number of head-only epochs.
        num_epochs_phase2: Largest number of fine-tuning epochs (0 skips phase 2).
        batch_size: Images per batch.
        weights: ``"imagenet"``, None or a weights file of the base.
        learning_rate: Phase-1 learning rate; phase 2 uses a tenth of it.
        seed: Seed of the weights, shuffles, augmentation and dropout.
        fast: Fast mode: one log line per epoch.
        name: Stem of the files written.
        dataset: The ``dataset`` dict of ``load_splits`` (source, root) for the card.
        feature_cache_dir: Keep phase-1 features as ``.npz`` files here for reruns.
        patience: Early-stopping patience of each phase.
        strategy: Strategy from ``configure_devices``; None uses the current one.

    Returns:
        ``(model, card)``: the trained model (best weights) and its model card.

    Raises:
        ValueError: If a split is empty or has unknown labels, or the image is too small.
        FileNotFoundError: If a weights path does not exist.
        PretrainedWeightsUnavailable: If the ImageNet weights cannot be downloaded.
    """
    started = time.perf_counter()
    verbose = 2 if fast else "auto"
    run = _Run(
        name, class_names, image_size, batch_size, seed, learning_rate, patience, verbose, out_dir
    )
    with _scope(strategy):
        keras.utils.set_random_seed(seed)
        model = build_xception_classifier(image_size, len(class_names), weights=weights)
        caches = feature_cache_paths(
            feature_cache_dir, [train_split, val_split], image_size, weights, seed
        )
        phases = [_transfer_phase1(model, train_split, val_split, run, num_epochs_phase1, caches)]
        if num_epochs_phase2 > 0:
            phase1_weights = model.get_weights()
            phases.append(_transfer_phase2(model, train_split, val_split, run, num_epochs_phase2))
            if _val_loss(phases[1]) > _val_loss(phases[0]):
                model.set_weights(phase1_weights)  # fine-tuning did not help: keep phase 1
                phases[1]["kept"] = False
    label = "random" if weights is None else str(weights)
    card = {
        "architecture": f"Xception (weights={label}) + head Flatten-Dropout(0.3)-"
        "Dense(128, relu)-Dropout(0.25)-Dense(softmax)",
        "preprocessing": "xception",
        "weights": label,
        "fast_mode": bool(fast),
    }
    card = _finish(model, run, card, phases, train_split, val_split, dataset, started)
    return model, card


@dataclasses.dataclass(frozen=True)
class _Run:
    """The settings one training run shares between its phases."""

    name: str
    class_names: Sequence[str]
    image_size: int
    batch_size: int
    seed: int
    learning_rate: float
    patience: int
    verbose: int | str
    out_dir: str | Path

    def data(self, split: pd.DataFrame, training: bool = False) -> tf.data.Dataset:
        """Build the raw-pixel dataset of a split (augmented and shuffled when training)."""
        return dataset_from_split(
            split,
            self.class_names,
            image_size=self.image_size,
            batch_size=self.batch_size,
            training=training,
            preprocessing="none",
            seed=self.seed,
        )


def _transfer_phase1(
    model: keras.Model,
    train_split: pd.DataFrame,
    val_split: pd.DataFrame,
    run: _Run,
    num_epochs: int,
    caches: tuple[Path | None, Path | None],
) -> dict:
    """Phase 1: freeze the base, cache its features, train the head on them."""
    set_trainable_for_phase(model, phase=1)
    cache_hit = all(path is not None and Path(path).is_file() for path in caches)
    started = time.perf_counter()
    train_x, train_y = extract_features(model, run.data(train_split), caches[0])
    val_x, val_y = extract_features(model, run.data(val_split), caches[1])
    extraction_seconds = round(time.perf_counter() - started, 1)
    head = get_head(model)
    result = train_head_on_features(
        head,
        train_x,
        train_y,
        val_x,
        val_y,
        num_epochs,
        run.batch_size,
        run.out_dir,
        name=f"{run.name}_phase1",
        seed=run.seed,
        learning_rate=run.learning_rate,
        patience=run.patience,
        verbose=run.verbose,
    )
    title = "1: head on cached features of the frozen base"
    record = _phase_record(title, result, num_epochs, run.learning_rate, trainable_counts(head))
    record.update(feature_extraction_seconds=extraction_seconds, feature_cache_hit=cache_hit)
    return record


def _transfer_phase2(
    model: keras.Model,
    train_split: pd.DataFrame,
    val_split: pd.DataFrame,
    run: _Run,
    num_epochs: int,
) -> dict:
    """Phase 2: unfreeze blocks 13-14 (batch norm frozen), fine-tune on augmented images."""
    set_trainable_for_phase(model, phase=2)
    learning_rate = run.learning_rate / 10
    compile_model(model, learning_rate=learning_rate)
    train_data, val_data = run.data(train_split, training=True), run.data(val_split)
    result = fit_model(
        model,
        train_data,
        val_data,
        run.out_dir,
        run.name,
        num_epochs,
        run.seed,
        run.patience,
        run.verbose,
    )
    title = "2: fine-tune blocks 13-14 on augmented images, batch norm frozen"
    return _phase_record(title, result, num_epochs, learning_rate, trainable_counts(model))


def train_cnn(
    train_split: pd.DataFrame,
    val_split: pd.DataFrame,
    class_names: Sequence[str],
    out_dir: str | Path,
    image_size: int = TRAINING_DEFAULTS["cnn"]["image_size"],
    num_epochs: int = TRAINING_DEFAULTS["cnn"]["num_epochs"],
    batch_size: int = TRAINING_DEFAULTS["cnn"]["batch_size"],
    learning_rate: float = TRAINING_DEFAULTS["cnn"]["learning_rate"],
    seed: int = 42,
    fast: bool = False,
    name: str = "cnn",
    dataset: dict | None = None,
    patience: int = 10,
    optimizer: str = "adam",
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[keras.Model, dict]:
    """Train the from-scratch CNN on augmented images; saves ``name.keras`` and its card.

    Args:
        train_split: Training table of ``load_splits`` (``abs_path``, ``label``).
        val_split: Validation table.
        class_names: Class order of the outputs.
        out_dir: Folder for the model, its card and the history files.
        image_size: Side of the input images.
        num_epochs: Largest number of epochs.
        batch_size: Images per batch.
        learning_rate: Starting learning rate; it follows a cosine down to 0 over
            ``num_epochs`` (noisy validation early on is why ``patience`` is long).
        seed: Seed of the weights, shuffles, augmentation and dropout.
        fast: Fast mode: one log line per epoch.
        name: Stem of the files written.
        dataset: The ``dataset`` dict of ``load_splits`` (source, root) for the card.
        patience: Early-stopping patience.
        optimizer: Optimizer name (Adam; the reference notebook's Adamax also works).
        strategy: Strategy from ``configure_devices``; None uses the current one.

    Returns:
        ``(model, card)``: the trained model (best weights) and its model card.

    Raises:
        ValueError: If a split is empty or has unknown labels, or the image is too small.
    """
    started = time.perf_counter()
    verbose = 2 if fast else "auto"
    run = _Run(
        name, class_names, image_size, batch_size, seed, learning_rate, patience, verbose, out_dir
    )
    with _scope(strategy):
        keras.utils.set_random_seed(seed)
        steps = num_epochs * int(np.ceil(len(train_split) / batch_size))
        model = compile_model(
            build_cnn(image_size, len(class_names)),
            optimizer,
            learning_rate=learning_rate,
            decay_steps=steps,
        )
        train_data, val_data = run.data(train_split, training=True), run.data(val_split)
        result = fit_model(
            model, train_data, val_data, out_dir, name, num_epochs, seed, patience, verbose
        )
    counts = trainable_counts(model)
    phases = [_phase_record("1: all layers", result, num_epochs, learning_rate, counts)]
    card = {
        "architecture": "CNN from scratch: 5 blocks (Conv3x3-BatchNorm-ReLU, 2 convs in the "
        "last)-MaxPool, 16-256 filters + GlobalAvgPool-Dropout(0.3)-Dense(128, relu)-"
        "Dropout(0.3)-Dense(softmax)",
        "optimizer": f"{optimizer}, cosine decay from {learning_rate:g}",
        "preprocessing": "unit",
        "fast_mode": bool(fast),
    }
    card = _finish(model, run, card, phases, train_split, val_split, dataset, started)
    return model, card


def feature_cache_paths(
    cache_dir: str | Path | None,
    splits: Sequence[pd.DataFrame],
    image_size: int,
    weights: str | Path | None,
    seed: int,
) -> list[Path | None]:
    """Return the ``.npz`` phase-1 feature cache of each split.

    Args:
        cache_dir: Folder of the caches; None means no caching.
        splits: Split tables (``abs_path``), e.g. ``[train, val]``.
        image_size: Input size of the base.
        weights: The base's weights (part of the cache key).
        seed: The run's seed (part of the cache key).

    Returns:
        One path per split, or Nones when ``cache_dir`` is None.
    """
    if cache_dir is None:
        return [None for _ in splits]
    keys = [feature_cache_key(split["abs_path"], image_size, weights, seed) for split in splits]
    return [Path(cache_dir) / f"xception_features_{key}.npz" for key in keys]


def save_for_inference(model: keras.Model, path: str | Path) -> Path:
    """Save a model without its optimizer state (about a third of the file size).

    Args:
        model: The trained model.
        path: The ``.keras`` file to write.

    Returns:
        The path written; ``keras.models.load_model`` gives an uncompiled model, ready
        to predict (compile it again to train further).
    """
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.save(path)
    return Path(path)


def _val_loss(phase: dict) -> float:
    """Best validation loss of a phase record (infinite when unknown)."""
    return float(phase["best_val_metrics"].get("loss", float("inf")))


def _phase_record(
    title: str, result: dict, max_epochs: int, learning_rate: float, counts: dict
) -> dict:
    """Summarise one training phase for the model card."""
    return {
        "phase": title,
        "epochs_run": result["epochs_run"],
        "max_epochs": max_epochs,
        "best_epoch": result["best_epoch"],
        "learning_rate": learning_rate,
        "seconds": result["seconds"],
        "trainable_params": counts["trainable"],
        "best_val_metrics": result["best_val_metrics"],
    }


def _finish(
    model: keras.Model,
    run: _Run,
    card: dict,
    phases: list[dict],
    train_split: pd.DataFrame,
    val_split: pd.DataFrame,
    dataset: dict | None,
    started: float,
) -> dict:
    """Save the trained model (best weights) and write its card; return the card."""
    model_path = Path(run.out_dir) / f"{run.name}.keras"
    model_path.parent.mkdir(parents=True, exist_ok=True)
    save_for_inference(model, model_path)
    card = {
        **card,
        "name": run.name,
        "class_names": run.class_names,
        "image_size": run.image_size,
        "colour_mode": "rgb",
        "input_value_range": INPUT_VALUE_RANGE,
        "dataset_preprocessing": "none",
        "dataset": dataset_facts(train_split, dataset),
        "split_sizes": {"train": len(train_split), "val": len(val_split)},
        "seed": run.seed,
        "training_seconds": round(time.perf_counter() - started, 1),
        "best_val_metrics": min(phases, key=_val_loss)["best_val_metrics"],
        "phases": phases,
        "parameters": trainable_counts(model)["total"],
    }
    return load_card(write_model_card(model_path, card))


def split_accuracy(
    model: keras.Model,
    split: pd.DataFrame,
    class_names: Sequence[str],
    image_size: int,
    batch_size: int = 64,
) -> float:
    """Accuracy of a model on one split table (no augmentation).

    Args:
        model: A trained model taking raw [0, 255] pixels.
        split: A table of ``load_splits`` (``abs_path``, ``label``).
        class_names: The model's class order (from its card).
        image_size: The model's input size (from its card).
        batch_size: Images per batch.

    Returns:
        The share of images whose most probable class is the label.
    """
    data = dataset_from_split(
        split, class_names, image_size=image_size, batch_size=batch_size, cache=False
    )
    correct = 0
    for images, labels in data:
        predicted = np.argmax(model.predict_on_batch(images), axis=1)
        correct += int(np.sum(predicted == np.argmax(labels, axis=1)))
    return correct / len(split)


# --- model cards ---------------------------------------------------------------------


def dataset_facts(train_split: pd.DataFrame, dataset: dict | None = None) -> dict:
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


def library_versions() -> dict[str, str]:
    """Return the versions a model card records.

    Returns:
        ``{"tensorflow", "keras", "numpy", "python"}`` version strings.
    """
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def card_path(model_path: str | Path) -> Path:
    """Return the card's path for a model path: ``<stem>.json`` next to ``<stem>.keras``.

    Args:
        model_path: ``x.keras`` (or ``x.json``, or the stem ``x``).

    Returns:
        ``x.json``.
    """
    path = Path(model_path)
    return path.with_suffix(".json") if path.suffix in (".keras", ".json") else Path(f"{path}.json")


def _keras_path(model_path: str | Path) -> Path:
    """Return ``x.keras`` for ``x.keras``, ``x.json`` or ``x``."""
    path = Path(model_path)
    return (
        path.with_suffix(".keras") if path.suffix in (".keras", ".json") else Path(f"{path}.keras")
    )


def write_model_card(model_path: str | Path, card: dict) -> Path:
    """Write a model card next to its model, after checking it is complete.

    Adds ``library_versions``, ``card_version``, ``created`` and ``model_file`` when
    missing.

    Args:
        model_path: The model's ``.keras`` path.
        card: The card's facts; must hold ``REQUIRED_CARD_KEYS`` (versions are added).

    Returns:
        The card's path, ``<stem>.json``.

    Raises:
        ValueError: If required keys are missing.
    """
    full = {
        "card_version": CARD_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model_file": _keras_path(model_path).name,
        "library_versions": library_versions(),
        **card,
    }
    _check_card(full, card_path(model_path))
    path = card_path(model_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(full, indent=2, default=str))
    return path


def _check_card(card: dict, path: Path) -> None:
    """Raise a ValueError naming the keys a card lacks."""
    missing = [key for key in REQUIRED_CARD_KEYS if key not in card]
    if missing:
        raise ValueError(
            f"Model card {path} lacks {missing}. Re-train the model with notebook 02/03 (or "
            "`python -m course_utils train ...`) to write a complete card."
        )


def load_card(model_path: str | Path) -> dict:
    """Read and check a model card.

    Args:
        model_path: The model's ``.keras`` path (or its ``.json`` card).

    Returns:
        The card.

    Raises:
        FileNotFoundError: If the card is missing.
        ValueError: If required keys are missing.
    """
    path = card_path(model_path)
    if not path.is_file():
        raise FileNotFoundError(_missing_message(path, "model card"))
    card = json.loads(path.read_text())
    _check_card(card, path)
    return card


def _missing_message(path: Path, what: str) -> str:
    """Explain a missing model file and how to make it."""
    return (
        f"The {what} {path} does not exist. Train the model first: run notebook 02_transfer "
        "(Xception) or 03_cnn (CNN) with the same ARTIFACTS_DIR, or `python -m course_utils "
        f"train ... --out {path.parent}`; both write <name>.keras and <name>.json."
    )


def load_model_with_card(model_path: str | Path) -> tuple[keras.Model, dict]:
    """Load a trained model and its card: the one way every notebook and the app load models.

    Args:
        model_path: The model's ``.keras`` path (``.json`` or the bare stem work too).

    Returns:
        ``(model, card)``.

    Raises:
        FileNotFoundError: If the ``.keras`` file or its ``.json`` card is missing.
        ValueError: If the card lacks keys or does not match the model.
    """
    keras_path = _keras_path(model_path)
    if not keras_path.is_file():
        raise FileNotFoundError(_missing_message(keras_path, "model file"))
    card = load_card(keras_path)
    model = keras.saving.load_model(keras_path)
    outputs, size = model.output_shape[-1], model.input_shape[1]
    if outputs != len(card["class_names"]) or size != card["image_size"]:
        raise ValueError(
            f"{keras_path} ({outputs} classes, {size} px) does not match its card "
            f"({len(card['class_names'])} classes, {card['image_size']} px); re-train it so "
            "the .keras and .json files come from the same run."
        )
    return model, card
