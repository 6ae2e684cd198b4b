"""Saliency maps of a classifier: which pixels one prediction depended on.

Pure functions over a Keras model and one image, built on tf-keras-vis (Keras 3 API):

- ``saliency_map``: vanilla gradients, SmoothGrad, Grad-CAM, Grad-CAM++ and
  Faster-ScoreCAM, each as an HxW float map in [0, 1];
- ``SaliencyExplainer``: the app's fast path, one compiled forward/backward pass giving
  the prediction, Grad-CAM and vanilla saliency together (a ``SaliencyResult``);
- ``overlay``: a heatmap blended onto the scan (computing only; drawing is in
  ``viz_saliency``).

Whether to trust a map (lesion masks, the randomisation sanity check, where its mass
lies) is measured in ``course_utils.measure``.

Images are raw [0, 255] RGB arrays (H, W, 3) at the model's input size: the course's
models rescale inside. Scores are taken *before* the softmax (tf-keras-vis'
``ReplaceToLinear``), because a saturated softmax has near-zero gradients.
Nothing happens at import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from collections.abc import Callable, Iterator

import keras
import matplotlib
import numpy as np
import tensorflow as tf
from scipy import ndimage

#: Methods of ``saliency_map``, in the order the lesson shows them.
METHODS = ("saliency", "smoothgrad", "gradcam", "gradcam++", "scorecam")
#: Methods that differentiate through the model (the sanity check's main target).
GRADIENT_METHODS = ("saliency", "smoothgrad", "gradcam", "gradcam++")
#: Default options of each method (override them through ``saliency_map(**options)``).
METHOD_DEFAULTS: dict[str, dict] = {
    "saliency": {},
    "smoothgrad": {"smooth_samples": 20, "smooth_noise": 0.2},
    "gradcam": {},
    "gradcam++": {},
    "scorecam": {"max_N": 10, "batch_size": 16},
}
_CONVOLUTIONS = (
    keras.layers.Conv2D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv2D,
)
#: Layer types that keep a conv layer's feature map as it is (same grid, same meaning).
_ELEMENTWISE = (
    keras.layers.BatchNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
)
#: Attribute keeping a model's ``predict`` function traced with a linear output
#: (Faster-ScoreCAM calls ``model.predict``) between ``linear_output`` blocks, so map after
#: map reuses one trace instead of retracing (and warning about it) on every call.
_LINEAR_PREDICT = "_course_linear_predict_function"


# ----------------------------------------------------------------------- checks


def check_method(method: str) -> None:
    """Raise ValueError unless ``method`` is one of ``METHODS``."""
    if method not in METHODS:
        raise ValueError(f"Unknown saliency method {method!r}; use one of {', '.join(METHODS)}.")


def input_size(model: keras.Model) -> tuple[int, int]:
    """Return the (height, width) the model takes.

    Args:
        model: A model with one image input ``(None, H, W, 3)``.

    Returns:
        ``(H, W)``.
    """
    shape = model.inputs[0].shape
    return int(shape[1]), int(shape[2])


def _check_image(model: keras.Model, image: np.ndarray) -> np.ndarray:
    """Return ``image`` as float32 (H, W, 3), or raise ValueError naming the expected shape."""
    array = np.asarray(image, dtype=np.float32)
    height, width = input_size(model)
    if array.shape != (height, width, 3):
        raise ValueError(
            f"image has shape {array.shape}; expected (H, W, 3) = ({height}, {width}, 3), "
            f"the input size of model {model.name!r}. Resize it first (e.g. with "
            "course_utils.data.pipeline.decode_and_resize) and pass raw [0, 255] RGB pixels."
        )
    return array


def _check_class_index(model: keras.Model, class_index: int) -> int:
    """Return ``class_index`` as int, or raise ValueError when the model has no such output."""
    classes = int(model.outputs[0].shape[-1])
    if not 0 <= int(class_index) < classes:
        raise ValueError(
            f"class_index={class_index} is out of range; the model has {classes} classes, "
            f"use 0 to {classes - 1}."
        )
    return int(class_index)


def _normalize(heatmap: np.ndarray) -> np.ndarray:
    """Scale a map to [0, 1] as float32; a flat map becomes all zeros."""
    heatmap = np.asarray(heatmap, dtype=np.float32)
    low, high = float(heatmap.min()), float(heatmap.max())
    if not np.isfinite(high - low) or high - low <= 0:
        return np.zeros_like(heatmap)
    return (heatmap - low) / (high - low)


# ------------------------------------------------------------------ model access


def output_layer(model: keras.Model) -> tuple[keras.Model, keras.layers.Layer]:
    """Find the layer that makes the model's output, looking inside nested sub-models.

    The Xception classifier ends in the ``head`` sub-model, so its last outer layer
    has no activation of its own: the softmax sits in ``head``'s ``probabilities``.

    Args:
        model: A functional model with one output.

    Returns:
        ``(owner, layer)``: the innermost model whose output layer is ``layer``.
    """
    owner = model
    layer = model.get_layer(model.output_names[0])
    while isinstance(layer, keras.Model):
        owner, layer = layer, layer.get_layer(layer.output_names[0])
    return owner, layer


@contextlib.contextmanager
def linear_output(model: keras.Model) -> Iterator[keras.Model]:
    """Temporarily take the model's output before its final activation (logits).

    Applies tf-keras-vis' ``ReplaceToLinear`` to the innermost output model (on the
    outer model it would silently do nothing when the output comes from a nested
    sub-model) *without cloning*, and restores the activation afterwards, also on
    errors. Keras' cached ``predict`` function is swapped for the model's linear-output
    one around the block (traced once, on first use, and kept for the next block), so a
    trace made inside never leaks out and is not made again for every map. Not
    thread-safe: do not run the model from another thread meanwhile.

    Args:
        model: The model to change in place for the duration of the block.

    Yields:
        The same model, now with a linear output.
    """
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    owner, layer = output_layer(model)
    activation, predict_function = getattr(layer, "activation", None), model.predict_function
    model.predict_function = getattr(model, _LINEAR_PREDICT, None)
    try:
        if activation is not None:
            ReplaceToLinear()(owner)
        yield model
    finally:
        if activation is not None:
            layer.activation = activation
        if model.predict_function is not None:
            setattr(model, _LINEAR_PREDICT, model.predict_function)
        model.predict_function = predict_function


def last_conv_layer(model: keras.Model) -> str:
    """Name the layer Grad-CAM should use: the last convolution's activated feature map.

    Finds the last convolution among the model's own layers (a nested head with only
    dense layers is skipped), then follows the layers that keep its feature map as it
    is (batch norm, activation) and stops before pooling. For the course's Xception
    this is ``block14_sepconv2_act``, for ``build_cnn`` ``conv<N>_relu``.

    Args:
        model: A flat functional model (convolutions are its own layers).

    Returns:
        The layer's name.

    Raises:
        ValueError: If the model has no convolution among its own layers.
    """
    layers = model.layers
    convs = [i for i, layer in enumerate(layers) if isinstance(layer, _CONVOLUTIONS)]
    if not convs:
        raise ValueError(
            f"Model {model.name!r} has no Conv2D layer of its own; pass layer_name='...' "
            "naming the 4-D feature map to use (see model.summary())."
        )
    index = max(convs)
    shape = tuple(layers[index].output.shape)
    while (
        index + 1 < len(layers)
        and isinstance(layers[index + 1], _ELEMENTWISE)
        and tuple(layers[index + 1].output.shape) == shape
    ):
        index += 1
    return layers[index].name


# -------------------------------------------------------------- saliency methods


def _visualizer(method: str) -> type:
    """Import the tf-keras-vis class of a method (quietly: it imports a deprecated scipy path)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Please import `zoom`", DeprecationWarning)
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.scorecam import Scorecam
    classes = {"gradcam": Gradcam, "gradcam++": GradcamPlusPlus, "scorecam": Scorecam}
    return classes.get(method, Saliency)


