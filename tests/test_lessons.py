"""Lesson plumbing and the maths notebook 02 shows: the loss, tables, curves, summaries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from course_utils import course, lessons, models, training_history  # noqa: E402

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


@pytest.fixture(scope="module")
def tiny_cnn() -> keras.Model:
    keras.utils.set_random_seed(0)
    return models.build_cnn(32, num_classes=4, filters=(4, 8), dense_units=8, last_block_convs=1)


#: Keras clips probabilities to [EPSILON, 1 - EPSILON] before taking the logarithm.
EPSILON = 1e-7


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Notebook 02's softmax, as written in its cell."""
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def _cross_entropy(p: np.ndarray, true_class: int) -> tuple[np.ndarray, float, np.ndarray]:
    """Notebook 02's worked loss: one-hot y, terms -y ln p, their sum, the gradient p - y."""
    y = np.eye(len(p))[true_class]
    terms = -y * np.log(np.clip(p, EPSILON, 1 - EPSILON))
    return terms, float(terms.sum()), p - y


def test_cross_entropy_example_matches_hand_and_keras() -> None:
    probabilities = np.array([0.70, 0.15, 0.05, 0.10])
    terms, loss, gradient = _cross_entropy(probabilities, CLASSES.index("glioma"))
    assert loss == pytest.approx(-math.log(0.70))  # 0.35667...
    assert loss == pytest.approx(0.356675, abs=1e-6)
    keras_loss = keras.losses.categorical_crossentropy(
        np.array([[1.0, 0, 0, 0]]), np.array([probabilities])
    )
    assert loss == pytest.approx(float(keras_loss[0]), rel=1e-6)
    assert terms.sum() == pytest.approx(loss)
    assert (terms[1:] == 0).all()
    np.testing.assert_allclose(gradient, [-0.30, 0.15, 0.05, 0.10])
    _, by_index, _ = _cross_entropy(probabilities, 3)
    assert by_index == pytest.approx(math.log(10))


def test_cross_entropy_gradient_is_p_minus_y() -> None:
    logits = tf.Variable([[2.0, 0.3, -1.0, 0.5]])
    target = tf.constant([[0.0, 1.0, 0.0, 0.0]])
    with tf.GradientTape() as tape:
        keras_loss = keras.losses.categorical_crossentropy(target, logits, from_logits=True)
    gradient = tape.gradient(keras_loss, logits).numpy()[0]
    probabilities = _softmax(logits.numpy()[0].astype(np.float64))
    np.testing.assert_allclose(probabilities.sum(), 1.0)
    _, loss, by_hand = _cross_entropy(probabilities, 1)
    np.testing.assert_allclose(by_hand, gradient, atol=1e-6)
    assert loss == pytest.approx(float(keras_loss[0]), rel=1e-5)


def test_cross_entropy_clips_a_zero_probability() -> None:
    _, zero, _ = _cross_entropy(np.array([0.0, 1.0]), 0)
    assert np.isfinite(zero) and zero == pytest.approx(-math.log(EPSILON))
    keras_zero = keras.losses.categorical_crossentropy(np.array([[1.0, 0]]), np.array([[0.0, 1]]))
    assert zero == pytest.approx(float(keras_zero[0]), rel=1e-3)


def test_xception_flows_add_up() -> None:
    keras.utils.set_random_seed(0)
    model = models.build_xception_classifier(71, weights=None)
    flows = lessons.xception_flows(model)
    assert list(flows.index) == ["input", "entry", "middle", "exit", "head"]
    assert flows["parameters"].sum() == model.count_params()
    assert flows.loc["middle", "separable convs"] == 24  # 8 blocks x 3
    assert flows.loc["exit", "blocks"] == "13-14"
    assert flows.loc["exit", "output shape"].endswith("x 2048")
    real = model.get_layer("block5_sepconv1").count_params()
    assert real == 9 * 728 + 728 * 728  # notebook 02: depthwise + pointwise, no bias


def test_layer_table_sums_to_model(tiny_cnn: keras.Model) -> None:
    table = lessons.layer_table(tiny_cnn)
    assert len(table) == len(tiny_cnn.layers)
    assert table["parameters"].sum() == tiny_cnn.count_params()
    conv1 = table.set_index("layer").loc["conv1"]
    assert conv1["parameters"] == 3 * 3 * 3 * 4 and conv1["output shape"] == "32 x 32 x 4"
    bn = table.set_index("layer").loc["conv1_bn"]
    assert bn["parameters"] == 4 * 4 and bn["trainable"] == 2 * 4
    assert table["trainable"].sum() == sum(
        int(np.prod(w.shape)) for w in tiny_cnn.trainable_weights
    )


def test_receptive_fields(tiny_cnn: keras.Model) -> None:
    fields = lessons.receptive_fields(tiny_cnn)
    assert fields["conv1"] == 3 and fields["conv1_pool"] == 4
    assert fields["conv2"] == 8 and fields["conv2_pool"] == 10
    assert "global_pool" not in fields and "dense" not in fields


