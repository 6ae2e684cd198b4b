"""Evaluation: predict once, then every metric, table and sentence of lesson 04 for each model.

The metrics themselves are pure functions in ``metrics``; this module bundles them per
test set and per model into an ``EvaluationResult`` (labels, probabilities and the
JSON-ready numbers), and turns results into tables and computed sentences. The class
order always comes from the model card, never from the order of folders on disk.
TensorFlow loads only when ``evaluate_model`` predicts, so the Markdown model card can
use the tables without it.

One model's evaluation, as notebook 04 and ``python -m course_utils evaluate`` run it::

    model, card = predict.load_model_with_card(course.model_path(ARTIFACTS, "cnn"))
    result = evaluate_model(model, card, {"test": test, "test_leakfree": leakfree}, val)
    result.save(course.metrics_path(ARTIFACTS, "cnn"))
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from course_utils import cards, config, course, leakage, metrics, report, verdicts
from course_utils.data.splits import encode_labels
from course_utils.metrics import DEFAULT_BINS

if TYPE_CHECKING:
    import keras

# --- one model on one test set -------------------------------------------------------


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
        ``missed_tumors``, ``roc``, ``macro_auc``, ``calibration``, ``bootstrap`` and
        ``learning`` (``verdicts.learning_verdict``: has the model beaten the constant guess?).

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
    counts, rates = metrics.confusion_tables(y_true, y_pred, class_names)
    curves = metrics.roc_curves(y_true, probabilities, class_names)
    result = {"images": len(y_true), **metrics.classification_metrics(y_true, y_pred, class_names)}
    result.update(
        confusion={
            "labels": list(class_names),
            "counts": counts.to_numpy().tolist(),
            "row_normalised": rates.to_numpy().tolist(),
        },
        missed_tumors=metrics.missed_tumor_rate(y_true, y_pred, class_names),
        roc=curves,
        macro_auc=metrics.macro_auc(curves),
        calibration=metrics.calibration_summary(y_true, probabilities, temperature, n_bins),
        bootstrap=metrics.bootstrap_summary(y_true, y_pred, n_bootstrap, seed),
    )
    result["learning"] = verdicts.learning_verdict(result).to_json()
    return result


# --- one model on all its test sets --------------------------------------------------


@dataclass
class EvaluationResult:
    """One model's evaluation: its labels and probabilities per split, and every number.

    Attributes:
        name: The model's name (its card's ``name``).
        card: Its model card.
        tables: ``{split: table}`` of the test sets (and ``val`` when given).
        y_true: ``{split: true class indices}`` in the card's class order.
        probabilities: ``{split: predicted probabilities}``, rows in table order.
        metrics: The JSON-ready numbers: ``splits`` (one ``evaluate_predictions``
            result per test set), ``temperature``, ``leakage``, ``comparisons`` …
    """

    name: str
    card: dict
    tables: dict[str, pd.DataFrame]
    y_true: dict[str, np.ndarray]
    probabilities: dict[str, np.ndarray]
    metrics: dict = field(default_factory=dict)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The model's class order."""
        return tuple(self.card["class_names"])

    @property
    def y_pred(self) -> dict[str, np.ndarray]:
        """``{split: predicted class indices}``."""
        return {name: p.argmax(axis=1) for name, p in self.probabilities.items()}

    @property
    def temperature(self) -> float:
        """The temperature fitted on validation (1.0 when none was fitted)."""
        return float(self.metrics["temperature"]["value"])

    def split(self, split: str) -> dict:
        """Return one test set's numbers (``evaluate_predictions``'s dict)."""
        return self.metrics["splits"][split]

    def correct(self, split: str) -> np.ndarray:
        """Return, per image of a split, whether the model was right."""
        return self.y_pred[split] == self.y_true[split]

    def confusion_tables(self, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return the confusion matrix of a split as counts and row shares."""
        return metrics.confusion_tables(self.y_true[split], self.y_pred[split], self.class_names)

    def reliability_tables(
        self, split: str, n_bins: int = DEFAULT_BINS
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return the reliability table of a split before and after temperature scaling."""
        y, p = self.y_true[split], self.probabilities[split]
        scaled = metrics.apply_temperature(p, self.temperature)
        return metrics.reliability_table(y, p, n_bins), metrics.reliability_table(y, scaled, n_bins)

    def confident_mistakes(self, split: str, count: int = 8) -> pd.DataFrame:
        """Return the wrong predictions of a split the model was most sure of."""
        return metrics.confident_mistakes(
            self.tables[split],
            self.y_true[split],
            self.probabilities[split],
            self.class_names,
            count,
        )

    def to_json(self) -> dict:
        """Return the numbers as strict-JSON-ready data (NaN as None)."""
        return course.to_jsonable(self.metrics)

    def save(self, path: str | Path) -> Path:
        """Write the numbers as strict JSON (``course.metrics_path`` is the usual place).

        Args:
            path: The file to write; its folder is created.

        Returns:
            The path written.
        """
        return course.write_json(self.metrics, path)


def _split_result(
    result: EvaluationResult, split: str, settings: Mapping, seed: int
) -> dict[str, object]:
    """``evaluate_predictions`` plus the most confident mistakes (paths relative)."""
    y_true, probabilities = result.y_true[split], result.probabilities[split]
    numbers = evaluate_predictions(y_true, probabilities, result.class_names, seed=seed, **settings)
    mistakes = result.confident_mistakes(split).drop(columns="abs_path")
    numbers["confident_mistakes"] = mistakes.to_dict("records")
    return numbers


def evaluate_probabilities(
    card: Mapping,
    tables: Mapping[str, pd.DataFrame],
    probabilities: Mapping[str, np.ndarray],
    n_bootstrap: int = 1000,
    n_bins: int = DEFAULT_BINS,
    seed: int = config.DEFAULT_SEED,
    train_split: pd.DataFrame | None = None,
) -> EvaluationResult:
    """Compute every metric of one model from its predictions (no model needed).

    Args:
        card: The model card: class order, name, image size.
        tables: ``{"test": table, "test_leakfree": table, ..., "val": table}``; ``val``
            (optional) is used only to fit the temperature.
        probabilities: ``{split: probabilities}`` for the same keys, rows in table order.
        n_bootstrap: Bootstrap resamples.
        n_bins: Calibration bins.
        seed: Seed of the bootstrap.
        train_split: The training table, to record whether the splits are the model's
            (``splits_match_training``); None records nothing.

    Returns:
        The ``EvaluationResult``; ``metrics["leakage"]`` (leaked vs non-leaked test images,
        ``leakage.compare_groups``) appears when both ``test`` and ``test_leakfree`` are given.

    Raises:
        ValueError: If there is no test set or a label is not among the card's classes.
    """
    tests = [name for name in tables if name != "val"]
    if not tests:
        raise ValueError("Pass at least one test table, e.g. {'test': splits['test']}.")
    class_names = tuple(card["class_names"])
    labels = {name: encode_labels(table["label"], class_names) for name, table in tables.items()}
    result = EvaluationResult(
        str(card.get("name", "model")), dict(card), dict(tables), labels, dict(probabilities)
    )
    temperature = metrics.temperature_record(labels.get("val"), probabilities.get("val"))
    settings = {"temperature": temperature["value"], "n_bootstrap": n_bootstrap, "n_bins": n_bins}
    result.metrics = {
        "model": result.name,
        "model_file": card.get("model_file"),
        "image_size": card["image_size"],
        "class_names": list(class_names),
        "dataset": card.get("dataset"),
        "fast_mode": bool(card.get("fast_mode", False)),
        "weights": card.get("weights"),
        "temperature": temperature,
        "splits": {name: _split_result(result, name, settings, seed) for name in tests},
        "comparisons": {},
    }
    if "test" in tables and "test_leakfree" in tables:
        result.metrics["leakage"] = leakage.leakage_summary(
            tables["test"],
            tables["test_leakfree"],
            labels["test"],
            probabilities["test"],
            n_bootstrap,
            seed,
        )
    if train_split is not None:
        result.metrics["splits_match_training"] = cards.splits_match_card(card, train_split)
    return result


def evaluate_model(
    model: keras.Model,
    card: Mapping,
    test_splits: Mapping[str, pd.DataFrame],
    val_split: pd.DataFrame | None = None,
    n_bootstrap: int = 1000,
    n_bins: int = DEFAULT_BINS,
    seed: int = config.DEFAULT_SEED,
    batch_size: int = 64,
    train_split: pd.DataFrame | None = None,
) -> EvaluationResult:
    """Predict once and compute every metric of one model on one or more test sets.

    Args:
        model: The trained Keras model (``predict.load_model_with_card``).
        card: Its model card: class order, image size and preprocessing come from here.
        test_splits: ``{"test": table, "test_leakfree": table, ...}``.
        val_split: Validation table for the temperature; None skips temperature scaling.
        n_bootstrap: Bootstrap resamples.
        n_bins: Calibration bins.
        seed: Seed of the bootstrap.
        batch_size: Images per prediction batch.
        train_split: The training table, to check the splits against the card.

    Returns:
        The ``EvaluationResult``; ``metrics["seconds"]`` says how long prediction and
        metrics took and how many distinct images were predicted.

    Raises:
        ValueError: If no test set is given or a label is not among the card's classes.
    """
    from course_utils import predict  # TensorFlow loads here, not when tables are made

    if not test_splits:
        raise ValueError("Pass at least one test table, e.g. {'test': splits['test']}.")
    tables = {**test_splits, **({"val": val_split} if val_split is not None else {})}
    started = time.perf_counter()
    probabilities = predict.predict_tables(model, card, tables, batch_size)
    predicted = time.perf_counter()
    result = evaluate_probabilities(
        card, tables, probabilities, n_bootstrap, n_bins, seed, train_split
    )
    result.metrics["seconds"] = {
        "predict": round(predicted - started, 2),
        "metrics": round(time.perf_counter() - predicted, 2),
        "images_predicted": len(set().union(*(table["abs_path"] for table in tables.values()))),
    }
    return result


def save_metrics(result: EvaluationResult | Mapping, path: str | Path) -> Path:
    """Write a result's (or a metrics dict's) numbers as strict JSON (NaN becomes null).

    Args:
        result: An ``EvaluationResult`` or its ``metrics`` dict.
        path: The file to write (``course.metrics_path``); its folder is created.

    Returns:
        The path written.
    """
    numbers = result.metrics if isinstance(result, EvaluationResult) else result
    return course.write_json(numbers, path)


def save_results(results: Mapping[str, EvaluationResult], artifacts_dir: str | Path) -> list[Path]:
    """Write every model's numbers to ``ARTIFACTS_DIR/metrics_<model>.json``.

    Args:
        results: ``{model name: EvaluationResult}``.
        artifacts_dir: The run's ``ARTIFACTS_DIR``.

    Returns:
        The paths written.
    """
    return [
        result.save(course.metrics_path(artifacts_dir, name)) for name, result in results.items()
    ]


def describe_run(result: EvaluationResult) -> str:
    """Say what was evaluated and how long it took, with a warning for foreign splits.

    Args:
        result: A model's ``EvaluationResult`` (from ``evaluate_model``).

    Returns:
        One or two lines of text.
    """
    card, seconds = result.card, result.metrics.get("seconds") or {}
    text = (
        f"{result.name}: {card['image_size']} px, {card.get('parameters', 0):,} parameters; "
        f"predicted {seconds.get('images_predicted', '?')} images in "
        f"{seconds.get('predict', float('nan')):.1f} s, metrics in "
        f"{seconds.get('metrics', float('nan')):.1f} s"
    )
    if result.metrics.get("splits_match_training") is False:
        text += (
            f"\nWARNING: {result.name} was trained on other splits; its test images may "
            "include training images."
        )
    return text


def compare_models(results: Mapping[str, EvaluationResult]) -> list[str]:
    """Run McNemar's exact test between two models on every test set both were scored on.

    Each model's ``metrics["comparisons"]`` gets ``mcnemar_vs_<other>_<split>``, seen
    from its own side (``only_a_right`` is always its own count). When a model has not
    learned (``report.learning_verdict``), the line says so instead of comparing.

    Args:
        results: ``{model name: EvaluationResult}`` evaluated on the same tables.

    Returns:
        One ``"<test set>: <sentence>"`` line per shared test set; empty unless there are
        exactly two models.

    Raises:
        ValueError: If the two models were scored on different images of a test set.
    """
    if len(results) != 2:
        return []
    (first, a), (second, b) = results.items()
    lines = []
    for split in (s for s in a.metrics["splits"] if s in b.metrics["splits"]):
        if list(a.tables[split]["abs_path"]) != list(b.tables[split]["abs_path"]):
            raise ValueError(
                f"{first} and {second} were scored on different images of {split!r}; evaluate "
                "both on the same split tables."
            )
        test = metrics.mcnemar_exact(a.correct(split), b.correct(split))
        swapped = {
            **test,
            "only_a_right": test["only_b_right"],
            "only_b_right": test["only_a_right"],
        }
        a.metrics["comparisons"][f"mcnemar_vs_{second}_{split}"] = test
        b.metrics["comparisons"][f"mcnemar_vs_{first}_{split}"] = swapped
        untrained = [
            name
            for name, r in ((first, a), (second, b))
            if not report.learning_verdict(r, split).learned
        ]
        sentence = report.describe_mcnemar(test, first, second, not_learned=untrained)
        lines.append(f"{report.SPLIT_TITLES.get(split, split)}: {sentence}")
    return lines


def write_evaluation_summary(
    artifacts_dir: str | Path,
    results: Mapping[str, EvaluationResult],
    missing: Mapping[str, str] | None = None,
    comparison_lines: Sequence[str] = (),
) -> list[str]:
    """Write notebook 04's lines of the demo summary (``course.write_summary``).

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.
        results: ``{model name: EvaluationResult}``.
        missing: ``{model name: why it is missing}`` (``cards.find_models``).
        comparison_lines: The McNemar lines of ``compare_models``.

    Returns:
        The Markdown lines written.
    """
    first = next(iter(results.values()))
    sizes = {split: len(table) for split, table in first.tables.items()}
    resamples = first.split(next(iter(first.metrics["splits"])))["bootstrap"]["n_resamples"]
    test_sets = ", ".join(
        f"{report.SPLIT_TITLES.get(split, split)} {count} images"
        for split, count in sizes.items()
        if split != "val"
    )
    refusals = [report.not_learned_sentence(result) for result in results.values()]
    sentences = [*refusals, *report.leakage_sentences(results), *comparison_lines]
    lines = [
        "## 04 · Evaluation",
        "",
        f"- Models: {', '.join(results)}"
        + (f" (missing: {', '.join(missing)})" if missing else ""),
        f"- Test sets: {test_sets}; {resamples} bootstrap resamples",
        "",
        report.markdown_table(report.comparison_table(results)),
        "",
        *[f"- {sentence}" for sentence in dict.fromkeys(filter(None, sentences))],
    ]
    course.write_summary(artifacts_dir, "04_evaluate", lines)
    return lines
