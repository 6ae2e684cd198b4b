"""The phase-1 feature cache: the frozen Xception base run once, its features kept on disk.

In phase 1 of transfer learning the base is frozen and runs in inference mode, so it maps
each image to the same feature map in every epoch. ``extract_features`` computes those
maps once (optionally cached as ``.npz`` files named by ``feature_cache_key``) and
``ArrayBatches`` feeds them to the head without copying them into TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from course_utils.models import FEATURE_LAYER, HEAD_NAME, feature_extractor


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
        dtype: Storage type of the features. float16 halves the memory and keeps about
            three significant digits, far finer than what the head learns from. At 299 px
            one image's 10 x 10 x 2048 features take 409,600 bytes instead of 819,200 in
            float32, so the 4,041 training images of the real data take 1.66 GB rather
            than 3.31 GB (images x 10 x 10 x 2048 x bytes per value, 1 GB = 10**9 bytes),
            which matters on Colab.

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


@dataclass(frozen=True)
class SplitFeatures:
    """Phase-1 features of the training and validation splits, with how they were got.

    Attributes:
        train_features: Feature maps of the training images (float16).
        train_labels: Their one-hot labels.
        val_features: Feature maps of the validation images.
        val_labels: Their one-hot labels.
        seconds: Time spent extracting (or reading) them.
        from_cache: Whether both were read from the ``.npz`` cache of an earlier run.
    """

    train_features: np.ndarray
    train_labels: np.ndarray
    val_features: np.ndarray
    val_labels: np.ndarray
    seconds: float
    from_cache: bool
