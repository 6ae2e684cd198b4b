"""Tests of course_utils.explain (saliency maps and their measures) and its figures."""

from __future__ import annotations

import keras
import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_utils import (  # noqa: E402
    explain,
    models,
    viz,  # noqa: E402
)

# tf-keras-vis (called directly in the reference tests) passes inputs as a list.
pytestmark = pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning")

FAST_OPTIONS = {"smoothgrad": {"smooth_samples": 4}, "scorecam": {"max_N": 4}}


@pytest.fixture(scope="module")
def cnn() -> keras.Model:
    keras.utils.set_random_seed(1)
    return models.build_cnn(64, filters=(8, 16), last_block_convs=1)


@pytest.fixture(scope="module")
def xception() -> keras.Model:
    keras.utils.set_random_seed(2)
    return models.build_xception_classifier(71, weights=None, pooling="avg")


def _image(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (size, size, 3)).astype(np.float32)


def _disk(size: int, center: tuple[float, float], radius: float) -> np.ndarray:
    rows, columns = np.mgrid[:size, :size]
    return np.hypot(rows - center[0], columns - center[1]) <= radius


def _blob(size: int, center: tuple[float, float], sigma: float) -> np.ndarray:
    rows, columns = np.mgrid[:size, :size]
    return np.exp(-((rows - center[0]) ** 2 + (columns - center[1]) ** 2) / (2 * sigma**2))


# ------------------------------------------------------------------ saliency_map


@pytest.mark.parametrize("method", explain.METHODS)
@pytest.mark.parametrize("which", ["cnn", "xception"])
def test_every_method_gives_a_unit_map(request, which, method):
    model = request.getfixturevalue(which)
    size = explain.input_size(model)[0]
    peaks = []
    for index in range(4):  # an untrained model's CAM can be all negative (flat) for a class
        heatmap = explain.saliency_map(
            model, _image(size), index, method, **FAST_OPTIONS.get(method, {})
        )
        assert heatmap.shape == (size, size) and heatmap.dtype == np.float32
        assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
        peaks.append(float(heatmap.max()))
        if method not in ("gradcam", "gradcam++", "scorecam"):
            break
    assert max(peaks) == pytest.approx(1.0)  # not flat for every class


def test_last_conv_layer_finds_the_activated_feature_map(cnn, xception):
    assert explain.last_conv_layer(cnn) == "conv2_relu"
    assert explain.last_conv_layer(xception) == models.FEATURE_LAYER
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="layer_name"):
        explain.last_conv_layer(dense_only)


def test_bad_arguments_raise_value_errors_naming_the_fix(cnn):
    with pytest.raises(ValueError, match="gradcam\\+\\+, scorecam"):
        explain.saliency_map(cnn, _image(64), 0, "lime")
    with pytest.raises(ValueError, match=r"expected \(H, W, 3\) = \(64, 64, 3\)"):
        explain.saliency_map(cnn, _image(96), 0, "gradcam")
    with pytest.raises(ValueError, match=r"expected \(H, W, 3\)"):
        explain.Explainer(cnn)(_image(64)[..., 0])
    with pytest.raises(ValueError, match="use 0 to 3"):
        explain.saliency_map(cnn, _image(64), 4, "saliency")


@pytest.mark.parametrize("method", ["saliency", "scorecam"])
def test_saliency_map_restores_the_softmax(xception, method):
    image = _image(71, seed=3)
    before = xception.predict(image[None], verbose=0)
    explain.saliency_map(xception, image, 0, method, **FAST_OPTIONS.get(method, {}))
    after = xception.predict(image[None], verbose=0)
    np.testing.assert_allclose(after, before, atol=1e-6)
    assert after.sum() == pytest.approx(1.0, abs=1e-5)
    assert explain.output_layer(xception)[1].name == "probabilities"


def test_replace_to_linear_needs_the_inner_head(xception):
    # Why linear_output exists: tf-keras-vis' ReplaceToLinear on the outer model only
    # touches the "head" sub-model object, which has no activation, so the softmax stays.
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    clone = keras.models.clone_model(xception)
    clone.set_weights(xception.get_weights())
    ReplaceToLinear()(clone)
    assert clone(_image(71)[None]).numpy().sum() == pytest.approx(1.0, abs=1e-5)
    with explain.linear_output(xception):
        assert xception(_image(71)[None]).numpy().sum() != pytest.approx(1.0, abs=1e-3)


def test_smoothgrad_is_reproducible_with_a_seed(cnn):
    first = explain.saliency_map(cnn, _image(64), 2, "smoothgrad", smooth_samples=3, seed=5)
    again = explain.saliency_map(cnn, _image(64), 2, "smoothgrad", smooth_samples=3, seed=5)
    np.testing.assert_array_equal(first, again)


