"""Small computations the lessons show: worked examples, model tables, curves, comparisons.

Everything here computes and returns numbers or tables; nothing draws (that is
``viz``) and nothing writes files. The notebooks call these functions so that each
figure and table in the text is computed, not typed in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from course_utils.models import HEAD_NAME, compile_model, separable_vs_plain_params

#: Keras clips probabilities to [EPSILON, 1 - EPSILON] before taking the logarithm.
EPSILON = 1e-7
#: The three flows of Xception and the blocks each holds (Chollet, 2017).
XCEPTION_FLOWS = {"entry": range(1, 5), "middle": range(5, 13), "exit": range(13, 15)}


# --- the loss ------------------------------------------------------------------------


def softmax(logits: Sequence[float] | np.ndarray) -> np.ndarray:
    """Turn raw scores (logits) into probabilities that sum to 1.

    Args:
        logits: One score per class (the last axis holds the classes).

    Returns:
        ``exp(z) / sum(exp(z))`` along the last axis, computed stably.
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    exp = np.exp(z)
    return exp / exp.sum(axis=-1, keepdims=True)


def cross_entropy_example(
    probabilities: Sequence[float] | np.ndarray,
    true_class: int | str,
    class_names: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, float]:
    """Work categorical cross-entropy out for one image, one class per row.

    The loss is ``-sum_k y_k * ln(p_k)``: with a one-hot target only the true class's
    term is non-zero, so the loss is ``-ln(p_true)``. The table also gives the
    gradient of the loss with respect to each logit (the score before softmax),
    ``p_k - y_k``: backpropagation starts from these numbers.

    Args:
        probabilities: The model's probabilities for the classes (sum to 1).
        true_class: Index or name of the true class.
        class_names: Names of the classes; None numbers them.

    Returns:
        ``(table, loss)``: the table has one row per class with the target ``y``, the
        probability ``p``, the term ``-y ln p`` and the gradient ``p - y``; ``loss`` is
        the sum of the terms. Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as in
        Keras, so a probability of 0 gives a large, finite loss.

    Raises:
        ValueError: If the probabilities are negative, do not sum to 1, or the class
            is unknown.
    """
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(p))]
    if len(names) != len(p):
        raise ValueError(f"{len(p)} probabilities but {len(names)} class names.")
    if (p < 0).any() or not math.isclose(p.sum(), 1.0, abs_tol=1e-4):
        raise ValueError(
            f"Probabilities must be >= 0 and sum to 1 (got sum {p.sum():.4f}); "
            "apply softmax to raw scores first."
        )
    index = names.index(true_class) if isinstance(true_class, str) else int(true_class)
    if not 0 <= index < len(p):
        raise ValueError(f"true_class {true_class!r} is not one of {names}.")
    y = np.zeros_like(p)
    y[index] = 1.0
    terms = -y * np.log(np.clip(p, EPSILON, 1 - EPSILON))
    table = pd.DataFrame(
        {"target y": y, "probability p": p, "-y ln p": terms + 0.0, "gradient p - y": p - y},
        index=pd.Index(names, name="class"),
    )
    return table, float(terms.sum())


# --- Xception ------------------------------------------------------------------------


def separable_savings(
    shapes: Sequence[tuple[int, int]] | Sequence[tuple[int, int, int]], use_bias: bool = False
) -> pd.DataFrame:
    """Tabulate plain vs depthwise-separable convolution parameters for a few layers.

    Args:
        shapes: ``(in_channels, out_channels)`` or ``(in_channels, out_channels,
            kernel_size)`` per layer; the kernel defaults to 3.
        use_bias: Count a bias per output channel (Xception's separable convolutions
            have none: batch norm follows them).

    Returns:
        One row per layer: channels, kernel, ``plain``, ``depthwise``, ``pointwise``,
        ``separable`` parameters and ``ratio`` (plain / separable).
    """
    rows = []
    for shape in shapes:
        in_channels, out_channels, kernel = (*shape, 3)[:3]
        counts = separable_vs_plain_params(in_channels, out_channels, kernel, use_bias)
        rows.append(
            {"in channels": in_channels, "out channels": out_channels, "kernel": kernel, **counts}
        )
    return pd.DataFrame(rows)


def _block_number(name: str) -> int | None:
    """Return N for a layer named ``blockN_...``, else None."""
    match = re.match(r"block(\d+)_", name)
    return int(match.group(1)) if match else None


