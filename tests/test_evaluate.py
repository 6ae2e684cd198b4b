"""Evaluation: one model's numbers per test set, the result object, tables and sentences."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_cnn import BRIGHTNESS_LEVELS, write_brightness_folders

from course_utils import cards, course, evaluate, leakage, report
from course_utils.data import folders as test_folders

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def _probabilities(y_pred: np.ndarray, confidence: float, k: int = 4) -> np.ndarray:
    """Rows that give ``confidence`` to the predicted class and share the rest evenly."""
    rows = np.full((len(y_pred), k), (1 - confidence) / (k - 1))
    rows[np.arange(len(y_pred)), y_pred] = confidence
    return rows


def _fake_metrics(accuracy_test: float, accuracy_leakfree: float, leaked: int) -> dict:
    y = np.repeat(np.arange(4), 25)
    rng = np.random.default_rng(3)

    def result(accuracy: float) -> dict:
        y_pred = np.where(rng.random(100) < accuracy, y, (y + 1) % 4)
        return evaluate.evaluate_predictions(y, _probabilities(y_pred, 0.9), CLASSES, 1.2, 100)

    clean_right = round(100 * accuracy_leakfree)
    correct = np.r_[np.ones(leaked + clean_right, bool), np.zeros(100 - clean_right, bool)]
    leak = leakage.compare_groups(correct, np.arange(100 + leaked) < leaked, n_resamples=200)
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


def test_leakage_sentences_are_computed() -> None:
    metrics = {"xception": _fake_metrics(0.97, 0.90, 30), "cnn": _fake_metrics(0.95, 0.95, 0)}
    sentences = report.leakage_sentences(metrics)
    assert sentences[0].startswith(
        "Xception: 100.0% on the 30 test images with a copy in training, 90.0% on the 100 without"
    )
    assert "difference +10.0 points (95% CI" in sentences[0] and "Fisher's exact p" in sentences[0]
    assert "none of the 100 test images has a copy in training" in sentences[1]
    assert sentences[2].startswith("Xception minus CNN accuracy:")
    few = report.leakage_sentences({"cnn": _fake_metrics(0.95, 0.95, 3)})
    assert "too few to say" in few[0] and "difference" not in few[0]


def test_comparison_and_markdown_tables() -> None:
    metrics = {"xception": _fake_metrics(0.9, 0.8, 5), "cnn": _fake_metrics(0.7, 0.6, 5)}
    table = report.comparison_table(metrics)
    assert table.index.names == ["model", "test set"] and len(table) == 4
    assert ("CNN", "leak-free test") in table.index
    cell = table.loc[("Xception", "full test"), "accuracy (95% CI)"]
    accuracy = metrics["xception"]["splits"]["test"]["accuracy"]
    assert cell.startswith(f"{accuracy:.1%} (")
    markdown = report.markdown_table(table)
    assert markdown.splitlines()[0].startswith("| model | test set | images |")
    assert len(markdown.splitlines()) == 6
    intervals = report.interval_table(metrics)
    assert len(intervals) == 8 and (intervals["low"] <= intervals["value"]).all()


def test_save_metrics_is_strict_json(tmp_path: Path) -> None:
    path = evaluate.save_metrics(
        {"a": np.float32(0.5), "b": math.nan, "c": [np.int64(3)], "d": {"e": np.array([1.0])}},
        course.metrics_path(tmp_path / "out", "cnn"),
    )
    assert path.name == "metrics_cnn.json"
    assert json.loads(path.read_text()) == {"a": 0.5, "b": None, "c": [3], "d": {"e": [1.0]}}


def test_find_models(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="02_transfer.*03_cnn"):
        cards.find_models(tmp_path)
    (tmp_path / "cnn.keras").write_bytes(b"x")
    (tmp_path / "cnn.json").write_text("{}")
    (tmp_path / "xception.keras").write_bytes(b"x")
    found, missing = cards.find_models(tmp_path)
    assert list(found) == ["cnn"] and "xception.json" in missing["xception"]


def _brightness_model(class_names: tuple[str, ...]):
    """A Keras model that picks the class whose brightness is nearest, outputs in card order."""
    import keras

    levels = np.array([BRIGHTNESS_LEVELS[name] for name in class_names], dtype=np.float32)
    inputs = keras.Input((32, 32, 3))
    mean = keras.layers.GlobalAveragePooling2D()(inputs)
    # argmax_k -(x - c_k)^2 == argmax_k (2 c_k x - c_k^2): a linear layer does it
    dense = keras.layers.Dense(len(levels), activation="softmax")
    outputs = dense(mean)
    dense.set_weights([np.tile(2 * levels / 3, (3, 1)) / 50, -(levels**2) / 50])
    return keras.Model(inputs, outputs)


def test_class_order_comes_from_the_card_not_the_folders(tmp_path: Path) -> None:
    card_order = ("pituitary", "notumor", "meningioma", "glioma")  # not the folders' order
    root = write_brightness_folders(tmp_path / "data", {c: c for c in CLASSES}, 2)
    table, _ = test_folders.scan_test_folder(root, card_order)
    card = {"name": "toy", "class_names": list(card_order), "image_size": 32}
    model = _brightness_model(card_order)
    val = table.iloc[::2]
    result = evaluate.evaluate_model(
        model, card, {"test": table, "test_leakfree": table.iloc[:6]}, val, n_bootstrap=20
    )
    metrics, probabilities = result.metrics, result.probabilities
    assert metrics["splits"]["test"]["accuracy"] == 1.0
    assert metrics["class_names"] == list(card_order)
    assert probabilities["test"].shape == (8, 4)
    assert probabilities["test_leakfree"].shape == (6, 4)
    assert metrics["leakage"]["leaked_images"] == 2
    assert metrics["temperature"]["fitted_on"] == "val"
    assert metrics["seconds"]["images_predicted"] == 8
    pituitary = table["label"].eq("pituitary").to_numpy()
    assert (probabilities["test"][pituitary].argmax(1) == 0).all()  # card index 0
    assert set(probabilities) == {"test", "test_leakfree", "val"}
    np.testing.assert_array_equal(result.y_pred["test"], result.y_true["test"])
    assert result.correct("test").all() and result.confident_mistakes("test").empty


# --- the result object, without a model ----------------------------------------------


def _result(name: str, y_pred: np.ndarray, y_true: np.ndarray) -> evaluate.EvaluationResult:
    """An ``evaluate_probabilities`` result on a toy test set (and a leak-free half)."""
    table = pd.DataFrame(
        {
            "abs_path": [f"/x/{i}.png" for i in range(len(y_true))],
            "path": [f"{i}.png" for i in range(len(y_true))],
            "label": np.asarray(CLASSES)[y_true],
        }
    )
    half = slice(0, len(y_true) // 2)
    tables = {"test": table, "test_leakfree": table.iloc[half], "val": table}
    p = _probabilities(y_pred, 0.9)
    probabilities = {"test": p, "test_leakfree": p[half], "val": p}
    card = {"name": name, "class_names": list(CLASSES), "image_size": 32, "parameters": 1234}
    return evaluate.evaluate_probabilities(card, tables, probabilities, n_bootstrap=50)


Y = np.repeat(np.arange(4), 10)


def test_evaluate_probabilities_holds_labels_and_numbers() -> None:
    y_pred = Y.copy()
    y_pred[[0, 10]] = 2  # two tumors called notumor
    result = _result("cnn", y_pred, Y)
    assert result.class_names == CLASSES and result.name == "cnn"
    np.testing.assert_array_equal(result.y_true["test"], Y)
    np.testing.assert_array_equal(result.y_pred["test"], y_pred)
    assert result.correct("test").sum() == 38
    assert result.split("test")["accuracy"] == 0.95
    assert result.metrics["temperature"]["fitted_on"] == "val"
    assert result.metrics["leakage"]["leaked_images"] == 20
    assert set(result.metrics["splits"]) == {"test", "test_leakfree"}  # val only fits T
    counts, _ = result.confusion_tables("test")
    assert counts.loc["glioma", "notumor"] == 1
    before, after = result.reliability_tables("test", 10)
    assert before["count"].sum() == after["count"].sum() == 40
    assert result.confident_mistakes("test")["abs_path"].tolist() == ["/x/0.png", "/x/10.png"]
    assert result.split("test")["confident_mistakes"][0]["path"] == "0.png"
    data = result.to_json()
    assert json.loads(json.dumps(data, allow_nan=False))["splits"]["test"]["images"] == 40
    with pytest.raises(ValueError, match="at least one test table"):
        evaluate.evaluate_probabilities({"class_names": CLASSES}, {"val": pd.DataFrame()}, {})


def test_result_save_and_save_results(tmp_path: Path) -> None:
    result = _result("cnn", Y, Y)
    result.split("test_leakfree")["macro_auc"] = math.nan
    paths = evaluate.save_results({"cnn": result}, tmp_path)
    assert paths == [course.metrics_path(tmp_path, "cnn")]
    saved = json.loads(paths[0].read_text())
    assert saved["splits"]["test_leakfree"]["macro_auc"] is None
    assert evaluate.save_metrics(result, tmp_path / "m.json").read_text() == paths[0].read_text()


def test_compare_models_records_mcnemar_from_each_side() -> None:
    a_pred, b_pred = Y.copy(), Y.copy()
    a_pred[:2] = 1  # A wrong on 2 images
    b_pred[10:20] = 0  # B wrong on 10 others
    results = {"xception": _result("xception", a_pred, Y), "cnn": _result("cnn", b_pred, Y)}
    lines = evaluate.compare_models(results)
    assert len(lines) == 2 and lines[0].startswith("full test: 10 images only Xception got right")
    test = results["xception"].metrics["comparisons"]["mcnemar_vs_cnn_test"]
    mirror = results["cnn"].metrics["comparisons"]["mcnemar_vs_xception_test"]
    assert (test["only_a_right"], test["only_b_right"]) == (10, 2)
    assert (mirror["only_a_right"], mirror["only_b_right"]) == (2, 10)
    assert evaluate.compare_models({"cnn": results["cnn"]}) == []


def test_sentences_and_tables_from_results(tmp_path: Path) -> None:
    y_pred = Y.copy()
    y_pred[[0, 1, 10]] = 2
    results = {"xception": _result("xception", Y, Y), "cnn": _result("cnn", y_pred, Y)}
    sentence = report.missed_tumor_sentence(results["cnn"], "test")
    assert sentence.startswith("cnn: 3 of 30 tumors on the full test set were called notumor")
    assert "most often glioma (20.0% of them)" in sentence
    temperature = report.temperature_sentence(results["cnn"])
    assert temperature.startswith("cnn: T = ") and "validation images" in temperature
    missed = report.missed_tumor_table(results)
    assert missed.loc[("cnn", "full test"), "missed tumors"] == "3 of 30"
    aucs = report.auc_table(results)
    assert list(aucs.columns) == ["xception", "cnn"] and aucs.loc["macro", "xception"] == 1.0
    calibration = report.calibration_table(results)
    assert len(calibration) == 4 and {"ECE", "ECE after T", "NLL"} <= set(calibration.columns)
    described = evaluate.describe_run(results["cnn"])
    assert described.startswith("cnn: 32 px, 1,234 parameters")
    results["cnn"].metrics["splits_match_training"] = False
    assert "WARNING: cnn was trained on other splits" in evaluate.describe_run(results["cnn"])
    lines = evaluate.write_evaluation_summary(tmp_path, results, {"other": "x"}, ["mcnemar line"])
    written = course.summary_path(tmp_path, "04_evaluate").read_text()
    assert written == "\n".join(lines) + "\n"
    assert "- Models: xception, cnn (missing: other)" in lines
    assert "- Test sets: full test 40 images, leak-free test 20 images; 50 bootstrap resamples" in (
        lines
    )
    assert lines[-1] == "- mcnemar line" and "| Xception | full test | 40 |" in written
