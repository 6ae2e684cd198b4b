"""Pure metrics: every one against scikit-learn or a hand-computed value (no TensorFlow)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import softmax
from sklearn import metrics as skm

from course_utils import leakage, metrics, report

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
    result = metrics.classification_metrics(Y_TRUE, Y_PRED, CLASSES)
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
    counts, rates = metrics.confusion_tables(Y_TRUE, Y_PRED, CLASSES)
    assert counts.loc["glioma"].tolist() == [1, 1, 1, 0]
    assert counts.to_numpy().sum() == len(Y_TRUE)
    np.testing.assert_allclose(rates.sum(axis=1), 1.0)
    assert rates.loc["notumor", "glioma"] == pytest.approx(1 / 3)
    assert list(counts.columns) == list(CLASSES) and counts.index.name == "true"


def test_missed_tumor_rate_by_hand() -> None:
    result = metrics.missed_tumor_rate(Y_TRUE, Y_PRED, CLASSES)
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
        metrics.missed_tumor_rate(Y_TRUE, Y_PRED, ("a", "b", "c", "d"))


def test_roc_auc_matches_sklearn_one_vs_rest() -> None:
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(4), 10)
    probabilities = softmax(rng.normal(size=(40, 4)) + 1.5 * np.eye(4)[y], axis=1)
    curves = metrics.roc_curves(y, probabilities, CLASSES)
    for k, name in enumerate(CLASSES):
        assert curves[name]["auc"] == pytest.approx(skm.roc_auc_score(y == k, probabilities[:, k]))
        assert curves[name]["fpr"][0] == 0 and curves[name]["tpr"][-1] == 1
    expected = skm.roc_auc_score(y, probabilities, multi_class="ovr", average="macro")
    assert metrics.macro_auc(curves) == pytest.approx(expected)


def test_roc_with_an_absent_class_is_nan_not_an_error() -> None:
    y = np.array([0, 1, 1, 0])
    curves = metrics.roc_curves(y, _probabilities(y, 0.7), CLASSES)
    assert math.isnan(curves["notumor"]["auc"]) and curves["notumor"]["fpr"] == []
    assert metrics.macro_auc(curves) == pytest.approx(1.0)


# --- calibration ---------------------------------------------------------------------


def test_ece_on_known_cases() -> None:
    # every prediction 0.8 confident, 6 of 10 right: ECE = |0.6 - 0.8| = 0.2
    y_pred = np.zeros(10, dtype=int)
    y_true = np.array([0] * 6 + [1] * 4)
    assert metrics.expected_calibration_error(y_true, _probabilities(y_pred, 0.8)) == pytest.approx(
        0.2
    )
    # half at 0.9 (all right), half at 0.6 (half right): 0.5 * 0.1 + 0.5 * 0.1 = 0.1
    probabilities = np.vstack(
        [_probabilities(np.zeros(4, int), 0.9), _probabilities(np.zeros(4, int), 0.6)]
    )
    y_true = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    assert metrics.expected_calibration_error(y_true, probabilities) == pytest.approx(0.1)
    # always right with confidence 1: calibrated
    assert metrics.expected_calibration_error(y_true, np.eye(4)[y_true]) == 0.0


def test_reliability_table_bins() -> None:
    confidences = np.array([0.3, 0.55, 0.6, 0.95, 1.0])
    probabilities = np.column_stack([confidences, 1 - confidences, np.zeros(5), np.zeros(5)])
    probabilities[0] = [0.3, 0.25, 0.25, 0.2]  # top class 0 with 0.3
    table = metrics.reliability_table(np.zeros(5, int), probabilities, n_bins=10)
    assert len(table) == 10 and table["count"].sum() == 5
    assert table["count"].tolist() == [0, 0, 1, 0, 0, 2, 0, 0, 0, 2]  # 0.55, 0.6 in (0.5, 0.6]
    assert table.loc[9, "confidence"] == pytest.approx(0.975)
    assert table["accuracy"].dropna().eq(1.0).all()
    with pytest.raises(ValueError, match="n_bins"):
        metrics.reliability_table(np.zeros(0, int), np.zeros((0, 4)))


def test_temperature_scaling_fixes_an_overconfident_model() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    logits = rng.normal(size=(n, 4)) * 1.5
    calibrated = softmax(logits, axis=1)
    y = np.array([rng.choice(4, p=row) for row in calibrated])  # labels drawn from the model
    overconfident = softmax(3.0 * logits, axis=1)  # same ranking, 3x the logits
    temperature = metrics.fit_temperature(y, overconfident)
    assert temperature == pytest.approx(3.0, rel=0.15)
    scaled = metrics.apply_temperature(overconfident, temperature)
    assert metrics.negative_log_likelihood(y, scaled) < metrics.negative_log_likelihood(
        y, overconfident
    )
    assert metrics.expected_calibration_error(y, scaled) < metrics.expected_calibration_error(
        y, overconfident
    )
    np.testing.assert_array_equal(scaled.argmax(1), overconfident.argmax(1))
    np.testing.assert_allclose(metrics.apply_temperature(calibrated, 1.0), calibrated, atol=1e-9)
    assert metrics.negative_log_likelihood(y, calibrated) == pytest.approx(
        -np.mean(np.log(calibrated[np.arange(n), y]))
    )
    with pytest.raises(ValueError, match="positive"):
        metrics.apply_temperature(calibrated, 0)


# --- uncertainty and comparison ------------------------------------------------------


def test_bootstrap_interval_contains_estimate_narrows_and_repeats() -> None:
    rng = np.random.default_rng(2)

    def interval(n: int, seed: int = 0) -> tuple[float, float]:
        y_true = np.zeros(n, dtype=int)
        y_pred = np.where(rng.random(n) < 0.8, 0, 1)
        low, high = metrics.bootstrap_interval(
            y_true, y_pred, skm.accuracy_score, n_resamples=500, seed=seed
        )
        assert low <= skm.accuracy_score(y_true, y_pred) <= high
        return low, high

    small, large = interval(50), interval(2000)
    assert large[1] - large[0] < (small[1] - small[0]) / 3  # width shrinks like 1/sqrt(n)
    y_true, y_pred = Y_TRUE, Y_PRED
    first = metrics.bootstrap_interval(y_true, y_pred, metrics.macro_f1, 200, seed=7)
    assert first == metrics.bootstrap_interval(y_true, y_pred, metrics.macro_f1, 200, seed=7)
    assert first[0] <= metrics.macro_f1(y_true, y_pred) <= first[1]
    with pytest.raises(ValueError, match="at least 2"):
        metrics.bootstrap_interval(y_true[:1], y_pred[:1], skm.accuracy_score)


def test_mcnemar_exact_on_a_known_table() -> None:
    # 30 both right, 10 only A, 2 only B, 5 both wrong
    a = np.array([1] * 30 + [1] * 10 + [0] * 2 + [0] * 5, bool)
    b = np.array([1] * 30 + [0] * 10 + [1] * 2 + [0] * 5, bool)
    result = metrics.mcnemar_exact(a, b)
    assert result["only_a_right"] == 10 and result["only_b_right"] == 2
    assert result["both_right"] == 30 and result["both_wrong"] == 5
    # two-sided exact: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert result["p_value"] == pytest.approx(2 * 79 / 4096)
    assert metrics.mcnemar_exact(a, a)["p_value"] == 1.0
    with pytest.raises(ValueError, match="same images"):
        metrics.mcnemar_exact(a, b[:-1])
    sentence = report.describe_mcnemar(result, "xception", "cnn")
    assert "Xception is more accurate" in sentence and "p = 0.0386" in sentence


def test_confident_mistakes_sorted_by_confidence() -> None:
    split = pd.DataFrame({"abs_path": [f"/x/{i}.png" for i in range(4)], "path": list("abcd")})
    y_true = np.array([0, 1, 2, 3])
    probabilities = np.array(
        [[0.9, 0.1, 0, 0], [0.6, 0.4, 0, 0], [0.05, 0.05, 0.1, 0.8], [0.1, 0.1, 0.7, 0.1]]
    )
    table = metrics.confident_mistakes(split, y_true, probabilities, CLASSES, count=5)
    assert table["path"].tolist() == ["c", "d", "b"]
    assert table.iloc[0][["true", "predicted"]].tolist() == ["notumor", "pituitary"]
    assert table["probability"].tolist() == [0.8, 0.7, 0.6]


def test_share_and_leakage_summary() -> None:
    assert metrics.share(np.array([True, False, True, True])) == 0.75
    assert math.isnan(metrics.share(np.array([], bool)))
    test = pd.DataFrame({"abs_path": ["a", "b", "c", "d"]})
    leakfree = test.iloc[[0, 1, 2]]
    y = np.array([0, 1, 2, 3])
    predicted = np.array([0, 1, 0, 3])  # c (clean) wrong, d (leaked) right
    summary = leakage.leakage_summary(test, leakfree, y, _probabilities(predicted, 0.9))
    assert summary["accuracy_leakfree"] == pytest.approx(2 / 3)
    assert summary["accuracy_leaked"] == 1.0 and summary["leaked_images"] == 1
    assert summary["leakfree_images"] == 3 and summary["test_images"] == 4
    assert not summary["enough_images"]  # 1 and 3 images: too few for a number
    assert summary["difference"] is None and summary["fisher_p_value"] is None
    assert "accuracy_test" not in summary and "inflation" not in summary  # overlapping sets


def test_leak_groups_are_disjoint_and_tested_exactly() -> None:
    leaked = np.r_[np.ones(20, bool), np.zeros(30, bool)]
    correct = np.r_[np.ones(20, bool), np.ones(12, bool), np.zeros(18, bool)]  # 100% vs 40%
    summary = leakage.compare_groups(correct, leaked, n_resamples=500, seed=1)
    assert (summary["leaked_images"], summary["leakfree_images"]) == (20, 30)
    assert summary["difference"] == pytest.approx(0.6)
    table = [[20, 0], [12, 18]]
    assert summary["fisher_p_value"] == pytest.approx(stats.fisher_exact(table).pvalue)
    low, high = summary["difference_interval"]
    assert 0 < low < 0.6 < high <= 1.0
    same = leakage.compare_groups(np.ones(50, bool), leaked, n_resamples=100)
    assert same["difference"] == 0 and same["fisher_p_value"] == 1.0
    assert same["difference_interval"] == [0.0, 0.0]


def test_temperature_record_with_and_without_validation() -> None:
    assert metrics.temperature_record(None, None) == {
        "value": 1.0,
        "fitted_on": None,
        "note": "no validation split: not fitted",
    }
    y = np.array([0, 1, 2, 3] * 5)
    record = metrics.temperature_record(y, _probabilities(y, 0.7))
    assert record["fitted_on"] == "val" and record["val_images"] == 20
    assert record["val_nll_after"] <= record["val_nll_before"]
    low, high = metrics.TEMPERATURE_BOUNDS
    assert low <= record["value"] <= high


def test_importing_metrics_loads_no_tensorflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import course_utils.metrics, course_utils.report, course_utils.cards, "
        "course_utils.model_card, course_utils.evaluate; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