def xception_flows(model: keras.Model) -> pd.DataFrame:
    """Split an Xception classifier into its entry, middle and exit flows and the head.

    Layers named ``blockN_...`` belong to their block; the unnamed residual layers
    (``conv2d``, ``batch_normalization``, ``add``) follow their block in the graph and
    count with it.

    Args:
        model: A model from ``models.build_xception_classifier``.

    Returns:
        One row per part (``input``, ``entry``, ``middle``, ``exit``, ``head``) with
        the blocks, number of layers, separable convolutions, parameters and the
        output shape of the part's last layer. The parameters add up to
        ``model.count_params()``.
    """
    flow_of_block = {block: flow for flow, blocks in XCEPTION_FLOWS.items() for block in blocks}
    rows: dict[str, dict] = {}
    current = "input"
    for layer in model.layers:
        block = _block_number(layer.name)
        if block is not None:
            current = flow_of_block.get(block, current)
        if layer.name == HEAD_NAME:
            current = "head"
        row = rows.setdefault(
            current,
            {"blocks": "", "layers": 0, "separable convs": 0, "parameters": 0, "output shape": ""},
        )
        row["layers"] += 1
        row["separable convs"] += isinstance(layer, keras.layers.SeparableConv2D)
        row["parameters"] += layer.count_params()
        row["output shape"] = _shape(layer)
    for flow, blocks in XCEPTION_FLOWS.items():
        if flow in rows:
            rows[flow]["blocks"] = f"{blocks.start}-{blocks.stop - 1}"
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "part"
    return table


# --- layer tables and feature maps ---------------------------------------------------


def _shape(layer: keras.layers.Layer) -> str:
    """Return a layer's output shape without the batch axis, e.g. ``"48 x 48 x 32"``."""
    shape = tuple(layer.output.shape)[1:]
    return " x ".join(str(side) for side in shape)


def layer_table(model: keras.Model) -> pd.DataFrame:
    """List a model's layers with their output shapes and parameter counts.

    Args:
        model: A built Keras model (a nested sub-model is one row).

    Returns:
        One row per layer: ``layer`` (name), ``type``, ``output shape`` (without the
        batch axis), ``parameters`` and ``trainable``; the ``parameters`` column sums to
        ``model.count_params()``.
    """
    rows = []
    for layer in model.layers:
        trainable = sum(math.prod(w.shape) for w in layer.trainable_weights)
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output shape": _shape(layer),
                "parameters": layer.count_params(),
                "trainable": trainable,
            }
        )
    return pd.DataFrame(rows)


def receptive_fields(model: keras.Model) -> dict[str, int]:
    """Compute how many input pixels (per side) each layer's outputs can see.

    Each convolution or pooling window of size k adds ``(k - 1) * jump`` pixels, where
    ``jump`` is the product of the strides before it. Only square windows of
    ``Conv2D``, ``SeparableConv2D``, ``DepthwiseConv2D`` and pooling layers count;
    other layers (batch norm, activations) keep the field; global pooling and dense
    layers see the whole image. Assumes a chain of layers, as in ``build_cnn``.

    Args:
        model: A sequential-like functional model.

    Returns:
        ``{layer name: receptive field side in pixels}`` up to the first global layer.
    """
    field, jump, fields = 1, 1, {}
    for layer in model.layers:
        convolution = (
            keras.layers.Conv2D,
            keras.layers.SeparableConv2D,
            keras.layers.DepthwiseConv2D,
        )
        if isinstance(layer, convolution):
            kernel, stride = layer.kernel_size[0], layer.strides[0]
        elif isinstance(layer, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D):
            kernel, stride = layer.pool_size[0], layer.strides[0]
        elif isinstance(layer, keras.layers.GlobalAveragePooling2D | keras.layers.Flatten):
            break
        else:
            kernel, stride = 1, 1
        field += (kernel - 1) * jump
        jump *= stride
        fields[layer.name] = field
    return fields


def feature_maps(model: keras.Model, image: np.ndarray, layer_name: str) -> np.ndarray:
    """Compute what one layer of a model outputs for one image.

    Args:
        model: A functional model, e.g. the trained CNN.
        image: One image ``(height, width, channels)`` as the model takes it (raw
            [0, 255] pixels for the course's models).
        layer_name: The layer whose output is wanted, e.g. ``"conv1_relu"``.

    Returns:
        A float32 array ``(height, width, channels)``: one map per channel.

    Raises:
        ValueError: If the layer does not exist or the image is not 3-dimensional.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"Pass one image (height, width, channels), got shape {image.shape}.")
    layer = model.get_layer(layer_name)
    probe = keras.Model(model.inputs[0], layer.output)
    return np.asarray(probe.predict_on_batch(image[None]), dtype=np.float32)[0]


# --- training curves -----------------------------------------------------------------


def history_frame(history: Mapping | pd.DataFrame) -> pd.DataFrame:
    """Turn one training history into a table with one row per epoch.

    Args:
        history: A Keras ``History.history`` dict, the dict ``train.fit_model``
            returns or writes as ``<name>_history.json`` (with a ``"history"`` key), or
            the table of its ``<name>_history.csv``.

    Returns:
        The metrics as columns (``loss``, ``val_loss``, ``accuracy`` ...) and an
        ``epoch`` column counting from 1.

    Raises:
        ValueError: If there is no ``loss`` column.
    """
    if isinstance(history, pd.DataFrame):
        frame = history.copy()
        if "epoch" in frame:
            frame["epoch"] = frame["epoch"] - frame["epoch"].min() + 1
    else:
        values = history.get("history", history)
        frame = pd.DataFrame({key: list(column) for key, column in values.items()})
    if "loss" not in frame:
        raise ValueError(f"A training history needs a 'loss' column, got {list(frame.columns)}.")
    if "epoch" not in frame:
        frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def read_history(path: str | Path) -> pd.DataFrame:
    """Read a history file ``train.fit_model`` wrote (``.json`` or ``.csv``).

    Args:
        path: ``<name>_history.json`` or ``<name>_history.csv``.

    Returns:
        What ``history_frame`` returns.

    Raises:
        FileNotFoundError: If the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No training history at {path}; train the model first (notebook 02 or 03)."
        )
    if path.suffix == ".csv":
        return history_frame(pd.read_csv(path))
    return history_frame(json.loads(path.read_text()))


