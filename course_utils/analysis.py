"""Analyse one scan: prediction, saliency map, overlay, statistics and a text explanation.

The app, the ``predict`` command and notebook 05 call the same functions:

- ``analyse``: everything the app shows for one image (a dict);
- ``analyse_file``: the same for an image file, as a JSON-ready entry (``predict``);
- ``write_lesson_summary``: notebook 05's lines of ``make demo``'s summary.

Nothing happens at import.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from course_utils import course, explain, images, measure, predict, verdicts, wording

#: The methods that share one pass (``explain.SaliencyExplainer``): the app's fast path.
FAST_METHODS = ("gradcam", "saliency")
#: Options of the slower methods in the app (few maps, few samples: answers in seconds).
APP_METHOD_OPTIONS: dict[str, dict] = {
    "smoothgrad": {"smooth_samples": 10},
    "scorecam": {"max_N": 8},
}
_FAST_EXPLAINERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fast_explainer(model: Any) -> explain.SaliencyExplainer:
    """Return the model's ``explain.SaliencyExplainer``, built once per model and cached.

    Args:
        model: A Keras classifier.

    Returns:
        The explainer (prediction + Grad-CAM + saliency in one pass).
    """
    if model not in _FAST_EXPLAINERS:
        _FAST_EXPLAINERS[model] = explain.SaliencyExplainer(model)
    return _FAST_EXPLAINERS[model]


def _prediction_and_map(
    model: Any, card: Mapping, image: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and the heatmap of the predicted class, by the fastest route."""
    if method in FAST_METHODS:
        result = fast_explainer(model)(image)
        return result.probabilities, getattr(result, method)
    probabilities = predict.predict_images(model, card, image)[0]
    options = APP_METHOD_OPTIONS.get(method, {})
    heatmap = explain.saliency_map(model, image, int(np.argmax(probabilities)), method, **options)
    return probabilities, heatmap


def analyse(
    model: Any, card: Mapping, image: np.ndarray, method: str, explainer: wording.TextExplainer
) -> dict:
    """Predict one image, map the predicted class's saliency and explain it in words.

    Args:
        model: A classifier taking raw [0, 255] RGB pixels.
        card: Its model card (``class_names`` in output order).
        image: uint8 RGB (S, S, 3) at ``card["image_size"]`` (``images.load_image_bytes``).
        method: One of ``explain.METHODS``.
        explainer: A text explainer (``llm.make_explainer``).

    Returns:
        ``image``, ``probabilities`` ({class: p} in card order), ``predicted_class``,
        ``class_index``, ``confidence``, ``method``, ``heatmap`` (S, S in [0, 1]),
        ``overlay`` (uint8 RGB), ``statistics`` (``measure.saliency_statistics``),
        ``explanation`` (``wording.TextExplanation``) and ``seconds``.

    Raises:
        ValueError: If the method is unknown or the image has the wrong shape.
    """
    explain.check_method(method)
    start = time.perf_counter()
    probabilities, heatmap = _prediction_and_map(model, card, image, method)
    names = list(card["class_names"])
    index = int(np.argmax(probabilities))
    shown = explain.overlay(image, heatmap)
    statistics = measure.saliency_statistics(heatmap, image=image)
    table = {name: float(p) for name, p in zip(names, probabilities, strict=True)}
    text = explainer.explain(
        images.to_png_bytes(image), images.to_png_bytes(shown), names[index], table, method,
        statistics,
    )  # fmt: skip
    return {
        "image": image,
        "probabilities": table,
        "predicted_class": names[index],
        "class_index": index,
        "confidence": float(probabilities[index]),
        "method": method,
        "heatmap": heatmap,
        "overlay": shown,
        "statistics": statistics,
        "explanation": text,
        "seconds": time.perf_counter() - start,
    }


