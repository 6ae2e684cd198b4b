"""Load a trained model with its card, and predict a split table or a batch of images.

Every notebook, the app and the command line load models here::

    model, card = load_model_with_card(ARTIFACTS / "cnn.keras")
    probabilities = predict_tables(model, card, {"test": splits["test"]})["test"]

A model travels as ``<name>.weights.h5`` plus its JSON card: when the card records how
to ``build`` the architecture, the model is rebuilt from it and its weights loaded,
which works across Keras versions; otherwise the ``.keras`` file is loaded as saved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from course_utils import cards, course, models
from course_utils.data.pipeline import dataset_from_split


def _rebuild(card: Mapping, weights_file: Path) -> keras.Model | None:
    """Rebuild a model from its card and load its weights; None when the card cannot say how."""
    if "build" not in card or not weights_file.is_file():
        return None
    model = models.build_from_card(card)
    model.load_weights(weights_file)
    return model


def check_model_matches_card(model: keras.Model, card: Mapping, model_file: str | Path) -> None:
    """Raise a ValueError when a model's outputs or input size differ from its card.

    Args:
        model: The loaded model.
        card: Its card (``class_names``, ``image_size``).
        model_file: Where the model came from (for the message).

    Raises:
        ValueError: If the number of classes or the image size differs.
    """
    outputs, size = model.output_shape[-1], model.input_shape[1]
    if outputs != len(card["class_names"]) or size != card["image_size"]:
        raise ValueError(
            f"{model_file} ({outputs} classes, {size} px) does not match its card "
            f"({len(card['class_names'])} classes, {card['image_size']} px); re-train it so "
            "the model and .json files come from the same run."
        )


def load_model_with_card(model_path: str | Path) -> tuple[keras.Model, dict]:
    """Load a trained model and its card: the one way every notebook and the app load models.

    Prefers rebuilding the architecture from the card's ``build`` entry and loading
    ``<name>.weights.h5`` (portable across Keras versions); falls back to the ``.keras``
    file.

    Args:
        model_path: The model's ``.keras`` path (``.json``, ``.weights.h5`` or the bare
            stem work too).

    Returns:
        ``(model, card)``.

    Raises:
        FileNotFoundError: If both model files or the ``.json`` card are missing.
        ValueError: If the card lacks keys or does not match the model.
    """
    keras_file = course.keras_path(model_path)
    weights_file = course.weights_path(model_path)
    if not keras_file.is_file() and not weights_file.is_file():
        raise FileNotFoundError(course.missing_model_message(keras_file))
    card = cards.load_card(keras_file)
    model = _rebuild(card, weights_file)
    if model is None:
        if not keras_file.is_file():
            raise FileNotFoundError(
                course.missing_model_message(keras_file)
                + f" ({weights_file.name} is there, but its card has no 'build' entry to "
                "rebuild the model from.)"
            )
        model = keras.saving.load_model(keras_file)
    check_model_matches_card(model, card, keras_file)
    return model, card


def _normalised(probabilities: np.ndarray) -> np.ndarray:
    """Return float64 probabilities whose rows sum to 1 (float16 outputs drift)."""
    probabilities = np.asarray(probabilities, np.float64)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def predict_split(
    model: keras.Model,
    split: pd.DataFrame,
    class_names: Sequence[str],
    image_size: int,
    preprocessing: str = "none",
    batch_size: int = 64,
) -> np.ndarray:
    """Predict class probabilities for every image of a split table, in its row order.

    Args:
        model: A trained model (raw [0, 255] RGB in, probabilities out).
        split: A table with ``abs_path`` and ``label`` columns.
        class_names: The model's class order (from its card).
        image_size: The model's input size (from its card).
        preprocessing: Pixel scaling done by the pipeline, the card's
            ``dataset_preprocessing`` (``"none"``: the model scales itself).
        batch_size: Images per batch.

    Returns:
        A float64 array (images, classes) whose rows sum to 1.
    """
    data = dataset_from_split(
        split,
        class_names,
        image_size=image_size,
        batch_size=batch_size,
        preprocessing=preprocessing,
        cache=False,
    )
    return _normalised(model.predict(data.map(lambda x, y: x), verbose=0))


def predict_tables(
    model: keras.Model, card: Mapping, tables: Mapping[str, pd.DataFrame], batch_size: int = 64
) -> dict[str, np.ndarray]:
    """Predict several split tables in one pass, each image once.

    The leak-free test is a subset of the full test, so predicting both costs nothing
    extra.

    Args:
        model: The trained model.
        card: Its model card (``class_names``, ``image_size``, ``dataset_preprocessing``).
        tables: ``{name: split table}``.
        batch_size: Images per batch.

    Returns:
        ``{name: probabilities}``, rows in each table's order.
    """
    combined = pd.concat(list(tables.values()), ignore_index=True).drop_duplicates("abs_path")
    probabilities = predict_split(
        model,
        combined,
        card["class_names"],
        card["image_size"],
        card.get("dataset_preprocessing", "none"),
        batch_size,
    )
    row = {path: index for index, path in enumerate(combined["abs_path"])}
    return {
        name: probabilities[[row[path] for path in table["abs_path"]]]
        for name, table in tables.items()
    }


def predict_images(
    model: keras.Model, card: Mapping, images: np.ndarray, batch_size: int = 64
) -> np.ndarray:
    """Predict class probabilities for a batch of images already at the model's size.

    Args:
        model: The trained model (raw [0, 255] RGB in).
        card: Its model card (``image_size``, ``class_names``).
        images: A (images, size, size, 3) array of raw pixel values, or one image
            (size, size, 3).
        batch_size: Images per batch.

    Returns:
        A float64 array (images, classes) whose rows sum to 1.

    Raises:
        ValueError: If the images are not (size, size, 3) at the card's size.
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[None]
    size = int(card["image_size"])
    if images.ndim != 4 or images.shape[1:] != (size, size, 3):
        raise ValueError(
            f"Images of shape {images.shape} do not fit this model: it takes "
            f"(images, {size}, {size}, 3) raw RGB pixels (resize them to {size} px first)."
        )
    return _normalised(model.predict(images, batch_size=batch_size, verbose=0))
