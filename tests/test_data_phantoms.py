"""Tests of one phantom slice and its mask (course_utils.data.phantoms), in three planes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from course_utils.config import CLASS_NAMES
from course_utils.data import phantom_anatomy, phantoms

TUMOR_CLASSES = ("glioma", "meningioma", "pituitary")
PLANES = phantoms.PLANES


def render(class_name: str, seed: int, size: int = 96, plane: str | None = None):
    return phantoms.render_phantom(class_name, size, np.random.default_rng(seed), plane)


def head_of(class_name: str, seed: int, plane: str):
    """The head render() draws: the plane is drawn first, then the head (documented)."""
    rng = np.random.default_rng(seed)
    rng.integers(len(PLANES))
    return phantom_anatomy.sample_head(plane, rng, class_name == "pituitary")


def head_coordinates(head, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Head-frame (x right, y down, half-image units) coordinates of a mask's pixels."""
    size = mask.shape[0]
    rows, columns = np.nonzero(mask)
    x = (columns + 0.5) * 2.0 / size - 1.0 - head.center_x
    y = (rows + 0.5) * 2.0 / size - 1.0 - head.center_y
    return head.cos_angle * x + head.sin_angle * y, head.cos_angle * y - head.sin_angle * x


def edge_band(brain: np.ndarray, width: int) -> np.ndarray:
    return brain & ~ndimage.binary_erosion(brain, iterations=width)


# ------------------------------------------------------------------ render_phantom


@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_render_returns_expected_arrays(class_name, plane):
    image, lesion, brain, drawn = render(class_name, seed=0, plane=plane)
    assert drawn == plane
    assert image.shape == lesion.shape == brain.shape == (96, 96)
    assert image.dtype == np.uint8
    assert lesion.dtype == bool and brain.dtype == bool
    assert 0.3 < brain.mean() < 0.8  # a head fills most, not all, of the frame
    assert image[brain].mean() > image[~brain].mean() + 20  # dark background
    assert image.std() > 20


def test_render_is_deterministic_by_seed():
    first, second = render("glioma", seed=3), render("glioma", seed=3)
    for array_a, array_b in zip(first[:3], second[:3], strict=True):
        np.testing.assert_array_equal(array_a, array_b)
    assert first.plane == second.plane
    other = render("glioma", seed=4)
    assert not np.array_equal(first.image, other.image)
    assert not np.array_equal(first.lesion_mask, other.lesion_mask)


def test_every_plane_is_drawn_and_forcing_one_keeps_the_rest():
    drawn = [render("notumor", seed).plane for seed in range(30)]
    assert set(drawn) == set(PLANES)
    assert max(drawn.count(plane) for plane in PLANES) < 20  # roughly even
    seed = next(s for s, plane in enumerate(drawn) if plane == "coronal")
    np.testing.assert_array_equal(
        render("notumor", seed).image, render("notumor", seed, plane="coronal").image
    )


@pytest.mark.parametrize("size", [64, 97, 224])
@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_lesion_mask_lies_inside_the_brain(class_name, size):
    for seed in range(12 if size < 200 else 3):
        _, lesion, brain, plane = render(class_name, seed, size)
        where = f"{class_name} {plane} seed {seed}"
        assert not (lesion & ~brain).any(), f"{where}: lesion outside brain"
        if class_name == "notumor":
            assert not lesion.any()
        else:
            assert lesion.sum() >= 4, f"{where}: lesion too small"


@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize("class_name", TUMOR_CLASSES)
def test_lesions_stand_out_from_the_brain(class_name, plane):
    differences = []
    for seed in range(16):
        image, lesion, brain, _ = render(class_name, seed, plane=plane)
        background = np.median(image[brain & ~lesion])
        differences.append(np.abs(image[lesion].astype(float) - background).mean())
    assert min(differences) > 5  # even faint lesions differ from the brain
    assert np.median(differences) > 20


@pytest.mark.parametrize("plane", PLANES)
def test_meningioma_touches_the_dura_of_the_skull_or_the_falx(plane):
    on_falx = 0
    for seed in range(25):
        image, lesion, brain, _ = render("meningioma", seed, plane=plane)
        x, _ = head_coordinates(head_of("meningioma", seed, plane), lesion)
        touches_falx = plane != "sagittal" and np.abs(x).min() < 2.0 / 96
        touches_skull = (lesion & edge_band(brain, 2)).any()
        assert touches_skull or touches_falx, f"{plane} seed {seed}: meningioma off the dura"
        on_falx += bool(touches_falx and not touches_skull)
        if touches_falx and not touches_skull:
            assert np.all(x > -1.5 / 96) or np.all(x < 1.5 / 96), f"seed {seed}: crosses the falx"
        inside_brain = image[brain & ~lesion].mean()
        assert image[lesion].mean() > inside_brain, f"{plane} seed {seed}: meningioma not bright"
    if plane != "sagittal":  # a sagittal slice has no falx to sit on
        assert 0 < on_falx < 12  # some sit on the falx, most on the convexity


