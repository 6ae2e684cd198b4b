"""course_utils.wording: the offline explainer's text, class by class, and the shared parts."""

from __future__ import annotations

import pytest

from course_utils import wording

PROBS = {"meningioma": 0.87, "glioma": 0.09, "pituitary": 0.03, "notumor": 0.01}
SCAN, OVERLAY = b"scan", b"overlay"  # the offline explainer does not read the images


STATS = {
    "meningioma": {"plane": "axial", "side": "right", "near_skull": True, "midline": False,
                   "sella": False, "region": "anterior", "centroid_x": 0.8, "centroid_y": 0.35,
                   "spread": 0.05},
    "glioma": {"plane": "coronal", "side": "left", "near_skull": False, "skull_base": False,
               "midline": False, "sella": False, "centroid_x": 0.3, "centroid_y": 0.45,
               "spread": 0.2},
    "pituitary": {"plane": "sagittal", "side": "centre", "near_skull": False, "skull_base": True,
                  "sella": True, "centroid_x": 0.5, "centroid_y": 0.6, "spread": 0.04},
    "notumor": {"plane": "axial", "side": "centre", "near_skull": False, "midline": True,
                "spread": 0.5},
}  # fmt: skip
EXPECTED = {
    "meningioma": ["near the skull", "right", "anterior part", "axial slice", "extra-axial",
                   "dura", "which is where"],
    "glioma": ["hemisphere on the left", "coronal slice", "intra-axial", "which is where"],
    "pituitary": ["sella turcica", "sagittal slice", "which is where"],
    "notumor": ["at the midline", "no tumor is predicted", "diffuse"],
}  # fmt: skip
#: Words that need the slice's plane: never said about a scan of unknown plane.
PLANE_WORDS = ("midline", "hemisphere", "skull base", "sella", "anterior", "posterior",
               "superior", "inferior", "slice")  # fmt: skip


@pytest.mark.parametrize("cls", sorted(STATS))
def test_offline_text_per_class(cls: str) -> None:
    probs = {c: (0.85 if c == cls else 0.05) for c in STATS}
    result = wording.OfflineExplainer().explain(SCAN, OVERLAY, cls, probs, "Grad-CAM", STATS[cls])
    assert result.ok and result.source == "offline" and result.error == ""
    assert result.text.startswith(f"The model predicts {cls} (85%); next most likely")
    assert "The Grad-CAM map concentrates" in result.text
    for words in EXPECTED[cls]:
        assert words in result.text, (words, result.text)
    assert "not where a tumor is" in result.text and "Low confidence" not in result.text
    assert result.text.endswith(wording.NOTICE)


def test_offline_mismatch_and_low_confidence() -> None:
    probs = {"meningioma": 0.45, "glioma": 0.40, "pituitary": 0.1, "notumor": 0.05}
    stats = {"plane": "axial", "side": "left", "near_skull": False, "midline": False}
    text = (
        wording.OfflineExplainer(data_note="Trained on phantoms.")
        .explain(SCAN, OVERLAY, "meningioma", probs, "Grad-CAM++", stats)
        .text
    )
    assert "which is not where meningiomas typically arise" in text
    assert "Low confidence" in text and "45%" in text and "are close" in text
    assert "Trained on phantoms." in text and text.endswith(wording.NOTICE)


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_pituitary_verdict_follows_the_sella_of_the_plane(plane) -> None:
    at_sella = {"plane": plane, "side": "centre", "sella": True, "near_skull": False}
    elsewhere = {**at_sella, "sella": False, "side": "right"}
    assert wording.location_verdict("pituitary", at_sella).startswith("which is where")
    assert wording.location_verdict("pituitary", elsewhere).startswith("which is not where")
    words = wording.describe_location(at_sella)
    assert "sella turcica" in words and f"{plane} slice" in words
    assert ("midline" in words) == (plane != "sagittal")  # a sagittal slice has no midline


UNKNOWN_PLANE = [
    {"side": "centre", "position": "lower-centre", "near_skull": True, "spread": 0.04,
     "plane": None, "midline": None, "skull_base": None, "sella": None, "region": None},
    {"side": "midline", "skull_base": True, "near_skull": False},  # older statistics
    {"side": "left", "position": "upper-left", "near_skull": False, "centroid_x": 0.3,
     "centroid_y": 0.2},
    {"position": "centre", "plane": "oblique", "sella": True},
]  # fmt: skip


@pytest.mark.parametrize("stats", UNKNOWN_PLANE)
@pytest.mark.parametrize("cls", ["glioma", "meningioma", "pituitary"])
def test_no_plane_words_about_a_scan_of_unknown_plane(stats, cls) -> None:
    result = wording.OfflineExplainer().explain(SCAN, OVERLAY, cls, PROBS, "Grad-CAM", stats)
    location = result.fields["location"]
    assert location, stats
    for word in PLANE_WORDS:
        assert word not in location, (word, location)
    if cls == "pituitary":
        assert result.fields["verdict"] == ""  # the sella cannot be placed without the plane
    image_words = ("image centre", "lower-centre", "upper-left", "middle of the image")
    assert any(words in location for words in image_words), location


@pytest.mark.parametrize("stats", [None, {}, {"spread": "n/a", "centroid_x": None}])
def test_offline_without_statistics_still_works(stats) -> None:
    result = wording.OfflineExplainer().explain(b"", b"", "pituitary", PROBS, "SmoothGrad", stats)
    assert result.ok and "not described" in result.text
    assert "sella" in result.text  # falls back to stating the typical location
    assert result.text.endswith(wording.NOTICE)


def test_offline_partial_statistics_and_unknown_class() -> None:
    explainer = wording.OfflineExplainer()
    axial = {"plane": "axial", "side": "right"}
    partial = explainer.explain(b"", b"", "glioma", PROBS, "Grad-CAM", axial)
    assert "hemisphere on the right" in partial.text and "which is where gliomas" in partial.text
    no_plane = explainer.explain(b"", b"", "glioma", PROBS, "Grad-CAM", {"side": "right"})
    location = no_plane.fields["location"]
    assert "on the right of the image" in location and "hemisphere" not in location
    assert no_plane.fields["verdict"] == ""  # a side alone says nothing about intra-axial
    away = explainer.explain(
        b"", b"", "glioma", PROBS, "Grad-CAM", {"near_skull": False, "position": "upper-left"}
    )
    assert "which is where gliomas" in away.text
    odd = explainer.explain(b"", b"", "other", {}, "Grad-CAM", {"near_skull": True})
    assert odd.ok and "The model predicts other." in odd.text and odd.text.endswith(wording.NOTICE)


def test_offline_when_predicted_class_is_not_the_most_probable() -> None:
    text = wording.OfflineExplainer().explain(b"", b"", "glioma", PROBS, "Grad-CAM").text
    assert text.startswith("The model predicts glioma (9%), although meningioma has the highest")
    assert "Low confidence: the probability of glioma (9%)" in text


def test_failed_explanation_and_notice() -> None:
    failed = wording.failed_explanation("No network.")
    assert not failed.ok and failed.error == "No network." and failed.source == "gemini"
    assert failed.text == "No network.\n\n" + wording.NOTICE
    assert wording.with_notice("  ") == wording.NOTICE
    assert wording.ranked_probabilities({"a": 0.2, "b": 0.8}) == [("b", 0.8), ("a", 0.2)]
