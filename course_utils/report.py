"""Tables and computed sentences from evaluation numbers (no TensorFlow).

What notebook 04, ``python -m course_utils evaluate`` and the Markdown model card print:
each function takes ``{model name: numbers}``, where the numbers are an
``evaluate.EvaluationResult`` or its ``metrics`` dict as saved in ``metrics_<model>.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from course_utils import course, metrics, verdicts

#: Display names of the test sets.
SPLIT_TITLES = {"test": "full test", "test_leakfree": "leak-free test", "folder": "test folder"}
#: The lesson's honest test set (the figures use it).
FOCUS_SPLIT = "test_leakfree"


# --- tables --------------------------------------------------------------------------


def _numbers(value: object) -> Mapping:
    """Return the ``metrics`` dict of an ``EvaluationResult``, or the dict itself."""
    return value if isinstance(value, Mapping) else value.metrics


def interval_table(results: Mapping[str, object]) -> pd.DataFrame:
    """Point estimates and bootstrap intervals of accuracy and macro-F1, one row each.

    Args:
        results: ``{model name: EvaluationResult or its metrics dict}``.

    Returns:
        Columns ``model``, ``test set``, ``metric``, ``value``, ``low``, ``high``.
    """
    rows = []
    for model, result in results.items():
        for split, numbers in _numbers(result)["splits"].items():
            for metric, key in (("accuracy", "accuracy"), ("macro-F1", "macro_f1")):
                low, high = numbers["bootstrap"][key]
                rows.append(
                    {
                        "model": course.display_name(model),
                        "test set": SPLIT_TITLES.get(split, split),
                        "metric": metric,
                        "value": numbers[key],
                        "low": low,
                        "high": high,
                    }
                )
    return pd.DataFrame(rows, columns=["model", "test set", "metric", "value", "low", "high"])


def _comparison_row(numbers: Mapping) -> dict[str, object]:
    """Format one test set's headline numbers for ``comparison_table``."""
    missed, calibration = numbers["missed_tumors"], numbers["calibration"]
    accuracy, f1 = numbers["bootstrap"]["accuracy"], numbers["bootstrap"]["macro_f1"]
    return {
        "images": numbers["images"],
        "accuracy (95% CI)": f"{numbers['accuracy']:.1%} ({accuracy[0]:.1%}-{accuracy[1]:.1%})",
        "macro-F1 (95% CI)": f"{numbers['macro_f1']:.3f} ({f1[0]:.3f}-{f1[1]:.3f})",
        "missed tumors": f"{missed['rate']:.1%} ({missed['missed']}/{missed['tumor_images']})",
        "macro AUC": f"{numbers['macro_auc']:.3f}",
        "ECE -> after T": (
            f"{calibration['ece']:.3f} -> {calibration['ece_after_temperature']:.3f}"
        ),
    }


