"""Pure metrics on true labels and predicted probabilities (NumPy, pandas, scikit-learn, SciPy).

No TensorFlow here: every function takes class indices and probability arrays, so the
metrics can be checked by hand, reused on any model's outputs, and imported by the
Markdown model card and the command line without loading Keras.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from sklearn import metrics as skm

from course_utils import config

#: The class whose prediction, for a tumor image, is the clinically worst error.
HEALTHY_CLASS = "notumor"
#: Equal-width confidence bins of the calibration error.
DEFAULT_BINS = 15
#: Temperatures outside this range mean the fit ran into a bound (reported as such).
TEMPERATURE_BOUNDS = (0.05, 20.0)


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
        name: share(called_healthy[y_true == i]) for i, name in enumerate(class_names) if i != h
    }
    return {
        "rate": share(called_healthy[tumor]),
        "missed": int(np.sum(tumor & called_healthy)),
        "tumor_images": int(np.sum(tumor)),
        "per_class": per_class,
        "false_alarm_rate": share(~called_healthy[~tumor]),
    }


def share(flags: np.ndarray) -> float:
    """Return the mean of a boolean array, NaN when it is empty.

    Args:
        flags: Booleans (e.g. which predictions were right).

    Returns:
        The share of True values, or NaN for an empty array.
    """
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


# --- summaries of one split ---------------------------------------------------------


def calibration_summary(
    y_true: np.ndarray, probabilities: np.ndarray, temperature: float, n_bins: int
) -> dict:
    """ECE, NLL and reliability table before and after temperature scaling.

    Args:
        y_true: True class indices.
        probabilities: Predicted probabilities (images, classes).
        temperature: The temperature fitted on validation (1: none).
        n_bins: Confidence bins.

    Returns:
        ``{"bins", "ece", "nll", "temperature", "ece_after_temperature",
        "nll_after_temperature", "reliability"}`` (the table as lists).
    """
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


def bootstrap_summary(y_true: np.ndarray, y_pred: np.ndarray, n_resamples: int, seed: int) -> dict:
    """95 % bootstrap intervals of accuracy and macro-F1.

    Args:
        y_true: True class indices.
        y_pred: Predicted class indices.
        n_resamples: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        ``{"n_resamples", "confidence", "seed", "accuracy": [low, high],
        "macro_f1": [low, high]}``.
    """
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


def temperature_record(y_val: np.ndarray | None, p_val: np.ndarray | None) -> dict:
    """Fit the temperature on validation predictions, or record that there were none.

    Args:
        y_val: True class indices of the validation images, or None.
        p_val: The model's probabilities for them, or None.

    Returns:
        ``{"value", "fitted_on", ...}``: the temperature, ``"val"`` or None, and when
        fitted the validation NLL before and after and whether T hit a bound.
    """
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