def analyse_file(
    model: Any,
    card: Mapping,
    path: str | Path,
    method: str,
    explainer: wording.TextExplainer,
    overlay_dir: str | Path | None = None,
) -> dict:
    """Predict, map and explain one image file; a bad image gives an ``error`` entry.

    Args:
        model: The loaded classifier.
        card: Its model card.
        path: The image file.
        method: One of ``explain.METHODS``.
        explainer: A text explainer.
        overlay_dir: Where to write ``<stem>_<method>.png`` overlays; None writes none.

    Returns:
        A JSON-ready dict: ``image``, ``ok`` and either ``error`` or ``predicted_class``,
        ``confidence``, ``probabilities``, ``method``, ``statistics``, ``overlay`` (path or
        None), ``explanation`` (text), ``explanation_source``, ``explanation_error``,
        ``seconds``.
    """
    entry: dict = {"image": str(path), "ok": False}
    try:
        image = images.load_image_file(path, int(card["image_size"]))
    except (OSError, ValueError) as error:
        return {**entry, "error": str(error)}
    result = analyse(model, card, image, method, explainer)
    overlay_path = None
    if overlay_dir is not None:
        overlay_path = Path(overlay_dir) / f"{Path(path).stem}_{method}.png"
        overlay_path.parent.mkdir(parents=True, exist_ok=True)
        overlay_path.write_bytes(images.to_png_bytes(result["overlay"]))
    explanation = result["explanation"]
    return {
        **entry,
        "ok": True,
        "predicted_class": result["predicted_class"],
        "confidence": round(result["confidence"], 6),
        "probabilities": {k: round(v, 6) for k, v in result["probabilities"].items()},
        "method": method,
        "statistics": course.to_jsonable(result["statistics"]),
        "overlay": str(overlay_path) if overlay_path else None,
        "explanation": explanation.text,
        "explanation_source": explanation.source,
        "explanation_error": explanation.error,
        "seconds": round(result["seconds"], 3),
    }


def _saved_verdict(artifacts_dir: str | Path, model: str | None) -> verdicts.LearningVerdict | None:
    """Judge the mapped model from its saved metrics (notebook 04), None when there are none."""
    path = course.metrics_path(artifacts_dir, model) if model else None
    saved = course.read_json(path, "metrics file", "run notebook 04", False) if path else None
    splits = (saved or {}).get("splits") or {}
    numbers = splits.get("test_leakfree") or next(iter(splits.values()), None)
    return verdicts.learning_verdict(numbers) if numbers else None


def _sanity_entry(method: str, row: pd.Series) -> str:
    """One method's sanity score, with how many maps came out flat (left out of the mean)."""
    flat, images = int(row.get("flat_maps", 0)), row.get("images")
    if not flat:
        return f"{method} {row['spearman']:.2f}"
    of = f" of {int(images)}" if images is not None else ""
    if flat == images:
        return f"{method} all{of} maps flat"
    return f"{method} {row['spearman']:.2f} ({flat}{of} maps flat)"


def write_lesson_summary(
    artifacts_dir: str | Path,
    model_names: list[str],
    mapped_model: str | None,
    method_scores: pd.DataFrame,
    sanity: pd.DataFrame,
    example: dict | None,
    verdict: verdicts.LearningVerdict | None = None,
) -> list[str]:
    """Write notebook 05's lines of the demo summary (``course.write_summary``).

    The saliency methods are ranked only when the numbers allow it
    (``verdicts.method_ranking_sentence``): never for a model that has not learned, and
    never a winner whose pointing-game interval overlaps chance or another method's.

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.
        model_names: The trained models found.
        mapped_model: The model whose maps were drawn, or None.
        method_scores: One row per method with ``pointing_game``, ``pointing_chance`` and
            ``images``: the pooled rows of ``localisation_run.measure_localisation``'s
            summary (``summary.xs("all", level="label")``) or ``measure.score_methods``
            output; may be empty.
        sanity: ``measure.sanity_check`` output (may be empty).
        example: An ``analyse`` result, or None.
        verdict: The mapped model's ``verdicts.LearningVerdict``; None reads it from its
            saved metrics (``metrics_<model>.json``) when there are some.

    Returns:
        The Markdown lines written.
    """
    shown = ", ".join(course.display_name(name) for name in model_names) or "none found"
    maps_of = course.display_name(mapped_model) if mapped_model else "no model"
    lines = ["## 05 · Explanations", "", f"- models: {shown}; maps of {maps_of}"]
    verdict = verdict or _saved_verdict(artifacts_dir, mapped_model)
    if len(method_scores):
        lines.append(f"- {verdicts.method_ranking_sentence(method_scores, verdict)}")
    if len(sanity):
        lines.append(
            "- sanity check (Spearman, trained vs randomised): "
            + ", ".join(_sanity_entry(method, row) for method, row in sanity.iterrows())
        )
    if example:
        lines.append(f"- example explanation by the {example['explanation'].source} explainer")
    course.write_summary(artifacts_dir, "05_explain_app", lines)
    return lines
