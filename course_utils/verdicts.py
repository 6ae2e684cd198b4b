"""Whether a number means anything: has the model learned, did T hit its bound, is it a tie.

Every computed sentence of the course (lessons 01, 03, 04, 05, the Markdown card) asks
these questions first, so a model at chance gets one honest sentence ("it has not
learned, so these numbers mean nothing") instead of an interpretation of noise. The one
rule: a model **has learned** when the lower end of its 95 % accuracy interval lies
above the majority-class rate (the accuracy of always guessing the most common class).
Pure functions, no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import pandas as pd
from scipy import stats

from course_utils.metrics import TEMPERATURE_BOUNDS

#: Coverage of every interval a verdict uses.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class LearningVerdict:
    """Has a model learned? Its accuracy, the interval and the constant guess's accuracy.

    Attributes:
        learned: True when ``low`` is above ``majority_rate``.
        accuracy: The measured accuracy.
        low: Lower end of its 95 % interval.
        high: Upper end of its 95 % interval.
        majority_rate: The accuracy of always guessing the most common class.
        images: How many images the accuracy was measured on.
    """

    learned: bool
    accuracy: float
    low: float
    high: float
    majority_rate: float
    images: int

    def to_json(self) -> dict:
        """Return the verdict as a JSON-ready dict."""
        return asdict(self)


def has_learned(interval: Sequence[float], majority_rate: float) -> bool:
    """The course's one rule: learned when the whole accuracy interval beats the constant guess.

    An interval that contains the majority-class rate (or lies below it) cannot tell the
    model from "always say the most common class".

    Args:
        interval: ``(low, high)`` of the accuracy (bootstrap or binomial, 95 %).
        majority_rate: The share of the most common true class.

    Returns:
        True when ``low > majority_rate``; False for NaN values.
    """
    low = interval[0]
    if low is None or majority_rate is None or math.isnan(low) or math.isnan(majority_rate):
        return False
    return bool(low > majority_rate)


def majority_rate(class_counts: Mapping[str, int] | Sequence[int]) -> float:
    """The accuracy of always guessing the most common class.

    Args:
        class_counts: Images per true class (a mapping or a sequence of counts).

    Returns:
        ``max(count) / sum(counts)``; NaN when there are no images.
    """
    counts = list(class_counts.values() if isinstance(class_counts, Mapping) else class_counts)
    total = sum(counts)
    return max(counts) / total if total else math.nan


def binomial_interval(successes: int, trials: int) -> tuple[float, float]:
    """Exact (Clopper-Pearson) 95 % interval of a rate ``successes / trials``.

    Args:
        successes: Right answers (hits).
        trials: Images.

    Returns:
        ``(low, high)``; ``(nan, nan)`` without trials.
    """
    if trials <= 0:
        return math.nan, math.nan
    interval = stats.binomtest(int(successes), int(trials)).proportion_ci(CONFIDENCE, "exact")
    return float(interval.low), float(interval.high)


def learning_verdict(split_numbers: Mapping) -> LearningVerdict:
    """Judge one test set's numbers (an ``evaluate.evaluate_predictions`` result).

    Args:
        split_numbers: Needs ``accuracy``, ``images``, ``bootstrap.accuracy`` and the
            ``support`` of each class in ``per_class``.

    Returns:
        The ``LearningVerdict`` on the bootstrap interval.
    """
    low, high = split_numbers["bootstrap"]["accuracy"]
    support = [values["support"] for values in split_numbers["per_class"].values()]
    rate = majority_rate(support)
    return LearningVerdict(
        has_learned((low, high), rate),
        float(split_numbers["accuracy"]),
        float("nan" if low is None else low),
        float("nan" if high is None else high),
        rate,
        int(split_numbers["images"]),
    )


def verdict_from_labels(accuracy: float, labels: Sequence[str]) -> LearningVerdict:
    """Judge an accuracy measured on labelled images (e.g. validation during training).

    Uses the exact binomial interval, since only the accuracy is known, not each answer.

    Args:
        accuracy: The accuracy measured on ``labels``' images.
        labels: The true class of each image.

    Returns:
        The ``LearningVerdict``.
    """
    images = len(labels)
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    low, high = binomial_interval(round(accuracy * images), images)
    rate = majority_rate(counts)
    return LearningVerdict(has_learned((low, high), rate), accuracy, low, high, rate, images)


def recipe_note(record: Mapping | None) -> str:
    """Say why a demo run may not have learned: phantoms and fast mode are a short recipe.

    Args:
        record: A model card or metrics dict (``weights``, ``fast_mode``,
            ``dataset.source``), or None.

    Returns:
        A clause starting with a space, or "" for a full run.
    """
    record = record or {}
    phantoms = (record.get("dataset") or {}).get("source") == "phantoms"
    name = str(record.get("name") or record.get("model") or "")
    if name == "xception" and record.get("weights") == "random":
        return (
            " Its Xception base has random weights: transfer learning needs the pretrained "
            "(ImageNet) filters, and from random weights its millions of parameters cannot "
            "learn in a short run."
        )
    if record.get("fast_mode"):
        data = " on synthetic phantoms" if phantoms else ""
        return (
            f" This is a fast-mode run{data} (small images, a few epochs): the short recipe "
            "may be why."
        )
    return " It was trained on synthetic phantoms, which may be why." if phantoms else ""


def not_learned_sentence(name: str, verdict: LearningVerdict, recipe: str = "") -> str:
    """The one sentence for a model at chance, instead of any interpretation.

    Args:
        name: The model's display name.
        verdict: Its ``LearningVerdict`` (``learned`` False).
        recipe: ``recipe_note``'s clause, or "".

    Returns:
        ``"<name> has not learned: …, so these numbers mean nothing."`` plus the recipe.
    """
    return (
        f"{name} has not learned: its accuracy {verdict.accuracy:.1%} (95% CI "
        f"{verdict.low:.1%}-{verdict.high:.1%}, {verdict.images} images) does not beat the "
        f"{verdict.majority_rate:.1%} of always guessing the most common class, so these "
        f"numbers mean nothing.{recipe}"
    )


def temperature_at_bound(record: Mapping) -> bool:
    """Tell whether a fitted temperature stopped at an edge of ``TEMPERATURE_BOUNDS``.

    Args:
        record: ``metrics.temperature_record``'s dict (``value``, ``at_bound``).

    Returns:
        True when the record says so or the value lies within 1 % of a bound.
    """
    if record.get("at_bound"):
        return True
    low, high = TEMPERATURE_BOUNDS
    value = record.get("value")
    return (
        bool(record.get("fitted_on"))
        and value is not None
        and not low * 1.01 <= value <= high * 0.99
    )


def join_names(names: Sequence[str]) -> str:
    """Write ``a``, ``a and b`` or ``a, b and c``.

    Args:
        names: The names, in order.

    Returns:
        The joined text.
    """
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def top_names(values: Mapping[str, float], tolerance: float = 1e-9) -> list[str]:
    """The names sharing the highest value (more than one means a tie).

    Args:
        values: ``{name: value}``; NaN values are skipped.
        tolerance: Values this close to the top count as equal.

    Returns:
        The names at the top, in the mapping's order; empty when no value is a number.
    """
    numbers = {k: v for k, v in values.items() if v is not None and not math.isnan(v)}
    if not numbers:
        return []
    best = max(numbers.values())
    return [name for name, value in numbers.items() if value >= best - tolerance]


def _pointing_intervals(scores: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """95 % interval of each method's hit rate: the table's own (bootstrap) when it has one."""
    if {"pointing_low", "pointing_high"} <= set(scores.columns):
        return {
            method: (float(row["pointing_low"]), float(row["pointing_high"]))
            for method, row in scores.iterrows()
        }
    return {
        method: binomial_interval(round(row["pointing_game"] * row["images"]), int(row["images"]))
        for method, row in scores.iterrows()
    }


def method_ranking_sentence(scores: pd.DataFrame, verdict: LearningVerdict | None = None) -> str:
    """Rank saliency methods by the pointing game only when the numbers allow a winner.

    A method wins when its hit rate's 95 % interval lies above the chance rate (the
    grown lesion's share of the area) and above every other method's interval. A model
    that has not learned gets no ranking; overlapping intervals are a tie.

    Args:
        scores: ``measure.score_methods`` output (``pointing_game``, ``pointing_chance``,
            ``energy_inside``, ``mask_share``, ``images``; methods as index).
        verdict: The mapped model's ``LearningVerdict``; None when unknown.

    Returns:
        One sentence.
    """
    if verdict is not None and not verdict.learned:
        return (
            "no ranking of the saliency methods: the model has not learned (test accuracy "
            f"{verdict.accuracy:.1%} does not beat the constant guess's "
            f"{verdict.majority_rate:.1%}), so its maps explain nothing."
        )
    names = list(scores.index)
    intervals = _pointing_intervals(scores)
    chance = float(scores["pointing_chance"].max())
    counts = {m: int(scores.loc[m, "images"]) for m in names}
    same = len(set(counts.values())) == 1
    rates = ", ".join(
        f"{m} {scores.loc[m, 'pointing_game']:.2f} ({intervals[m][0]:.2f}-{intervals[m][1]:.2f}"
        + ("" if same else f", {counts[m]} images")
        + ")"
        for m in names
    )
    where = f" on {max(counts.values())} images" if same else ""
    facts = f"pointing game, hit rate (95% CI){where}: {rates}"
    above = [m for m in names if intervals[m][0] > chance]
    if not above:
        return f"{facts}; no method beats chance ({chance:.2f}): no winner"
    winners = [m for m in above if all(intervals[m][0] > intervals[o][1] for o in names if o != m)]
    if len(winners) == 1:
        others = " and every other method" if len(names) > 1 else ""
        return f"{facts}; {winners[0]} beats chance ({chance:.2f}){others}"
    if len(above) == 1:
        return (
            f"{facts}; {above[0]} beats chance ({chance:.2f}) but its interval overlaps the "
            "others': no clear winner"
        )
    best = max(above, key=lambda m: scores.loc[m, "pointing_game"])
    leaders = [m for m in above if intervals[m][1] >= intervals[best][0]]
    if len(leaders) == len(above):
        return (
            f"{facts}; {join_names(above)} beat chance ({chance:.2f}) and tie (intervals overlap)"
        )
    behind = [m for m in above if m not in leaders]
    return (
        f"{facts}; {join_names(above)} beat chance ({chance:.2f}); {join_names(leaders)} lead "
        f"and tie (intervals overlap), ahead of {join_names(behind)}"
    )
