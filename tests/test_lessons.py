"""Lesson helpers: the worked loss, model tables, feature maps, curves, card comparisons."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from course_utils import lessons, models  # noqa: E402

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


@pytest.fixture(scope="module")
def tiny_cnn() -> keras.Model:
    keras.utils.set_random_seed(0)
    return models.build_cnn(32, num_classes=4, filters=(4, 8), dense_units=8, last_block_convs=1)


def test_cross_entropy_example_matches_hand_and_keras() -> None:
    probabilities = [0.70, 0.15, 0.05, 0.10]
    table, loss = lessons.cross_entropy_example(probabilities, "glioma", CLASSES)
    assert loss == pytest.approx(-math.log(0.70))  # 0.35667...
    assert loss == pytest.approx(0.356675, abs=1e-6)
    keras_loss = keras.losses.categorical_crossentropy(
        np.array([[1.0, 0, 0, 0]]), np.array([probabilities])
    )
    assert loss == pytest.approx(float(keras_loss[0]), rel=1e-6)
    assert list(table.index) == list(CLASSES)
    assert table["-y ln p"].sum() == pytest.approx(loss)
    assert (table["-y ln p"].iloc[1:] == 0).all()
    np.testing.assert_allclose(table["gradient p - y"], [-0.30, 0.15, 0.05, 0.10])
    _, by_index = lessons.cross_entropy_example(probabilities, 3)
    assert by_index == pytest.approx(math.log(10))


def test_cross_entropy_gradient_is_p_minus_y() -> None:
    logits = tf.Variable([[2.0, 0.3, -1.0, 0.5]])
    target = tf.constant([[0.0, 1.0, 0.0, 0.0]])
    with tf.GradientTape() as tape:
        keras_loss = keras.losses.categorical_crossentropy(target, logits, from_logits=True)
    gradient = tape.gradient(keras_loss, logits).numpy()[0]
    probabilities = lessons.softmax(logits.numpy()[0])
    np.testing.assert_allclose(probabilities.sum(), 1.0)
    table, loss = lessons.cross_entropy_example(probabilities, 1)
    np.testing.assert_allclose(table["gradient p - y"], gradient, atol=1e-6)
    assert loss == pytest.approx(float(keras_loss[0]), rel=1e-5)


def test_cross_entropy_example_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        lessons.cross_entropy_example([2.0, 0.3, -1.0, 0.5], 0)
    with pytest.raises(ValueError, match="class names"):
        lessons.cross_entropy_example([0.5, 0.5], 0, CLASSES)
    with pytest.raises(ValueError, match="not one of"):
        lessons.cross_entropy_example([0.5, 0.5], 2)
    _, zero = lessons.cross_entropy_example([0.0, 1.0], 0)
    assert np.isfinite(zero) and zero == pytest.approx(-math.log(lessons.EPSILON))


def test_separable_savings_table() -> None:
    table = lessons.separable_savings([(728, 728), (3, 32, 5)])
    assert list(table["separable"]) == [9 * 728 + 728 * 728, 25 * 3 + 3 * 32]
    assert list(table["kernel"]) == [3, 5]
    assert table["ratio"].iloc[0] == pytest.approx(9 * 728 * 728 / 536536)
    with_bias = lessons.separable_savings([(728, 728)], use_bias=True)
    assert with_bias["separable"].iloc[0] == 536536 + 728


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
    assert real == lessons.separable_savings([(728, 728)])["separable"].iloc[0]


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
    frame = lessons.history_frame(history)
    assert list(frame["epoch"]) == [1, 2, 3] and list(frame["loss"]) == history["loss"]
    assert lessons.history_frame({"history": history}).equals(frame)
    (tmp_path / "run_history.json").write_text(json.dumps({"history": history, "seconds": 1}))
    assert lessons.read_history(tmp_path / "run_history.json").equals(frame)
    pd.DataFrame({"epoch": [0, 1, 2], **history}).to_csv(tmp_path / "run.csv", index=False)
    from_csv = lessons.read_history(tmp_path / "run.csv")
    assert list(from_csv["epoch"]) == [1, 2, 3]
    with pytest.raises(FileNotFoundError, match="train the model"):
        lessons.read_history(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="loss"):
        lessons.history_frame({"accuracy": [0.5]})


def test_overfitting_gap() -> None:
    history = {
        "loss": [1.2, 0.8, 0.5, 0.3],
        "val_loss": [1.3, 0.9, 1.0, 1.2],
        "accuracy": [0.40, 0.60, 0.80, 0.95],
        "val_accuracy": [0.35, 0.55, 0.56, 0.54],
    }
    gap = lessons.overfitting_gap(history)
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
