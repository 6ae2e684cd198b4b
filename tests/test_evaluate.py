"""Evaluation: every metric against scikit-learn or a hand-computed value, and the test folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.special import softmax
from sklearn import metrics as skm

from course_utils import evaluate

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3])
Y_PRED = np.array([0, 2, 1, 1, 1, 2, 2, 0, 3, 2])


def _probabilities(y_pred: np.ndarray, confidence: float, k: int = 4) -> np.ndarray:
    """Rows that give ``confidence`` to the predicted class and share the rest evenly."""
    rows = np.full((len(y_pred), k), (1 - confidence) / (k - 1))
    rows[np.arange(len(y_pred)), y_pred] = confidence
    return rows


# --- classification metrics ----------------------------------------------------------


def test_classification_metrics_match_sklearn() -> None:
    result = evaluate.classification_metrics(Y_TRUE, Y_PRED, CLASSES)
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(Y_TRUE, Y_PRED)) == 0.6
    assert result["macro_f1"] == pytest.approx(skm.f1_score(Y_TRUE, Y_PRED, average="macro"))
    assert result["macro_precision"] == pytest.approx(
        skm.precision_score(Y_TRUE, Y_PRED, average="macro")
    )
    assert result["macro_recall"] == pytest.approx(
        skm.recall_score(Y_TRUE, Y_PRED, average="macro")
    )
    # by hand: glioma was right 1 of 3 times and predicted twice (once right)
    assert result["per_class"]["glioma"] == {
        "precision": 0.5,
        "recall": pytest.approx(1 / 3),
        "f1": pytest.approx(0.4),
        "support": 3,
    }
    assert "meningioma" in result["classification_report"]


def test_confusion_tables_counts_and_rows() -> None:
    counts, rates = evaluate.confusion_tables(Y_TRUE, Y_PRED, CLASSES)
    assert counts.loc["glioma"].tolist() == [1, 1, 1, 0]
    assert counts.to_numpy().sum() == len(Y_TRUE)
    np.testing.assert_allclose(rates.sum(axis=1), 1.0)
    assert rates.loc["notumor", "glioma"] == pytest.approx(1 / 3)
    assert list(counts.columns) == list(CLASSES) and counts.index.name == "true"


def test_missed_tumor_rate_by_hand() -> None:
    result = evaluate.missed_tumor_rate(Y_TRUE, Y_PRED, CLASSES)
    # tumors: 7 images (3 glioma, 2 meningioma, 2 pituitary); called notumor: 1 glioma, 1 pituitary
    assert (result["missed"], result["tumor_images"]) == (2, 7)
    assert result["rate"] == pytest.approx(2 / 7)
    assert result["per_class"] == {
        "glioma": pytest.approx(1 / 3),
        "meningioma": 0.0,
        "pituitary": 0.5,
    }
    assert result["false_alarm_rate"] == pytest.approx(1 / 3)  # 1 of 3 healthy called glioma
    with pytest.raises(ValueError, match="healthy class 'notumor'"):
        evaluate.missed_tumor_rate(Y_TRUE, Y_PRED, ("a", "b", "c", "d"))


def test_roc_auc_matches_sklearn_one_vs_rest() -> None:
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(4), 10)
    probabilities = softmax(rng.normal(size=(40, 4)) + 1.5 * np.eye(4)[y], axis=1)
    curves = evaluate.roc_curves(y, probabilities, CLASSES)
    for k, name in enumerate(CLASSES):
        assert curves[name]["auc"] == pytest.approx(skm.roc_auc_score(y == k, probabilities[:, k]))
        assert curves[name]["fpr"][0] == 0 and curves[name]["tpr"][-1] == 1
    expected = skm.roc_auc_score(y, probabilities, multi_class="ovr", average="macro")
    assert evaluate.macro_auc(curves) == pytest.approx(expected)


def test_roc_with_an_absent_class_is_nan_not_an_error() -> None:
    y = np.array([0, 1, 1, 0])
    curves = evaluate.roc_curves(y, _probabilities(y, 0.7), CLASSES)
    assert math.isnan(curves["notumor"]["auc"]) and curves["notumor"]["fpr"] == []
    assert evaluate.macro_auc(curves) == pytest.approx(1.0)


# --- calibration ---------------------------------------------------------------------


def test_ece_on_known_cases() -> None:
    # every prediction 0.8 confident, 6 of 10 right: ECE = |0.6 - 0.8| = 0.2
    y_pred = np.zeros(10, dtype=int)
    y_true = np.array([0] * 6 + [1] * 4)
    assert evaluate.expected_calibration_error(
        y_true, _probabilities(y_pred, 0.8)
    ) == pytest.approx(0.2)
    # half at 0.9 (all right), half at 0.6 (half right): 0.5 * 0.1 + 0.5 * 0.1 = 0.1
    probabilities = np.vstack(
        [_probabilities(np.zeros(4, int), 0.9), _probabilities(np.zeros(4, int), 0.6)]
    )
    y_true = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    assert evaluate.expected_calibration_error(y_true, probabilities) == pytest.approx(0.1)
    # always right with confidence 1: calibrated
    assert evaluate.expected_calibration_error(y_true, np.eye(4)[y_true]) == 0.0


def test_reliability_table_bins() -> None:
    confidences = np.array([0.3, 0.55, 0.6, 0.95, 1.0])
    probabilities = np.column_stack([confidences, 1 - confidences, np.zeros(5), np.zeros(5)])
    probabilities[0] = [0.3, 0.25, 0.25, 0.2]  # top class 0 with 0.3
    table = evaluate.reliability_table(np.zeros(5, int), probabilities, n_bins=10)
    assert len(table) == 10 and table["count"].sum() == 5
    assert table["count"].tolist() == [0, 0, 1, 0, 0, 2, 0, 0, 0, 2]  # 0.55, 0.6 in (0.5, 0.6]
    assert table.loc[9, "confidence"] == pytest.approx(0.975)
    assert table["accuracy"].dropna().eq(1.0).all()
    with pytest.raises(ValueError, match="n_bins"):
        evaluate.reliability_table(np.zeros(0, int), np.zeros((0, 4)))


def test_temperature_scaling_fixes_an_overconfident_model() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    logits = rng.normal(size=(n, 4)) * 1.5
    calibrated = softmax(logits, axis=1)
    y = np.array([rng.choice(4, p=row) for row in calibrated])  # labels drawn from the model
    overconfident = softmax(3.0 * logits, axis=1)  # same ranking, 3x the logits
    temperature = evaluate.fit_temperature(y, overconfident)
    assert temperature == pytest.approx(3.0, rel=0.15)
    scaled = evaluate.apply_temperature(overconfident, temperature)
    assert evaluate.negative_log_likelihood(y, scaled) < evaluate.negative_log_likelihood(
        y, overconfident
    )
    assert evaluate.expected_calibration_error(y, scaled) < evaluate.expected_calibration_error(
        y, overconfident
    )
    np.testing.assert_array_equal(scaled.argmax(1), overconfident.argmax(1))
    np.testing.assert_allclose(evaluate.apply_temperature(calibrated, 1.0), calibrated, atol=1e-9)
    assert evaluate.negative_log_likelihood(y, calibrated) == pytest.approx(
        -np.mean(np.log(calibrated[np.arange(n), y]))
    )
    with pytest.raises(ValueError, match="positive"):
        evaluate.apply_temperature(calibrated, 0)


# --- uncertainty and comparison ------------------------------------------------------


def test_bootstrap_interval_contains_estimate_narrows_and_repeats() -> None:
    rng = np.random.default_rng(2)

    def interval(n: int, seed: int = 0) -> tuple[float, float]:
        y_true = np.zeros(n, dtype=int)
        y_pred = np.where(rng.random(n) < 0.8, 0, 1)
        low, high = evaluate.bootstrap_interval(
            y_true, y_pred, skm.accuracy_score, n_resamples=500, seed=seed
        )
        assert low <= skm.accuracy_score(y_true, y_pred) <= high
        return low, high

    small, large = interval(50), interval(2000)
    assert large[1] - large[0] < (small[1] - small[0]) / 3  # width shrinks like 1/sqrt(n)
    y_true, y_pred = Y_TRUE, Y_PRED
    first = evaluate.bootstrap_interval(y_true, y_pred, evaluate.macro_f1, 200, seed=7)
    assert first == evaluate.bootstrap_interval(y_true, y_pred, evaluate.macro_f1, 200, seed=7)
    assert first[0] <= evaluate.macro_f1(y_true, y_pred) <= first[1]
    with pytest.raises(ValueError, match="at least 2"):
        evaluate.bootstrap_interval(y_true[:1], y_pred[:1], skm.accuracy_score)


def test_mcnemar_exact_on_a_known_table() -> None:
    # 30 both right, 10 only A, 2 only B, 5 both wrong
    a = np.array([1] * 30 + [1] * 10 + [0] * 2 + [0] * 5, bool)
    b = np.array([1] * 30 + [0] * 10 + [1] * 2 + [0] * 5, bool)
    result = evaluate.mcnemar_exact(a, b)
    assert result["only_a_right"] == 10 and result["only_b_right"] == 2
    assert result["both_right"] == 30 and result["both_wrong"] == 5
    # two-sided exact: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert result["p_value"] == pytest.approx(2 * 79 / 4096)
    assert evaluate.mcnemar_exact(a, a)["p_value"] == 1.0
    with pytest.raises(ValueError, match="same images"):
        evaluate.mcnemar_exact(a, b[:-1])
    sentence = evaluate.describe_mcnemar(result, "xception", "cnn")
    assert "Xception is more accurate" in sentence and "p = 0.0386" in sentence


def test_confident_mistakes_sorted_by_confidence() -> None:
    split = pd.DataFrame({"abs_path": [f"/x/{i}.png" for i in range(4)], "path": list("abcd")})
    y_true = np.array([0, 1, 2, 3])
    probabilities = np.array(
        [[0.9, 0.1, 0, 0], [0.6, 0.4, 0, 0], [0.05, 0.05, 0.1, 0.8], [0.1, 0.1, 0.7, 0.1]]
    )
    table = evaluate.confident_mistakes(split, y_true, probabilities, CLASSES, count=5)
    assert table["path"].tolist() == ["c", "d", "b"]
    assert table.iloc[0][["true", "predicted"]].tolist() == ["notumor", "pituitary"]
    assert table["probability"].tolist() == [0.8, 0.7, 0.6]


# --- one model, tables, sentences, files ---------------------------------------------


def _fake_metrics(accuracy_test: float, accuracy_leakfree: float, leaked: int) -> dict:
    y = np.repeat(np.arange(4), 25)
    rng = np.random.default_rng(3)

    def result(accuracy: float) -> dict:
        y_pred = np.where(rng.random(100) < accuracy, y, (y + 1) % 4)
        return evaluate.evaluate_predictions(y, _probabilities(y_pred, 0.9), CLASSES, 1.2, 100)

    leak = {
        "test_images": 100 + leaked,
        "leakfree_images": 100,
        "leaked_images": leaked,
        "accuracy_test": accuracy_test,
        "accuracy_leakfree": accuracy_leakfree,
        "accuracy_leaked": 1.0,
        "inflation": accuracy_test - accuracy_leakfree,
    }
    return {
        "splits": {"test": result(accuracy_test), "test_leakfree": result(accuracy_leakfree)},
        "leakage": leak,
    }


def test_evaluate_predictions_collects_every_metric() -> None:
    y = np.repeat(np.arange(4), 5)
    result = evaluate.evaluate_predictions(y, _probabilities(y, 0.7), CLASSES, 1.0, 50)
    for key in ("accuracy", "macro_f1", "confusion", "missed_tumors", "roc", "macro_auc"):
        assert key in result
    assert result["calibration"]["ece"] == pytest.approx(0.3)
    assert result["bootstrap"]["accuracy"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="do not match"):
        evaluate.evaluate_predictions(y, np.ones((3, 4)) / 4, CLASSES)


def test_leakage_summary_and_sentences_are_computed() -> None:
    test = pd.DataFrame({"abs_path": ["a", "b", "c", "d"]})
    leakfree = test.iloc[[0, 1, 2]]
    y = np.array([0, 1, 2, 3])
    predicted = np.array([0, 1, 0, 3])  # c (clean) wrong, d (leaked) right
    summary = evaluate.leakage_summary(test, leakfree, y, _probabilities(predicted, 0.9))
    assert summary["accuracy_test"] == 0.75 and summary["accuracy_leakfree"] == pytest.approx(2 / 3)
    assert summary["accuracy_leaked"] == 1.0 and summary["leaked_images"] == 1
    assert summary["inflation"] == pytest.approx(0.75 - 2 / 3)

    metrics = {"xception": _fake_metrics(0.97, 0.90, 30), "cnn": _fake_metrics(0.95, 0.95, 0)}
    metrics["cnn"]["leakage"]["leaked_images"] = 0
    sentences = evaluate.leakage_sentences(metrics)
    assert "97.0%" in sentences[0] and "90.0%" in sentences[0] and "+7.0 percentage" in sentences[0]
    assert "inflates" in sentences[0] and "none of the 100 test images" in sentences[1]
    assert sentences[2].startswith("Xception minus CNN accuracy:")


def test_comparison_and_markdown_tables() -> None:
    metrics = {"xception": _fake_metrics(0.9, 0.8, 5), "cnn": _fake_metrics(0.7, 0.6, 5)}
    table = evaluate.comparison_table(metrics)
    assert table.index.names == ["model", "test set"] and len(table) == 4
    assert ("CNN", "leak-free test") in table.index
    cell = table.loc[("Xception", "full test"), "accuracy (95% CI)"]
    accuracy = metrics["xception"]["splits"]["test"]["accuracy"]
    assert cell.startswith(f"{accuracy:.1%} (")
    markdown = evaluate.markdown_table(table)
    assert markdown.splitlines()[0].startswith("| model | test set | images |")
    assert len(markdown.splitlines()) == 6
    intervals = evaluate.interval_table(metrics)
    assert len(intervals) == 8 and (intervals["low"] <= intervals["value"]).all()


def test_save_metrics_is_strict_json(tmp_path: Path) -> None:
    path = evaluate.save_metrics(
        {"a": np.float32(0.5), "b": math.nan, "c": [np.int64(3)], "d": {"e": np.array([1.0])}},
        evaluate.metrics_path(tmp_path / "out", "cnn"),
    )
    assert path.name == "metrics_cnn.json"
    assert json.loads(path.read_text()) == {"a": 0.5, "b": None, "c": [3], "d": {"e": [1.0]}}


def test_find_models(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="02_transfer.*03_cnn"):
        evaluate.find_models(tmp_path)
    (tmp_path / "cnn.keras").write_bytes(b"x")
    (tmp_path / "cnn.json").write_text("{}")
    (tmp_path / "xception.keras").write_bytes(b"x")
    found, missing = evaluate.find_models(tmp_path)
    assert list(found) == ["cnn"] and "xception.json" in missing["xception"]


# --- test folders and class order ----------------------------------------------------

#: Brightness of each class's images; the brightness model below reads it.
LEVELS = {"glioma": 30, "meningioma": 90, "notumor": 150, "pituitary": 210}


def _write_folder(root: Path, folders: dict[str, str], per_class: int = 3) -> Path:
    """``{folder name: class}`` -> flat grey PNGs whose brightness encodes the class."""
    for folder, label in folders.items():
        (root / folder).mkdir(parents=True)
        for index in range(per_class):
            pixels = np.full((40, 40), LEVELS[label] + index, dtype=np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{index}.png")
    return root


def _brightness_model(class_names: tuple[str, ...]):
    """A Keras model that picks the class whose brightness is nearest, outputs in card order."""
    import keras

    levels = np.array([LEVELS[name] for name in class_names], dtype=np.float32)
    inputs = keras.Input((32, 32, 3))
    mean = keras.layers.GlobalAveragePooling2D()(inputs)
    # argmax_k -(x - c_k)^2 == argmax_k (2 c_k x - c_k^2): a linear layer does it
    dense = keras.layers.Dense(len(levels), activation="softmax")
    outputs = dense(mean)
    dense.set_weights([np.tile(2 * levels / 3, (3, 1)) / 50, -(levels**2) / 50])
    return keras.Model(inputs, outputs)


def test_scan_test_folder_layouts_aliases_and_unreadable_files(tmp_path: Path) -> None:
    folders = {
        "glioma_tumor": "glioma",
        "meningioma": "meningioma",
        "no_tumor": "notumor",
        "Pituitary": "pituitary",
    }
    root = _write_folder(tmp_path / "flat", folders)
    (root / "meningioma" / "broken.jpg").write_bytes(b"not an image")
    table, skipped = evaluate.scan_test_folder(root, CLASSES)
    assert len(table) == 12 and set(table["label"]) == set(CLASSES)
    assert len(skipped) == 1 and skipped[0].startswith("meningioma/broken.jpg:")
    nested = _write_folder(tmp_path / "kaggle" / "Testing", {c: c for c in CLASSES}, 1)
    table, _ = evaluate.scan_test_folder(nested.parent, CLASSES)
    assert len(table) == 4 and table["abs_path"].str.contains("/Testing/").all()


@pytest.mark.parametrize(
    ("folders", "message"),
    [
        (
            {"glioma": "glioma", "notumor": "notumor", "pituitary": "pituitary"},
            r"missing \['meningioma'\]",
        ),
        ({**{c: c for c in CLASSES}, "astrocytoma": "glioma"}, r"extra \['astrocytoma'\]"),
    ],
)
def test_test_folder_with_other_classes_is_a_clear_error(
    tmp_path: Path, folders: dict, message: str
) -> None:
    root = _write_folder(tmp_path / "data", folders, 1)
    with pytest.raises(ValueError, match=message) as error:
        evaluate.scan_test_folder(root, CLASSES)
    assert "glioma" in str(error.value) and str(root) in str(error.value)


def test_class_folder_without_readable_images_is_an_error(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "data", {c: c for c in CLASSES}, 1)
    (root / "glioma" / "0.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"missing \['glioma'\]"):
        evaluate.scan_test_folder(root, CLASSES)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate.scan_test_folder(tmp_path / "nowhere", CLASSES)


def test_class_order_comes_from_the_card_not_the_folders(tmp_path: Path) -> None:
    card_order = ("pituitary", "notumor", "meningioma", "glioma")  # not the folders' order
    root = _write_folder(tmp_path / "data", {c: c for c in CLASSES}, 2)
    table, _ = evaluate.scan_test_folder(root, card_order)
    card = {"name": "toy", "class_names": list(card_order), "image_size": 32}
    model = _brightness_model(card_order)
    val = table.iloc[::2]
    metrics, probabilities = evaluate.evaluate_model(
        model, card, {"test": table, "test_leakfree": table.iloc[:6]}, val, n_bootstrap=20
    )
    assert metrics["splits"]["test"]["accuracy"] == 1.0
    assert metrics["class_names"] == list(card_order)
    assert probabilities["test"].shape == (8, 4)
    assert probabilities["test_leakfree"].shape == (6, 4)
    assert metrics["leakage"]["leaked_images"] == 2
    assert metrics["temperature"]["fitted_on"] == "val"
    assert metrics["seconds"]["images_predicted"] == 8
    pituitary = table["label"].eq("pituitary").to_numpy()
    assert (probabilities["test"][pituitary].argmax(1) == 0).all()  # card index 0
