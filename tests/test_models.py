"""The models: shapes, raw-pixel input, flat graphs for Grad-CAM, phases, weights, errors."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from course_utils import models  # noqa: E402

SIZE = 71  # the smallest input Xception takes: fast to build and run
CONV_TYPES = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)


def _images(count: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


def _all_layers(model: keras.Model) -> list:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found += _all_layers(layer)
    return found


@pytest.fixture(scope="module")
def xception() -> keras.Model:
    keras.utils.set_random_seed(0)
    return models.build_xception_classifier(SIZE, num_classes=4, weights=None)


def test_output_shape_and_softmax(xception: keras.Model) -> None:
    probabilities = np.asarray(xception(_images(3), training=False))
    assert probabilities.shape == (3, 4)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities >= 0).all()


def test_model_takes_raw_pixels(xception: keras.Model) -> None:
    rescale = xception.layers[1]
    assert isinstance(rescale, keras.layers.Rescaling)
    assert rescale.scale == pytest.approx(1 / 127.5) and rescale.offset == pytest.approx(-1.0)
    scaled = rescale(np.array([[[[0.0, 127.5, 255.0]]]], dtype="float32"))
    np.testing.assert_allclose(np.asarray(scaled).ravel(), [-1.0, 0.0, 1.0], atol=1e-6)


def test_model_is_flat_and_gradcam_ready(xception: keras.Model) -> None:
    nested = [layer for layer in xception.layers if isinstance(layer, keras.Model)]
    assert [layer.name for layer in nested] == [models.HEAD_NAME]
    for sub_model in nested:
        assert not [layer for layer in _all_layers(sub_model) if isinstance(layer, CONV_TYPES)]
    top_level_convs = [layer for layer in xception.layers if isinstance(layer, CONV_TYPES)]
    assert len(top_level_convs) > 30, "the Xception convolutions must be layers of the model"

    target = xception.get_layer(models.FEATURE_LAYER)
    grad_model = keras.Model(xception.input, [target.output, xception.output])
    images = tf.constant(_images(2))
    with tf.GradientTape() as tape:
        feature_map, probabilities = grad_model(images, training=False)
        score = probabilities[:, 2]
    gradient = tape.gradient(score, feature_map)
    assert feature_map.shape[1:] == (3, 3, 2048)
    assert gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_other_sizes_and_poolings(pooling: str) -> None:
    model = models.build_xception_classifier(96, num_classes=3, weights=None, pooling=pooling)
    assert model(_images(2, 96), training=False).shape == (2, 3)
    assert models.get_head(model).count_params() == 2048 * 128 + 128 + 128 * 3 + 3


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match=r"image_size=70.*at least 71"):
        models.build_xception_classifier(70, weights=None)
    with pytest.raises(ValueError, match="pooling"):
        models.build_head((3, 3, 8), pooling="median")
    with pytest.raises(ValueError, match="image_size=8"):
        models.build_cnn(8)


def test_trainable_parameters_per_phase() -> None:
    model = models.build_xception_classifier(SIZE, weights=None)
    head = models.get_head(model)
    layers = {layer.name: layer for layer in model.layers}
    batch_norms = [
        layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]

    models.set_trainable_for_phase(model, 1)
    phase1 = models.trainable_counts(model)
    assert phase1["trainable"] == head.count_params()
    assert phase1["total"] == model.count_params()
    assert not any(layer.trainable for layer in model.layers if layer is not head)

    models.set_trainable_for_phase(model, 2)
    phase2 = models.trainable_counts(model)
    assert phase1["trainable"] < phase2["trainable"] < phase2["total"]
    assert batch_norms and not any(layer.trainable for layer in batch_norms)
    assert layers["block14_sepconv2"].trainable and layers["block13_sepconv1"].trainable
    assert not layers["block12_sepconv3"].trainable and not layers["block1_conv1"].trainable
    start = list(layers).index(models.DEFAULT_UNFREEZE_FROM)
    late_convs = [layer for layer in model.layers[start:] if isinstance(layer, CONV_TYPES)]
    assert len(late_convs) == 5 and all(layer.trainable for layer in late_convs)  # incl. residual
    assert head.trainable

    models.set_trainable_for_phase(model, 1)
    assert models.trainable_counts(model) == phase1
    with pytest.raises(ValueError, match="phase"):
        models.set_trainable_for_phase(model, 3)
    with pytest.raises(ValueError, match="block99"):
        models.set_trainable_for_phase(model, 2, unfreeze_from="block99")


def _weighted_base_layers(model: keras.Model) -> list:
    """Layers with weights, in graph order, without the head (auto names differ per build)."""
    return [layer for layer in model.layers if layer.weights and layer.name != models.HEAD_NAME]


def _assert_same_base_weights(expected: keras.Model, model: keras.Model) -> None:
    pairs = list(zip(_weighted_base_layers(expected), _weighted_base_layers(model), strict=True))
    assert len(pairs) == 80  # 40 convolutions and 40 batch norms
    for want, got in pairs:
        for want_array, got_array in zip(want.get_weights(), got.get_weights(), strict=True):
            np.testing.assert_array_equal(want_array, got_array)


def test_weights_path_is_loaded_into_the_base(tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    source = models.build_xception_base(SIZE, weights=None)
    path = tmp_path / "base.weights.h5"
    source.save_weights(path)

    keras.utils.set_random_seed(2)
    loaded = models.build_xception_classifier(SIZE, weights=path)
    _assert_same_base_weights(source, loaded)

    keras.utils.set_random_seed(3)
    fresh = models.build_xception_classifier(SIZE, weights=None)
    kernel = source.get_layer("block1_conv1").get_weights()[0]
    assert not np.allclose(kernel, fresh.get_layer("block1_conv1").get_weights()[0])


def test_imagenet_style_h5_file_is_loaded(tmp_path: Path) -> None:
    """The offline fix: a Keras Applications ``..._notop.h5`` file passed as a path."""
    h5py = pytest.importorskip("h5py")
    legacy = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    keras.utils.set_random_seed(4)
    plain = keras.applications.Xception(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    path = tmp_path / models.IMAGENET_FILE
    with h5py.File(path, "w") as file:
        legacy.save_weights_to_hdf5_group(file, plain)
    loaded = models.build_xception_classifier(SIZE, weights=str(path))
    _assert_same_base_weights(plain, loaded)


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_unusable_weights_raise(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.weights.h5"
    with pytest.raises(FileNotFoundError, match="nowhere.weights.h5"):
        models.build_xception_classifier(SIZE, weights=missing)
    other = tmp_path / "cnn.weights.h5"
    models.build_cnn(32).save_weights(other)
    with pytest.raises(ValueError, match="cnn.weights.h5"):
        models.build_xception_classifier(SIZE, weights=other)


@pytest.mark.parametrize(
    "error",
    [
        urllib.error.URLError("[Errno -3] Temporary failure in name resolution"),
        Exception("URL fetch failure on https://storage.googleapis.com/...:\nNone -- timed out"),
    ],
)
def test_imagenet_download_failure_explains_the_fixes(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def offline(*args: object, **kwargs: object) -> str:
        raise error

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(models.PretrainedWeightsUnavailable) as info:
        models.build_xception_classifier(SIZE, weights="imagenet")
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert "\n" not in message, "one paragraph"
    for fix in (models.IMAGENET_FILE, "~/.keras/models/", "weights=", "PRETRAINED=False"):
        assert fix in message
    assert info.value.__cause__ is error


def test_separable_parameter_counts_of_notebook_02() -> None:
    """The counts notebook 02 works out by hand (9 C_in C_out vs 9 C_in + C_in C_out)."""
    c_in, c_out = 64, 128
    plain = 3 * 3 * c_in * c_out + c_out  # one 3x3xC_in filter per output channel, + bias
    depthwise, pointwise = 3 * 3 * c_in, c_in * c_out + c_out
    assert plain == 73_856
    assert depthwise == 576 and pointwise == 8_320
    assert depthwise + pointwise == 8_896
    assert plain / (depthwise + pointwise) == pytest.approx(73_856 / 8_896)
    assert plain - c_out == 73_728  # without bias

    inputs = keras.Input((8, 8, 64))
    assert keras.Model(inputs, keras.layers.Conv2D(128, 3)(inputs)).count_params() == 73_856
    separable = keras.layers.SeparableConv2D(128, 3)(inputs)
    assert keras.Model(inputs, separable).count_params() == 8_896


def test_build_from_card_rebuilds_xception_without_download(
    xception: keras.Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_download(*args: object, **kwargs: object) -> str:
        raise AssertionError("build_from_card must not download ImageNet weights")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    spec = models.build_spec("xception", SIZE, 4)
    assert spec["builder"] == "xception" and spec["pooling"] == "flatten"
    assert "weights" not in spec and "name" not in spec
    path = tmp_path / "xception.weights.h5"
    xception.save_weights(path)
    rebuilt = models.build_from_card({"name": "xception", "build": spec})
    rebuilt.load_weights(path)
    images = _images(2)
    np.testing.assert_array_equal(
        rebuilt.predict_on_batch(images), xception.predict_on_batch(images)
    )
    cnn_spec = models.build_spec("cnn", 64, 3)
    assert cnn_spec["filters"] == [16, 32, 64, 128, 256]  # JSON-ready lists
    assert (
        models.build_from_card({"build": cnn_spec}).count_params()
        == models.build_cnn(64, 3).count_params()
    )
    with pytest.raises(ValueError, match="Unknown builder"):
        models.build_spec("resnet", 64, 3)
    with pytest.raises(ValueError, match="'build' entry"):
        models.build_from_card({"name": "old", "build": {"builder": "resnet"}})


def test_cnn_is_small_flat_and_takes_raw_pixels() -> None:
    model = models.build_cnn(64, num_classes=4)
    probabilities = np.asarray(model(_images(2, 64), training=False))
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert not [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert model.layers[1].scale == pytest.approx(1 / 255)
    assert model.get_layer("conv4").output.shape[1:] == (8, 8, 128)  # after 3 poolings
    assert model.get_layer("conv5b").output.shape[1:] == (4, 4, 256)  # the last block's 2nd conv
    widths = (3, 16, 32, 64, 128, 256, 256)
    convs = sum(9 * cin * cout + 4 * cout for cin, cout in zip(widths, widths[1:], strict=False))
    assert model.count_params() == convs + 256 * 128 + 128 + 128 * 4 + 4  # same at any size
    assert model.count_params() == 1_018_356  # the number lesson 03 and the quiz quote
    assert models.build_cnn(256).count_params() == model.count_params()
    deeper = models.build_cnn(64, last_block_convs=3)  # the guide quotes its 1,609,204
    assert deeper.get_layer("conv5c").output.shape[1:] == (4, 4, 256)
    assert deeper.count_params() - model.count_params() == 9 * 256 * 256 + 4 * 256
    assert deeper.count_params() == 1_609_204


def test_a_first_convolution_with_stride_2_replaces_the_first_pool() -> None:
    pooled = models.build_cnn(64)
    strided = models.build_cnn(64, first_block_stride=2)
    names = [layer.name for layer in strided.layers]
    assert "conv1_pool" not in names and "conv2_pool" in names
    assert strided.get_layer("conv1").strides == (2, 2)
    assert strided.get_layer("conv1").output.shape[1:] == (32, 32, 16)  # pooled: after the pool
    assert pooled.get_layer("conv1_pool").output.shape[1:] == (32, 32, 16)
    assert strided.get_layer("conv2").strides == (1, 1)
    assert strided.get_layer("conv5b").output.shape[1:] == (4, 4, 256)
    assert strided.count_params() == pooled.count_params()  # the same weights, fewer outputs
    assert strided.name == pooled.name == "cnn"
    images = _images(2, 64)
    np.testing.assert_allclose(np.asarray(strided(images)).sum(axis=1), 1.0, atol=1e-5)
    for stride in (0, 3):
        with pytest.raises(ValueError, match=f"first_block_stride={stride}: use 1 or 2"):
            models.build_cnn(64, first_block_stride=stride)


def test_compile_model_metrics() -> None:
    model = models.compile_model(models.build_cnn(32, filters=(8, 16)), learning_rate=1e-3)
    labels = np.eye(4, dtype="float32")[[0, 1, 2, 3]]
    results = model.evaluate(_images(4, 32), labels, verbose=0, return_dict=True)
    assert {"loss", "accuracy", "precision", "recall"} <= set(results)
    assert type(model.optimizer).__name__ == "Adamax"
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)


def test_compile_model_cosine_decay() -> None:
    model = models.compile_model(
        models.build_cnn(32, filters=(8, 16)), "adam", 2e-3, decay_steps=10
    )
    schedule = model.optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    assert schedule["config"]["initial_learning_rate"] == pytest.approx(2e-3)
    assert schedule["config"]["decay_steps"] == 10
    with pytest.raises(ValueError, match="decay_steps"):
        models.compile_model(models.build_cnn(32, filters=(8, 16)), "adam", decay_steps=0)


def test_output_stays_float32_under_mixed_precision() -> None:
    try:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
        model = models.build_xception_classifier(SIZE, weights=None)
        assert model.get_layer(models.FEATURE_LAYER).output.dtype == "float16"
        assert model(_images(1), training=False).dtype == tf.float32
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
