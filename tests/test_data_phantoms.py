"""Tests of one phantom slice and its mask (course_utils.data.phantoms)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from course_utils.config import CLASS_NAMES
from course_utils.data import phantoms

TUMOR_CLASSES = ("glioma", "meningioma", "pituitary")


def render(class_name: str, seed: int, size: int = 96):
    return phantoms.render_phantom(class_name, size, np.random.default_rng(seed))


def brain_coordinates(brain: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Coordinates of the mask's pixels in the brain's own frame (from its moments).

    Returns an (n, 2) array of (across, along): signed offsets from the brain's centre
    along its short (left-right) and long (front-back, positive = down) axes, in
    semi-axis units, so the midline is across == 0 whatever the head's rotation.
    """
    points = np.argwhere(brain).astype(float)
    centre = points.mean(axis=0)
    variances, axes = np.linalg.eigh(np.cov((points - centre).T))
    long_axis, short_axis = axes[:, 1], axes[:, 0]
    if long_axis[0] < 0:  # point the long axis downwards (increasing rows)
        long_axis = -long_axis
    offsets = np.argwhere(mask) - centre
    semi_short, semi_long = 2.0 * np.sqrt(variances)
    return np.stack([offsets @ short_axis / semi_short, offsets @ long_axis / semi_long], 1)


def brain_frame(brain: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """The mask's centroid as (across, along) in the brain's own frame."""
    across, along = brain_coordinates(brain, mask).mean(axis=0)
    return float(across), float(along)


def edge_band(brain: np.ndarray, width: int) -> np.ndarray:
    return brain & ~ndimage.binary_erosion(brain, iterations=width)


# ------------------------------------------------------------------ render_phantom


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_render_returns_expected_arrays(class_name):
    image, lesion, brain = render(class_name, seed=0)
    assert image.shape == lesion.shape == brain.shape == (96, 96)
    assert image.dtype == np.uint8
    assert lesion.dtype == bool and brain.dtype == bool
    assert 0.3 < brain.mean() < 0.8  # a head fills most, not all, of the frame
    assert image[brain].mean() > image[~brain].mean() + 20  # dark background
    assert image.std() > 20


def test_render_is_deterministic_by_seed():
    first, second = render("glioma", seed=3), render("glioma", seed=3)
    for array_a, array_b in zip(first, second, strict=True):
        np.testing.assert_array_equal(array_a, array_b)
    other = render("glioma", seed=4)
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("size", [64, 97, 224])
@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_lesion_mask_lies_inside_the_brain(class_name, size):
    for seed in range(12 if size < 200 else 3):
        _, lesion, brain = render(class_name, seed, size)
        assert not (lesion & ~brain).any(), f"{class_name} seed {seed}: lesion outside brain"
        if class_name == "notumor":
            assert not lesion.any()
        else:
            assert lesion.sum() >= 4, f"{class_name} seed {seed}: lesion too small"


@pytest.mark.parametrize("class_name", TUMOR_CLASSES)
def test_lesions_stand_out_from_the_brain(class_name):
    differences = []
    for seed in range(20):
        image, lesion, brain = render(class_name, seed)
        background = np.median(image[brain & ~lesion])
        differences.append(np.abs(image[lesion].astype(float) - background).mean())
    assert min(differences) > 5  # even faint lesions differ from the brain
    assert np.median(differences) > 20


def test_meningioma_touches_the_inner_skull():
    for seed in range(25):
        image, lesion, brain = render("meningioma", seed)
        assert (lesion & edge_band(brain, 2)).any(), f"seed {seed}: meningioma off the dura"
        inside_brain = image[brain & ~lesion].mean()
        assert image[lesion].mean() > inside_brain, f"seed {seed}: meningioma not bright"


def test_pituitary_sits_low_on_the_midline():
    for seed in range(25):
        _, lesion, brain = render("pituitary", seed)
        across, along = brain_frame(brain, lesion)
        assert abs(across) < 0.25, f"seed {seed}: pituitary off the midline ({across:.2f})"
        assert along > 0.5, f"seed {seed}: pituitary not in the lower part ({along:.2f})"
        assert lesion.mean() < 0.02


def test_glioma_is_inside_one_hemisphere_away_from_the_skull():
    sides = set()
    for seed in range(25):
        _, lesion, brain = render("glioma", seed, size=128)
        across, _ = brain_frame(brain, lesion)
        assert abs(across) > 0.12, f"seed {seed}: glioma on the midline ({across:.2f})"
        pixels_across = brain_coordinates(brain, lesion)[:, 0]
        crossing = np.mean(np.sign(pixels_across) != np.sign(across))
        assert crossing < 0.02, f"seed {seed}: glioma crosses the midline"
        assert not (lesion & edge_band(brain, 3)).any(), f"seed {seed}: glioma on the skull"
        sides.add(across > 0)
    assert sides == {True, False}  # both hemispheres occur


def test_lesions_vary_in_size_and_place():
    for class_name in TUMOR_CLASSES:
        areas, centres = [], []
        for seed in range(10):
            _, lesion, _ = render(class_name, seed)
            areas.append(lesion.sum())
            centres.append(np.argwhere(lesion).mean(axis=0))
        assert max(areas) > 1.5 * min(areas), class_name
        assert np.ptp(np.array(centres), axis=0).max() > 3, class_name


@pytest.mark.parametrize(
    ("class_name", "size"), [("tumor", 96), ("Glioma", 96), ("glioma", 63), ("glioma", 96.0)]
)
def test_render_rejects_bad_input(class_name, size):
    with pytest.raises(ValueError):
        phantoms.render_phantom(class_name, size, np.random.default_rng(0))
