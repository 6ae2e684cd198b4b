"""Every computed sentence asks first whether the numbers mean anything (``verdicts``).

Constant predictors must get "has not learned" and no interpretation; perfect predictors
no false caveat; ties must be called ties, never a winner picked by order.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from course_utils import course, evaluate, metrics, report, verdicts

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
Y = np.repeat(np.arange(4), 20)  # 80 images, 20 per class


def _rows(y_pred: np.ndarray, confidence: float = 0.9) -> np.ndarray:
    """Probabilities giving ``confidence`` to the predicted class."""
    rows = np.full((len(y_pred), 4), (1 - confidence) / 3)
    rows[np.arange(len(y_pred)), y_pred] = confidence
    return rows


def _result(name: str, y_pred: np.ndarray, confidence: float = 0.9, **card) -> object:
    """An ``EvaluationResult`` whose leak-free half and leaked half are disjoint (40 + 40)."""
    table = pd.DataFrame(
        {
            "abs_path": [f"/x/{i}.png" for i in range(len(Y))],
            "path": [f"{i}.png" for i in range(len(Y))],
            "label": np.asarray(CLASSES)[Y],
        }
    )
    clean = np.arange(len(Y)) % 2 == 0
    p = _rows(y_pred, confidence)
    tables = {"test": table, "test_leakfree": table[clean], "val": table}
    probabilities = {"test": p, "test_leakfree": p[clean], "val": p}
    info = {"name": name, "class_names": list(CLASSES), "image_size": 32, **card}
    return evaluate.evaluate_probabilities(info, tables, probabilities, n_bootstrap=200)


CONSTANT = np.zeros(len(Y), int)  # always "glioma": 25 %, the majority rate
PERFECT = Y.copy()


# --- the rule ------------------------------------------------------------------------


def test_has_learned_is_the_interval_above_the_majority_rate() -> None:
    assert verdicts.has_learned((0.30, 0.50), 0.25)
    assert not verdicts.has_learned((0.20, 0.40), 0.25)  # contains the constant guess
    assert not verdicts.has_learned((0.05, 0.20), 0.25)  # worse than the constant guess
    assert not verdicts.has_learned((math.nan, math.nan), 0.25)
    assert verdicts.majority_rate({"a": 3, "b": 1}) == 0.75
    assert math.isnan(verdicts.majority_rate([]))
    low, high = verdicts.binomial_interval(5, 10)
    assert low == pytest.approx(0.187, abs=1e-3) and high == pytest.approx(0.813, abs=1e-3)


def test_learning_verdict_of_constant_and_perfect_predictors() -> None:
    constant = report.learning_verdict(_result("cnn", CONSTANT))
    assert not constant.learned and constant.majority_rate == 0.25 and constant.accuracy == 0.25
    perfect = report.learning_verdict(_result("cnn", PERFECT))
    assert perfect.learned and perfect.accuracy == 1.0
    saved = _result("cnn", CONSTANT).to_json()["splits"]["test"]["learning"]
    assert saved["learned"] is False and saved["majority_rate"] == 0.25


def test_verdict_from_labels_and_recipe_note() -> None:
    labels = ["a"] * 30 + ["b"] * 10
    assert not verdicts.verdict_from_labels(0.75, labels).learned  # = always "a"
    assert verdicts.verdict_from_labels(0.95, labels).learned
    fast = verdicts.recipe_note({"fast_mode": True, "dataset": {"source": "phantoms"}})
    assert "fast-mode run on synthetic phantoms" in fast and "may be why" in fast
    assert verdicts.recipe_note({"fast_mode": False, "dataset": {"source": "kaggle"}}) == ""


def test_ties_and_names() -> None:
    assert verdicts.top_names({"a": 1.0, "b": 1.0, "c": 0.5}) == ["a", "b"]
    assert verdicts.top_names({"a": math.nan}) == []
    assert verdicts.join_names(["a", "b", "c"]) == "a, b and c"
    assert verdicts.join_names(["a"]) == "a"


# --- constant predictor: "has not learned", nothing else -----------------------------


def test_constant_predictor_gets_no_interpretation(tmp_path) -> None:
    results = {
        "xception": _result("xception", CONSTANT, fast_mode=True),
        "cnn": _result("cnn", CONSTANT),
    }
    leak = report.leakage_sentences(results)
    assert leak[0].startswith("Xception has not learned: its accuracy 25.0%")
    assert "these numbers mean nothing" in leak[0] and "fast-mode run" in leak[0]
    assert leak[2] == "No ranking of the two models: Xception and CNN have not learned."
    assert not any("points" in sentence or "Fisher" in sentence for sentence in leak)
    missed = report.missed_tumor_sentence(results["cnn"])
    assert "has not learned" in missed and "most often" not in missed
    temperature = report.temperature_sentence(results["cnn"])
    assert "has not learned" in temperature and "fitted on" not in temperature
    lines = evaluate.compare_models(results)
    assert lines and all("no comparison: Xception and CNN have not learned" in x for x in lines)
    summary = evaluate.write_evaluation_summary(tmp_path, results)
    assert sum("has not learned" in line for line in summary) == 2  # once per model
    assert not any("minus" in line for line in summary)


# --- perfect predictor: no false caveat ----------------------------------------------


def test_perfect_predictor_gets_no_false_caveat() -> None:
    result = _result("cnn", PERFECT)
    assert report.not_learned_sentence(result) is None
    (leak,) = report.leakage_sentences({"cnn": result})
    assert leak.startswith("CNN: 100.0% on the 40 test images with a copy in training, 100.0%")
    assert "difference +0.0 points" in leak and "cannot show that the leak changes" in leak
    missed = report.missed_tumor_sentence(result)
    assert missed.startswith("cnn: 0 of 30 tumors") and "most often" not in missed
    assert "has not learned" not in missed and "equally" not in missed


def test_learned_model_temperature_is_a_fitted_value() -> None:
    y_pred = Y.copy()
    y_pred[::5] = (Y[::5] + 1) % 4  # 80 % right, 0.6 confident
    sentence = report.temperature_sentence(_result("cnn", y_pred, 0.6))
    assert sentence.startswith("cnn: T = ") and "fitted on 80 validation images" in sentence
    assert "bound" not in sentence
    fitted = _result("cnn", y_pred, 0.6)
    assert report.temperature_label(fitted) == f"temperature {fitted.temperature:.2f}"


def test_temperature_at_its_bound_is_not_a_fitted_value() -> None:
    result = _result("cnn", PERFECT)
    result.metrics["temperature"].update(value=metrics.TEMPERATURE_BOUNDS[1], at_bound=False)
    high = metrics.TEMPERATURE_BOUNDS[1]
    assert report.temperature_label(result) == f"temperature {high:.2f} (at its bound)"
    sentence = report.temperature_sentence(result)
    assert "hit the bound" in sentence and "could not be calibrated" in sentence
    assert "fitted on" not in sentence
    assert verdicts.temperature_at_bound({"value": 0.0501, "fitted_on": "val"})
    assert not verdicts.temperature_at_bound({"value": 1.3, "fitted_on": "val"})


# --- ties ----------------------------------------------------------------------------


def test_tumor_classes_missed_equally_often_are_a_tie() -> None:
    y_pred = Y.copy()
    for tumor in (0, 1, 3):
        y_pred[np.flatnonzero(np.equal(Y, tumor))[:2]] = 2  # 2 of 20 of each tumor class
    sentence = report.missed_tumor_sentence(_result("cnn", y_pred), "test")
    assert "glioma, meningioma and pituitary are missed equally often (10.0% of each)" in sentence
    assert "most often" not in sentence


def test_equal_models_tie_and_a_clear_worst_class_is_named() -> None:
    y_pred = Y.copy()
    y_pred[:4] = 2  # 4 gliomas missed
    y_pred[20] = 2  # 1 meningioma missed
    results = {"xception": _result("xception", y_pred), "cnn": _result("cnn", y_pred)}
    ranking = report.leakage_sentences(results)[-1]
    assert "a tie on the full test set; a tie on the leak-free test set" in ranking
    sentence = report.missed_tumor_sentence(results["cnn"], "test")
    assert "most often glioma (20.0% of them)" in sentence


def test_describe_mcnemar_refuses_models_at_chance() -> None:
    test = metrics.mcnemar_exact(np.ones(20, bool), np.zeros(20, bool))
    assert "is more accurate" in report.describe_mcnemar(test, "xception", "cnn")
    refused = report.describe_mcnemar(test, "xception", "cnn", not_learned=["cnn"])
    assert refused == "no comparison: CNN has not learned."


def test_saved_metrics_verdict_matches_the_result(tmp_path) -> None:
    result = _result("cnn", CONSTANT)
    saved = course.read_json(result.save(tmp_path / "m.json"), "metrics", "re-run")
    assert report.not_learned_sentence(saved) == report.not_learned_sentence(result)


def test_recipe_note_blames_random_weights_before_the_short_recipe() -> None:
    from course_utils import verdicts

    random_xception = {
        "name": "xception",
        "weights": "random",
        "fast_mode": True,
        "dataset": {"source": "phantoms"},
    }
    assert "transfer learning needs the pretrained" in verdicts.recipe_note(random_xception)
    fast_cnn = {"fast_mode": True, "dataset": {"source": "phantoms"}}
    assert "short recipe" in verdicts.recipe_note(fast_cnn)
    assert verdicts.recipe_note({"weights": "imagenet", "dataset": {"source": "kaggle"}}) == ""
