"""Tests of course_utils.measure: maps scored against lesion masks, the sanity check, statistics."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from tiny_cnn import random_image

from course_utils import measure, models

# tf-keras-vis passes inputs as a list.
pytestmark = pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning")


def _disk(size: int, center: tuple[float, float], radius: float) -> np.ndarray:
    rows, columns = np.mgrid[:size, :size]
    return np.hypot(rows - center[0], columns - center[1]) <= radius


def _blob(size: int, center: tuple[float, float], sigma: float) -> np.ndarray:
    rows, columns = np.mgrid[:size, :size]
    return np.exp(-((rows - center[0]) ** 2 + (columns - center[1]) ** 2) / (2 * sigma**2))


# ------------------------------------------------------------ measuring maps


def test_pointing_game_and_energy_known_answers():
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:4, 2:4] = True
    heatmap = np.zeros((10, 10))
    heatmap[3, 3] = 1.0
    heatmap[8, 8] = 0.5
    assert measure.pointing_game(heatmap, mask, tolerance_px=0)
    assert measure.energy_inside(heatmap, mask) == pytest.approx(1 / 1.5)
    heatmap[8, 8] = 2.0  # the peak moves out of the lesion
    assert not measure.pointing_game(heatmap, mask, tolerance_px=2)
    heatmap[8, 8], heatmap[5, 3] = 0.0, 3.0  # 2 px below the lesion: inside the tolerance
    assert not measure.pointing_game(heatmap, mask, tolerance_px=1)
    assert measure.pointing_game(heatmap, mask, tolerance_px=2)
    assert measure.energy_inside(np.ones((10, 10)), mask) == pytest.approx(0.04)
    assert np.isnan(measure.energy_inside(np.zeros((10, 10)), mask))


def test_measures_reject_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        measure.pointing_game(np.ones((4, 4)), np.ones((5, 5), bool))
    with pytest.raises(ValueError, match="empty"):
        measure.energy_inside(np.ones((4, 4)), np.zeros((4, 4), bool))


def _region_model(size: int, region: np.ndarray) -> keras.Model:
    """A model whose features (and so its output) come only from ``region`` of the image."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Lambda(lambda t: t * region[None, :, :, None].astype("float32"))(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    x = keras.layers.ReLU(name="conv_relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_maps_of_a_region_model_lie_in_the_region():
    keras.utils.set_random_seed(3)
    region = _disk(48, (30, 16), 7)
    model = _region_model(48, region)
    images = [random_image(48, seed) for seed in range(2)]
    table = measure.score_methods(
        model, images, [region, region], [0, 0], methods=["saliency", "gradcam"]
    )
    assert list(table.columns[:4]) == ["pointing_game", "pointing_chance", "energy_inside"] + [
        "mask_share"
    ]
    assert table.loc["saliency", "energy_inside"] == pytest.approx(1.0)
    assert (table["pointing_game"] == 1.0).all()
    assert (table["energy_inside"] > 3 * table["mask_share"]).all()


