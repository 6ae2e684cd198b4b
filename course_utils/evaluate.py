"""Evaluation: predictions, metrics, calibration, uncertainty and model comparison.

Everything here computes and returns numbers or tables; nothing draws (that is
``viz``) and only ``save_metrics`` writes a file. The class order always comes from
the model card, never from the order of folders on disk.

One model's evaluation, as notebook 04 and ``python -m course_utils evaluate`` run it::

    model, card = train.load_model_with_card(ARTIFACTS / "cnn.keras")
    metrics, probabilities = evaluate_model(model, card, {"test": test, ...}, val_split=val)
    save_metrics(metrics, metrics_path(ARTIFACTS, "cnn"))
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from sklearn import metrics as skm

from course_utils import config
from course_utils.data.pipeline import dataset_from_split
from course_utils.data.scan import inspect_file, list_class_folder
from course_utils.data.splits import encode_labels

#: The class whose prediction, for a tumor image, is the clinically worst error.
HEALTHY_CLASS = "notumor"
#: The models the course trains, in the order they are shown, and the notebook of each.
MODEL_NAMES = ("xception", "cnn")
TRAINED_BY = {"xception": "02_transfer", "cnn": "03_cnn"}
#: Display names of the splits.
SPLIT_TITLES = {"test": "full test", "test_leakfree": "leak-free test", "folder": "test folder"}
DEFAULT_BINS = 15
#: Temperatures outside this range mean the fit ran into a bound (reported as such).
TEMPERATURE_BOUNDS = (0.05, 20.0)


# --- predictions ---------------------------------------------------------------------


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
    probabilities = np.asarray(model.predict(data.map(lambda x, y: x), verbose=0), np.float64)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


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


# --- classification metrics ----------------------------------------------------------


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> dict:
    """Accuracy, macro and per-class precision / recall / F1, and sklearn's report.

    Macro averages run over the classes present in ``y_true`` or ``y_pred`` (scikit-learn's
    default), so a class absent from a small test set does not count as F1 = 0.

    Args:
        y_true: True class indices.
        y_pred: Predicted class indices.
        class_names: Names of the indices.

    Returns:
        ``{"accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class",
        "classification_report"}``; ``per_class`` maps each class to its
        ``precision``, ``recall``, ``f1`` and ``support``.
    """
    labels = list(range(len(class_names)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    macro = skm.precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    report = skm.classification_report(
        y_true, y_pred, labels=labels, target_names=list(class_names), digits=3, zero_division=0
    )
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "per_class": per_class,
        "classification_report": report,
    }


def confusion_tables(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Confusion matrix as counts and row-normalised (each true class sums to 1).

    Args:
        y_true: True class indices.
        y_pred: Predicted class indices.
        class_names: Names of the indices (rows: true class, columns: predicted).

    Returns:
        ``(counts, rates)``; a row-normalised entry is the share of that true class
        predicted as the column's class (the diagonal is each class's recall).
    """
    labels = list(range(len(class_names)))
    counts = skm.confusion_matrix(y_true, y_pred, labels=labels)
    rates = skm.confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
    index = pd.Index(list(class_names), name="true")
    columns = pd.Index(list(class_names), name="predicted")
    return pd.DataFrame(counts, index, columns), pd.DataFrame(rates, index, columns)


def _healthy_index(class_names: Sequence[str], healthy: str) -> int:
    """Return the index of the healthy class, or raise a ValueError naming the classes."""
    if healthy not in class_names:
        raise ValueError(
            f"The healthy class {healthy!r} is not among the classes {list(class_names)}; "
            "pass healthy=<the class that means no tumor>."
        )
    return list(class_names).index(healthy)


def missed_tumor_rate(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], healthy: str = HEALTHY_CLASS
) -> dict:
    """Share of tumor images predicted as healthy: the clinically worst error.

    Args:
        y_true: True class indices.
        y_pred: Predicted class indices.
        class_names: Names of the indices.
        healthy: The class that means "no tumor".

    Returns:
        ``{"rate", "missed", "tumor_images", "per_class", "false_alarm_rate"}``: the
        missed share of all tumor images, their counts, the missed share of each tumor
        class, and the share of healthy images called a tumor. NaN when undefined.

    Raises:
        ValueError: If ``healthy`` is not one of the classes.
    """
    h = _healthy_index(class_names, healthy)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    tumor, called_healthy = y_true != h, y_pred == h
    per_class = {
        name: _share(called_healthy[y_true == i]) for i, name in enumerate(class_names) if i != h
    }
    return {
        "rate": _share(called_healthy[tumor]),
        "missed": int(np.sum(tumor & called_healthy)),
        "tumor_images": int(np.sum(tumor)),
        "per_class": per_class,
        "false_alarm_rate": _share(~called_healthy[~tumor]),
    }