def test_feature_maps_shape(tiny_cnn: keras.Model) -> None:
    image = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype("float32")
    maps = lessons.feature_maps(tiny_cnn, image, "conv1_relu")
    assert maps.shape == (32, 32, 4) and maps.dtype == np.float32
    assert (maps >= 0).all()  # after ReLU
    pooled = lessons.feature_maps(tiny_cnn, image, "conv2_pool")
    assert pooled.shape == (8, 8, 8)
    with pytest.raises(ValueError, match="one image"):
        lessons.feature_maps(tiny_cnn, image[None], "conv1")
    with pytest.raises(ValueError):
        lessons.feature_maps(tiny_cnn, image, "no_such_layer")


def test_history_frame_and_read_history(tmp_path: Path) -> None:
    history = {"loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 1.0]}
    frame = training_history.history_frame(history)
    assert list(frame["epoch"]) == [1, 2, 3] and list(frame["loss"]) == history["loss"]
    assert training_history.history_frame({"history": history}).equals(frame)
    (tmp_path / "run_history.json").write_text(json.dumps({"history": history, "seconds": 1}))
    assert training_history.read_history(tmp_path / "run_history.json").equals(frame)
    pd.DataFrame({"epoch": [0, 1, 2], **history}).to_csv(tmp_path / "run.csv", index=False)
    from_csv = training_history.read_history(tmp_path / "run.csv")
    assert list(from_csv["epoch"]) == [1, 2, 3]
    with pytest.raises(FileNotFoundError, match="train the model"):
        training_history.read_history(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="loss"):
        training_history.history_frame({"accuracy": [0.5]})


def test_overfitting_gap() -> None:
    history = {
        "loss": [1.2, 0.8, 0.5, 0.3],
        "val_loss": [1.3, 0.9, 1.0, 1.2],
        "accuracy": [0.40, 0.60, 0.80, 0.95],
        "val_accuracy": [0.35, 0.55, 0.56, 0.54],
    }
    gap = training_history.overfitting_gap(history)
    assert gap["best_epoch"] == 2 and gap["epochs"] == 4
    assert gap["gap"] == pytest.approx(0.05)
    assert gap["final_gap"] == pytest.approx(0.41)
    assert gap["val_loss_rise"] == pytest.approx(0.3)


def test_compare_learning_rates_one_curve_per_rate() -> None:
    rng = np.random.default_rng(0)
    labels = np.eye(4, dtype="float32")[rng.integers(0, 4, 24)]
    features = (rng.normal(size=(24, 2, 2, 3)) + labels.argmax(1)[:, None, None, None]).astype(
        "float32"
    )

    def builder() -> keras.Model:
        return models.build_head((2, 2, 3), 4, dense_units=8)

    rates = [1e-3, 1e-2, 1e-1]
    curves = lessons.compare_learning_rates(
        builder, features, labels, features, labels, rates, epochs=2, batch_size=8, seed=0
    )
    assert list(curves) == rates
    assert all(len(curve) == 2 and all(np.isfinite(curve)) for curve in curves.values())
    again = lessons.compare_learning_rates(
        builder, features, labels, features, labels, rates[:1], epochs=2, batch_size=8, seed=0
    )
    np.testing.assert_allclose(again[1e-3], curves[1e-3], rtol=1e-5)  # same start, same batches
    with pytest.raises(ValueError, match="positive"):
        lessons.compare_learning_rates(builder, features, labels, features, labels, [0.0])


def test_compare_cards() -> None:
    card = {
        "parameters": 1000,
        "image_size": 96,
        "training_seconds": 12.5,
        "best_val_metrics": {"accuracy": 0.5, "loss": 1.0},
        "phases": [
            {"epochs_run": 2, "trainable_params": 100},
            {"epochs_run": 3, "trainable_params": 400},
        ],
    }
    table = lessons.compare_cards({"A": card, "B": {**card, "parameters": 10}})
    assert list(table.index) == ["A", "B"]
    assert table.loc["A", "epochs run"] == 5
    assert table.loc["A", "trainable at the end"] == 400
    assert table.loc["B", "parameters"] == 10
    assert table.loc["A", "best val accuracy"] == 0.5


def _card(name: str = "cnn") -> dict:
    phase = {
        "phase": "1: all layers",
        "epochs_run": 3,
        "max_epochs": 5,
        "best_epoch": 2,
        "learning_rate": 2e-3,
        "seconds": 6.0,
        "trainable_params": 400,
        "best_val_metrics": {"accuracy": 0.55, "loss": 0.9},
    }
    return {
        "name": name,
        "parameters": 1000,
        "image_size": 96,
        "training_seconds": 6.0,
        "weights": "random",
        "best_val_metrics": {"accuracy": 0.55, "loss": 0.9},
        "phases": [phase],
    }


def test_phase_table() -> None:
    card = _card()
    card["phases"].append({**card["phases"][0], "phase": "2: fine-tune", "epochs_run": 2})
    table = lessons.phase_table(card)
    assert list(table.index) == [1, 2] and table.index.name == "phase"
    assert list(table["what"]) == ["all layers", "fine-tune"]
    assert table.loc[1, "epochs"] == "3 of 5" and table.loc[2, "seconds per epoch"] == 3.0
    assert table.loc[1, "val accuracy"] == 0.55


def test_summaries_are_computed_from_the_run(tmp_path: Path) -> None:
    history = {
        "loss": [1.2, 0.8, 0.6],
        "val_loss": [1.1, 0.9, 1.0],
        "accuracy": [0.4, 0.7, 0.8],
        "val_accuracy": [0.3, 0.55, 0.5],
    }
    paths = course.history_paths(tmp_path, "cnn")
    paths["history_json"].write_text(json.dumps({"history": history}))
    lines = lessons.write_cnn_summary(tmp_path, _card())
    assert lines[0] == "## 03 · CNN from scratch"
    assert "Best validation accuracy: 55.0% (loss 0.900)" in lines[4]
    assert "+15.0%" in lines[4]  # 0.70 - 0.55 at the best epoch (2)
    assert not any("Xception" in line for line in lines)
    assert course.summary_path(tmp_path, "03_cnn").read_text() == "\n".join(lines) + "\n"

    at_chance = lessons.write_cnn_summary(tmp_path, {**_card(), "fast_mode": True}, ["a"] * 60)
    assert "The CNN has not learned: its accuracy 55.0%" in at_chance[4]  # vs 100% constant
    assert "fast-mode run" in at_chance[4] and "train - val" not in at_chance[4]
    skewed = lessons.write_cnn_summary(tmp_path, _card(), ["a"] * 20 + ["b"] * 80)
    assert "has not learned" in skewed[4]  # 55% does not beat always-"b" (80%)
    balanced = lessons.write_cnn_summary(tmp_path, _card(), ["a", "b", "c", "d"] * 50)
    assert "has not learned" not in balanced[4] and "+15.0%" in balanced[4]

    card = _card("xception")
    card["phases"][0]["feature_extraction_seconds"] = 1.5
    lines = lessons.write_transfer_summary(tmp_path, card, {1e-3: [1.2, 1.0], 1e-2: [1.3, 1.4]})
    assert "feature extraction 1.5 s" in lines[4]
    assert lines[-1].endswith("0.001 -> 1.000, 0.01 -> 1.400")
    assert course.summary_path(tmp_path, "02_transfer").is_file()


# --- sentences that first ask whether the model learned ---------------------------------

GAP = {"gap": 0.2, "val_loss_rise": 0.3, "best_epoch": 2, "epochs": 5}
BALANCED = ["glioma", "meningioma", "notumor", "pituitary"] * 25  # 100 images, 25 % each


def _val_card(accuracy: float, **extra: object) -> dict:
    """A card whose best validation accuracy is ``accuracy``."""
    return {**_card(), "best_val_metrics": {"accuracy": accuracy, "loss": 1.0}, **extra}


def test_overfitting_sentence_only_for_a_model_that_learned() -> None:
    chance = lessons.validation_verdict(_val_card(0.25), BALANCED)
    text = lessons.overfitting_sentence(GAP, chance, _val_card(0.25, fast_mode=True))
    assert text.startswith("The CNN has not learned") and "fast-mode run" in text
    assert "Signs of over-fitting" not in text and "is not over-fitting" in text
    learned = lessons.validation_verdict(_val_card(0.9), BALANCED)
    assert learned.learned
    text = lessons.overfitting_sentence(GAP, learned)
    assert text.startswith("Signs of over-fitting: training accuracy is 20.0% ahead")
    calm = {**GAP, "gap": 0.0, "val_loss_rise": 0.0}
    assert "none within these 5 epochs" in lessons.overfitting_sentence(calm, learned)


def test_batch_norm_is_not_blamed_for_a_model_at_chance() -> None:
    chance = lessons.validation_verdict(_val_card(0.25), BALANCED)
    learned = lessons.validation_verdict(_val_card(1.0), BALANCED)
    at_chance = lessons.batch_norm_sentence(1.0, 10.0, 12, chance)
    assert "ratio 0.1" in at_chance and "has not learned" in at_chance
    assert "understate" not in at_chance
    assert "understate what the network learned" in lessons.batch_norm_sentence(1, 10, 12, learned)
    assert "Close" in lessons.batch_norm_sentence(1.0, 1.1, 12, chance)


def test_card_comparison_sentence_ties_and_refusals() -> None:
    cnn = {**_val_card(0.9), "parameters": 1000}
    xception = {**_val_card(0.9), "parameters": 20000, "weights": "imagenet"}
    tie = lessons.card_comparison_sentence({"CNN": cnn, "Xception": xception}, BALANCED)
    assert "20 times the parameters" in tie and "CNN minus Xception: a tie" in tie
    better = {**xception, "best_val_metrics": {"accuracy": 0.95, "loss": 0.2}}
    gap = lessons.card_comparison_sentence({"CNN": cnn, "Xception": better}, BALANCED)
    assert "-5.0 points" in gap
    chance = {**_val_card(0.25), "parameters": 1000}
    refused = lessons.card_comparison_sentence({"CNN": chance, "Xception": xception}, BALANCED)
    assert "no accuracy comparison: CNN has not learned" in refused and "minus" not in refused
