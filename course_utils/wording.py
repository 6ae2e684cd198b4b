"""Explanations of a prediction in words: the shared interface and the offline explainer.

Every text explainer has ``explain(scan_png, overlay_png, predicted_class, probabilities,
method, statistics=None) -> TextExplanation`` (the :class:`TextExplainer` protocol):

- :class:`OfflineExplainer` (here) writes a factual explanation from the prediction and
  the saliency statistics, without any network (no key, fast mode, tests);
- ``course_utils.llm.GeminiExplainer`` asks a multimodal Gemini model.

Every ``text`` ends with :data:`NOTICE`. Nothing happens at import.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

#: Every explanation text ends with this notice.
NOTICE = "Educational use only, not a diagnosis."
#: A top probability below this is reported as low confidence.
LOW_CONFIDENCE = 0.6
#: Where each class typically occurs (given to Gemini and used by the offline explainer).
TYPICAL_LOCATIONS = {
    "glioma": "intra-axial, inside a cerebral hemisphere, within the brain tissue itself",
    "meningioma": "extra-axial, against the dura next to the skull: convexity, falx or skull base",
    "pituitary": "at the midline, in the sella turcica at the skull base",
    "notumor": "none: no tumor is expected, so there is no typical location",
}


@dataclass
class TextExplanation:
    """One explanation of one prediction.

    Attributes:
        text: Readable Markdown text; always ends with :data:`NOTICE`. On failure it is
            the error message followed by the notice.
        source: ``"gemini"`` or ``"offline"``.
        ok: False when no explanation could be made (see ``error``).
        error: The failure message, ``""`` when ``ok``.
        fields: The structured answer (Gemini) or the facts used (offline).
    """

    text: str
    source: Literal["gemini", "offline"]
    ok: bool
    error: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


class TextExplainer(Protocol):
    """What ``llm.GeminiExplainer`` and :class:`OfflineExplainer` have in common."""

    def explain(
        self,
        scan_png: bytes,
        overlay_png: bytes,
        predicted_class: str,
        probabilities: dict[str, float],
        method: str,
        statistics: dict[str, Any] | None = None,
    ) -> TextExplanation:
        """Explain one prediction (see :meth:`OfflineExplainer.explain`)."""
        ...


def with_notice(text: str) -> str:
    """Return ``text`` followed by a blank line and :data:`NOTICE`."""
    return f"{text.rstrip()}\n\n{NOTICE}" if text.strip() else NOTICE


def failed_explanation(
    message: str, source: Literal["gemini", "offline"] = "gemini"
) -> TextExplanation:
    """An ``ok=False`` explanation that shows ``message``."""
    return TextExplanation(text=with_notice(message), source=source, ok=False, error=message)


def _pct(p: float) -> str:
    """A probability as a short percentage (``"87%"``, ``"<1%"``)."""
    return "<1%" if 0 < p < 0.005 else f"{100 * p:.0f}%"


def ranked_probabilities(probabilities: dict[str, float]) -> list[tuple[str, float]]:
    """Classes and probabilities, most likely first."""
    return sorted(((str(k), float(v)) for k, v in probabilities.items()), key=lambda kv: -kv[1])


def _probability_sentence(predicted_class: str, probabilities: dict[str, float]) -> str:
    """The sentence "The model predicts X (87%); next most likely Y (9%)."."""
    ranked = ranked_probabilities(probabilities)
    top = dict(ranked).get(predicted_class)
    sentence = f"The model predicts {predicted_class}"
    sentence += f" ({_pct(top)})" if top is not None else ""
    others = [(name, p) for name, p in ranked if name != predicted_class]
    if others and top is not None and others[0][1] > top:
        sentence += f", although {others[0][0]} has the highest probability ({_pct(others[0][1])})"
    elif others:
        sentence += f"; next most likely {others[0][0]} ({_pct(others[0][1])})"
    return sentence + "."


class OfflineExplainer:
    """Factual explanations written from the prediction and the saliency statistics.

    No network and no model: the same inputs always give the same text. The statistics
    (from ``course_utils.measure.saliency_statistics``) are all optional; missing keys make
    the text shorter:

    - ``centroid_x``, ``centroid_y``: centre of mass of the map, as fractions of the image
      width / height (0 = left / top);
    - ``side``: ``"left"``, ``"right"`` or ``"centre"`` (as displayed, image left/right);
    - ``position``: the map's place in the head's box (``"centre"``, ``"upper-left"``...);
    - ``near_skull``: the mass lies next to the skull (the brain's outer edge);
    - ``spread``: share of the image area holding half of the map's mass (small = focal);
    - ``plane``: ``"axial"``, ``"coronal"``, ``"sagittal"`` or None (unknown, e.g. a real
      scan). Only with a known plane are the plane-dependent keys used and words such
      as midline, hemisphere, skull base, sella or anterior written: ``midline``,
      ``skull_base``, ``sella`` (bools) and ``region`` (``"anterior"``, ``"central"``,
      ``"posterior"``; coronal ``"superior"``/``"inferior"``).

    Args:
        low_confidence: A top probability below this adds a low-confidence caveat.
        data_note: Optional extra caveat about the data (e.g. "trained on phantoms").
    """

    source: Literal["offline"] = "offline"

    def __init__(self, low_confidence: float = LOW_CONFIDENCE, data_note: str | None = None):
        self.low_confidence = low_confidence
        self.data_note = data_note

    def explain(
        self,
        scan_png: bytes,
        overlay_png: bytes,
        predicted_class: str,
        probabilities: dict[str, float],
        method: str,
        statistics: dict[str, Any] | None = None,
    ) -> TextExplanation:
        """Write an explanation of one prediction (the images are not used).

        Args:
            scan_png: The original scan (unused; same interface as Gemini).
            overlay_png: The saliency overlay (unused).
            predicted_class: The predicted class.
            probabilities: Probability of every class.
            method: The saliency method that made the map.
            statistics: Saliency statistics (keys in the class docstring), or None.

        Returns:
            The explanation (always ``ok=True``).
        """
        stats = statistics or {}
        where = describe_location(stats)
        verdict = location_verdict(predicted_class, stats)
        parts = [_probability_sentence(predicted_class, probabilities)]
        if where:
            parts.append(
                f"The {method} map concentrates {where}" + (f", {verdict}." if verdict else ".")
            )
        else:
            verdict = ""  # a verdict without the location it judges would confuse
            parts.append(
                f"No {method} saliency statistics were given, so its location is not described."
            )
        if predicted_class in TYPICAL_LOCATIONS and not verdict:
            parts.append(
                f"Typical location of {predicted_class}: {TYPICAL_LOCATIONS[predicted_class]}."
            )
        caveats = self._caveats(predicted_class, probabilities, method)
        text = " ".join(parts) + "\n\n**Caveats:**\n" + "\n".join(f"- {c}" for c in caveats)
        fields = {"location": where, "verdict": verdict, "caveats": caveats}
        return TextExplanation(text=with_notice(text), source="offline", ok=True, fields=fields)

    def _caveats(
        self, predicted_class: str, probabilities: dict[str, float], method: str
    ) -> list[str]:
        """Confidence and interpretation caveats."""
        caveats = [
            f"The {method} map shows which pixels the model relied on, not where a tumor is."
        ]
        ranked = ranked_probabilities(probabilities)
        p_predicted = dict(ranked).get(predicted_class, ranked[0][1] if ranked else None)
        if p_predicted is not None and p_predicted < self.low_confidence:
            caveats.append(
                f"Low confidence: the probability of {predicted_class} ({_pct(p_predicted)}) "
                f"is below {_pct(self.low_confidence)}."
            )
        if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < 0.15:
            caveats.append(f"{ranked[0][0]} and {ranked[1][0]} are close; the call is uncertain.")
        if self.data_note:
            caveats.append(self.data_note)
        return caveats


def _is_number(value: Any) -> bool:
    """True for a real number (Python or NumPy), False for bools, None and the rest."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


#: Planes whose anatomy the location words may use.
PLANES = ("axial", "coronal", "sagittal")


def _known_plane(stats: dict[str, Any]) -> str | None:
    """The statistics' plane when it is one of ``PLANES``, else None."""
    plane = stats.get("plane")
    return plane if plane in PLANES else None


def _anatomical_pieces(stats: dict[str, Any], plane: str) -> list[str]:
    """Location words that need the plane (sella, skull base, midline, hemisphere, region)."""
    pieces = []
    if stats.get("sella"):
        pieces.append("at the sella turcica")
    elif stats.get("skull_base"):
        pieces.append("at the skull base")
    elif stats.get("near_skull"):
        pieces.append("near the skull")
    side = stats.get("side")
    if plane != "sagittal" and (stats.get("midline") or side in ("centre", "midline")):
        pieces.append("at the midline")
    elif plane != "sagittal" and side in ("left", "right"):
        pieces.append(f"in the hemisphere on the {side} of the image")
    region = stats.get("region")
    if region in ("anterior", "posterior", "superior", "inferior"):
        pieces.append(f"in the {region} part of the brain")
    return pieces


def _image_pieces(stats: dict[str, Any]) -> list[str]:
    """Location words that hold in any plane (image sides, the head's edge)."""
    pieces = ["near the skull"] if stats.get("near_skull") else []
    position, side = stats.get("position"), stats.get("side")
    if position == "centre":
        pieces.append("near the image centre")
    elif isinstance(position, str) and position:
        pieces.append(f"in the {position} of the head")
    elif side in ("left", "right"):
        pieces.append(f"on the {side} of the image")
    elif side in ("centre", "midline"):
        pieces.append("near the middle of the image, left to right")
    return pieces


def describe_location(stats: dict[str, Any]) -> str:
    """Where a saliency map's mass lies, in words (``""`` when nothing is known).

    Words that need the slice's plane (midline, hemisphere, skull base, sella,
    anterior...) are used only when ``stats["plane"]`` is known; otherwise only image
    words (``"near the image centre"``, ``"in the upper-left of the head"``).

    Args:
        stats: Saliency statistics (keys in :class:`OfflineExplainer`); all optional.

    Returns:
        E.g. ``"near the skull in the hemisphere on the right of the image (axial slice;
        centre at 72% of the width, 40% of the height; focal)"``.
    """
    plane = _known_plane(stats)
    pieces = _anatomical_pieces(stats, plane) if plane else _image_pieces(stats)
    details = [f"{plane} slice"] if plane and pieces else []
    x, y = stats.get("centroid_x"), stats.get("centroid_y")
    if _is_number(x) and _is_number(y):
        details.append(f"centre at {_pct(float(x))} of the width, {_pct(float(y))} of the height")
    spread = stats.get("spread")
    if _is_number(spread):
        details.append(
            "focal" if spread < 0.1 else "diffuse" if spread > 0.3 else "moderately spread"
        )
    if not pieces and not details:
        return ""
    where = " ".join(pieces) if pieces else "in the image"
    return f"{where} ({'; '.join(details)})" if details else where


def _fits(predicted_class: str, stats: dict[str, Any], plane: str | None) -> bool | None:
    """Whether the location fits the class; None when the statistics cannot tell."""
    near, base, sella = stats.get("near_skull"), stats.get("skull_base"), stats.get("sella")
    side, midline = stats.get("side"), stats.get("midline")
    if predicted_class == "meningioma":
        if plane is None:
            return None if near is None else bool(near)
        if near is None and base is None and midline is None:
            return None
        return bool(near or base or (midline and plane != "sagittal"))
    if predicted_class == "glioma":
        if plane in ("axial", "coronal") and side is not None:
            return side in ("left", "right") and not base and not sella
        if near is None:
            return None  # without the plane, only "away from the skull" can be judged
        return not near and not base and not sella
    if predicted_class == "pituitary" and plane is not None and sella is not None:
        return bool(sella)
    return None


def location_verdict(predicted_class: str, stats: dict[str, Any]) -> str:
    """Whether the map's location fits where the predicted class typically occurs.

    The sella (pituitary) and the hemispheres (glioma) can only be judged with a
    known plane; without one a meningioma is judged by its nearness to the skull and
    a glioma by its distance from it.

    Args:
        predicted_class: The predicted class.
        stats: Saliency statistics (keys in :class:`OfflineExplainer`).

    Returns:
        A clause such as ``"which is where meningiomas typically arise (…)"``, or ``""``
        when the class or the needed statistics are unknown.
    """
    if predicted_class == "notumor":
        return "though no tumor is predicted, so there is no typical location to compare with"
    fits = _fits(predicted_class, stats, _known_plane(stats))
    if fits is None:
        return ""
    typical = TYPICAL_LOCATIONS[predicted_class]
    plural = {"glioma": "gliomas", "meningioma": "meningiomas", "pituitary": "pituitary tumors"}
    name = plural[predicted_class]
    if fits:
        return f"which is where {name} typically arise ({typical})"
    return f"which is not where {name} typically arise ({typical}); treat this with extra caution"
