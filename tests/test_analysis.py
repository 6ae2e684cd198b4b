"""course_utils.analysis: one scan analysed by every method, files as JSON entries, the summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_cnn import disk_scan, png_bytes, save_tiny_cnn

from course_utils import analysis, course, evaluate, images, predict, wording
from course_utils.config import CLASS_NAMES


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, dict]:
    """An untrained small CNN saved with a model card, loaded back."""
    path = save_tiny_cnn(tmp_path_factory.mktemp("app-model"))
    loaded, card = predict.load_model_with_card(path)
    return path, loaded, card


# ------------------------------------------------------------------ analyse


@pytest.mark.parametrize("method", ["gradcam", "saliency", "smoothgrad", "gradcam++", "scorecam"])
def test_analyse_every_method(tiny_model, method: str) -> None:
    _, model, card = tiny_model
    image = images.load_image_bytes(png_bytes(disk_scan(80)), 64)
    result = analysis.analyse(model, card, image, method, wording.OfflineExplainer())
    assert list(result["probabilities"]) == list(CLASS_NAMES)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert result["predicted_class"] == CLASS_NAMES[result["class_index"]]
    assert result["heatmap"].shape == (64, 64)
    assert result["overlay"].shape == (64, 64, 3) and result["overlay"].dtype == np.uint8
    assert "side" in result["statistics"]
    assert result["explanation"].ok and wording.NOTICE in result["explanation"].text


def test_analyse_caches_the_fast_explainer(tiny_model) -> None:
    _, model, _ = tiny_model
    assert analysis.fast_explainer(model) is analysis.fast_explainer(model)


def test_analyse_unknown_method(tiny_model) -> None:
    _, model, card = tiny_model
    with pytest.raises(ValueError, match="Unknown saliency method"):
        analysis.analyse(model, card, np.zeros((64, 64, 3), np.uint8), "lime", None)


def test_analyse_file_good_bad_and_overlay(tiny_model, tmp_path: Path) -> None:
    _, model, card = tiny_model
    good, bad = tmp_path / "a.png", tmp_path / "notes.png"
    disk_scan(80).save(good)
    bad.write_text("not an image")
    explainer = wording.OfflineExplainer()
    entry = analysis.analyse_file(model, card, good, "gradcam", explainer, tmp_path / "out")
    assert entry["ok"] and entry["image"] == str(good) and entry["method"] == "gradcam"
    assert Path(entry["overlay"]) == tmp_path / "out" / "a_gradcam.png"
    assert Path(entry["overlay"]).read_bytes().startswith(b"\x89PNG")
    assert json.loads(json.dumps(entry, allow_nan=False)) == entry  # plain JSON types
    assert entry["explanation_source"] == "offline" and wording.NOTICE in entry["explanation"]
    failed = analysis.analyse_file(model, card, bad, "gradcam", explainer)
    assert not failed["ok"] and "not an image" in failed["error"] and "overlay" not in failed
    missing = analysis.analyse_file(model, card, tmp_path / "gone.png", "gradcam", explainer)
    assert not missing["ok"] and "gone.png" in missing["error"]


def _scores(hits: list[float], images: int = 30, chance: float = 0.1) -> pd.DataFrame:
    """``measure.score_methods``-shaped scores of saliency and Grad-CAM."""
    return pd.DataFrame(
        {
            "pointing_game": hits,
            "pointing_chance": [chance] * 2,
            "energy_inside": [0.2, 0.6],
            "mask_share": [0.1] * 2,
            "images": [images] * 2,
        },
        index=pd.Index(["saliency", "gradcam"], name="method"),
    )


def test_write_lesson_summary(tmp_path: Path) -> None:
    scores = _scores([0.2, 0.9])
    sanity = pd.DataFrame({"spearman": [0.25, 0.9]}, index=["gradcam", "saliency"])
    example = {"explanation": wording.TextExplanation("text", "offline", True)}
    lines = analysis.write_lesson_summary(
        tmp_path, ["xception", "cnn"], "cnn", scores, sanity, example
    )
    assert lines == [
        "## 05 · Explanations",
        "",
        "- models: Xception, CNN; maps of CNN",
        "- pointing game, hit rate (95% CI) on 30 images: saliency 0.20 (0.08-0.39), gradcam "
        "0.90 (0.73-0.98); gradcam beats chance (0.10) and every other method",
        "- sanity check (Spearman, trained vs randomised): gradcam 0.25, saliency 0.90",
        "- example explanation by the offline explainer",
    ]
    written = course.summary_path(tmp_path, "05_explain_app").read_text()
    assert written == "\n".join(lines) + "\n"
    empty = analysis.write_lesson_summary(tmp_path, [], None, pd.DataFrame(), pd.DataFrame(), None)
    assert empty == ["## 05 · Explanations", "", "- models: none found; maps of no model"]


def test_lesson_summary_crowns_no_winner_at_chance_or_within_noise(tmp_path: Path) -> None:
    tie = analysis.write_lesson_summary(
        tmp_path, ["cnn"], "cnn", _scores([0.8, 0.9]), pd.DataFrame(), None
    )
    assert "saliency and gradcam beat chance (0.10) and tie (intervals overlap)" in tie[3]
    weak = analysis.write_lesson_summary(
        tmp_path, ["cnn"], "cnn", _scores([0.1, 0.2], 5), pd.DataFrame(), None
    )
    assert "no method beats chance (0.10): no winner" in weak[3]
    y = np.repeat(np.arange(4), 10)
    constant = evaluate.evaluate_predictions(y, np.tile([0.7, 0.1, 0.1, 0.1], (40, 1)), CLASS_NAMES)
    course.write_json({"splits": {"test_leakfree": constant}}, course.metrics_path(tmp_path, "cnn"))
    chance = analysis.write_lesson_summary(
        tmp_path, ["cnn"], "cnn", _scores([0.2, 0.9]), pd.DataFrame(), None
    )
    assert chance[3].startswith("- no ranking of the saliency methods: the model has not learned")
    assert "beats chance" not in chance[3]


def test_write_lesson_summary_counts_flat_sanity_maps(tmp_path: Path) -> None:
    """A flat map has no rank correlation: the summary says how many were left out."""
    sanity = pd.DataFrame(
        {"spearman": [0.0, 0.56, np.nan], "flat_maps": [3, 0, 8], "images": [8, 8, 8]},
        index=["gradcam", "saliency", "gradcam++"],
    )
    lines = analysis.write_lesson_summary(tmp_path, ["cnn"], "cnn", pd.DataFrame(), sanity, None)
    assert lines[-1] == (
        "- sanity check (Spearman, trained vs randomised): gradcam 0.00 (3 of 8 maps flat), "
        "saliency 0.56, gradcam++ all of 8 maps flat"
    )


def test_lesson_summary_names_the_leading_group_when_it_ties(tmp_path: Path) -> None:
    """Two methods tie at the top, clearly ahead of a third: say so, not "all tie"."""
    scores = pd.DataFrame(
        {
            "pointing_game": [0.83, 1.0, 1.0],
            "pointing_low": [0.73, 1.0, 1.0],
            "pointing_high": [0.92, 1.0, 1.0],
            "pointing_chance": [0.06] * 3,
            "images": [75] * 3,
        },
        index=pd.Index(["saliency", "gradcam", "gradcam++"], name="method"),
    )
    lines = analysis.write_lesson_summary(tmp_path, ["cnn"], "cnn", scores, pd.DataFrame(), None)
    assert lines[3].endswith(
        "saliency, gradcam and gradcam++ beat chance (0.06); gradcam and gradcam++ lead and tie "
        "(intervals overlap), ahead of saliency"
    ), lines[3]
