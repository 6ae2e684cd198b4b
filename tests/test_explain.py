"""Tests of course_utils.explain: saliency maps, the one-pass SaliencyExplainer, overlays."""

from __future__ import annotations

import keras
import matplotlib
import numpy as np
import pytest
from tiny_cnn import random_image

from course_utils import explain, models

# tf-keras-vis (called directly in the reference tests) passes inputs as a list.
pytestmark = pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning")

FAST_OPTIONS = {"smoothgrad": {"smooth_samples": 4}, "scorecam": {"max_N": 4}}


# ------------------------------------------------------------------ saliency_map


@pytest.mark.parametrize("method", explain.METHODS)
@pytest.mark.parametrize("which", ["cnn", "xception"])
def test_every_method_gives_a_unit_map(request, which, method):
    model = request.getfixturevalue(which)
    size = explain.input_size(model)[0]
    peaks = []
    for index in range(4):  # an untrained model's CAM can be all negative (flat) for a class
        heatmap = explain.saliency_map(
            model, random_image(size), index, method, **FAST_OPTIONS.get(method, {})
        )
        assert heatmap.shape == (size, size) and heatmap.dtype == np.float32
        assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
        peaks.append(float(heatmap.max()))
        if method not in ("gradcam", "gradcam++", "scorecam"):
            break
    assert max(peaks) == pytest.approx(1.0)  # not flat for every class


def test_last_conv_layer_finds_the_activated_feature_map(cnn, strided_cnn, xception):
    assert explain.last_conv_layer(cnn) == explain.last_conv_layer(strided_cnn) == "conv2_relu"
    assert explain.last_conv_layer(xception) == models.FEATURE_LAYER
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="layer_name"):
        explain.last_conv_layer(dense_only)


def test_bad_arguments_raise_value_errors_naming_the_fix(cnn):
    with pytest.raises(ValueError, match="gradcam\\+\\+, scorecam"):
        explain.saliency_map(cnn, random_image(64), 0, "lime")
    with pytest.raises(ValueError, match=r"expected \(H, W, 3\) = \(64, 64, 3\)"):
        explain.saliency_map(cnn, random_image(96), 0, "gradcam")
    with pytest.raises(ValueError, match=r"expected \(H, W, 3\)"):
        explain.SaliencyExplainer(cnn)(random_image(64)[..., 0])
    with pytest.raises(ValueError, match="use 0 to 3"):
        explain.saliency_map(cnn, random_image(64), 4, "saliency")


@pytest.mark.parametrize("method", ["saliency", "scorecam"])
def test_saliency_map_restores_the_softmax(xception, method):
    image = random_image(71, seed=3)
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
    assert clone(random_image(71)[None]).numpy().sum() == pytest.approx(1.0, abs=1e-5)
    with explain.linear_output(xception):
        assert xception(random_image(71)[None]).numpy().sum() != pytest.approx(1.0, abs=1e-3)


def test_smoothgrad_is_reproducible_with_a_seed(cnn):
    first = explain.saliency_map(cnn, random_image(64), 2, "smoothgrad", smooth_samples=3, seed=5)
    again = explain.saliency_map(cnn, random_image(64), 2, "smoothgrad", smooth_samples=3, seed=5)
    np.testing.assert_array_equal(first, again)


# ------------------------------------------------------------ SaliencyExplainer


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


@pytest.mark.parametrize("which", ["cnn", "strided_cnn", "xception"])
def test_explainer_matches_predict_and_tf_keras_vis(request, which):
    model = request.getfixturevalue(which)
    size = explain.input_size(model)[0]
    image = random_image(size, seed=4)
    explainer = explain.SaliencyExplainer(model)
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

    image = random_image(64, seed=6)
    cam = Gradcam(cnn, model_modifier=ReplaceToLinear())(
        CategoricalScore(1),
        image,
        penultimate_layer="conv2_relu",
        seek_penultimate_conv_layer=False,
        normalize_cam=False,
    )
    expected = explain._normalize(cam[0])
    np.testing.assert_allclose(
        explain.SaliencyExplainer(cnn)(image, 1).gradcam, expected, atol=1e-3
    )


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