def comparison_table(results: Mapping[str, object]) -> pd.DataFrame:
    """Both models on both test sets, side by side, as formatted text.

    Args:
        results: ``{model name: EvaluationResult or its metrics dict}``.

    Returns:
        One row per (model, test set): images, accuracy and macro-F1 with their 95 %
        bootstrap intervals, missed-tumor rate (missed / tumor images), macro AUC, and
        ECE before -> after temperature scaling.
    """
    rows = {
        (course.display_name(model), SPLIT_TITLES.get(split, split)): _comparison_row(numbers)
        for model, result in results.items()
        for split, numbers in _numbers(result)["splits"].items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(list(rows), names=["model", "test set"])
    return table


def missed_tumor_table(results: Mapping[str, object]) -> pd.DataFrame:
    """The missed tumors of each model on each test set, overall and per tumor class.

    Args:
        results: ``{model name: EvaluationResult or its metrics dict}``.

    Returns:
        One row per (model, test set): ``missed tumors`` ("k of n"), the missed-tumor
        rate, the rate of each tumor class and the false-alarm rate, rounded to 3 places.
    """
    rows = {}
    for model, result in results.items():
        for split, numbers in _numbers(result)["splits"].items():
            missed = numbers["missed_tumors"]
            rows[(model, SPLIT_TITLES.get(split, split))] = {
                "missed tumors": f"{missed['missed']} of {missed['tumor_images']}",
                "missed-tumor rate": round(missed["rate"], 3),
                **{f"missed {c}": round(rate, 3) for c, rate in missed["per_class"].items()},
                "false-alarm rate": round(missed["false_alarm_rate"], 3),
            }
    return pd.DataFrame(rows).T


def auc_table(results: Mapping[str, object], split: str = FOCUS_SPLIT) -> pd.DataFrame:
    """One-vs-rest AUC of each class and the macro AUC, one column per model.

    Args:
        results: ``{model name: EvaluationResult or its metrics dict}``.
        split: The test set.

    Returns:
        Classes (and ``macro``) as rows, models as columns, rounded to 3 places.
    """
    columns = {}
    for model, result in results.items():
        numbers = _numbers(result)["splits"][split]
        columns[model] = {name: curve["auc"] for name, curve in numbers["roc"].items()}
        columns[model]["macro"] = numbers["macro_auc"]
    return pd.DataFrame(columns).round(3)


def calibration_table(results: Mapping[str, object]) -> pd.DataFrame:
    """Temperature, ECE and NLL before and after scaling, per model and test set.

    Args:
        results: ``{model name: EvaluationResult or its metrics dict}``.

    Returns:
        One row per (model, test set), rounded to 3 places.
    """
    rows = {}
    for model, result in results.items():
        numbers = _numbers(result)
        for split, split_numbers in numbers["splits"].items():
            calibration = split_numbers["calibration"]
            rows[(model, SPLIT_TITLES.get(split, split))] = {
                "temperature": numbers["temperature"]["value"],
                "ECE": calibration["ece"],
                "ECE after T": calibration["ece_after_temperature"],
                "NLL": calibration["nll"],
                "NLL after T": calibration["nll_after_temperature"],
            }
    return pd.DataFrame(rows).T.round(3)


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


# --- sentences -----------------------------------------------------------------------


def learning_verdict(result: object, split: str = FOCUS_SPLIT) -> verdicts.LearningVerdict:
    """Judge whether a model has learned, on one test set (the first one when it lacks it).

    Every sentence function below asks this first (``verdicts.has_learned``).

    Args:
        result: A model's ``EvaluationResult`` or its metrics dict.
        split: The test set judged.

    Returns:
        The ``verdicts.LearningVerdict``.
    """
    splits = _numbers(result)["splits"]
    return verdicts.learning_verdict(splits.get(split) or next(iter(splits.values())))


def not_learned_sentence(result: object, split: str = FOCUS_SPLIT) -> str | None:
    """The "has not learned" sentence of a model at chance, None for a model that learned.

    Args:
        result: A model's ``EvaluationResult`` or its metrics dict.
        split: The test set judged.

    Returns:
        ``verdicts.not_learned_sentence`` (with the demo recipe's note), or None.
    """
    verdict = learning_verdict(result, split)
    if verdict.learned:
        return None
    numbers = _numbers(result)
    name = course.display_name(str(numbers.get("model", "model")))
    return verdicts.not_learned_sentence(name, verdict, verdicts.recipe_note(numbers))


def _leak_sentence(name: str, leak: Mapping) -> str:
    """Say what the leaked vs non-leaked comparison of a model that learned shows."""
    leaked, clean = leak["leaked_images"], leak["leakfree_images"]
    if leaked == 0:
        return (
            f"{name}: none of the {leak['test_images']} test images has a copy in training, so "
            "there is no leak to measure."
        )
    counts = (
        f"{name}: {leak['accuracy_leaked']:.1%} on the {leaked} test images with a copy in "
        f"training, {leak['accuracy_leakfree']:.1%} on the {clean} without"
    )
    if not leak.get("enough_images"):
        return (
            f"{counts}; one group has fewer than {leak.get('min_group_images', '?')} images, "
            "too few to say whether the leak changes accuracy."
        )
    low, high = leak["difference_interval"]
    p_value = leak["fisher_p_value"]
    finding = (
        "so accuracy differs between the groups"
        if p_value < 0.05 and not low <= 0 <= high
        else "so these images cannot show that the leak changes accuracy"
    )
    return (
        f"{counts}: difference {100 * leak['difference']:+.1f} points (95% CI "
        f"{100 * low:+.1f} to {100 * high:+.1f}), Fisher's exact p = {p_value:.3g}, {finding}."
    )


def leakage_sentences(results: Mapping[str, object]) -> list[str]:
    """Say, from the numbers, whether the leaked test images score differently from the rest.

    The groups compared are disjoint: test images with a copy in training and those
    without (``leakage.compare_groups``). A model that has not learned gets its
    "has not learned" sentence instead.

    Args:
        results: ``{model name: EvaluationResult or its metrics dict}`` with ``leakage``.

    Returns:
        One sentence per model, and one about the models' ranking when there are two.
    """
    sentences = []
    for model, result in results.items():
        leak = _numbers(result).get("leakage")
        if leak is None:
            continue
        refusal = not_learned_sentence(result)
        sentences.append(refusal or _leak_sentence(course.display_name(model), leak))
    return sentences + _ranking_sentences(results)


def _ranking_sentences(results: Mapping[str, object]) -> list[str]:
    """Compare two models' accuracy on each test set they share (only when both learned)."""
    if len(results) != 2:
        return []
    untrained = [
        course.display_name(name)
        for name, result in results.items()
        if not learning_verdict(result).learned
    ]
    if untrained:
        return [
            f"No ranking of the two models: {verdicts.join_names(untrained)} "
            f"{'has' if len(untrained) == 1 else 'have'} not learned."
        ]
    (a, ma), (b, mb) = ((name, _numbers(result)["splits"]) for name, result in results.items())
    parts = []
    for split in ("test", "test_leakfree"):
        if split in ma and split in mb:
            gap = 100 * (ma[split]["accuracy"] - mb[split]["accuracy"])
            text = "a tie" if abs(gap) < 1e-9 else f"{gap:+.1f} points"
            parts.append(f"{text} on the {SPLIT_TITLES[split]} set")
    if not parts:
        return []
    return [
        f"{course.display_name(a)} minus {course.display_name(b)} accuracy: "
        + "; ".join(parts)
        + " (McNemar's test below says whether the gap is more than noise)."
    ]


def _worst_classes(per_class: Mapping[str, float]) -> str:
    """Name the tumor class missed most often, or say that several tie."""
    rates = {name: rate for name, rate in per_class.items() if rate is not None}
    top = verdicts.top_names(rates)
    if not top or rates[top[0]] <= 0:
        return ""
    if len(top) == 1:
        return f"; most often {top[0]} ({rates[top[0]]:.1%} of them)"
    return f"; {verdicts.join_names(top)} are missed equally often ({rates[top[0]]:.1%} of each)"


def missed_tumor_sentence(result: object, split: str = FOCUS_SPLIT) -> str:
    """Say how many tumors a model called healthy on a test set, and how many false alarms.

    Args:
        result: A model's ``EvaluationResult`` or its metrics dict (``model`` names it).
        split: The test set.

    Returns:
        One sentence; the "has not learned" sentence for a model at chance.
    """
    numbers = _numbers(result)
    missed = numbers["splits"][split]["missed_tumors"]
    counts = (
        f"{numbers.get('model', 'model')}: {missed['missed']} of {missed['tumor_images']} tumors "
        f"on the {SPLIT_TITLES.get(split, split)} set were called {metrics.HEALTHY_CLASS} "
        f"({missed['rate']:.1%})"
    )
    refusal = not_learned_sentence(result, split)
    if refusal:
        return f"{counts}. {refusal}"
    per_class = pd.Series(missed["per_class"], dtype=float).dropna().to_dict()
    return (
        f"{counts}{_worst_classes(per_class)}. {missed['false_alarm_rate']:.1%} of healthy scans "
        "were called a tumor."
    )


def temperature_label(result: object) -> str:
    """Name a model's fitted temperature for a figure title, flagging a bound.

    Args:
        result: An ``EvaluationResult`` or its metrics dict.

    Returns:
        ``"temperature 1.42"``, ``"temperature 20.00 (at its bound)"``, or
        ``"no temperature (T = 1)"`` when none was fitted.
    """
    fitted = _numbers(result)["temperature"]
    if not fitted.get("fitted_on"):
        return "no temperature (T = 1)"
    bound = " (at its bound)" if verdicts.temperature_at_bound(fitted) else ""
    return f"temperature {fitted['value']:.2f}{bound}"


def temperature_sentence(result: object, split: str = FOCUS_SPLIT) -> str:
    """Say what the fitted temperature means for a model and what it did to the ECE.

    Args:
        result: A model's ``EvaluationResult`` or its metrics dict.
        split: The test set whose ECE is reported.

    Returns:
        One sentence: the "has not learned" sentence for a model at chance, "hit the
        bound" for a temperature at an edge of its search range, else its meaning.
    """
    numbers = _numbers(result)
    fitted, calibration = numbers["temperature"], numbers["splits"][split]["calibration"]
    name, value = numbers.get("model", "model"), fitted["value"]
    if not fitted.get("fitted_on"):
        return f"{name}: no validation split, so no temperature was fitted (T = 1)."
    refusal = not_learned_sentence(result, split)
    if refusal:
        return refusal
    if verdicts.temperature_at_bound(fitted):
        return (
            f"{name}: the temperature hit the bound of its search range (T = {value:.2f}, range "
            f"{metrics.TEMPERATURE_BOUNDS[0]:g}-{metrics.TEMPERATURE_BOUNDS[1]:g}): the model's "
            "probabilities could not be calibrated."
        )
    if 0.9 <= value <= 1.1:
        mood = "about calibrated on validation already (T near 1 changes little)"
    elif value > 1:
        mood = "over-confident on validation (T > 1 softens it)"
    else:
        mood = "under-confident on validation (T < 1 sharpens it)"
    change = (
        "lowered" if calibration["ece_after_temperature"] < calibration["ece"] else "did not lower"
    )
    return (
        f"{name}: T = {value:.2f} fitted on {fitted['val_images']} validation images: the model "
        f"was {mood}; on the {SPLIT_TITLES.get(split, split)} set it {change} the ECE "
        f"({calibration['ece']:.3f} -> {calibration['ece_after_temperature']:.3f})."
    )


def describe_mcnemar(
    result: Mapping, name_a: str, name_b: str, alpha: float = 0.05, not_learned: Sequence[str] = ()
) -> str:
    """Put a McNemar result into one sentence that says what it does and does not show.

    Args:
        result: What ``metrics.mcnemar_exact`` returned.
        name_a: Model A's name.
        name_b: Model B's name.
        alpha: Significance level.
        not_learned: Names of the models that have not learned (``learning_verdict``):
            comparing them means nothing, and the sentence says so.

    Returns:
        The sentence.
    """
    a, b = course.display_name(name_a), course.display_name(name_b)
    if not_learned:
        names = [course.display_name(name) for name in not_learned]
        verb = "has" if len(names) == 1 else "have"
        return f"no comparison: {verdicts.join_names(names)} {verb} not learned."
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
