"""Scoring saliency maps against a lesion region (mask or box), pure and through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from course_utils import cli, course, localisation

# --------------------------------------------------------------- regions


def test_scoring_loads_no_tensorflow() -> None:
    code = (
        "import sys, course_utils.localisation, course_utils.model_card\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_box_mask_marks_the_pixels_whose_centre_is_in_the_box() -> None:
    mask = localisation.box_mask((0.25, 0.25, 0.75, 0.5), (8, 8))
    expected = np.zeros((8, 8), dtype=bool)
    expected[2:4, 2:6] = True  # row centres 0.3125, 0.4375; column centres 0.3125 .. 0.6875
    np.testing.assert_array_equal(mask, expected)


def test_box_mask_follows_the_maps_size_not_the_images() -> None:
    box = (0.5, 0.0, 1.0, 0.25)
    small, large = localisation.box_mask(box, (4, 4)), localisation.box_mask(box, (64, 32))
    assert small.shape == (4, 4) and large.shape == (64, 32)
    assert small.mean() == pytest.approx(0.125) and large.mean() == pytest.approx(0.125)
    assert large[:16, 16:].all() and not large[16:].any() and not large[:, :16].any()


def test_a_box_thinner_than_a_pixel_still_marks_one_pixel() -> None:
    mask = localisation.box_mask((0.51, 0.51, 0.52, 0.52), (10, 10))
    assert mask.sum() == 1 and mask[5, 5]


@pytest.mark.parametrize("box", [(0.5, 0.2, 0.4, 0.6), (-0.1, 0.0, 0.5, 0.5), (0, 0, 1.2, 1)])
def test_box_mask_refuses_a_box_that_is_not_fractions(box: tuple) -> None:
    with pytest.raises(ValueError, match="x0, y0, x1, y1"):
        localisation.box_mask(box, (8, 8))


def test_head_region_is_the_largest_bright_blob_with_holes_filled() -> None:
    image = np.zeros((40, 40))
    rows, columns = np.ogrid[:40, :40]
    image[(rows - 20) ** 2 + (columns - 20) ** 2 <= 100] = 200.0
    image[18:22, 18:22] = 0.0  # a dark ventricle inside the head
    image[0:2, 0:3] = 255.0  # burnt-in text in a corner
    head = localisation.head_region(image)
    assert head[20, 20] and head[10, 20] and not head[0, 0] and not head[35, 35]
    assert head.sum() == ((rows - 20) ** 2 + (columns - 20) ** 2 <= 100).sum()


# ------------------------------------------------------------- one map


def test_a_map_peaked_inside_the_box_hits_and_one_peaked_far_away_misses() -> None:
    mask = localisation.box_mask((0.5, 0.5, 0.75, 0.75), (32, 32))
    inside, outside = np.zeros((32, 32)), np.zeros((32, 32))
    inside[20, 20], outside[2, 2] = 1.0, 1.0
    assert localisation.pointing_game(inside, mask)
    assert not localisation.pointing_game(outside, mask)
    border = np.zeros((32, 32))
    border[14, 20] = 1.0  # 2 px above the box (it starts at row 16)
    assert localisation.pointing_game(border, mask, tolerance_px=2.0)
    assert not localisation.pointing_game(border, mask, tolerance_px=0.0)


def test_a_uniform_map_has_energy_equal_to_the_boxs_area_share() -> None:
    mask = localisation.box_mask((0.1, 0.2, 0.6, 0.45), (40, 40))
    energy = localisation.energy_inside(np.ones((40, 40)), mask)
    assert energy == pytest.approx(mask.mean()) and 0 < energy < 1
    assert localisation.energy_inside(mask.astype(float), mask) == pytest.approx(1.0)
    assert np.isnan(localisation.energy_inside(np.zeros((40, 40)), mask))


def test_pointing_chance_is_the_grown_regions_share() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[8:12, 8:12] = True
    assert localisation.pointing_chance(mask, 0.0) == pytest.approx(16 / 400)
    assert localisation.pointing_chance(mask, 1.0) == pytest.approx((16 + 16) / 400)


def test_score_map_gives_scores_and_their_chance_rates() -> None:
    mask = localisation.box_mask((0.0, 0.0, 0.5, 0.5), (10, 10))
    head = np.zeros((10, 10), dtype=bool)
    head[:, :5] = True
    heat = np.zeros((10, 10))
    heat[2, 2], heat[2, 8] = 3.0, 1.0  # 3/4 of the mass in the box, 1/4 off the head
    scores = localisation.score_map(heat, mask, head, tolerance_px=0.0)
    assert list(scores) == list(localisation.SCORE_COLUMNS)
    assert scores["pointing_game"] == 1.0 and scores["pointing_chance"] == pytest.approx(0.25)
    assert scores["energy_inside"] == pytest.approx(0.75)
    assert scores["energy_chance"] == pytest.approx(0.25)
    assert scores["energy_outside_head"] == pytest.approx(0.25)
    assert scores["background_share"] == pytest.approx(0.5)
    assert np.isnan(localisation.score_map(heat, mask)["energy_outside_head"])


def test_scoring_refuses_mismatched_shapes_and_empty_regions() -> None:
    with pytest.raises(ValueError, match="same shape"):
        localisation.energy_inside(np.ones((8, 8)), np.ones((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="empty"):
        localisation.pointing_game(np.ones((8, 8)), np.zeros((8, 8), dtype=bool))


# ----------------------------------------------------------- many maps


def _per_image() -> pd.DataFrame:
    """Known scores: gradcam hits every glioma, misses every pituitary; flat maps elsewhere."""
    rows = []
    for method, hits in (("gradcam", {"glioma": 1.0, "pituitary": 0.0}), ("flat", None)):
        for label in ("glioma", "pituitary"):
            for index in range(10):
                hit = hits[label] if hits else float(index == 0)
                rows.append(
                    {
                        "path": f"{label}/{index}.jpg",
                        "label": label,
                        "method": method,
                        "pointing_game": hit,
                        "pointing_chance": 0.1,
                        "energy_inside": 0.6 if hits and label == "glioma" else 0.05,
                        "energy_chance": 0.05,
                        "energy_outside_head": 0.2,
                        "background_share": 0.4,
                    }
                )
    return pd.DataFrame(rows)


def test_summarise_scores_aggregates_per_method_and_class_with_intervals() -> None:
    summary = localisation.summarise_scores(_per_image(), n_resamples=200, seed=1)
    assert set(summary.index) == {
        (method, label)
        for method in ("gradcam", "flat")
        for label in ("all", "glioma", "pituitary")
    }
    glioma, pituitary = summary.loc[("gradcam", "glioma")], summary.loc[("gradcam", "pituitary")]
    pooled = summary.loc[("gradcam", "all")]
    assert glioma["pointing_game"] == 1.0 and pituitary["pointing_game"] == 0.0
    assert pooled["pointing_game"] == pytest.approx(0.5) and pooled["images"] == 20
    assert pooled["energy_inside"] == pytest.approx((0.6 + 0.05) / 2)
    assert pooled["pointing_low"] < 0.5 < pooled["pointing_high"]
    assert glioma["pointing_lift_low"] > 0  # every glioma hit: above chance
    assert pituitary["pointing_lift_high"] < 0  # every pituitary missed: below chance
    flat = summary.loc[("flat", "all")]
    assert flat["pointing_game"] == pytest.approx(0.1) == flat["pointing_chance"]
    assert flat["energy_lift_low"] == pytest.approx(0)
    assert flat["energy_inside"] == pytest.approx(0.05)
    assert flat["pointing_lift_low"] < 0 < flat["pointing_lift_high"]
    assert summary["energy_outside_head"].to_numpy() == pytest.approx([0.2] * 6)
    assert summary["background_share"].to_numpy() == pytest.approx([0.4] * 6)


def test_mean_interval_ignores_nan_maps_and_needs_two_images_for_an_interval() -> None:
    numbers = localisation.mean_interval([1.0, np.nan, 0.0, 1.0], [0.2, 0.2, 0.2, 0.2], 100)
    assert numbers["images"] == 3 and numbers["mean"] == pytest.approx(2 / 3)
    assert numbers["lift"] == pytest.approx(2 / 3 - 0.2)
    assert numbers["low"] <= numbers["mean"] <= numbers["high"]
    single = localisation.mean_interval([1.0], [0.2])
    assert single["mean"] == 1.0 and np.isnan(single["low"]) and np.isnan(single["lift_high"])


def test_verdicts_follow_the_lifts_interval() -> None:
    assert localisation.verdict(0.05, 0.2) == "above chance"
    assert localisation.verdict(-0.2, -0.01) == "below chance"
    assert localisation.verdict(-0.1, 0.1) == "not distinguishable from chance"
    assert localisation.verdict(float("nan"), float("nan")) == "not distinguishable from chance"


def test_summarise_scores_refuses_a_table_without_scores() -> None:
    with pytest.raises(ValueError, match="energy_inside"):
        localisation.summarise_scores(pd.DataFrame({"method": ["x"], "label": ["glioma"]}))


def test_record_survives_json_and_renders_the_card_section(tmp_path: Path) -> None:
    summary = localisation.summarise_scores(_per_image(), n_resamples=100)
    record = localisation.localisation_record(
        summary, "figshare tumor box", {"split": "test", "n_resamples": 100}
    )
    path = course.write_json({"localisation": record}, tmp_path / "metrics.json")
    loaded = json.loads(path.read_text())
    table = localisation.record_table(loaded["localisation"])
    pd.testing.assert_frame_equal(table, summary, check_dtype=False)
    lines = localisation.card_section(loaded)
    text = "\n".join(lines)
    assert lines[0] == "## Localisation of the saliency maps"
    assert "figshare tumor box" in text and "| gradcam | glioma | 10 | 1.00" in text
    assert "- gradcam: pointing game above chance" in text
    assert "- flat: pointing game not distinguishable from chance" in text
    assert "Not measured" in "\n".join(localisation.card_section({"splits": {}}))


# --------------------------------------------------------- through the CLI


def _saved_tiny_model(folder: Path, root: Path, table: pd.DataFrame) -> Path:
    """The untrained tiny CNN, with splits whose test table is ``table``."""
    from tiny_cnn import save_tiny_cnn

    from course_utils.data.splits import save_splits

    folder.mkdir(parents=True, exist_ok=True)
    model = save_tiny_cnn(folder)
    parts = {name: table for name in ("train", "val", "test", "test_leakfree")}
    save_splits(parts, course.splits_dir(folder), {"root": str(root), "source": "local"})
    return model


def test_evaluate_localisation_scores_real_style_scans_against_a_boxes_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, rows, boxes = tmp_path / "data", [], []
    generator = np.random.default_rng(0)
    for label in ("glioma", "meningioma", "notumor", "pituitary"):
        for index in range(3):
            relative = f"Training/{label}/{index}.png"
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(generator.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(
                root / relative
            )
            rows.append({"path": relative, "label": label, "group": relative})
            if label != "notumor" and index < 2:
                boxes.append({"file": relative, "label": label, "x0": 0.2, "y0": 0.2})
    pd.DataFrame(boxes).assign(x1=0.6, y1=0.5, similarity=0.99).to_csv(tmp_path / "b.csv")
    table = pd.DataFrame(rows).assign(source_split="Training")
    model = _saved_tiny_model(tmp_path / "artifacts", root, table)
    out = tmp_path / "metrics.json"
    argv = ["evaluate", "--model", str(model), "--data", str(root), "--split", "test"]
    extra = ["--localisation", "--boxes", str(tmp_path / "b.csv"), "--methods", "gradcam"]
    assert cli.main([*argv, *extra, "--bootstrap", "20", "--out", str(out)]) == 0
    record = json.loads(out.read_text())["localisation"]
    assert record["region"] == "figshare tumor box"
    assert record["settings"]["scans"] == 6 and record["settings"]["split"] == "test"
    gradcam = record["methods"]["gradcam"]
    assert set(gradcam) == {"all", "glioma", "meningioma", "pituitary"}
    assert gradcam["all"]["images"] == 6
    share = localisation.box_mask((0.2, 0.2, 0.6, 0.5), (64, 64)).mean()
    assert gradcam["all"]["energy_chance"] == pytest.approx(share)
    assert 0.0 <= gradcam["all"]["pointing_game"] <= 1.0
    assert "| gradcam | all | 6 |" in capsys.readouterr().out


def test_evaluate_localisation_scores_phantoms_against_their_masks(
    phantom_root: Path, tmp_path: Path
) -> None:
    tests = sorted((phantom_root / "Testing").glob("*/*.jpg"))
    table = pd.DataFrame(
        {
            "path": [p.relative_to(phantom_root).as_posix() for p in tests],
            "label": [p.parent.name for p in tests],
        }
    )
    table = table.assign(group=table["path"], source_split="Testing")
    model = _saved_tiny_model(tmp_path, phantom_root, table)
    argv = ["evaluate", "--model", str(model), "--split", "test", "--localisation"]
    options = ["--methods", "saliency", "gradcam", "--localisation-per-class", "2"]
    assert cli.main([*argv, *options, "--bootstrap", "20"]) == 0
    record = json.loads(course.metrics_path(tmp_path, "cnn").read_text())["localisation"]
    assert record["region"] == "phantom lesion mask"
    assert set(record["methods"]) == {"saliency", "gradcam"}
    assert record["settings"]["scans_per_class"] == {"glioma": 2, "meningioma": 2, "pituitary": 2}
    for numbers in record["methods"]["saliency"].values():
        assert 0 < numbers["energy_chance"] < 0.5 and numbers["pointing_chance"] > 0


# ------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_test_scans_get_boxes_drawn_inside_the_head(real_data_dir: Path) -> None:
    from course_utils import localisation_run

    names = [f"Training/glioma/Tr-gl_{n:04d}.jpg" for n in range(10, 30)]
    table = pd.DataFrame({"path": names, "label": "glioma"})
    rows, scans, masks, region = localisation_run.lesion_regions(table, real_data_dir, 128)
    assert region == "figshare tumor box" and len(rows) >= 18
    for scan, mask in zip(scans, masks, strict=True):
        head = localisation.head_region(scan)
        assert 0 < mask.mean() < 0.25
        assert (mask & head).sum() / mask.sum() > 0.8  # the tumor box lies on the head


# ---------------------------------------------------------------- figures


def test_localisation_figures_draw_scores_intervals_and_panels() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_utils import viz_saliency

    summary = localisation.summarise_scores(_per_image(), n_resamples=50)
    figure = viz_saliency.plot_localisation(summary, "glioma")
    ax = figure.axes[0]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["gradcam", "flat"]
    heights = sorted(round(patch.get_height(), 3) for patch in ax.patches)
    assert heights == sorted([1.0, 0.1, 0.6, 0.05])
    plt.close(figure)
    scan, heat = np.full((16, 16, 3), 100.0), np.zeros((16, 16))
    heat[4, 4] = 1.0
    mask = localisation.box_mask((0.0, 0.0, 0.5, 0.5), (16, 16))
    gallery = viz_saliency.plot_localisation_gallery(
        [scan] * 3, [heat] * 3, [mask] * 3, list("abc")
    )
    titled = [ax.get_title() for ax in gallery.axes if ax.get_title()]
    assert titled == ["a", "b", "c"] and len(gallery.axes) == 4
    plt.close(gallery)


def test_default_tolerance_is_the_papers_share_of_the_side() -> None:
    assert localisation.tolerance_for((224, 224)) == pytest.approx(15.0)
    assert localisation.tolerance_for((96, 96)) == pytest.approx(96 * 15 / 224)
    assert localisation.tolerance_for((96, 96), tolerance_px=2.0) == 2.0
    mask = np.zeros((96, 96), dtype=bool)
    mask[40:44, 40:44] = True
    heat = np.zeros((96, 96))
    heat[40, 50] = 1.0  # 7 px right of the lesion: outside the 6.4 px tolerance
    assert not localisation.pointing_game(heat, mask)
    heat[40, 50], heat[40, 48] = 0.0, 1.0  # 5 px right: inside the default tolerance
    assert localisation.pointing_game(heat, mask)
    assert not localisation.pointing_game(heat, mask, tolerance_px=2.0)
    grown = localisation.pointing_chance(mask)
    assert localisation.pointing_chance(mask, tolerance_px=0.0) < grown < 0.05