def _share(flags: np.ndarray) -> float:
    """Mean of a boolean array, NaN when it is empty."""
    return float(np.mean(flags)) if len(flags) else math.nan


def roc_curves(y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]) -> dict:
    """One-vs-rest ROC curve and AUC of each class.

    Args:
        y_true: True class indices.
        probabilities: Predicted probabilities (images, classes).
        class_names: Names of the classes.

    Returns:
        ``{class: {"fpr", "tpr", "auc"}}`` (lists of floats); a class that is absent, or
        the only class present, has empty curves and AUC NaN.
    """
    onehot = np.eye(len(class_names), dtype=int)[np.asarray(y_true)]
    curves = {}
    for k, name in enumerate(class_names):
        if onehot[:, k].min() == onehot[:, k].max():
            curves[name] = {"fpr": [], "tpr": [], "auc": math.nan}
            continue
        fpr, tpr, _ = skm.roc_curve(onehot[:, k], probabilities[:, k])
        auc = skm.roc_auc_score(onehot[:, k], probabilities[:, k])
        curves[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(auc)}
    return curves


def macro_auc(curves: Mapping[str, Mapping]) -> float:
    """Mean one-vs-rest AUC over the classes that have one (NaN if none has).

    Args:
        curves: What ``roc_curves`` returned.

    Returns:
        The macro-averaged AUC.
    """
    aucs = [c["auc"] for c in curves.values() if not math.isnan(c["auc"])]
    return float(np.mean(aucs)) if aucs else math.nan


# --- calibration ---------------------------------------------------------------------


def reliability_table(
    y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = DEFAULT_BINS
) -> pd.DataFrame:
    """Group predictions by confidence (the top probability) into equal-width bins.

    Bin ``i`` holds confidences in ``(i / n_bins, (i + 1) / n_bins]`` (the first bin
    includes 0). A calibrated model is right in about 80 % of its 0.8-confident cases.

    Args:
        y_true: True class indices.
        probabilities: Predicted probabilities (images, classes).
        n_bins: Number of bins.

    Returns:
        One row per bin: ``lower``, ``upper``, ``count``, ``confidence`` (mean),
        ``accuracy`` and ``gap`` (accuracy - confidence); NaN for empty bins.

    Raises:
        ValueError: If ``n_bins`` is below 1 or there are no predictions.
    """
    if n_bins < 1 or len(y_true) == 0:
        raise ValueError(f"Need n_bins >= 1 and predictions; got {n_bins} bins, {len(y_true)}.")
    confidence = np.max(probabilities, axis=1)
    correct = np.argmax(probabilities, axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, n_bins) / count
        accuracy = np.bincount(index, correct.astype(float), n_bins) / count
    return pd.DataFrame(
        {
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count,
            "confidence": mean_confidence,
            "accuracy": accuracy,
            "gap": accuracy - mean_confidence,
        }
    )


def expected_calibration_error(
    y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = DEFAULT_BINS
) -> float:
    """ECE: the average |accuracy - confidence| over the bins, weighted by their counts.

    Args:
        y_true: True class indices.
        probabilities: Predicted probabilities (images, classes).
        n_bins: Number of equal-width confidence bins.

    Returns:
        The ECE, between 0 (calibrated) and 1.
    """
    table = reliability_table(y_true, probabilities, n_bins)
    filled = table[table["count"] > 0]
    weights = filled["count"] / filled["count"].sum()
    return float((weights * filled["gap"].abs()).sum())


