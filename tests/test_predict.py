"""Loading a model with its card (rebuilt from weights or from .keras) and predicting."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from course_utils import cards, course, models, predict

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
SIZE = 32
#: Brightness of each class's images; the brightness model below reads it.
LEVELS = {"glioma": 30, "meningioma": 90, "notumor": 150, "pituitary": 210}


def _brightness_model(size: int = SIZE) -> keras.Model:
    """A model that picks the class whose brightness is nearest (outputs in CLASSES order)."""
    levels = np.array([LEVELS[name] for name in CLASSES], dtype=np.float32)
    inputs = keras.Input((size, size, 3))
    dense = keras.layers.Dense(len(levels), activation="softmax")
    outputs = dense(keras.layers.GlobalAveragePooling2D()(inputs))
    dense.set_weights([np.tile(2 * levels / 3, (3, 1)) / 50, -(levels**2) / 50])
    return keras.Model(inputs, outputs)


def _save(folder: Path, size: int = SIZE, **extra: object) -> tuple[Path, keras.Model, dict]:
    """Save the brightness model as .keras and .weights.h5 with a complete card."""
    folder.mkdir(parents=True, exist_ok=True)
    model = _brightness_model(size)
    path = course.model_path(folder, "toy")
    model.save(path)
    model.save_weights(course.weights_path(path))
    card = dict.fromkeys(cards.REQUIRED_CARD_KEYS)
    card.update(name="toy", class_names=list(CLASSES), image_size=SIZE, seed=1, **extra)
    cards.write_card(path, card)
    return path, model, cards.load_card(path)


def _grey(value: float) -> np.ndarray:
    """One flat grey RGB image at the model's size."""
    return np.full((SIZE, SIZE, 3), value, dtype=np.float32)


IMAGES = np.stack([_grey(LEVELS[name]) for name in CLASSES])


def test_load_from_keras_when_the_card_cannot_rebuild(tmp_path: Path) -> None:
    path, model, card = _save(tmp_path)
    loaded, loaded_card = predict.load_model_with_card(path)
    assert loaded_card == card
    np.testing.assert_allclose(
        loaded.predict_on_batch(IMAGES), model.predict_on_batch(IMAGES), atol=1e-6
    )
    course.keras_path(path).unlink()  # weights alone cannot be rebuilt without 'build'
    with pytest.raises(FileNotFoundError, match=r"toy\.keras does not exist.*'build'"):
        predict.load_model_with_card(path)


def test_rebuild_from_card_and_weights_is_preferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = []

    def build_from_card(card: dict) -> keras.Model:
        built.append(card["build"])
        return _brightness_model(card["build"]["image_size"])  # random weights until loaded

    monkeypatch.setattr(models, "build_from_card", build_from_card, raising=False)
    path, model, _ = _save(tmp_path, build={"architecture": "toy", "image_size": SIZE})
    loaded, _ = predict.load_model_with_card(path)
    assert built == [{"architecture": "toy", "image_size": SIZE}]
    np.testing.assert_allclose(
        loaded.predict_on_batch(IMAGES), model.predict_on_batch(IMAGES), atol=1e-6
    )
    course.keras_path(path).unlink()  # the weights and the card travel without the .keras
    loaded, card = predict.load_model_with_card(course.card_path(path))
    assert len(built) == 2
    np.testing.assert_array_equal(predict.predict_images(loaded, card, IMAGES).argmax(1), range(4))


def test_load_model_with_card_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.keras.*notebook 02"):
        predict.load_model_with_card(tmp_path / "missing.keras")
    path, _, card = _save(tmp_path / "a")
    course.card_path(path).unlink()
    with pytest.raises(FileNotFoundError, match=r"toy\.json"):
        predict.load_model_with_card(path)
    broken = {key: value for key, value in card.items() if key != "class_names"}
    course.card_path(path).write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="class_names"):
        predict.load_model_with_card(path)
    cards.write_card(path, {**card, "image_size": SIZE + 1})
    with pytest.raises(ValueError, match="does not match its card"):
        predict.load_model_with_card(path)


def test_predict_images_and_tables_keep_the_order(tmp_path: Path) -> None:
    model = _brightness_model()
    card = {"class_names": list(CLASSES), "image_size": SIZE}
    probabilities = predict.predict_images(model, card, IMAGES[::-1])
    assert probabilities.dtype == np.float64 and probabilities.shape == (4, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities.argmax(1).tolist() == [3, 2, 1, 0]
    assert predict.predict_images(model, card, IMAGES[0]).shape == (1, 4)
    with pytest.raises(ValueError, match=r"\(images, 32, 32, 3\)"):
        predict.predict_images(model, card, np.zeros((2, 16, 16, 3)))
    rows = []
    for name in CLASSES:
        path = tmp_path / f"{name}.png"
        Image.new("L", (40, 40), LEVELS[name]).save(path)
        rows.append({"abs_path": str(path), "label": name})
    table = pd.DataFrame(rows)
    subset = table.iloc[[3, 1]]
    result = predict.predict_tables(model, card, {"all": table, "some": subset})
    assert result["all"].argmax(1).tolist() == [0, 1, 2, 3]
    assert result["some"].argmax(1).tolist() == [3, 1]
    np.testing.assert_allclose(result["some"], result["all"][[3, 1]])


def test_a_real_cnn_travels_as_weights_and_card(tmp_path: Path) -> None:
    model = models.build_cnn(SIZE, len(CLASSES))
    path = course.model_path(tmp_path, "cnn")
    model.save_weights(course.weights_path(path))  # no .keras file at all
    card = dict.fromkeys(cards.REQUIRED_CARD_KEYS)
    card.update(name="cnn", class_names=list(CLASSES), image_size=SIZE, seed=1)
    card["build"] = models.build_spec("cnn", SIZE, len(CLASSES))
    cards.write_card(path, card)
    loaded, loaded_card = predict.load_model_with_card(path)
    assert loaded_card["build"]["builder"] == "cnn"
    np.testing.assert_allclose(
        predict.predict_images(loaded, loaded_card, IMAGES),
        predict.predict_images(model, loaded_card, IMAGES),
        atol=1e-5,
    )