def _saliency(model, image, score, layer_name, options) -> np.ndarray:
    """Vanilla gradients (or SmoothGrad when ``smooth_samples`` > 0) via tf-keras-vis."""
    Saliency = _visualizer("saliency")  # noqa: N806 (a class)
    seed = options.pop("seed", 0)
    state = np.random.get_state()  # tf-keras-vis draws SmoothGrad's noise from np.random
    np.random.seed(seed)
    try:
        return Saliency(model, clone=False)(score, image, **options)
    finally:
        np.random.set_state(state)


def _cam(model, image, score, layer_name, options, kind: str) -> np.ndarray:
    """Grad-CAM, Grad-CAM++ or Faster-ScoreCAM via tf-keras-vis on ``layer_name``."""
    visualizer = _visualizer(kind)
    arguments = {"penultimate_layer": layer_name, "seek_penultimate_conv_layer": False}
    with contextlib.redirect_stdout(io.StringIO()):  # Scorecam's model.predict progress bar
        return visualizer(model, clone=False)(score, image, **arguments, **options)


_COMPUTE: dict[str, Callable] = {
    "saliency": _saliency,
    "smoothgrad": _saliency,
    "gradcam": lambda *args: _cam(*args, kind="gradcam"),
    "gradcam++": lambda *args: _cam(*args, kind="gradcam++"),
    "scorecam": lambda *args: _cam(*args, kind="scorecam"),
}