def probabilities_to_logits(probabilities: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    """Use log-probabilities as logits (softmax of them gives the probabilities back).

    Args:
        probabilities: Predicted probabilities (images, classes).
        floor: Smallest probability kept, so that ``log(0)`` does not occur.

    Returns:
        ``log(clip(probabilities, floor, 1))``.
    """
    return np.log(np.clip(np.asarray(probabilities, np.float64), floor, 1.0))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Soften (T > 1) or sharpen (T < 1) probabilities: ``softmax(logits / T)``.

    Args:
        probabilities: Predicted probabilities (images, classes).
        temperature: The temperature T > 0; 1 changes nothing.

    Returns:
        The rescaled probabilities; the top class of each row does not change.

    Raises:
        ValueError: If the temperature is not positive.
    """
    if not temperature > 0:
        raise ValueError(f"The temperature must be positive, got {temperature}.")
    return special.softmax(probabilities_to_logits(probabilities) / temperature, axis=1)


def negative_log_likelihood(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean negative log-likelihood (cross-entropy) of the true classes.

    Args:
        y_true: True class indices.
        probabilities: Predicted probabilities (images, classes).

    Returns:
        ``sklearn.metrics.log_loss`` over all classes.
    """
    labels = list(range(probabilities.shape[1]))
    return float(skm.log_loss(y_true, probabilities, labels=labels))


def fit_temperature(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Fit the temperature that minimises the NLL on held-out (validation) predictions.

    Temperature scaling (Guo et al., 2017) divides the logits by one number T: it never
    changes which class wins, so accuracy stays, only the confidence moves. T is searched
    on a log scale within ``TEMPERATURE_BOUNDS``.

    Args:
        y_true: True class indices of the validation images.
        probabilities: The model's probabilities for them.

    Returns:
        The fitted temperature.

    Raises:
        ValueError: If there are no predictions.
    """
    if len(y_true) == 0:
        raise ValueError("No validation predictions to fit the temperature on.")
    low, high = np.log(TEMPERATURE_BOUNDS)
    result = optimize.minimize_scalar(
        lambda log_t: negative_log_likelihood(
            y_true, apply_temperature(probabilities, math.exp(log_t))
        ),
        bounds=(low, high),
        method="bounded",
    )
    return float(math.exp(result.x))


# --- uncertainty and comparison ------------------------------------------------------


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int] | None = None) -> float:
    """Macro-averaged F1 (``sklearn.metrics.f1_score``).

    Args:
        y_true: True class indices.
        y_pred: Predicted class indices.
        labels: Classes to average over; None means those present in either array.

    Returns:
        The unweighted mean of the per-class F1 scores.
    """
    return float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def bootstrap_interval(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = config.DEFAULT_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a metric over test images.

    Resamples the images with replacement (true and predicted class stay paired),
    recomputes the metric each time, and takes the middle ``confidence`` share of the
    results (``scipy.stats.bootstrap``). It measures how much the metric would move on
    another test set drawn the same way; it says nothing about other hospitals.

    Args:
        y_true: True class indices.
        y_pred: Predicted class indices.
        statistic: ``f(y_true, y_pred) -> float``, e.g. ``sklearn.metrics.accuracy_score``.
        n_resamples: Number of bootstrap samples.
        confidence: Coverage of the interval.
        seed: Seed of the resampling (same seed, same interval).

    Returns:
        ``(low, high)``.

    Raises:
        ValueError: If there are fewer than 2 images or the arrays differ in length.
    """
    if len(y_true) < 2 or len(y_true) != len(y_pred):
        raise ValueError(
            f"Bootstrap needs at least 2 paired predictions; got {len(y_true)} true and "
            f"{len(y_pred)} predicted classes."
        )
    result = stats.bootstrap(
        (np.asarray(y_true), np.asarray(y_pred)),
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's exact test: do two models err on the same images at different rates?

    Only the *discordant* images count: those one model gets right and the other wrong.
    Under "equally good", each of them is equally likely to favour either model, so the
    count favouring A is Binomial(discordant, 1/2) (``scipy.stats.binomtest``).

    Args:
        correct_a: Per image, whether model A was right.
        correct_b: The same for model B, on the same images in the same order.

    Returns:
        ``{"both_right", "only_a_right", "only_b_right", "both_wrong", "discordant",
        "p_value"}`` (two-sided; 1.0 when there is no discordant image).

    Raises:
        ValueError: If the arrays differ in length.
    """
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"Both models must be scored on the same images: {a.shape} vs {b.shape}.")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = only_a + only_b
    p_value = stats.binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0
    return {
        "both_right": int(np.sum(a & b)),
        "only_a_right": only_a,
        "only_b_right": only_b,
        "both_wrong": int(np.sum(~a & ~b)),
        "discordant": discordant,
        "p_value": float(p_value),
    }


def confident_mistakes(
    split: pd.DataFrame,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    count: int = 8,
) -> pd.DataFrame:
    """The wrong predictions the model was most sure of.

    Args:
        split: The split table the predictions are for (``abs_path``, optional ``path``).
        y_true: True class indices, in the table's order.
        probabilities: Predicted probabilities, in the table's order.
        class_names: Names of the classes.
        count: Most rows returned.

    Returns:
        Columns ``path``, ``abs_path``, ``true``, ``predicted``, ``probability`` (of the
        predicted class) and ``p_true`` (given to the true class), most confident first.
    """
    names = np.asarray(class_names)
    predicted = np.argmax(probabilities, axis=1)
    table = pd.DataFrame(
        {
            "path": split.get("path", split["abs_path"]).to_numpy(),
            "abs_path": split["abs_path"].to_numpy(),
            "true": names[y_true],
            "predicted": names[predicted],
            "probability": probabilities.max(axis=1),
            "p_true": probabilities[np.arange(len(y_true)), y_true],
        }
    )
    wrong = table[predicted != np.asarray(y_true)]
    return wrong.sort_values("probability", ascending=False, kind="stable").head(count)


# --- one split, one model ------------------------------------------------------------


def _calibration_summary(
    y_true: np.ndarray, probabilities: np.ndarray, temperature: float, n_bins: int
) -> dict:
    """ECE, NLL and reliability table before and after temperature scaling."""
    scaled = apply_temperature(probabilities, temperature)
    table = reliability_table(y_true, probabilities, n_bins)
    return {
        "bins": n_bins,
        "ece": expected_calibration_error(y_true, probabilities, n_bins),
        "nll": negative_log_likelihood(y_true, probabilities),
        "temperature": temperature,
        "ece_after_temperature": expected_calibration_error(y_true, scaled, n_bins),
        "nll_after_temperature": negative_log_likelihood(y_true, scaled),
        "reliability": table.to_dict(orient="list"),
    }


def _bootstrap_summary(y_true: np.ndarray, y_pred: np.ndarray, n_resamples: int, seed: int) -> dict:
    """95 % bootstrap intervals of accuracy and macro-F1."""
    labels = np.union1d(y_true, y_pred).tolist()
    return {
        "n_resamples": n_resamples,
        "confidence": 0.95,
        "seed": seed,
        "accuracy": list(
            bootstrap_interval(y_true, y_pred, skm.accuracy_score, n_resamples, 0.95, seed)
        ),
        "macro_f1": list(
            bootstrap_interval(
                y_true, y_pred, functools.partial(macro_f1, labels=labels), n_resamples, 0.95, seed
            )
        ),
    }


def evaluate_predictions(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    temperature: float = 1.0,
    n_bootstrap: int = 1000,
    n_bins: int = DEFAULT_BINS,
    seed: int = config.DEFAULT_SEED,
) -> dict:
    """Every metric of the lesson for one model on one test set.

    Args:
        y_true: True class indices.
        probabilities: Predicted probabilities (images, classes).
        class_names: The class order (from the model card).
        temperature: Temperature fitted on validation; 1 means none.
        n_bootstrap: Bootstrap resamples of the confidence intervals.
        n_bins: Bins of the calibration error.
        seed: Seed of the bootstrap.

    Returns:
        A JSON-ready dict: ``images``, the ``classification_metrics``, ``confusion``,
        ``missed_tumors``, ``roc``, ``macro_auc``, ``calibration`` and ``bootstrap``.

    Raises:
        ValueError: If the shapes do not match the classes.
    """
    y_true = np.asarray(y_true)
    if probabilities.ndim != 2 or probabilities.shape != (len(y_true), len(class_names)):
        raise ValueError(
            f"Probabilities of shape {probabilities.shape} do not match {len(y_true)} images "
            f"and the classes {list(class_names)}."
        )
    y_pred = np.argmax(probabilities, axis=1)
    counts, rates = confusion_tables(y_true, y_pred, class_names)
    curves = roc_curves(y_true, probabilities, class_names)
    result = {"images": len(y_true), **classification_metrics(y_true, y_pred, class_names)}
    result.update(
        confusion={
            "labels": list(class_names),
            "counts": counts.to_numpy().tolist(),
            "row_normalised": rates.to_numpy().tolist(),
        },
        missed_tumors=missed_tumor_rate(y_true, y_pred, class_names),
        roc=curves,
        macro_auc=macro_auc(curves),
        calibration=_calibration_summary(y_true, probabilities, temperature, n_bins),
        bootstrap=_bootstrap_summary(y_true, y_pred, n_bootstrap, seed),
    )
    return result


def _temperature_record(y_val: np.ndarray | None, p_val: np.ndarray | None) -> dict:
    """Fit the temperature on validation predictions, or record that there were none."""
    if y_val is None or p_val is None or len(y_val) == 0:
        return {"value": 1.0, "fitted_on": None, "note": "no validation split: not fitted"}
    value = fit_temperature(y_val, p_val)
    low, high = TEMPERATURE_BOUNDS
    return {
        "value": value,
        "fitted_on": "val",
        "val_images": len(y_val),
        "val_nll_before": negative_log_likelihood(y_val, p_val),
        "val_nll_after": negative_log_likelihood(y_val, apply_temperature(p_val, value)),
        "at_bound": bool(value < low * 1.01 or value > high * 0.99),
    }


def leakage_summary(
    test: pd.DataFrame, leakfree: pd.DataFrame, y_true: np.ndarray, probabilities: np.ndarray
) -> dict:
    """How accuracy differs between leaked test images and the leak-free rest.

    Args:
        test: The full test table; ``y_true`` and ``probabilities`` are in its order.
        leakfree: The leak-free subset (test images with no copy in training).
        y_true: True class indices of the full test split.
        probabilities: Predicted probabilities of the full test split.

    Returns:
        ``{"test_images", "leakfree_images", "leaked_images", "accuracy_test",
        "accuracy_leakfree", "accuracy_leaked", "inflation"}``; ``inflation`` is
        full-test minus leak-free accuracy (NaN parts when a group is empty).
    """
    clean = test["abs_path"].isin(set(leakfree["abs_path"])).to_numpy()
    correct = np.argmax(probabilities, axis=1) == np.asarray(y_true)
    accuracy_test, accuracy_clean = _share(correct), _share(correct[clean])
    return {
        "test_images": len(test),
        "leakfree_images": int(clean.sum()),
        "leaked_images": int((~clean).sum()),
        "accuracy_test": accuracy_test,
        "accuracy_leakfree": accuracy_clean,
        "accuracy_leaked": _share(correct[~clean]),
        "inflation": accuracy_test - accuracy_clean,
    }


def evaluate_model(
    model: keras.Model,
    card: Mapping,
    test_splits: Mapping[str, pd.DataFrame],
    val_split: pd.DataFrame | None = None,
    n_bootstrap: int = 1000,
    n_bins: int = DEFAULT_BINS,
    seed: int = config.DEFAULT_SEED,
    batch_size: int = 64,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Predict once and compute every metric of one model on one or more test sets.

    Args:
        model: The trained model (``train.load_model_with_card``).
        card: Its model card: class order, image size and preprocessing come from here.
        test_splits: ``{"test": table, "test_leakfree": table, ...}``.
        val_split: Validation table for the temperature; None skips temperature scaling.
        n_bootstrap: Bootstrap resamples.
        n_bins: Calibration bins.
        seed: Seed of the bootstrap.
        batch_size: Images per prediction batch.

    Returns:
        ``(metrics, probabilities)``: the JSON-ready metrics (``splits`` holds one
        ``evaluate_predictions`` result per test set; ``leakage`` appears when both
        ``test`` and ``test_leakfree`` are given) and ``{split name: probabilities}``.

    Raises:
        ValueError: If no test set is given or a label is not among the card's classes.
    """
    if not test_splits:
        raise ValueError("Pass at least one test table, e.g. {'test': splits['test']}.")
    class_names = tuple(card["class_names"])
    tables = {**test_splits, **({"val": val_split} if val_split is not None else {})}
    started = time.perf_counter()
    probabilities = predict_tables(model, card, tables, batch_size)
    predicted = time.perf_counter()
    labels = {name: encode_labels(table["label"], class_names) for name, table in tables.items()}
    temperature = _temperature_record(labels.get("val"), probabilities.get("val"))
    settings = {"temperature": temperature["value"], "n_bootstrap": n_bootstrap, "n_bins": n_bins}
    results = {
        name: _split_result(table, labels[name], probabilities[name], class_names, settings, seed)
        for name, table in test_splits.items()
    }
    metrics = {
        "model": card.get("name", "model"),
        "model_file": card.get("model_file"),
        "image_size": card["image_size"],
        "class_names": list(class_names),
        "dataset": card.get("dataset"),
        "temperature": temperature,
        "splits": results,
        "comparisons": {},
    }
    if "test" in test_splits and "test_leakfree" in test_splits:
        metrics["leakage"] = leakage_summary(
            test_splits["test"],
            test_splits["test_leakfree"],
            labels["test"],
            probabilities["test"],
        )
    metrics["seconds"] = {
        "predict": round(predicted - started, 2),
        "metrics": round(time.perf_counter() - predicted, 2),
        "images_predicted": len(set().union(*(table["abs_path"] for table in tables.values()))),
    }
    return metrics, probabilities


def _split_result(
    table: pd.DataFrame,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    settings: dict,
    seed: int,
) -> dict:
    """``evaluate_predictions`` plus the most confident mistakes (paths relative)."""
    result = evaluate_predictions(y_true, probabilities, class_names, seed=seed, **settings)
    mistakes = confident_mistakes(table, y_true, probabilities, class_names)
    result["confident_mistakes"] = mistakes.drop(columns="abs_path").to_dict("records")
    return result


# --- tables and sentences ------------------------------------------------------------


def _title(model: str) -> str:
    """Display name of a model."""
    return {"xception": "Xception", "cnn": "CNN"}.get(model, model)


def interval_table(metrics_by_model: Mapping[str, Mapping]) -> pd.DataFrame:
    """Point estimates and bootstrap intervals of accuracy and macro-F1, one row each.

    Args:
        metrics_by_model: ``{model name: evaluate_model metrics}``.

    Returns:
        Columns ``model``, ``test set``, ``metric``, ``value``, ``low``, ``high``.
    """
    rows = []
    for model, metrics in metrics_by_model.items():
        for split, result in metrics["splits"].items():
            for metric, key in (("accuracy", "accuracy"), ("macro-F1", "macro_f1")):
                low, high = result["bootstrap"][key]
                rows.append(
                    {
                        "model": _title(model),
                        "test set": SPLIT_TITLES.get(split, split),
                        "metric": metric,
                        "value": result[key],
                        "low": low,
                        "high": high,
                    }
                )
    return pd.DataFrame(rows, columns=["model", "test set", "metric", "value", "low", "high"])


def _comparison_row(result: Mapping) -> dict[str, object]:
    """Format one test set's headline numbers for ``comparison_table``."""
    missed, calibration = result["missed_tumors"], result["calibration"]
    accuracy, f1 = result["bootstrap"]["accuracy"], result["bootstrap"]["macro_f1"]
    return {
        "images": result["images"],
        "accuracy (95% CI)": f"{result['accuracy']:.1%} ({accuracy[0]:.1%}-{accuracy[1]:.1%})",
        "macro-F1 (95% CI)": f"{result['macro_f1']:.3f} ({f1[0]:.3f}-{f1[1]:.3f})",
        "missed tumors": f"{missed['rate']:.1%} ({missed['missed']}/{missed['tumor_images']})",
        "macro AUC": f"{result['macro_auc']:.3f}",
        "ECE -> after T": (
            f"{calibration['ece']:.3f} -> {calibration['ece_after_temperature']:.3f}"
        ),
    }


def comparison_table(metrics_by_model: Mapping[str, Mapping]) -> pd.DataFrame:
    """Both models on both test sets, side by side, as formatted text.

    Args:
        metrics_by_model: ``{model name: evaluate_model metrics}``.

    Returns:
        One row per (model, test set): images, accuracy and macro-F1 with their 95 %
        bootstrap intervals, missed-tumor rate (missed / tumor images), macro AUC, and
        ECE before -> after temperature scaling.
    """
    rows = {
        (_title(model), SPLIT_TITLES.get(split, split)): _comparison_row(result)
        for model, metrics in metrics_by_model.items()
        for split, result in metrics["splits"].items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(list(rows), names=["model", "test set"])
    return table


def markdown_table(table: pd.DataFrame) -> str:
    """Render a table as GitHub Markdown (index columns first).

    Args:
        table: Any table; its index is written as leading columns.

    Returns:
        The Markdown text, one line per row.
    """
    frame = table.reset_index()
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * frame.shape[1]]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def leakage_sentences(metrics_by_model: Mapping[str, Mapping]) -> list[str]:
    """Say, from the numbers, how much the train-test leak inflates each model's accuracy.

    Args:
        metrics_by_model: ``{model name: evaluate_model metrics}`` with ``leakage``.

    Returns:
        One sentence per model, and one about the models' ranking when there are two.
    """
    sentences = []
    for model, metrics in metrics_by_model.items():
        leak = metrics.get("leakage")
        if leak is None:
            continue
        name, n = _title(model), leak["test_images"]
        if leak["leaked_images"] == 0:
            sentences.append(
                f"{name}: none of the {n} test images has a copy in training or validation, so "
                f"the leak-free subset is the whole test split and nothing inflates its accuracy "
                f"({leak['accuracy_test']:.1%} on both)."
            )
            continue
        points = 100 * leak["inflation"]
        low, high = metrics["splits"]["test_leakfree"]["bootstrap"]["accuracy"]
        width = 100 * (high - low)
        verb = "inflates" if points > 0 else "does not inflate"
        noise = "within" if abs(points) <= width / 2 else "beyond"
        sentences.append(
            f"{name}: {leak['accuracy_test']:.1%} accuracy on the full test split ({n} images) "
            f"but {leak['accuracy_leakfree']:.1%} on the {leak['leakfree_images']} leak-free "
            f"images, so the leak {verb} accuracy ({points:+.1f} percentage points); on the "
            f"{leak['leaked_images']} test images with a copy in training it scores "
            f"{leak['accuracy_leaked']:.1%}. The leak-free 95% interval is {width:.1f} points "
            f"wide, so the difference is {noise} the sampling noise of this test set."
        )
    return sentences + _ranking_sentences(metrics_by_model)


def _ranking_sentences(metrics_by_model: Mapping[str, Mapping]) -> list[str]:
    """Compare two models' accuracy on each test set they share."""
    if len(metrics_by_model) != 2:
        return []
    (a, ma), (b, mb) = metrics_by_model.items()
    parts = []
    for split in ("test", "test_leakfree"):
        if split in ma["splits"] and split in mb["splits"]:
            gap = 100 * (ma["splits"][split]["accuracy"] - mb["splits"][split]["accuracy"])
            parts.append(f"{gap:+.1f} points on the {SPLIT_TITLES[split]} set")
    if not parts:
        return []
    return [f"{_title(a)} minus {_title(b)} accuracy: " + "; ".join(parts) + "."]


def describe_mcnemar(result: Mapping, name_a: str, name_b: str, alpha: float = 0.05) -> str:
    """Put a McNemar result into one sentence that says what it does and does not show.

    Args:
        result: What ``mcnemar_exact`` returned.
        name_a: Model A's name.
        name_b: Model B's name.
        alpha: Significance level.

    Returns:
        The sentence.
    """
    a, b = _title(name_a), _title(name_b)
    counts = (
        f"{result['only_a_right']} images only {a} got right, {result['only_b_right']} only "
        f"{b}; p = {result['p_value']:.3g}"
    )
    if result["discordant"] == 0:
        return f"{a} and {b} are right and wrong on exactly the same images: nothing to test."
    if result["p_value"] < alpha:
        better = a if result["only_a_right"] > result["only_b_right"] else b
        return f"{counts}: below {alpha}, so {better} is more accurate on images like these."
    return (
        f"{counts}: not below {alpha}, so these images cannot tell the two models apart "
        "(which is not proof that they are equally good)."
    )


# --- files ---------------------------------------------------------------------------


def metrics_path(artifacts_dir: str | Path, model_name: str) -> Path:
    """Return where a model's metrics go (not created here).

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.
        model_name: ``"xception"`` or ``"cnn"`` (the card's ``name``).

    Returns:
        ``ARTIFACTS_DIR/metrics_<model>.json``.
    """
    return Path(artifacts_dir) / f"metrics_{model_name}.json"


def _jsonable(value: object) -> object:
    """Turn NumPy values into Python ones and NaN / infinity into None, recursively."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def save_metrics(metrics: Mapping, path: str | Path) -> Path:
    """Write metrics as strict JSON (NaN becomes null).

    Args:
        metrics: What ``evaluate_model`` returned (plus any comparisons).
        path: The file to write; its folder is created.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(metrics), indent=2, allow_nan=False))
    return path


def find_models(
    artifacts_dir: str | Path, names: Sequence[str] = MODEL_NAMES
) -> tuple[dict[str, Path], dict[str, str]]:
    """Find the trained models (``<name>.keras`` with its ``<name>.json`` card).

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.
        names: Model names to look for.

    Returns:
        ``(found, missing)``: ``{name: .keras path}`` and ``{name: what is missing}``.

    Raises:
        FileNotFoundError: If none of the models is there.
    """
    folder, found, missing = Path(artifacts_dir), {}, {}
    for name in names:
        files = [folder / f"{name}.keras", folder / f"{name}.json"]
        absent = [str(path) for path in files if not path.is_file()]
        if absent:
            notebook = TRAINED_BY.get(name, "02_transfer or 03_cnn")
            missing[name] = (
                f"{' and '.join(absent)} not found (run notebook {notebook} with this "
                "ARTIFACTS_DIR to train it)"
            )
        else:
            found[name] = files[0]
    if not found:
        raise FileNotFoundError(
            f"No trained model in {folder} (looked for {', '.join(names)}). Run notebook "
            "02_transfer (Xception) and/or 03_cnn (CNN) with the same ARTIFACTS_DIR first, or "
            f"`python -m course_utils train cnn --out {folder}`."
        )
    return found, missing


def splits_match_card(card: Mapping, train_split: pd.DataFrame) -> bool | None:
    """Tell whether a training split is the one the model was trained on.

    The card stores a hash of the training file list; a test split saved with another
    training split may hold the model's own training images.

    Args:
        card: The model card.
        train_split: The ``train`` table of ``load_splits``.

    Returns:
        True or False, or None when the card has no hash.
    """
    from course_utils.train import dataset_facts

    expected = (card.get("dataset") or {}).get("train_files_sha256")
    if not expected:
        return None
    return dataset_facts(train_split)["train_files_sha256"] == expected


# --- an arbitrary test folder --------------------------------------------------------


def find_test_root(folder: str | Path) -> Path:
    """Return the folder that holds the class folders: ``DIR/Testing`` if present, else DIR.

    Args:
        folder: ``DIR`` with ``DIR/<class>/<image>`` or ``DIR/Testing/<class>/<image>``.

    Returns:
        The folder of the class folders.

    Raises:
        FileNotFoundError: If the folder does not exist.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Test folder {folder} does not exist or is not a folder; pass a folder laid out "
            "as DIR/<class>/<image> or DIR/Testing/<class>/<image>."
        )
    for child in sorted(folder.iterdir()):
        if child.is_dir() and child.name.lower() in ("testing", "test"):
            return child
    return folder


def _class_mismatch(root: Path, class_names: Sequence[str], missing: list, extra: list) -> str:
    """Explain a test folder whose classes differ from the model's."""
    return (
        f"The test folder {root} does not match the model's classes {list(class_names)} (from "
        f"its card): missing {missing or 'none'}, extra {extra or 'none'}. Use one sub-folder "
        "per class of the model, named as in its card (DIR/<class>/<image> or "
        "DIR/Testing/<class>/<image>), each with at least one readable image."
    )


def class_folders(root: Path, class_names: Sequence[str]) -> dict[str, list[Path]]:
    """Map each of the model's classes to its folders under ``root``.

    Args:
        root: The folder of the class folders (``find_test_root``).
        class_names: The model's classes (its card); aliases such as ``glioma_tumor`` count.

    Returns:
        ``{class: [folders]}`` in the card's class order.

    Raises:
        ValueError: If a class has no folder or a folder is not one of the classes.
    """
    found: dict[str, list[Path]] = {}
    extra = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = config.canonical_class(child.name, tuple(class_names))
        if label is None:
            extra.append(child.name)
        else:
            found.setdefault(label, []).append(child)
    missing = [name for name in class_names if name not in found]
    if missing or extra:
        raise ValueError(_class_mismatch(root, class_names, missing, extra))
    return {name: found[name] for name in class_names}


def scan_test_folder(
    folder: str | Path, class_names: Sequence[str]
) -> tuple[pd.DataFrame, list[str]]:
    """List the readable images of a test folder in the Kaggle class-folder layout.

    Each file is opened once (``scan.inspect_file``); unreadable ones are skipped and
    reported, because one corrupt file would stop the whole prediction pass.

    Args:
        folder: ``DIR`` (``DIR/<class>/<image>``) or a dataset root with ``Testing/``.
        class_names: The model's class order (its card), never the folders' order.

    Returns:
        ``(table, skipped)``: ``path`` (relative), ``abs_path`` and ``label`` of every
        readable image, and one ``"path: reason"`` line per skipped file.

    Raises:
        FileNotFoundError: If the folder does not exist.
        ValueError: If its classes differ from ``class_names`` or a class has no readable
            image.
    """
    root = find_test_root(folder)
    rows, skipped = [], []
    for label, folders in class_folders(root, class_names).items():
        for class_dir in folders:
            for relative in list_class_folder(root, class_dir, []):
                info, _ = inspect_file(root / relative)
                if info["readable"]:
                    rows.append(
                        {"path": relative, "abs_path": str(root / relative), "label": label}
                    )
                else:
                    skipped.append(f"{relative}: {info['error']}")
    table = pd.DataFrame(rows, columns=["path", "abs_path", "label"])
    empty = [name for name in class_names if name not in set(table["label"])]
    if empty:
        raise ValueError(_class_mismatch(root, class_names, empty, []))
    return table, skipped
