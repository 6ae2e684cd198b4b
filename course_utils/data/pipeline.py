"""The ``tf.data`` input pipeline: decode, resize, cache, shuffle, augment, prefetch.

Files are decoded by TensorFlow (JPEG, PNG, BMP, or the first frame of a GIF); any
grayscale, RGBA or palette image becomes 3-channel RGB, because ImageNet models expect
three channels. Resized images are cached as ``uint8`` (a quarter of the memory of
float32), and augmentation runs on whole batches with Keras preprocessing layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from course_utils import config
from course_utils.data.splits import encode_labels

#: Names of the pixel preprocessing a model expects.
#: ``none``: floats in [0, 255]; ``unit``: [0, 1]; ``xception``: [-1, 1] (Inception style).
PREPROCESSING = ("none", "unit", "xception")


def preprocess_images(images: tf.Tensor, preprocessing: str) -> tf.Tensor:
    """Scale float images in [0, 255] the way a model expects.

    Args:
        images: Float tensor with values in [0, 255].
        preprocessing: One of ``PREPROCESSING``.

    Returns:
        The scaled float32 tensor.

    Raises:
        ValueError: If ``preprocessing`` is unknown.
    """
    images = tf.cast(images, tf.float32)
    if preprocessing == "none":
        return images
    if preprocessing == "unit":
        return images / 255.0
    if preprocessing == "xception":
        return images / 127.5 - 1.0
    raise ValueError(f"Unknown preprocessing {preprocessing!r}; use one of {PREPROCESSING}.")


def decode_and_resize(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """Read one image file into a square RGB uint8 tensor.

    Shrinking uses area averaging (anti-aliased, and 2x faster than bilinear with
    ``antialias=True``); enlarging uses bilinear interpolation.

    Args:
        path: Scalar string tensor, the file's path.
        image_size: Side of the output in pixels.

    Returns:
        A uint8 tensor of shape (image_size, image_size, 3).
    """
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)
    size = (image_size, image_size)
    shrinking = tf.reduce_all(tf.shape(image)[:2] >= image_size)
    image = tf.cond(
        shrinking,
        lambda: tf.image.resize(image, size, method="area"),
        lambda: tf.image.resize(image, size, method="bilinear"),
    )
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def build_augmenter(
    seed: int = 42,
    rotation: float = 0.03,
    zoom: float = 0.1,
    brightness: float = 0.1,
    contrast: float = 0.1,
    horizontal_flip: bool = True,
) -> keras.Sequential:
    """Build the training-time augmentation from Keras preprocessing layers.

    Small rotations and zooms mimic head position; brightness and contrast mimic
    scanner settings; a left-right flip is anatomically plausible for axial slices.

    Args:
        seed: Seed of the random layers.
        rotation: Largest rotation as a fraction of a full turn (0.03 is about 11°).
        zoom: Largest zoom in or out, as a fraction.
        brightness: Largest brightness shift, as a fraction of the 0-255 value range,
            added to every pixel (0.1: up to ±25.5 grey levels), then clipped to 0-255.
        contrast: Largest contrast change: each channel's deviation from its mean is
            scaled by a factor drawn from [1 - contrast, 1 + contrast].
        horizontal_flip: Flip left-right at random.

    Returns:
        A ``keras.Sequential`` that takes float images in [0, 255].
    """
    layers = [
        keras.layers.RandomRotation(rotation, fill_mode="constant", seed=seed),
        keras.layers.RandomZoom(zoom, fill_mode="constant", seed=seed + 1),
        keras.layers.RandomBrightness(brightness, value_range=(0, 255), seed=seed + 2),
        keras.layers.RandomContrast(contrast, seed=seed + 3),
    ]
    if horizontal_flip:
        layers.insert(0, keras.layers.RandomFlip("horizontal", seed=seed + 4))
    return keras.Sequential(layers, name="augmentation")


#: The augmentations a training run can ask for (``augmenter``).
AUGMENTATIONS = config.AUGMENTATIONS


def augmenter(kind: str, seed: int = 42) -> keras.Sequential:
    """Return the training-time augmentation of a kind.

    Args:
        kind: ``"standard"`` (``build_augmenter``'s flips, rotations, zooms, brightness
            and contrast), ``"flip"`` (left-right flips only: anatomically valid for every
            slice plane) or ``"none"`` (images unchanged).
        seed: Seed of the random layers.

    Returns:
        A ``keras.Sequential`` that takes float images in [0, 255].

    Raises:
        ValueError: If the kind is unknown.
    """
    if kind == "standard":
        return build_augmenter(seed)
    if kind == "flip":
        return keras.Sequential(
            [keras.layers.RandomFlip("horizontal", seed=seed + 4)], name="augmentation"
        )
    if kind == "none":
        return keras.Sequential([keras.layers.Identity()], name="augmentation")
    raise ValueError(f"Unknown augmentation {kind!r}; use one of {list(AUGMENTATIONS)}.")


def make_dataset(
    paths: Sequence[str],
    labels: Sequence[str],
    class_names: Sequence[str],
    image_size: int = 224,
    batch_size: int = 32,
    training: bool = False,
    preprocessing: str = "none",
    seed: int = 42,
    augmenter: keras.Sequential | None = None,
    cache: bool | str | Path = True,
) -> tf.data.Dataset:
    """Build a batched dataset of (images, one-hot labels).

    Args:
        paths: Image file paths (absolute, or relative to the working folder).
        labels: Class name of each path.
        class_names: Class order of the one-hot labels (the model card's order).
        image_size: Side of the square images.
        batch_size: Images per batch.
        training: Shuffle every epoch and augment (with ``augmenter`` or the default).
        preprocessing: One of ``PREPROCESSING``, applied last.
        seed: Seed of the shuffle and of the default augmenter.
        augmenter: Augmentation model; None builds ``build_augmenter(seed)``.
        cache: True caches decoded images in memory; a path caches them on disk;
            False re-reads files every epoch.

    Returns:
        A ``tf.data.Dataset`` of ``(float32 images, float32 one-hot labels)`` batches.

    Raises:
        ValueError: If paths and labels differ in length, the list is empty, a label is
            unknown, or the image size or batch size is too small.
    """
    _check_inputs(paths, labels, image_size, batch_size)
    onehot = np.eye(len(class_names), dtype=np.float32)[
        encode_labels(list(labels), tuple(class_names))
    ]
    dataset = tf.data.Dataset.from_tensor_slices((list(map(str, paths)), onehot))
    dataset = dataset.map(
        lambda p, y: (decode_and_resize(p, image_size), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    if cache:
        dataset = dataset.cache("" if cache is True else str(cache))
    if training:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if training:
        augment = augmenter or build_augmenter(seed)
        dataset = dataset.map(
            lambda x, y: (augment(tf.cast(x, tf.float32), training=True), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    dataset = dataset.map(
        lambda x, y: (preprocess_images(x, preprocessing), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(static_tuning())


def static_tuning() -> tf.data.Options:
    """Return dataset options that switch tf.data's autotuner off.

    ``model.fit`` makes a new iterator every epoch and drops the old one; an iterator's
    destructor waits for the autotuner's thread, which on a busy 2-core CPU held the
    CNN's epochs back by 9-28 s at random (measured on the real data, 128 px: 126 s for
    4 epochs with the autotuner, 109 s without). ``AUTOTUNE`` settings then keep
    TensorFlow's fixed defaults instead of being tuned while training.

    Returns:
        Options to pass to ``Dataset.with_options``.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def _check_inputs(
    paths: Sequence[str], labels: Sequence[str], image_size: int, batch_size: int
) -> None:
    """Raise a clear ValueError for inputs ``make_dataset`` cannot use."""
    if len(paths) != len(labels):
        raise ValueError(f"Got {len(paths)} paths but {len(labels)} labels; they must pair up.")
    if len(paths) == 0:
        raise ValueError("No image paths given: is the split empty? Check the data audit.")
    if image_size < 32:
        raise ValueError(f"image_size={image_size} is too small; use 32 px or more.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")


def dataset_from_split(split, class_names: Sequence[str], **kwargs) -> tf.data.Dataset:
    """Build a dataset from a split table of ``load_splits``.

    Args:
        split: A table with ``abs_path`` and ``label`` columns.
        class_names: Class order of the one-hot labels.
        **kwargs: Passed on to ``make_dataset``.

    Returns:
        The dataset.
    """
    return make_dataset(split["abs_path"].tolist(), split["label"].tolist(), class_names, **kwargs)
