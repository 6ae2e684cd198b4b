"""Training: a ``TrainingRun`` whose phases train a built model, and saving it with its card.

The settings of a run are a ``TrainConfig`` (``course_utils.train_config``, re-exported here).

Nothing happens at import: no seed is set, no dtype policy is changed, no device is
touched. A lesson builds its model once, shows it, then trains that same object::

    config = TrainConfig.for_model("xception", fast=FAST_MODE)
    run = TrainingRun(config, splits, class_names, ARTIFACTS_DIR, dataset_info, strategy)
    model = run.build_model()
    phase1 = run.train_head(model, run.extract_features(model, cache_dir))
    phase2 = run.fine_tune(model, phase1)
    card = run.save(model, [phase1, phase2])

``train_transfer`` and ``train_cnn`` chain those calls for the command line. ``save``
writes ``<name>.keras``, ``<name>.weights.h5`` and the JSON card (``cards``), whose
``build`` entry lets ``models.build_from_card`` rebuild the model in any Keras 3.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from course_utils import cards, course
from course_utils.data.pipeline import augmenter, dataset_from_split
from course_utils.devices import strategy_scope
from course_utils.features import SplitFeatures, extract_features, feature_cache_paths
from course_utils.fitting import (
    as_saved,
    fit_model,
    save_for_inference,
    train_head_on_features,
    training_precision,
)
from course_utils.models import (
    build_cnn,
    build_spec,
    build_xception_classifier,
    compile_model,
    get_head,
    set_trainable_for_phase,
    trainable_counts,
)
from course_utils.train_config import TrainConfig

# --- one run: build once, then train that model phase by phase -----------------------


@dataclasses.dataclass(frozen=True, eq=False)
class TrainingRun:
    """What the phases of one run share: settings, data, output folder, devices.

    Attributes:
        config: The run's settings.
        splits: Split tables of ``load_splits``; ``"train"`` and ``"val"`` are used.
        class_names: Class order of the outputs.
        out_dir: Folder for the model, its card and the history files.
        dataset: The ``dataset`` dict of ``load_splits`` (source, root) for the card.
        strategy: Strategy from ``devices.configure_devices``; None uses the current one.
    """

    config: TrainConfig
    splits: Mapping[str, pd.DataFrame]
    class_names: Sequence[str]
    out_dir: str | Path
    dataset: Mapping | None = None
    strategy: tf.distribute.Strategy | None = None

    def __post_init__(self) -> None:
        """Check that both splits the phases read are there and not empty."""
        for name in ("train", "val"):
            if name not in self.splits or len(self.splits[name]) == 0:
                raise ValueError(
                    f"The run needs a non-empty {name!r} split, got {list(self.splits)}; "
                    "pass the tables of splits.load_splits (run notebook 01 first)."
                )

    def table(self, split: str) -> pd.DataFrame:
        """Return a split's table; ``"train"`` is sampled down to ``max_train_images``.

        The sample keeps each class's share (``DataFrame.sample`` per class, seeded).
        """
        table, limit = self.splits[split], self.config.max_train_images
        if split != "train" or limit is None or len(table) <= limit:
            return table
        fraction = limit / len(table)
        return table.groupby("label", group_keys=False).sample(
            frac=fraction, random_state=self.config.seed
        )

    def data(self, split: str, training: bool = False) -> tf.data.Dataset:
        """Build the raw-pixel dataset of a split (augmented and shuffled when training)."""
        return dataset_from_split(
            self.table(split),
            self.class_names,
            image_size=self.config.image_size,
            batch_size=self.config.batch_size,
            training=training,
            preprocessing="none",
            seed=self.config.seed,
            augmenter=augmenter(self.config.augmentation, self.config.seed) if training else None,
        )

    def build_model(self) -> keras.Model:
        """Build the config's model, seeded, inside the strategy's scope (not compiled).

        Raises:
            PretrainedWeightsUnavailable: If Xception's ImageNet weights cannot be downloaded.
        """
        config = self.config
        with strategy_scope(self.strategy):
            keras.utils.set_random_seed(config.seed)
            if config.model_name == "xception":
                return build_xception_classifier(
                    config.image_size, len(self.class_names), weights=config.weights
                )
            return build_cnn(config.image_size, len(self.class_names), **self.model_options)

    @property
    def model_options(self) -> dict:
        """Builder arguments the config changes from their defaults (recorded in the card)."""
        return self.config.model_options

    def extract_features(
        self, model: keras.Model, cache_dir: str | Path | None = None
    ) -> SplitFeatures:
        """Freeze the base (phase 1) and compute the features of both splits once.

        Args:
            model: The Xception classifier of ``build_model``.
            cache_dir: Keep the features as ``.npz`` files here for reruns (None: no cache).

        Returns:
            The features, their labels, the seconds spent and whether the cache served them.
        """
        set_trainable_for_phase(model, phase=1)
        config, tables = self.config, [self.table("train"), self.splits["val"]]
        caches = feature_cache_paths(
            cache_dir, tables, config.image_size, config.weights, config.seed
        )
        from_cache = all(path is not None and path.is_file() for path in caches)
        started = time.perf_counter()
        train_x, train_y = extract_features(model, self.data("train"), caches[0])
        val_x, val_y = extract_features(model, self.data("val"), caches[1])
        seconds = round(time.perf_counter() - started, 1)
        return SplitFeatures(train_x, train_y, val_x, val_y, seconds, from_cache)

    def train_head(self, model: keras.Model, features: SplitFeatures) -> dict:
        """Phase 1: train the head of ``model`` in place, on the cached base features.

        Args:
            model: The Xception classifier the features came from.
            features: What ``extract_features`` returned.

        Returns:
            The phase record for the card (with the extraction time and cache use).
        """
        config, head = self.config, get_head(model)
        with strategy_scope(self.strategy):
            result = train_head_on_features(
                head,
                features.train_features,
                features.train_labels,
                features.val_features,
                features.val_labels,
                config.num_epochs,
                config.batch_size,
                self.out_dir,
                name=f"{config.model_name}_phase1",
                seed=config.seed,
                learning_rate=config.learning_rate,
                patience=config.patience,
                verbose=config.verbose,
            )
        title = "1: head on cached features of the frozen base"
        counts = trainable_counts(head)
        record = phase_record(title, result, config.num_epochs, config.learning_rate, counts)
        record.update(
            feature_extraction_seconds=features.seconds, feature_cache_hit=features.from_cache
        )
        return record

    def fine_tune(self, model: keras.Model, phase1: Mapping | None = None) -> dict:
        """Phase 2: unfreeze blocks 13-14 (batch norm frozen), fine-tune on augmented images.

        The learning rate is a tenth of phase 1's, so the pretrained filters change
        gently. When ``phase1`` is given and fine-tuning ends with a worse validation
        loss, the weights before it are put back and the record says ``"kept": False``.

        Args:
            model: The Xception classifier after ``train_head``.
            phase1: The record ``train_head`` returned.

        Returns:
            The phase record for the card.
        """
        config, before = self.config, model.get_weights()
        learning_rate = config.learning_rate / 10
        set_trainable_for_phase(model, phase=2)
        with strategy_scope(self.strategy):
            compile_model(model, config.optimizer, learning_rate=learning_rate)
            result = self._fit(model, config.phase2_epochs)
        title = "2: fine-tune blocks 13-14 on augmented images, batch norm frozen"
        counts = trainable_counts(model)
        record = phase_record(title, result, config.phase2_epochs, learning_rate, counts)
        if phase1 is not None and _val_loss(record) > _val_loss(phase1):
            model.set_weights(before)  # fine-tuning did not help: keep phase 1
            record["kept"] = False
        return record

    def train_all_layers(self, model: keras.Model) -> dict:
        """Train every layer of the CNN on augmented images, the learning rate on a cosine.

        Args:
            model: The CNN of ``build_model``.

        Returns:
            The phase record for the card.
        """
        config = self.config
        steps = config.num_epochs * int(np.ceil(len(self.table("train")) / config.batch_size))
        with strategy_scope(self.strategy):
            compile_model(
                model,
                config.optimizer,
                config.learning_rate,
                decay_steps=steps,
                label_smoothing=config.label_smoothing,
                ema_momentum=config.ema_momentum,
                weight_decay=config.weight_decay,
            )
            result = self._fit(model, config.num_epochs)
        counts = trainable_counts(model)
        return phase_record(
            "1: all layers", result, config.num_epochs, config.learning_rate, counts
        )

    def _fit(self, model: keras.Model, num_epochs: int) -> dict:
        """Run ``fit_model`` on the augmented training split, checkpointing ``<name>.keras``."""
        config = self.config
        train_data, val_data = self.data("train", training=True), self.data("val")
        return fit_model(
            model,
            train_data,
            val_data,
            self.out_dir,
            config.model_name,
            num_epochs,
            config.seed,
            patience=config.patience,
            verbose=config.verbose,
        )

    def save(self, model: keras.Model, phases: Sequence[Mapping]) -> dict:
        """Save the trained model, its weights and its card; return the card.

        Args:
            model: The trained model (best weights).
            phases: The records of its phases, in order.

        Returns:
            The card as ``cards.load_card`` reads it back.
        """
        config = self.config
        model_file = course.model_path(self.out_dir, config.model_name)
        model_file.parent.mkdir(parents=True, exist_ok=True)
        save_for_inference(model, model_file)
        model.save_weights(course.weights_path(model_file))
        train_split = self.table("train")
        card = {
            **_model_facts(config),
            "name": config.model_name,
            "class_names": list(self.class_names),
            "image_size": config.image_size,
            "colour_mode": "rgb",
            "input_value_range": cards.INPUT_VALUE_RANGE,
            "dataset_preprocessing": "none",
            "dataset": cards.dataset_facts(train_split, self.dataset),
            "split_sizes": {"train": len(train_split), "val": len(self.splits["val"])},
            "seed": config.seed,
            "training_precision": training_precision(model),
            "training_seconds": _training_seconds(phases),
            "best_val_metrics": min(phases, key=_val_loss)["best_val_metrics"],
            "phases": list(phases),
            "parameters": trainable_counts(model)["total"],
            "build": build_spec(
                config.model_name, config.image_size, len(self.class_names), **self.model_options
            ),
        }
        return cards.load_card(cards.write_card(model_file, card))


def _model_facts(config: TrainConfig) -> dict:
    """The card entries that differ between Xception and the CNN."""
    if config.model_name == "xception":
        label = "random" if config.weights is None else str(config.weights)
        return {
            "architecture": f"Xception (weights={label}) + head Flatten-Dropout(0.3)-"
            "Dense(128, relu)-Dropout(0.25)-Dense(softmax)",
            "preprocessing": "xception",
            "weights": label,
            "fast_mode": bool(config.fast),
        }
    return {
        "architecture": _cnn_architecture(config),
        "optimizer": f"{config.optimizer}, cosine decay from {config.learning_rate:g}",
        "label_smoothing": config.label_smoothing,
        "ema_momentum": config.ema_momentum,
        "weight_decay": config.weight_decay,
        "preprocessing": "unit",
        "fast_mode": bool(config.fast),
    }


def _cnn_architecture(config: TrainConfig) -> str:
    """Describe the CNN a config builds, e.g. ``"CNN from scratch: 5 blocks (...)..."``."""
    spec = build_spec("cnn", config.image_size, 4, **config.model_options)
    filters, rate = spec["filters"], spec["dropout"]
    head = (
        f"Dropout({rate:g})-Dense({spec['dense_units']}, relu)-Dropout({rate:g})"
        if rate
        else f"Dense({spec['dense_units']}, relu)"
    )
    stride = ", the first with stride 2 and no pool" if spec["first_block_stride"] == 2 else ""
    return (
        f"CNN from scratch: {len(filters)} blocks (Conv3x3-BatchNorm-ReLU, "
        f"{spec['last_block_convs']} convs in the last)-MaxPool{stride}, "
        f"{filters[0]}-{filters[-1]} filters + GlobalAvgPool-{head}-Dense(softmax)"
    )


def _training_seconds(phases: Sequence[Mapping]) -> float:
    """Seconds of all phases plus any feature extraction they did."""
    total = sum(phase["seconds"] + phase.get("feature_extraction_seconds", 0) for phase in phases)
    return round(total, 1)


def _val_loss(phase: Mapping) -> float:
    """Best validation loss of a phase record (infinite when unknown)."""
    return float(phase["best_val_metrics"].get("loss", float("inf")))


def phase_record(
    title: str, result: Mapping, max_epochs: int, learning_rate: float, counts: Mapping
) -> dict:
    """Summarise one training phase for the model card.

    Args:
        title: ``"<number>: what the phase trains"``.
        result: What ``fit_model`` returned.
        max_epochs: The phase's largest number of epochs.
        learning_rate: Its (starting) learning rate.
        counts: ``trainable_counts`` of what it trained.

    Returns:
        ``{"phase", "epochs_run", "max_epochs", "best_epoch", "learning_rate", "seconds",
        "trainable_params", "best_val_metrics"}``.
    """
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


# --- whole trainings (the command line) ----------------------------------------------


def train_transfer(
    config: TrainConfig,
    splits: Mapping[str, pd.DataFrame],
    class_names: Sequence[str],
    out_dir: str | Path,
    dataset: Mapping | None = None,
    feature_cache_dir: str | Path | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[keras.Model, dict]:
    """Two-phase transfer learning with Xception, as notebook 02 runs it step by step.

    Args:
        config: ``TrainConfig.for_model("xception", ...)``.
        splits: Split tables of ``load_splits`` (``"train"`` and ``"val"`` are used).
        class_names: Class order of the outputs.
        out_dir: Folder for the model, its weights, its card and the history files.
        dataset: The ``dataset`` dict of ``load_splits`` for the card.
        feature_cache_dir: Keep phase-1 features as ``.npz`` files here for reruns.
        strategy: Strategy from ``devices.configure_devices``.

    Returns:
        ``(model, card)``: the trained model (best weights) as saved, in float32
        (``fitting.as_saved``), and its card.

    Raises:
        ValueError: If a split is empty or has unknown labels, or the config is not Xception's.
        PretrainedWeightsUnavailable: If the ImageNet weights cannot be downloaded.
    """
    if config.model_name != "xception":
        raise ValueError(f"train_transfer trains Xception, got a {config.model_name!r} config.")
    run = TrainingRun(config, splits, class_names, out_dir, dataset, strategy)
    model = run.build_model()
    phases = [run.train_head(model, run.extract_features(model, feature_cache_dir))]
    if config.phase2_epochs > 0:
        phases.append(run.fine_tune(model, phases[0]))
    card = run.save(model, phases)
    return as_saved(model), card


def train_cnn(
    config: TrainConfig,
    splits: Mapping[str, pd.DataFrame],
    class_names: Sequence[str],
    out_dir: str | Path,
    dataset: Mapping | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[keras.Model, dict]:
    """Train the CNN from scratch, as notebook 03 does step by step.

    Args:
        config: ``TrainConfig.for_model("cnn", ...)``.
        splits: Split tables of ``load_splits`` (``"train"`` and ``"val"`` are used).
        class_names: Class order of the outputs.
        out_dir: Folder for the model, its weights, its card and the history files.
        dataset: The ``dataset`` dict of ``load_splits`` for the card.
        strategy: Strategy from ``devices.configure_devices``.

    Returns:
        ``(model, card)``: the trained model (best weights) as saved, in float32
        (``fitting.as_saved``), and its card.

    Raises:
        ValueError: If a split is empty or has unknown labels, or the config is not the CNN's.
    """
    if config.model_name != "cnn":
        raise ValueError(f"train_cnn trains the CNN, got a {config.model_name!r} config.")
    run = TrainingRun(config, splits, class_names, out_dir, dataset, strategy)
    model = run.build_model()
    card = run.save(model, [run.train_all_layers(model)])
    return as_saved(model), card


def split_accuracy(
    model: keras.Model,
    split: pd.DataFrame,
    class_names: Sequence[str],
    image_size: int,
    batch_size: int = 64,
    test_time_flip: bool = False,
) -> float:
    """Accuracy of a model on one split table (no augmentation).

    Args:
        model: A trained model taking raw [0, 255] pixels.
        split: A table of ``load_splits`` (``abs_path``, ``label``).
        class_names: The model's class order (from its card).
        image_size: The model's input size (from its card).
        batch_size: Images per batch.
        test_time_flip: Average the probabilities of each image and its left-right mirror.

    Returns:
        The share of images whose most probable class is the label.
    """
    data = dataset_from_split(
        split, class_names, image_size=image_size, batch_size=batch_size, cache=False
    )
    correct = 0
    for images, labels in data:
        probabilities = model.predict_on_batch(images)
        if test_time_flip:
            mirrored = model.predict_on_batch(tf.reverse(images, axis=[2]))
            probabilities = (probabilities + mirrored) / 2
        predicted = np.argmax(probabilities, axis=1)
        correct += int(np.sum(predicted == np.argmax(labels, axis=1)))
    return correct / len(split)