# --------------------------------------------------------------------- Explainer


def _reference_maps(model, image, index):
    """Gradcam and Saliency straight from tf-keras-vis, the documented way."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    layer = explain.last_conv_layer(model)
    with explain.linear_output(model):
        cam = Gradcam(model, clone=False)(
            CategoricalScore(index),
            image,
            penultimate_layer=layer,
            seek_penultimate_conv_layer=False,
            normalize_cam=False,  # its epsilon flattens the tiny maps of untrained models
        )
        saliency = Saliency(model, clone=False)(CategoricalScore(index), image, normalize_map=False)
    return explain._normalize(cam[0]), explain._normalize(saliency[0])


@pytest.mark.parametrize("which", ["cnn", "xception"])
def test_explainer_matches_predict_and_tf_keras_vis(request, which):
    model = request.getfixturevalue(which)
    size = explain.input_size(model)[0]
    image = _image(size, seed=4)
    explainer = explain.Explainer(model)
    result = explainer(image, class_index=2)
    np.testing.assert_allclose(
        result.probabilities, model.predict(image[None], verbose=0)[0], atol=1e-5
    )
    cam, saliency = _reference_maps(model, image, 2)
    np.testing.assert_allclose(result.gradcam, cam, atol=1e-3)
    np.testing.assert_allclose(result.saliency, saliency, atol=1e-3)
    predicted = explainer(image)
    assert predicted.class_index == int(np.argmax(predicted.probabilities))


def test_explainer_agrees_with_the_plain_tf_keras_vis_clone_on_a_flat_model(cnn):
    # On a flat model tf-keras-vis' own cloning + ReplaceToLinear works: same map.
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    image = _image(64, seed=6)
    cam = Gradcam(cnn, model_modifier=ReplaceToLinear())(
        CategoricalScore(1),
        image,
        penultimate_layer="conv2_relu",
        seek_penultimate_conv_layer=False,
        normalize_cam=False,
    )
    expected = explain._normalize(cam[0])
    np.testing.assert_allclose(explain.Explainer(cnn)(image, 1).gradcam, expected, atol=1e-3)


# ------------------------------------------------------------ measuring maps


def test_pointing_game_and_energy_known_answers():
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:4, 2:4] = True
    heatmap = np.zeros((10, 10))
    heatmap[3, 3] = 1.0
    heatmap[8, 8] = 0.5
    assert explain.pointing_game(heatmap, mask, tolerance_px=0)
    assert explain.energy_inside(heatmap, mask) == pytest.approx(1 / 1.5)
    heatmap[8, 8] = 2.0  # the peak moves out of the lesion
    assert not explain.pointing_game(heatmap, mask, tolerance_px=2)
    heatmap[8, 8], heatmap[5, 3] = 0.0, 3.0  # 2 px below the lesion: inside the tolerance
    assert not explain.pointing_game(heatmap, mask, tolerance_px=1)
    assert explain.pointing_game(heatmap, mask, tolerance_px=2)
    assert explain.energy_inside(np.ones((10, 10)), mask) == pytest.approx(0.04)
    assert np.isnan(explain.energy_inside(np.zeros((10, 10)), mask))


def test_measures_reject_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        explain.pointing_game(np.ones((4, 4)), np.ones((5, 5), bool))
    with pytest.raises(ValueError, match="empty"):
        explain.energy_inside(np.ones((4, 4)), np.zeros((4, 4), bool))


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
    images = [_image(48, seed) for seed in range(2)]
    table = explain.score_methods(
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
    table = explain.score_methods(
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
        explain.score_methods(cnn, [_image(64)], [], [0])


# ------------------------------------------------------------ sanity check


def _weights_by_layer(model: keras.Model) -> dict[str, list[np.ndarray]]:
    return {
        layer.path: [w.numpy() for w in layer.weights] for layer in explain._weighted_layers(model)
    }


def test_randomised_copy_changes_only_the_top_layers(cnn):
    before = _weights_by_layer(cnn)
    copy = explain.randomised_copy(cnn, num_layers=2, seed=0)
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
        explain.randomised_copy(cnn, num_layers=99)


def test_randomised_copy_reaches_into_the_head(xception):
    copy = explain.randomised_copy(xception, num_layers=1, seed=1)
    old = xception.get_layer("head").get_layer("probabilities").kernel.numpy()
    new = copy.get_layer("head").get_layer("probabilities").kernel.numpy()
    assert not np.array_equal(old, new)
    np.testing.assert_array_equal(
        xception.get_layer("block14_sepconv2").get_weights()[0],
        copy.get_layer("block14_sepconv2").get_weights()[0],
    )


def test_sanity_check_self_is_one_and_random_is_lower(cnn):
    images, indices = [_image(64, s) for s in range(2)], [0, 1]
    methods = ["saliency", "gradcam"]
    itself = explain.sanity_check(cnn, images, indices, methods, randomised=cnn)
    np.testing.assert_allclose(itself["spearman"], 1.0)
    randomised = explain.randomised_copy(cnn, num_layers=4, seed=3)
    table = explain.sanity_check(cnn, images, indices, methods, randomised=randomised)
    assert set(table.columns) >= {"spearman", "spearman_min", "flat_maps", "images"}
    assert (table["spearman"] < 0.9).all()


# ------------------------------------------------------------------- overlay


def test_overlay_is_uint8_rgb_and_alpha_zero_is_the_image():
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3)).astype(np.uint8)
    heatmap = np.linspace(0, 1, 20 * 24).reshape(20, 24)
    blended = explain.overlay(image, heatmap)
    assert blended.dtype == np.uint8 and blended.shape == (20, 24, 3)
    np.testing.assert_array_equal(explain.overlay(image, heatmap, alpha=0.0), image)
    full = explain.overlay(image, heatmap, colormap="viridis", alpha=1.0)
    expected = np.round(matplotlib.colormaps["viridis"](heatmap)[..., :3] * 255)
    np.testing.assert_array_equal(full, expected.astype(np.uint8))
    gray = explain.overlay(image[..., 0], heatmap[::2, ::2])  # grayscale, smaller map
    assert gray.shape == (20, 24, 3)
    with pytest.raises(ValueError, match="colormap"):
        explain.overlay(image, heatmap, colormap="nope")


# --------------------------------------------------------- saliency_statistics


def test_statistics_of_a_left_blob():
    brain = _disk(100, (50, 50), 45)
    heatmap = _blob(100, (50, 10), 3)
    stats = explain.saliency_statistics(heatmap, brain_mask=brain)
    assert stats["side"] == "left" and stats["near_skull"] and not stats["skull_base"]
    assert stats["centroid_x"] == pytest.approx(0.105, abs=0.01)
    assert stats["spread"] < 0.02
    assert stats["region_source"] == "brain mask"


def test_statistics_of_a_low_centre_blob_without_a_mask():
    image = np.zeros((100, 100), dtype=np.uint8)
    image[_disk(100, (50, 50), 45)] = 120
    heatmap = _blob(100, (88, 50), 3)
    stats = explain.saliency_statistics(heatmap, image=image)
    assert stats["side"] == "midline" and stats["skull_base"] and stats["near_skull"]
    assert stats["region_source"] == "image threshold"
    diffuse = explain.saliency_statistics(np.ones((100, 100)))
    assert diffuse["spread"] == pytest.approx(0.5) and diffuse["region_source"] == "image frame"
    with pytest.raises(ValueError, match="non-negative"):
        explain.saliency_statistics(np.zeros((10, 10)))


# ------------------------------------------------------------------- figures


def test_figures_have_the_expected_axes():
    image = np.full((32, 32), 90, dtype=np.uint8)
    maps = {m: np.random.default_rng(0).random((32, 32)) for m in ("saliency", "gradcam")}
    fig = viz.plot_saliency_comparison(image, maps, mask=_disk(32, (16, 16), 5))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    titled = viz.plot_saliency_comparison(image, maps, title="true glioma, predicted glioma")
    titled.canvas.draw()
    renderer = titled.canvas.get_renderer()
    top_of_panel_titles = max(ax.title.get_window_extent(renderer).y1 for ax in titled.axes)
    assert titled._suptitle.get_window_extent(renderer).y0 >= top_of_panel_titles, "overlap"
    plt.close(titled)
    scores = pd.DataFrame(
        {
            "pointing_game": [0.8, 0.5],
            "pointing_chance": [0.1, 0.1],
            "energy_inside": [0.4, 0.2],
            "mask_share": [0.05, 0.05],
        },
        index=pd.Index(["gradcam", "saliency"], name="method"),
    )
    sanity = pd.DataFrame({"spearman": [0.2, 0.9]}, index=["gradcam", "saliency"])
    figures = [fig, viz.plot_method_scores(scores), viz.plot_sanity_check(sanity)]
    assert all(isinstance(f, Figure) and len(f.axes) == 1 for f in figures[1:])
    _, ax = plt.subplots()
    assert viz.plot_sanity_check(sanity, ax=ax) is ax.figure
    for figure in [*figures, ax.figure]:
        plt.close(figure)