def overfitting_gap(history: Mapping | pd.DataFrame) -> dict[str, float | int]:
    """Measure over-fitting from one training history.

    Args:
        history: Anything ``history_frame`` takes; needs ``loss``, ``val_loss``,
            ``accuracy`` and ``val_accuracy``.

    Returns:
        ``best_epoch`` (lowest validation loss, from 1), ``epochs``, the training and
        validation accuracy at the best epoch and their ``gap`` (train - val), the
        same ``final_gap`` at the last epoch, and ``val_loss_rise``: how much the
        validation loss rose from its best to the last epoch.
    """
    frame = history_frame(history)
    best = int(frame["val_loss"].to_numpy().argmin())
    last = len(frame) - 1
    return {
        "best_epoch": best + 1,
        "epochs": len(frame),
        "train_accuracy": float(frame["accuracy"].iloc[best]),
        "val_accuracy": float(frame["val_accuracy"].iloc[best]),
        "gap": float(frame["accuracy"].iloc[best] - frame["val_accuracy"].iloc[best]),
        "final_gap": float(frame["accuracy"].iloc[last] - frame["val_accuracy"].iloc[last]),
        "val_loss_rise": float(frame["val_loss"].iloc[last] - frame["val_loss"].iloc[best]),
    }


def compare_learning_rates(
    head_builder: Callable[[], keras.Model],
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_labels: np.ndarray,
    learning_rates: Sequence[float],
    epochs: int = 5,
    batch_size: int = 32,
    seed: int = 42,
) -> dict[float, list[float]]:
    """Train a fresh head at each learning rate and record its validation loss.

    Every run starts from the same initial weights (the seed is reset before each
    build) and sees the same batches, so only the learning rate differs. There is no
    early stopping and no learning-rate schedule: the curves show the raw effect.

    Args:
        head_builder: Returns a new, uncompiled model each call, e.g.
            ``lambda: models.build_head(features.shape[1:])``.
        train_features: Inputs of the training set (e.g. cached base features).
        train_labels: One-hot training labels.
        val_features: Validation inputs.
        val_labels: One-hot validation labels.
        learning_rates: The rates to compare.
        epochs: Epochs per rate.
        batch_size: Examples per batch.
        seed: Seed of the weights and the shuffle.

    Returns:
        ``{learning rate: [validation loss after each epoch]}``.

    Raises:
        ValueError: If no rate is given or a rate is not positive.
    """
    if not learning_rates or min(learning_rates) <= 0:
        raise ValueError(f"Give one or more positive learning rates, got {learning_rates!r}.")
    curves = {}
    for rate in learning_rates:
        keras.utils.set_random_seed(seed)
        model = compile_model(head_builder(), learning_rate=rate)
        fitted = model.fit(
            train_features,
            train_labels,
            validation_data=(val_features, val_labels),
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            verbose=0,
        )
        curves[float(rate)] = [float(value) for value in fitted.history["val_loss"]]
    return curves


# --- comparing trained models --------------------------------------------------------


def compare_cards(cards: Mapping[str, Mapping]) -> pd.DataFrame:
    """Put the key facts of several model cards side by side.

    Args:
        cards: ``{model name: card}`` (``train.load_card``).

    Returns:
        One row per model: ``parameters``, ``trainable at the end``, ``image size``,
        ``epochs run`` (all phases), ``training seconds``, ``best val accuracy`` and
        ``best val loss`` (of the last phase, whose weights the model keeps).
    """
    rows = {}
    for name, card in cards.items():
        metrics = card.get("best_val_metrics", {})
        phases = card.get("phases", [])
        rows[name] = {
            "parameters": card.get("parameters"),
            "trainable at the end": phases[-1].get("trainable_params") if phases else None,
            "image size": card.get("image_size"),
            "epochs run": sum(phase.get("epochs_run", 0) for phase in phases),
            "training seconds": card.get("training_seconds"),
            "best val accuracy": metrics.get("accuracy"),
            "best val loss": metrics.get("loss"),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table