def saliency_map(
    model: keras.Model,
    image: np.ndarray,
    class_index: int,
    method: str = "gradcam",
    layer_name: str | None = None,
    **options: object,
) -> np.ndarray:
    """Compute one saliency map of ``model`` for ``class_index`` on one image.

    Methods: ``"saliency"`` (|d score / d pixel|, max over colour channels),
    ``"smoothgrad"`` (the same averaged over noisy copies; ``seed`` fixes the noise),
    ``"gradcam"`` and ``"gradcam++"`` (gradient-weighted feature maps of
    ``layer_name``), ``"scorecam"`` (Faster-ScoreCAM: the ``max_N`` most varied feature
    maps used as masks, weighted by the class score; no gradients). The score is the
    class logit (``linear_output``); the model is restored afterwards.

    Args:
        model: A classifier taking raw [0, 255] RGB pixels.
        image: One image (H, W, 3) at the model's input size, values in [0, 255].
        class_index: The class to explain (usually the predicted one).
        method: One of ``METHODS``.
        layer_name: Feature map of the CAM methods; None finds it (``last_conv_layer``).
        **options: Passed on to the tf-keras-vis call, over ``METHOD_DEFAULTS[method]``
            (e.g. ``smooth_samples``, ``smooth_noise``, ``max_N``, ``batch_size``).

    Returns:
        The map, float32 (H, W), scaled to [0, 1] (all zeros if the map is flat).

    Raises:
        ValueError: If the method, the image shape or the class index is wrong.
    """
    from tf_keras_vis.utils.scores import CategoricalScore

    check_method(method)
    array = _check_image(model, image)
    score = CategoricalScore(_check_class_index(model, class_index))
    if method != "saliency" and method != "smoothgrad":
        layer_name = layer_name or last_conv_layer(model)
    settings = {**METHOD_DEFAULTS[method], **options}
    if method == "saliency":
        settings["smooth_samples"] = 0
    # tf-keras-vis normalises with an epsilon that flattens maps of tiny range: do it here.
    settings["normalize_map" if method in ("saliency", "smoothgrad") else "normalize_cam"] = False
    with linear_output(model), warnings.catch_warnings():
        # tf-keras-vis passes inputs as a list; Keras 3 warns that the structure differs.
        warnings.filterwarnings("ignore", "The structure of `inputs`", UserWarning)
        heatmap = _COMPUTE[method](model, array, score, layer_name, settings)
    return _normalize(np.squeeze(np.asarray(heatmap)))


# ------------------------------------------------------------------- fast path


@dataclasses.dataclass(frozen=True)
class SaliencyResult:
    """What the app shows for one image: the prediction and two maps (H, W in [0, 1])."""

    probabilities: np.ndarray
    class_index: int
    gradcam: np.ndarray
    saliency: np.ndarray