@pytest.mark.parametrize("plane", PLANES)
def test_pituitary_sits_at_the_sella(plane):
    """Axial: midline, a little anterior of the centre; coronal/sagittal: skull base, centre."""
    for seed in range(25):
        _, lesion, brain, _ = render("pituitary", seed, plane=plane)
        head = head_of("pituitary", seed, plane)
        x, y = (float(v.mean()) for v in head_coordinates(head, lesion))
        across, along = x / head.semi_x, y / head.semi_y
        where = f"{plane} seed {seed}: ({across:.2f}, {along:.2f})"
        if plane == "sagittal":
            assert abs(across) < 0.2, f"{where}: sella not at the centre"
        else:
            assert abs(across) < 0.06, f"{where}: pituitary off the midline"
        if plane == "axial":
            assert -0.35 < along < -0.05, f"{where}: not just anterior of the centre"
        else:
            _, brain_y = head_coordinates(head, brain)
            assert along > 0.3 and y > brain_y.mean(), f"{where}: not at the skull base"
            assert y > np.quantile(brain_y, 0.7), f"{where}: not in the lowest part"
        assert lesion.mean() < 0.02


@pytest.mark.parametrize("plane", PLANES)
def test_glioma_is_inside_a_hemisphere_away_from_the_skull(plane):
    sides = set()
    for seed in range(25):
        _, lesion, brain, _ = render("glioma", seed, size=128, plane=plane)
        x, _ = head_coordinates(head_of("glioma", seed, plane), lesion)
        assert not (lesion & edge_band(brain, 3)).any(), f"{plane} seed {seed}: on the skull"
        if plane != "sagittal":
            assert np.all(x > 0) or np.all(x < 0), f"{plane} seed {seed}: crosses the midline"
            assert abs(x.mean()) > 0.08, f"{plane} seed {seed}: glioma on the midline"
            sides.add(bool(x.mean() > 0))
    if plane != "sagittal":
        assert sides == {True, False}  # both hemispheres occur


def test_lesions_vary_in_size_and_place():
    for class_name in TUMOR_CLASSES:
        areas, centres = [], []
        for seed in range(10):
            _, lesion, _, _ = render(class_name, seed)
            areas.append(lesion.sum())
            centres.append(np.argwhere(lesion).mean(axis=0))
        assert max(areas) > 1.5 * min(areas), class_name
        assert np.ptp(np.array(centres), axis=0).max() > 3, class_name


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_an_adjacent_slice_is_the_same_head_and_lesion_a_little_shifted(class_name):
    for seed in range(4):
        original = render(class_name, seed)
        rng = np.random.default_rng(seed)
        adjacent = phantoms.render_phantom(class_name, 96, rng, slice_offset=1.0)
        assert adjacent.plane == original.plane
        assert not np.array_equal(adjacent.image, original.image)
        correlation = np.corrcoef(adjacent.image.ravel(), original.image.ravel())[0, 1]
        assert correlation > 0.9, f"seed {seed}: {correlation:.3f}"
        if class_name != "notumor":
            overlap = (adjacent.lesion_mask & original.lesion_mask).sum()
            union = (adjacent.lesion_mask | original.lesion_mask).sum()
            assert 0.6 < overlap / union < 1.0, f"seed {seed}: lesion overlap {overlap / union:.2f}"


@pytest.mark.parametrize(
    ("class_name", "size", "extra"),
    [
        ("tumor", 96, {}),
        ("Glioma", 96, {}),
        ("glioma", 63, {}),
        ("glioma", 96.0, {}),
        ("glioma", 96, {"plane": "oblique"}),
        ("glioma", 96, {"slice_offset": 2.0}),
        ("glioma", 96, {"slice_offset": "1"}),
    ],
)
def test_render_rejects_bad_input(class_name, size, extra):
    with pytest.raises(ValueError):
        phantoms.render_phantom(class_name, size, np.random.default_rng(0), **extra)


def _width_percentiles(widths: list[float]) -> tuple[float, float, float]:
    """10th, 50th and 90th percentile, as ``phantoms.LESION_SIZES`` records them."""
    return tuple(float(np.quantile(widths, q)) for q in (0.1, 0.5, 0.9))


@pytest.mark.parametrize("class_name", ["glioma", "meningioma", "pituitary"])
def test_lesion_sizes_are_what_the_generator_draws(class_name: str) -> None:
    """The recorded phantom widths are measured from the renderer (200 draws at 128 px)."""
    widths = []
    for seed in range(200):
        mask = phantoms.render_phantom(class_name, 128, np.random.default_rng(seed)).lesion_mask
        columns = np.nonzero(mask.any(axis=0))[0]
        widths.append((columns.max() - columns.min() + 1) / 128)
    recorded = phantoms.LESION_SIZES[class_name]["phantoms"]
    assert _width_percentiles(widths) == pytest.approx(recorded, abs=0.011)


@pytest.mark.realdata
def test_lesion_sizes_of_the_real_tumors_match_the_figshare_boxes() -> None:
    """The recorded real widths are the figshare boxes' (skipped without the shared data)."""
    import os
    from pathlib import Path

    import pandas as pd

    shared = Path(__file__).resolve().parents[2] / "shared/datasets/figshare-tumor-boxes"
    boxes_file = Path(os.environ.get("BTMRI_FIGSHARE_DATA", shared)) / "boxes.csv"
    if not boxes_file.is_file():
        pytest.skip(f"figshare tumor boxes not found at {boxes_file}")
    boxes = pd.read_csv(boxes_file)
    for class_name, sizes in phantoms.LESION_SIZES.items():
        widths = boxes.loc[boxes["label"] == class_name, "width"].tolist()
        assert _width_percentiles(widths) == pytest.approx(sizes["figshare"], abs=0.011)
