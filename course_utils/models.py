"""The course's two classifiers: Xception transfer learning and a CNN from scratch.

Both models take **raw RGB pixels in [0, 255]** and do their own scaling with a
``Rescaling`` layer, so the preprocessing can never drift between training,
evaluation and the app: whoever has the ``.keras`` file has the preprocessing.

Both are *flat* functional models: every convolution is a layer of the outer model,
so Grad-CAM can reach any of them with ``model.get_layer(name).output``. The only
nested model is the Xception classifier's small ``head`` (pooling, dropout and dense
layers, no convolutions). It is a sub-model on purpose: phase 1 of transfer learning
trains exactly this object on cached Xception features, and because the full model
calls the same object, its trained weights are already in place for phase 2.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from pathlib import Path

import keras

#: Smallest input side Xception accepts (its stride-32 stem needs 71 px).
MIN_XCEPTION_SIZE = 71
#: Last activation of Xception: the feature map the head and Grad-CAM use.
FEATURE_LAYER = "block14_sepconv2_act"
#: Name of the classifier head sub-model inside the Xception classifier.
HEAD_NAME = "head"
#: The ImageNet weights without the 1000-class top, as Keras names and hashes them.
IMAGENET_FILE = "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/xception/" + IMAGENET_FILE
)
IMAGENET_MD5 = "b0042744bf5b25fce3cb969f33bebb97"
#: First layer trained in phase 2: the exit flow (blocks 13 and 14) of Xception.
DEFAULT_UNFREEZE_FROM = "block13_sepconv1_act"
POOLINGS = ("flatten", "avg", "max")


class PretrainedWeightsUnavailable(RuntimeError):
    """The ImageNet weights could not be downloaded (offline, proxy, firewall)."""


def _check_image_size(image_size: int) -> None:
    """Raise a ValueError naming the fix when Xception cannot take ``image_size``."""
    if int(image_size) < MIN_XCEPTION_SIZE:
        raise ValueError(
            f"image_size={image_size} is too small for Xception, which needs at least "
            f"{MIN_XCEPTION_SIZE} px; use image_size={MIN_XCEPTION_SIZE} or more (224 or 299)."
        )


def imagenet_weights_path() -> Path:
    """Return the ImageNet Xception weights, downloading them once into ``~/.keras/models``.

    Returns:
        The path of ``xception_weights_tf_dim_ordering_tf_kernels_notop.h5``.

    Raises:
        PretrainedWeightsUnavailable: If the file is not cached and cannot be downloaded.
    """
    try:
        path = keras.utils.get_file(
            IMAGENET_FILE, IMAGENET_URL, cache_subdir="models", file_hash=IMAGENET_MD5
        )
    except Exception as error:  # get_file raises a bare Exception for URL errors
        reason = " ".join(str(error).split())  # keep the message one paragraph
        raise PretrainedWeightsUnavailable(
            f"Could not download the ImageNet weights of Xception ({type(error).__name__}: "
            f"{reason}). Fix it in one of three ways: download {IMAGENET_URL} on a connected "
            f"machine and put {IMAGENET_FILE} into ~/.keras/models/ (or $KERAS_HOME/models/); "
            "or pass weights='/path/to/that/file.h5' (or a .weights.h5 of an Xception base); "
            "or set PRETRAINED=False in the notebook (weights=None) to train from random "
            "weights, which is slower and less accurate."
        ) from error
    return Path(path)


def load_base_weights(base: keras.Model, weights: str | Path) -> None:
    """Load a weights file into an Xception base (matched by layer topology).

    Args:
        base: A model made by ``build_xception_base``.
        weights: A ``.weights.h5`` file saved from an Xception base, or a Keras
            Applications-style ``.h5`` file such as the ImageNet ``..._notop.h5``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file does not hold the weights of an Xception base.
    """
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Weights file {path} not found. Pass the path of an existing file, "
            "weights='imagenet' to download the ImageNet weights, or weights=None."
        )
    try:
        base.load_weights(str(path))
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(
            f"Could not load {path} into the Xception base: {error}. The file must hold the "
            f"weights of Xception without its top, e.g. {IMAGENET_FILE} or a file written by "
            "build_xception_base(...).save_weights('base.weights.h5')."
        ) from error


def build_xception_base(
    image_size: int = 299, weights: str | Path | None = "imagenet"
) -> keras.Model:
    """Build the Xception feature extractor that takes raw [0, 255] RGB pixels.

    The first layer scales pixels to [-1, 1] (``x / 127.5 - 1``, Xception's own
    preprocessing), then the Xception layers follow as layers of the same graph.

    Args:
        image_size: Side of the square input, at least 71 px.
        weights: ``"imagenet"`` (downloaded once, cached in ``~/.keras/models``), None
            (random), or the path of a weights file (see ``load_base_weights``).

    Returns:
        A functional model from the raw image to ``block14_sepconv2_act``.

    Raises:
        ValueError: If the image is too small or the weights file does not fit.
        FileNotFoundError: If a weights path does not exist.
        PretrainedWeightsUnavailable: If the ImageNet weights cannot be downloaded.
    """
    _check_image_size(image_size)
    if weights == "imagenet":
        weights = imagenet_weights_path()  # fail before spending time on the build
    inputs = keras.Input((image_size, image_size, 3), name="image")
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="xception_preprocess")(inputs)
    base = keras.applications.Xception(include_top=False, weights=None, input_tensor=scaled)
    if weights is not None:
        load_base_weights(base, weights)
    return base


def build_head(
    feature_shape: tuple[int, ...],
    num_classes: int = 4,
    pooling: str = "flatten",
    dense_units: int = 128,
    dropout: float = 0.3,
    head_dropout: float = 0.25,
    name: str = HEAD_NAME,
) -> keras.Model:
    """Build the classifier head: pooling → Dropout → Dense(relu) → Dropout → softmax.

    Args:
        feature_shape: Shape of one feature map, e.g. ``(7, 7, 2048)``.
        num_classes: Number of classes.
        pooling: ``"flatten"`` (keeps where things are), ``"avg"`` or ``"max"``.
        dense_units: Width of the hidden dense layer.
        dropout: Dropout rate before the hidden layer.
        head_dropout: Dropout rate before the output layer.
        name: Name of the sub-model.

    Returns:
        A functional model from a feature map to class probabilities (float32).

    Raises:
        ValueError: If ``pooling`` is unknown.
    """
    pool_layers = {
        "flatten": keras.layers.Flatten,
        "avg": keras.layers.GlobalAveragePooling2D,
        "max": keras.layers.GlobalMaxPooling2D,
    }
    if pooling not in pool_layers:
        raise ValueError(f"Unknown pooling {pooling!r}; use one of {POOLINGS}.")
    features = keras.Input(tuple(feature_shape), name="features")
    x = pool_layers[pooling](name=f"{name}_pool")(features)
    x = keras.layers.Dropout(dropout, name=f"{name}_dropout_1")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name=f"{name}_dense")(x)
    x = keras.layers.Dropout(head_dropout, name=f"{name}_dropout_2")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="probabilities"
    )(x)
    return keras.Model(features, outputs, name=name)


def build_xception_classifier(
    image_size: int = 299,
    num_classes: int = 4,
    weights: str | Path | None = "imagenet",
    pooling: str = "flatten",
    dense_units: int = 128,
    dropout: float = 0.3,
    head_dropout: float = 0.25,
    name: str = "xception_classifier",
) -> keras.Model:
    """Build Xception with a new head, as one flat functional model on raw pixels.

    Args:
        image_size: Side of the square input, at least 71 px (299 is Xception's own).
        num_classes: Number of classes.
        weights: ``"imagenet"``, None, or a weights file of the base.
        pooling: Head pooling, one of ``POOLINGS``.
        dense_units: Width of the head's hidden layer.
        dropout: Dropout before the hidden layer.
        head_dropout: Dropout before the output layer.
        name: Name of the model.

    Returns:
        ``keras.Model(image, probabilities)``; the Xception layers are layers of this
        model (``get_layer("block14_sepconv2_act")`` works) and the head is the
        ``"head"`` sub-model.

    Raises:
        ValueError: If the image is too small, the pooling unknown or the weights unfit.
        FileNotFoundError: If a weights path does not exist.
        PretrainedWeightsUnavailable: If the ImageNet weights cannot be downloaded.
    """
    base = build_xception_base(image_size, weights)
    head = build_head(
        tuple(base.output.shape[1:]), num_classes, pooling, dense_units, dropout, head_dropout
    )
    return keras.Model(base.inputs[0], head(base.output), name=name)


def get_head(model: keras.Model) -> keras.Model:
    """Return the head sub-model of an Xception classifier.

    Args:
        model: A model made by ``build_xception_classifier``.

    Returns:
        The ``"head"`` sub-model (the same object the model calls).

    Raises:
        ValueError: If the model has no head sub-model.
    """
    try:
        return model.get_layer(HEAD_NAME)
    except ValueError as error:
        raise ValueError(
            f"Model {model.name!r} has no {HEAD_NAME!r} sub-model; build it with "
            "build_xception_classifier."
        ) from error


def feature_extractor(model: keras.Model, layer_name: str = FEATURE_LAYER) -> keras.Model:
    """Cut a classifier at a layer: raw image in, that layer's feature map out.

    Args:
        model: A flat functional model, e.g. from ``build_xception_classifier``.
        layer_name: The layer whose output is wanted.

    Returns:
        A model sharing the classifier's layers and weights.
    """
    return keras.Model(model.inputs[0], model.get_layer(layer_name).output, name=f"{layer_name}_fx")


def build_cnn(
    image_size: int = 128,
    num_classes: int = 4,
    filters: tuple[int, ...] = (16, 32, 64, 128, 256),
    last_block_convs: int = 2,
    dense_units: int = 128,
    dropout: float = 0.3,
    name: str = "cnn",
    batch_norm_momentum: float = 0.9,
    first_block_stride: int = 1,
) -> keras.Model:
    """Build a small CNN from scratch that a lesson can explain layer by layer.

    Raw pixels are scaled to [0, 1]; each block is Conv2D 3x3 (no bias: the batch norm
    adds one) → BatchNormalization → ReLU, then MaxPool 2x2, halving the image while
    the channels double. The first block is narrow because it runs at full resolution
    (it costs the most per filter); the last block, at the smallest resolution, gets a
    second convolution cheaply. Global average pooling makes the result independent of
    the image size; dropout around a small dense layer leads to the softmax.

    Args:
        image_size: Side of the square input.
        num_classes: Number of classes.
        filters: Channels of each convolution block.
        last_block_convs: Convolutions in the last block (the others have one).
        dense_units: Width of the hidden dense layer.
        dropout: Dropout rate before and after the dense layer.
        name: Name of the model.
        batch_norm_momentum: How slowly batch norm's stored statistics follow the
            batches. Keras' 0.99 lags for hundreds of steps, so a short run predicts
            with statistics of the untrained network; 0.9 settles in a few dozen.
        first_block_stride: 1, or 2 for a first convolution that steps two pixels at a
            time and needs no pool: the same halving of the image, with a quarter of the
            first block's outputs to compute, normalise and pool.

    Returns:
        A flat functional model taking raw [0, 255] RGB pixels.

    Raises:
        ValueError: If the image is too small for the number of blocks, or the first
            block's stride is not 1 or 2.
    """
    if first_block_stride not in (1, 2):
        raise ValueError(f"first_block_stride={first_block_stride!r}: use 1 or 2.")
    smallest = 2 ** len(filters)
    if int(image_size) < smallest or not filters or last_block_convs < 1:
        raise ValueError(
            f"image_size={image_size} is too small for {len(filters)} pooling blocks (or "
            f"last_block_convs={last_block_convs} < 1); use image_size >= {max(smallest, 2)}."
        )
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="unit_preprocess")(inputs)
    for index, width in enumerate(filters, start=1):
        repeats = last_block_convs if index == len(filters) else 1
        strides = first_block_stride if index == 1 else 1
        for repeat in range(repeats):
            suffix = "" if repeat == 0 else chr(ord("a") + repeat)
            layer_name = f"conv{index}{suffix}"
            layer_strides = strides if repeat == 0 else 1
            x = _conv_bn_relu(x, width, layer_name, batch_norm_momentum, layer_strides)
        if strides == 1:
            x = keras.layers.MaxPooling2D(2, name=f"conv{index}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(dropout, name="dense_dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="probabilities"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def _conv_bn_relu(
    x: keras.KerasTensor, width: int, name: str, momentum: float, strides: int = 1
) -> keras.KerasTensor:
    """One Conv2D 3x3 (no bias) → BatchNormalization → ReLU, named ``name``, ``_bn``, ``_relu``."""
    x = keras.layers.Conv2D(width, 3, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def compile_model(
    model: keras.Model,
    optimizer: str | keras.optimizers.Optimizer = "adamax",
    learning_rate: float = 1e-3,
    decay_steps: int | None = None,
    label_smoothing: float = 0.0,
    ema_momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> keras.Model:
    """Compile for one-hot labels with accuracy, precision and recall.

    Precision and recall are *micro* averages over all class outputs at a 0.5
    threshold; per-class numbers come from the evaluation notebook.

    Args:
        model: The model to compile (changed in place).
        optimizer: An optimizer name (``"adamax"``, ``"adam"``, ...) or instance.
        learning_rate: Learning rate when ``optimizer`` is a name.
        decay_steps: When given, the learning rate follows a cosine from
            ``learning_rate`` down to 0 over this many training steps (big steps early,
            fine steps at the end, no plateau detection needed).
        label_smoothing: Share of each one-hot target spread over all classes.
        ema_momentum: When above 0, the optimizer also keeps an exponential moving
            average of the weights (each step: ``average = m * average + (1 - m) *
            weights``); ``fitting.fit_model`` validates and ends with the average.
            Only with an optimizer name.
        weight_decay: When above 0, each step also shrinks every kernel by
            ``learning_rate * weight_decay`` of itself (decoupled weight decay, as in
            AdamW); batch norm's scales and offsets and the biases are left alone. Only
            with an optimizer name.

    Returns:
        The same model, for chaining.

    Raises:
        ValueError: If ``decay_steps`` is below 1, ``ema_momentum`` is outside [0, 1),
            ``weight_decay`` is negative, or either comes with an optimizer instance.
    """
    if not 0.0 <= ema_momentum < 1.0:
        raise ValueError(f"ema_momentum={ema_momentum!r}: use a value in [0, 1), e.g. 0.99.")
    if weight_decay < 0:
        raise ValueError(f"weight_decay={weight_decay!r}: use a value >= 0, e.g. 0.05 (0 = off).")
    if (ema_momentum or weight_decay) and not isinstance(optimizer, str):
        raise ValueError(
            "ema_momentum and weight_decay need an optimizer name; for an optimizer "
            "instance, create it with use_ema=True, ema_momentum=... or weight_decay=... "
            "instead."
        )
    if isinstance(optimizer, str):
        rate: float | keras.optimizers.schedules.LearningRateSchedule = learning_rate
        if decay_steps is not None:
            if decay_steps < 1:
                raise ValueError(f"decay_steps must be at least 1, got {decay_steps}.")
            rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
        settings = {"learning_rate": rate}
        if ema_momentum:
            settings.update(use_ema=True, ema_momentum=ema_momentum)
        if weight_decay:
            settings["weight_decay"] = weight_decay
        optimizer = keras.optimizers.get({"class_name": optimizer, "config": settings})
        if weight_decay:
            optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=[
            "accuracy",
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
        ],
    )
    return model


def set_trainable_for_phase(
    model: keras.Model, phase: int, unfreeze_from: str = DEFAULT_UNFREEZE_FROM
) -> None:
    """Freeze the Xception base for phase 1, or unfreeze its top for phase 2.

    Phase 1 trains the head only. Phase 2 also trains every layer from
    ``unfreeze_from`` on (by default the exit flow, blocks 13-14, including block 13's
    residual convolution), but every BatchNormalization layer stays frozen: a frozen
    Keras batch norm runs in inference mode, so its ImageNet statistics are not
    overwritten by small, differently distributed MRI batches. Recompile afterwards.

    Args:
        model: A model made by ``build_xception_classifier``.
        phase: 1 or 2.
        unfreeze_from: Name of the first base layer trained in phase 2.

    Raises:
        ValueError: If the phase is not 1 or 2, or a layer name is unknown.
    """
    if phase not in (1, 2):
        raise ValueError(f"phase must be 1 (head only) or 2 (fine-tune the top), got {phase!r}.")
    get_head(model)
    names = [layer.name for layer in model.layers]
    if unfreeze_from not in names:
        raise ValueError(
            f"No layer {unfreeze_from!r} in {model.name!r}; pick a name from "
            "[layer.name for layer in model.layers], e.g. 'block13_sepconv1_act'."
        )
    start = names.index(unfreeze_from) if phase == 2 else len(names)
    model.trainable = True
    for index, layer in enumerate(model.layers):
        if layer.name == HEAD_NAME:
            layer.trainable = True
        else:
            batch_norm = isinstance(layer, keras.layers.BatchNormalization)
            layer.trainable = index >= start and not batch_norm


def trainable_counts(model: keras.Model) -> dict[str, int]:
    """Count trainable and frozen parameters.

    Args:
        model: Any Keras model.

    Returns:
        ``{"trainable", "non_trainable", "total"}`` parameter counts.
    """
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}


# --- rebuilding a saved model from its card ----------------------------------------------

#: The builders a card's ``build`` entry can name.
BUILDERS = {"xception": build_xception_classifier, "cnn": build_cnn}
#: Builder arguments a card does not record: the name, and weights that a saved model replaces.
_NOT_RECORDED = ("name", "weights")


def build_spec(builder: str, image_size: int, num_classes: int, **options: object) -> dict:
    """Describe how to rebuild a model exactly: the ``build`` entry of its card.

    Every argument of the builder is recorded (its default unless ``options`` sets it),
    so a later change of a default cannot change what an old card rebuilds.

    Args:
        builder: ``"xception"`` or ``"cnn"`` (a key of ``BUILDERS``).
        image_size: Side of the square input.
        num_classes: Number of classes.
        **options: Builder arguments the model was built with (e.g. ``filters``).

    Returns:
        E.g. ``{"builder": "cnn", "image_size": 128, "num_classes": 4, "filters": [...]}``.

    Raises:
        ValueError: If the builder is unknown.
    """
    if builder not in BUILDERS:
        raise ValueError(f"Unknown builder {builder!r}; use one of {list(BUILDERS)}.")
    parameters = inspect.signature(BUILDERS[builder]).parameters.values()
    spec = {
        parameter.name: list(parameter.default)
        if isinstance(parameter.default, tuple)
        else parameter.default
        for parameter in parameters
        if parameter.name not in _NOT_RECORDED
    }
    unknown = sorted(set(options) - set(spec))
    if unknown:
        raise ValueError(f"{builder} takes no argument(s) {unknown}; use some of {sorted(spec)}.")
    spec.update({k: list(v) if isinstance(v, tuple) else v for k, v in options.items()})
    return {"builder": builder, **spec, "image_size": int(image_size), "num_classes": num_classes}


def build_from_card(card: Mapping) -> keras.Model:
    """Rebuild a trained model's architecture from its card, ready for ``load_weights``.

    Xception is built with ``weights=None`` (no download): the saved weights replace
    them. A ``.keras`` file saved by one Keras 3 version may not load in another; its
    ``<name>.weights.h5`` loads into this rebuilt model in any of them.

    Args:
        card: A model card with a ``build`` entry (``build_spec``).

    Returns:
        The untrained model, with the architecture the card records.

    Raises:
        ValueError: If the card has no ``build`` entry or names an unknown builder.
    """
    spec = dict(card.get("build") or {})
    builder = spec.pop("builder", None)
    if builder not in BUILDERS:
        raise ValueError(
            f"The model card of {card.get('name', 'this model')!r} has no usable 'build' entry "
            f"(builder {builder!r}); re-train the model with notebook 02/03 or `python -m "
            "course_utils train` to write a card that records its architecture."
        )
    arguments = {
        key: tuple(value) if isinstance(value, list) else value for key, value in spec.items()
    }
    if builder == "xception":
        arguments["weights"] = None
    return BUILDERS[builder](**arguments)