class SaliencyExplainer:
    """Prediction, Grad-CAM and vanilla saliency from ONE compiled forward/backward pass.

    ``keras.Model(inputs, [feature map, output])`` shares the forward pass; one
    ``GradientTape`` gives d logit / d features (Grad-CAM) and d logit / d pixels
    (saliency). The graph is traced once, here, while the output is linear (so the
    traced graph differentiates the logit) with a fixed input signature, so it never
    retraces; the model itself is left as it was. Weights are read when called, so
    further training is seen. Results match tf-keras-vis' ``Gradcam`` and ``Saliency``.

    Args:
        model: A classifier taking raw [0, 255] RGB pixels, one output.
        layer_name: Grad-CAM's feature map; None finds it (``last_conv_layer``).
    """

    def __init__(self, model: keras.Model, layer_name: str | None = None) -> None:
        self.model = model
        self.layer_name = layer_name or last_conv_layer(model)
        self._split = keras.Model(
            model.inputs, [model.get_layer(self.layer_name).output, model.outputs[0]]
        )
        self._activation = getattr(output_layer(model)[1], "activation", None)
        height, width = input_size(model)
        signature = [
            tf.TensorSpec((1, height, width, 3), tf.float32),
            tf.TensorSpec((), tf.int32),
        ]
        with linear_output(model):
            self._step = tf.function(self._forward_backward).get_concrete_function(*signature)

    def _forward_backward(self, images: tf.Tensor, class_index: tf.Tensor) -> tuple:
        """Traced once: probabilities, chosen class, features and both gradients."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            features, logits = self._split(images, training=False)
            logits = tf.cast(logits, tf.float32)
            probabilities = self._activation(logits) if self._activation else logits
            chosen = tf.where(
                class_index < 0, tf.argmax(probabilities[0], output_type=tf.int32), class_index
            )
            score = tf.gather(logits[0], chosen)
        feature_grads, input_grads = tape.gradient(score, [features, images])
        return probabilities[0], chosen, features[0], feature_grads[0], input_grads[0]

    def __call__(self, image: np.ndarray, class_index: int | None = None) -> SaliencyResult:
        """Explain one image.

        Args:
            image: (H, W, 3) raw [0, 255] RGB at the model's input size.
            class_index: Class to explain; None explains the predicted class.

        Returns:
            A ``SaliencyResult`` (probabilities, class index, Grad-CAM, saliency).

        Raises:
            ValueError: If the image shape or the class index is wrong.
        """
        array = _check_image(self.model, image)
        index = -1 if class_index is None else _check_class_index(self.model, class_index)
        outputs = self._step(tf.constant(array[None]), tf.constant(index, tf.int32))
        probabilities, chosen, features, feature_grads, input_grads = (
            np.asarray(o, dtype=np.float32) for o in outputs
        )
        weights = feature_grads.mean(axis=(0, 1))  # Grad-CAM: pooled gradients per channel
        cam = np.maximum((features * weights).sum(axis=-1), 0.0)
        cam = ndimage.zoom(cam, np.divide(array.shape[:2], cam.shape), order=1)
        saliency = np.abs(input_grads).max(axis=-1)
        return SaliencyResult(probabilities, int(chosen), _normalize(cam), _normalize(saliency))


# --------------------------------------------------------------------- overlay


def overlay(
    image: np.ndarray, heatmap: np.ndarray, colormap: str = "jet", alpha: float = 0.4
) -> np.ndarray:
    """Blend a coloured heatmap onto an image.

    Args:
        image: (H, W) grayscale or (H, W, 3) RGB, values in [0, 255].
        heatmap: Map in [0, 1]; resized (bilinear) when its shape differs from the image.
        colormap: A name in ``matplotlib.colormaps``.
        alpha: Weight of the heatmap, 0 (image only) to 1 (heatmap only).

    Returns:
        uint8 RGB (H, W, 3).

    Raises:
        ValueError: If the image is not (H, W) or (H, W, 3), alpha is outside [0, 1],
            or the colormap is unknown.
    """
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"image has shape {array.shape}; pass (H, W) grayscale or (H, W, 3).")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha} is outside [0, 1]; use e.g. alpha=0.4.")
    if colormap not in matplotlib.colormaps:
        raise ValueError(f"Unknown colormap {colormap!r}; use a name such as 'jet' or 'turbo'.")
    heat = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
    if heat.shape != array.shape[:2]:
        heat = np.clip(ndimage.zoom(heat, np.divide(array.shape[:2], heat.shape), order=1), 0, 1)
    colours = matplotlib.colormaps[colormap](heat)[..., :3] * 255.0
    blended = (1.0 - alpha) * array + alpha * colours
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)