def _blob_data(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Noisy dark images; class 0 has one bright blob somewhere, class 1 none."""
    rng = np.random.default_rng(seed)
    images = rng.normal(60, 15, (count, size, size, 1)).repeat(3, axis=-1)
    labels, masks = np.arange(count) % 2, []
    for image, label in zip(images, labels, strict=True):
        mask = _disk(size, tuple(rng.uniform(14, size - 14, 2)), rng.uniform(5, 8))
        if label == 0:
            image[mask] += 140
        masks.append(mask)
    return np.clip(images, 0, 255).astype(np.float32), labels, masks


def test_gradcam_of_a_trained_model_points_at_the_blob():
    keras.utils.set_random_seed(0)
    images, labels, masks = _blob_data(128, 64, seed=0)
    model = models.build_cnn(64, num_classes=2, filters=(8, 16), last_block_convs=1, dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(images, labels, batch_size=32, epochs=6, verbose=0)
    test_images, test_labels, test_masks = _blob_data(8, 64, seed=1)
    blobs = [i for i in range(8) if test_labels[i] == 0]
    table = measure.score_methods(
        model,
        [test_images[i] for i in blobs],
        [test_masks[i] for i in blobs],
        [0] * len(blobs),
        methods=["gradcam"],
    )
    # about 0.7 vs a chance of 0.03 over seeds 0-3; a wide margin keeps it stable
    assert table.loc["gradcam", "energy_inside"] > 5 * table.loc["gradcam", "mask_share"]
    assert table.loc["gradcam", "pointing_game"] >= 0.75


def test_score_methods_rejects_mismatched_lengths(cnn):
    with pytest.raises(ValueError, match="same length"):
        measure.score_methods(cnn, [random_image(64)], [], [0])


# ------------------------------------------------------------ sanity check


def _weights_by_layer(model: keras.Model) -> dict[str, list[np.ndarray]]:
    return {
        layer.path: [w.numpy() for w in layer.weights] for layer in measure._weighted_layers(model)
    }


def test_randomised_copy_changes_only_the_top_layers(cnn):
    before = _weights_by_layer(cnn)
    copy = measure.randomised_copy(cnn, num_layers=2, seed=0)
    after, copied = _weights_by_layer(cnn), _weights_by_layer(copy)
    for name in before:
        for old, new in zip(before[name], after[name], strict=True):
            np.testing.assert_array_equal(old, new)  # the trained model is untouched
    changed = [
        any(not np.array_equal(a, b) for a, b in zip(w, copied_w, strict=True))
        for w, copied_w in zip(before.values(), copied.values(), strict=True)
    ]
    assert changed == [False] * (len(changed) - 2) + [True, True]
    with pytest.raises(ValueError, match="num_layers=99"):
        measure.randomised_copy(cnn, num_layers=99)


def test_randomised_copy_reaches_into_the_head(xception):
    copy = measure.randomised_copy(xception, num_layers=1, seed=1)
    old = xception.get_layer("head").get_layer("probabilities").kernel.numpy()
    new = copy.get_layer("head").get_layer("probabilities").kernel.numpy()
    assert not np.array_equal(old, new)
    np.testing.assert_array_equal(
        xception.get_layer("block14_sepconv2").get_weights()[0],
        copy.get_layer("block14_sepconv2").get_weights()[0],
    )


def test_sanity_check_self_is_one_and_random_is_lower(cnn):
    images, indices = [random_image(64, s) for s in range(2)], [0, 1]
    methods = ["saliency", "gradcam"]
    itself = measure.sanity_check(cnn, images, indices, methods, randomised=cnn)
    np.testing.assert_allclose(itself["spearman"], 1.0)
    randomised = measure.randomised_copy(cnn, num_layers=4, seed=3)
    table = measure.sanity_check(cnn, images, indices, methods, randomised=randomised)
    assert set(table.columns) >= {"spearman", "spearman_min", "flat_maps", "images"}
    assert (table["spearman"] < 0.9).all()


# --------------------------------------------------------- saliency_statistics


def test_statistics_of_a_left_blob():
    brain = _disk(100, (50, 50), 45)
    heatmap = _blob(100, (50, 10), 3)
    stats = measure.saliency_statistics(heatmap, brain_mask=brain, plane="axial")
    assert stats["side"] == "left" and stats["near_skull"] and not stats["skull_base"]
    assert stats["skull_base"] is None and stats["midline"] is False and not stats["sella"]
    assert stats["position"] == "middle-left" and stats["plane"] == "axial"
    assert stats["centroid_x"] == pytest.approx(0.105, abs=0.01)
    assert stats["spread"] < 0.02
    assert stats["region_source"] == "brain mask"


def test_statistics_of_a_low_centre_blob_without_a_mask_or_plane():
    image = np.zeros((100, 100), dtype=np.uint8)
    image[_disk(100, (50, 50), 45)] = 120
    heatmap = _blob(100, (88, 50), 3)
    stats = measure.saliency_statistics(heatmap, image=image)
    assert stats["side"] == "centre" and stats["position"] == "lower-centre" and stats["near_skull"]
    assert stats["plane"] is None
    for key in ("midline", "skull_base", "sella", "region"):
        assert stats[key] is None, key  # these words need the plane
    assert stats["region_source"] == "image threshold"
    coronal = measure.saliency_statistics(heatmap, image=image, plane="coronal")
    assert coronal["midline"] and coronal["skull_base"] and coronal["sella"]
    assert coronal["region"] == "inferior"
    sagittal = measure.saliency_statistics(heatmap, image=image, plane="sagittal")
    assert sagittal["midline"] is None and sagittal["skull_base"] and sagittal["sella"]
    diffuse = measure.saliency_statistics(np.ones((100, 100)))
    assert diffuse["spread"] == pytest.approx(0.5) and diffuse["region_source"] == "image frame"
    assert diffuse["position"] == "centre"
    with pytest.raises(ValueError, match="non-negative"):
        measure.saliency_statistics(np.zeros((10, 10)))
    with pytest.raises(ValueError, match="plane"):
        measure.saliency_statistics(heatmap, plane="oblique")


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_statistics_find_the_sella_of_phantom_pituitary_lesions_only(plane):
    from scipy import ndimage

    from course_utils.data.phantoms import render_phantom

    found = {}
    for class_name in ("pituitary", "glioma", "meningioma"):
        hits = []
        for seed in range(12):
            phantom = render_phantom(class_name, 96, np.random.default_rng(seed), plane=plane)
            heatmap = ndimage.gaussian_filter(phantom.lesion_mask.astype(float), 1.5)
            stats = measure.saliency_statistics(heatmap, phantom.brain_mask, plane=plane)
            hits.append(stats["sella"])
        found[class_name] = np.mean(hits)
    assert found["pituitary"] == 1.0
    assert found["glioma"] <= 0.1 and found["meningioma"] <= 0.2, found


def test_axial_regions_follow_anterior_at_the_top():
    brain = _disk(100, (50, 50), 45)
    top = measure.saliency_statistics(_blob(100, (15, 50), 3), brain_mask=brain, plane="axial")
    assert top["region"] == "anterior" and top["midline"] and not top["sella"]
    front = measure.saliency_statistics(_blob(100, (50, 12), 3), brain_mask=brain, plane="sagittal")
    assert front["region"] == "anterior" and front["midline"] is None
