"""Make what a lesson needs when ARTIFACTS_DIR lacks it: the splits and the trained models.

Each Colab badge opens a fresh runtime with an empty ``ARTIFACTS_DIR``. A lesson that
needs notebook 02's or 03's model calls ``ensure_models``: the models already there are
used as they are; each missing one is trained with the lesson's own ``FAST_MODE``
(``train.TrainConfig.for_model``), after a printed plan naming the model, the mode and
an estimate of the time computed from this machine's measured speed, and followed by the
measured time. Nothing happens at import; TensorFlow is imported only when a model has
to be trained.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from course_utils import cards, config, course
from course_utils.data import splits

if TYPE_CHECKING:
    import tensorflow as tf

    from course_utils.train import TrainConfig

#: Batches timed to measure this machine's speed (after one untimed warm-up batch).
TIMED_BATCHES = 2


@dataclasses.dataclass(frozen=True)
class Throughput:
    """This machine's measured speed for one training config.

    Attributes:
        train_images_per_second: Images per second of a training step (forward and
            backward pass, the weights of the longest phase trainable).
        predict_images_per_second: Images per second of a forward pass (validation,
            Xception's feature extraction).
        timed_batches: How many batches of each kind were timed.
        batch_size: Images per timed batch.
        train_warmup_seconds: The first, untimed training batch: tracing and compiling
            the step, a one-time cost every training pays again.
        predict_warmup_seconds: The same for the first forward pass.
        build_seconds: Building the model (training builds it once too).
    """

    train_images_per_second: float
    predict_images_per_second: float
    timed_batches: int
    batch_size: int
    train_warmup_seconds: float = 0.0
    predict_warmup_seconds: float = 0.0
    build_seconds: float = 0.0


def missing_models(artifacts_dir: str | Path, names: Sequence[str]) -> list[str]:
    """Return the models of ``names`` whose card or model file is not in ``artifacts_dir``.

    Args:
        artifacts_dir: The lesson's ``ARTIFACTS_DIR``.
        names: Model names the lesson needs (``"xception"``, ``"cnn"``).

    Returns:
        The missing names, in the order given.
    """
    try:
        _, missing = cards.find_models(artifacts_dir, tuple(names))
    except FileNotFoundError:  # none of them is there
        return list(names)
    return [name for name in names if name in missing]


def estimate_training_seconds(
    training_config: TrainConfig, num_train: int, num_val: int, throughput: Throughput
) -> float:
    """Estimate the training time of a config from the measured speed.

    The CNN runs ``num_epochs`` epochs, each a training pass over the training split and
    a forward pass over the validation split. Xception first computes the frozen base's
    features of both splits once (forward passes; the head trains on them in a moment),
    then fine-tunes for ``phase2_epochs`` epochs like the CNN. Each traced step (training,
    validation, and Xception's feature extraction) adds its measured warm-up once, and
    building the model its measured time. Early
    stopping makes the real run shorter; reading the images and a busy machine, longer.

    Args:
        training_config: A ``train.TrainConfig``.
        num_train: Images in the training split.
        num_val: Images in the validation split.
        throughput: What ``measure_throughput`` measured for this config.

    Returns:
        The estimate in seconds.
    """
    epoch = (
        num_train / throughput.train_images_per_second
        + num_val / throughput.predict_images_per_second
    )
    warmup = (
        throughput.build_seconds
        + throughput.train_warmup_seconds
        + throughput.predict_warmup_seconds
    )
    if training_config.model_name == "xception":
        extraction = (num_train + num_val) / throughput.predict_images_per_second
        extraction += throughput.predict_warmup_seconds
        return warmup + extraction + training_config.phase2_epochs * epoch
    return warmup + training_config.num_epochs * epoch


def measure_throughput(
    training_config: TrainConfig,
    loaded: Mapping,
    class_names: Sequence[str],
    timed_batches: int = TIMED_BATCHES,
) -> Throughput:
    """Time a few training and prediction batches of the config's model on this machine.

    The model is the one training builds (``train.TrainingRun.build_model``) but with
    random weights (the speed does not depend on them, and nothing is downloaded), the
    layers of its longest phase trainable, fed random pixels of the config's image and
    batch size. One untimed batch of each kind comes first: it includes tracing.

    Args:
        training_config: A ``train.TrainConfig``.
        loaded: The split tables of ``splits.load_splits`` (only checked, not read).
        class_names: Class order of the outputs.
        timed_batches: Batches of each kind to time.

    Returns:
        The measured speeds.
    """
    import numpy as np

    from course_utils import models, train

    timing_config = dataclasses.replace(training_config, weights=None)
    started = time.perf_counter()
    model = train.TrainingRun(timing_config, loaded, class_names, ".").build_model()
    build_seconds = time.perf_counter() - started
    if training_config.model_name == "xception":
        models.set_trainable_for_phase(model, phase=2)
    models.compile_model(model, training_config.optimizer, training_config.learning_rate)
    size, batch, num_classes = (
        training_config.image_size,
        training_config.batch_size,
        len(class_names),
    )
    generator = np.random.default_rng(training_config.seed)
    images = generator.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    labels = np.eye(num_classes, dtype="float32")[generator.integers(0, num_classes, batch)]
    speeds, warmups = [], []
    steps = (lambda: model.train_on_batch(images, labels), lambda: model.predict_on_batch(images))
    for step in steps:
        started = time.perf_counter()
        step()  # warm-up: traces the function
        warmups.append(time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(timed_batches):
            step()
        speeds.append(timed_batches * batch / max(time.perf_counter() - started, 1e-9))
    return Throughput(speeds[0], speeds[1], timed_batches, batch, *warmups, build_seconds)


def describe_duration(seconds: float) -> str:
    """Say a duration the way people read it: ``"40 s"``, ``"3.5 min"`` or ``"1.2 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def training_plan(
    training_config: TrainConfig, num_train: int, num_val: int, throughput: Throughput
) -> str:
    """Say what will be trained, in which mode, and how long it should take.

    Args:
        training_config: A ``train.TrainConfig``.
        num_train: Images in the training split.
        num_val: Images in the validation split.
        throughput: What ``measure_throughput`` measured for this config.

    Returns:
        One paragraph: model, mode, settings, the estimate and the numbers behind it.
    """
    name, mode = training_config.model_name, "fast" if training_config.fast else "full"
    seconds = estimate_training_seconds(training_config, num_train, num_val, throughput)
    if name == "xception":
        epochs = f"feature extraction + up to {training_config.phase2_epochs} fine-tuning epochs"
        weights = f", weights {training_config.weights or 'random'}"
    else:
        epochs, weights = f"up to {training_config.num_epochs} epochs", ""
    return (
        f"ARTIFACTS_DIR has no {course.display_name(name)} model: training it now in {mode} "
        f"mode ({training_config.image_size} px, {epochs}{weights}) on {num_train} training "
        f"and {num_val} validation images. Estimated time: about "
        f"{describe_duration(seconds)} (this machine trains "
        f"{throughput.train_images_per_second:.1f} and predicts "
        f"{throughput.predict_images_per_second:.1f} images/s, measured on "
        f"{throughput.timed_batches} batches of {throughput.batch_size}, after a first batch "
        f"of {throughput.train_warmup_seconds:.1f} s that traced the step)."
    )


@contextlib.contextmanager
def _training_devices() -> Iterator[tf.distribute.Strategy]:
    """Configure the devices for training, then put the lesson's dtype policy back."""
    import keras

    from course_utils import devices

    policy = keras.mixed_precision.dtype_policy()
    try:
        yield devices.configure_devices()
    finally:
        keras.mixed_precision.set_dtype_policy(policy)


def train_missing_model(
    training_config: TrainConfig,
    loaded: Mapping,
    dataset_info: Mapping,
    artifacts_dir: str | Path,
    feature_cache_dir: str | Path | None = None,
) -> dict:
    """Train one model as notebook 02 or 03 would, printing the plan and the time taken.

    Args:
        training_config: ``train.TrainConfig.for_model(name, fast=FAST_MODE)``.
        loaded: The split tables of ``splits.load_splits``.
        dataset_info: The ``dataset`` dict of ``splits.load_splits``.
        artifacts_dir: Where the model, its weights and its card are written.
        feature_cache_dir: Xception's phase-1 feature cache (None: no cache).

    Returns:
        The model's card.

    Raises:
        PretrainedWeightsUnavailable: If Xception needs the ImageNet weights and they
            cannot be downloaded; as notebook 02, it never switches to random weights
            silently (the message names the three fixes).
    """
    from course_utils import models, train

    class_names = tuple(dataset_info["class_names"])
    num_train, num_val = len(loaded["train"]), len(loaded["val"])
    throughput = measure_throughput(training_config, loaded, class_names)
    print(training_plan(training_config, num_train, num_val, throughput), flush=True)
    started = time.perf_counter()
    with _training_devices() as strategy:
        try:
            if training_config.model_name == "xception":
                _, card = train.train_transfer(
                    training_config,
                    loaded,
                    class_names,
                    artifacts_dir,
                    dataset_info,
                    feature_cache_dir,
                    strategy,
                )
            else:
                _, card = train.train_cnn(
                    training_config, loaded, class_names, artifacts_dir, dataset_info, strategy
                )
        except models.PretrainedWeightsUnavailable:
            print(
                "STOP: Xception needs its ImageNet weights (FAST_MODE=False) and this "
                "machine cannot download them; it does not switch to random weights "
                "silently. Fix it as the message below says, or set FAST_MODE=True."
            )
            raise
    seconds = time.perf_counter() - started
    estimate = estimate_training_seconds(training_config, num_train, num_val, throughput)
    print(
        f"Trained {course.display_name(training_config.model_name)} in "
        f"{describe_duration(seconds)} (estimated {describe_duration(estimate)}); "
        f"saved {course.model_path(artifacts_dir, training_config.model_name)}",
        flush=True,
    )
    return card


def ensure_models(
    artifacts_dir: str | Path,
    names: Sequence[str],
    fast: bool,
    data_dir: str | Path | None = None,
    data_source: str = "phantoms",
    seed: int = config.DEFAULT_SEED,
) -> list[str]:
    """Train the models of ``names`` that ``artifacts_dir`` lacks, as their notebooks would.

    Models already there are used as they are (whatever mode trained them). For the
    missing ones the splits are loaded, or made first (``splits.ensure_splits``), and each
    model is trained with ``train.TrainConfig.for_model(name, fast=fast, seed=seed)``.

    Args:
        artifacts_dir: The lesson's ``ARTIFACTS_DIR``.
        names: Model names the lesson needs.
        fast: The lesson's ``FAST_MODE``.
        data_dir: The lesson's ``DATA_DIR`` (used only when there are no splits yet).
        data_source: The lesson's ``DATA_SOURCE`` (likewise).
        seed: The lesson's ``SEED``.

    Returns:
        The names that were trained now (empty when all were there).

    Raises:
        ValueError: If a name is not one of the course's models.
        PretrainedWeightsUnavailable: See ``train_missing_model``.
    """
    unknown = [name for name in names if name not in course.MODEL_NAMES]
    if unknown:
        raise ValueError(f"Unknown model(s) {unknown}; use some of {list(course.MODEL_NAMES)}.")
    missing = missing_models(artifacts_dir, names)
    present = [course.display_name(name) for name in names if name not in missing]
    if present:
        print(f"Found in {artifacts_dir}: {', '.join(present)} (used as they are).")
    if not missing:
        return []
    from course_utils import train

    split_dir = splits.ensure_splits(course.splits_dir(artifacts_dir), data_dir, data_source, seed)
    loaded, dataset_info = splits.load_splits(split_dir)
    for name in missing:
        training_config = train.TrainConfig.for_model(name, fast=fast, seed=seed)
        train_missing_model(
            training_config, loaded, dataset_info, artifacts_dir, config.cache_dir() / "features"
        )
    return missing
