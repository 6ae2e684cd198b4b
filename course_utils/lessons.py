"""Plumbing of lessons 02 and 03: model tables, feature maps, comparisons, summaries.

The maths a lesson teaches (softmax, the loss, parameter counts) is written out in the
notebook cell that teaches it; this module holds what only gets it onto the screen.
Nothing here draws (that is ``viz``); only the ``write_*_summary`` functions write files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from course_utils import cards, course, verdicts
from course_utils.data import splits as data_splits
from course_utils.models import HEAD_NAME, compile_model
from course_utils.training_history import overfitting_gap, read_history

#: The three flows of Xception and the blocks each holds (Chollet, 2017).
XCEPTION_FLOWS = {"entry": range(1, 5), "middle": range(5, 13), "exit": range(13, 15)}


# --- Xception ------------------------------------------------------------------------


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
    # Called eagerly: ``predict_on_batch`` would trace a new function for every probe.
    return np.asarray(probe(image[None], training=False), dtype=np.float32)[0]


# --- learning rates ------------------------------------------------------------------


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
        cards: ``{model name: card}`` (``cards.load_card``).

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


def card_comparison_sentence(model_cards: Mapping[str, Mapping], val_labels: Sequence[str]) -> str:
    """Compare the CNN's and Xception's best validation accuracy, only when both learned.

    Args:
        model_cards: ``{"CNN": card, "Xception": card}`` (Xception optional).
        val_labels: The validation labels both were scored on.

    Returns:
        One sentence: the size ratio and the accuracy difference (a tie is called a tie),
        or why there is nothing to compare.
    """
    if "Xception" not in model_cards or "CNN" not in model_cards:
        return "Only one model: nothing to compare."
    cnn, xception = model_cards["CNN"], model_cards["Xception"]
    untrained = [
        name
        for name, card in model_cards.items()
        if not validation_verdict(card, val_labels).learned
    ]
    ratio = xception["parameters"] / cnn["parameters"]
    size = f"Xception has {ratio:.0f} times the parameters of the CNN"
    if untrained:
        verb = "has" if len(untrained) == 1 else "have"
        return (
            f"{size}; no accuracy comparison: {verdicts.join_names(untrained)} {verb} not learned "
            "(validation accuracy does not beat the constant guess of the most common class)."
        )
    points = 100 * (cnn["best_val_metrics"]["accuracy"] - xception["best_val_metrics"]["accuracy"])
    gap = "a tie" if abs(points) < 1e-9 else f"{points:+.1f} points"
    return (
        f"{size}; best validation accuracy, CNN minus Xception: {gap} (Xception weights: "
        f"{xception.get('weights', 'unknown')})."
    )


# --- what each lesson leaves behind --------------------------------------------------


def phase_table(card: Mapping) -> pd.DataFrame:
    """Tabulate the training phases a model card records, one row per phase.

    Args:
        card: A model card (``phases``).

    Returns:
        Columns ``what``, ``epochs`` ("run of max"), ``best epoch``, ``learning rate``,
        ``seconds``, ``seconds per epoch``, ``trainable`` and ``val accuracy``, indexed
        by the phase number.
    """
    rows = []
    for phase in card["phases"]:
        rows.append(
            {
                "what": phase["phase"].split(": ", 1)[-1],
                "epochs": f"{phase['epochs_run']} of {phase['max_epochs']}",
                "best epoch": phase["best_epoch"],
                "learning rate": phase["learning_rate"],
                "seconds": phase["seconds"],
                "seconds per epoch": phase["seconds"] / max(phase["epochs_run"], 1),
                "trainable": phase["trainable_params"],
                "val accuracy": phase["best_val_metrics"].get("accuracy"),
            }
        )
    index = pd.Index(range(1, len(rows) + 1), name="phase")
    return pd.DataFrame(rows, index=index)


def write_transfer_summary(
    artifacts_dir: str | Path, card: Mapping, learning_rate_curves: Mapping[float, Sequence[float]]
) -> list[str]:
    """Write notebook 02's lines of the demo summary (``course.write_summary``).

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.
        card: The Xception card ``TrainingRun.save`` returned.
        learning_rate_curves: What ``compare_learning_rates`` returned.

    Returns:
        The Markdown lines written.
    """
    phases = card["phases"]
    extraction = sum(phase.get("feature_extraction_seconds", 0.0) for phase in phases)
    described = "; ".join(
        f"{phase['phase'].split(':')[0]}: {phase['epochs_run']} epoch"
        f"{'s' * (phase['epochs_run'] != 1)}, {phase['seconds']:.1f} s, "
        f"{phase['trainable_params']:,} trainable"
        for phase in phases
    )
    rates = ", ".join(
        f"{rate:g} -> {curve[-1]:.3f}" for rate, curve in learning_rate_curves.items()
    )
    best = card["best_val_metrics"]
    lines = [
        "## 02 · Transfer learning (Xception)",
        "",
        f"- Weights: {card['weights']}; image size {card['image_size']} px; "
        f"{card['parameters']:,} parameters",
        f"- Phases: {described}",
        f"- Training time: {card['training_seconds']:.1f} s "
        f"(feature extraction {extraction:.1f} s)",
        f"- Best validation accuracy: {best['accuracy']:.1%} (loss {best['loss']:.3f})",
        f"- Learning rates compared (last val loss): {rates}",
    ]
    course.write_summary(artifacts_dir, "02_transfer", lines)
    return lines


def validation_verdict(card: Mapping, val_labels: Sequence[str]) -> verdicts.LearningVerdict:
    """Judge from a card's best validation accuracy whether the model has learned.

    Args:
        card: A model card (``best_val_metrics.accuracy``).
        val_labels: The true class of each validation image.

    Returns:
        ``verdicts.verdict_from_labels`` (exact binomial interval vs the majority class).
    """
    return verdicts.verdict_from_labels(float(card["best_val_metrics"]["accuracy"]), val_labels)


def overfitting_sentence(
    gap: Mapping, verdict: verdicts.LearningVerdict | None = None, card: Mapping | None = None
) -> str:
    """Say whether the training curves show over-fitting, only for a model that learned.

    Args:
        gap: ``training_history.overfitting_gap``'s dict.
        verdict: ``validation_verdict``; None when unknown (no claim about learning).
        card: The model card, to say when a fast-mode or phantom recipe may be why.

    Returns:
        One sentence; for a model at chance, "has not learned" and no diagnosis.
    """
    if verdict is not None and not verdict.learned:
        return (
            verdicts.not_learned_sentence("The CNN", verdict, verdicts.recipe_note(card))
            + f" A gap between training and validation accuracy ({gap['gap']:+.1%}) is not "
            "over-fitting when nothing was learned."
        )
    signs = []
    if gap["gap"] > 0.05:
        signs.append(f"training accuracy is {gap['gap']:.1%} ahead of validation at the best epoch")
    if gap["val_loss_rise"] > 0.01:
        signs.append(
            f"the validation loss rose by {gap['val_loss_rise']:.3f} after epoch "
            f"{gap['best_epoch']}"
        )
    if signs:
        return "Signs of over-fitting: " + "; ".join(signs) + "."
    return (
        f"Signs of over-fitting: none within these {gap['epochs']} epochs (gap at the best "
        f"epoch {gap['gap']:+.1%})."
    )


def batch_norm_sentence(
    stored: float, actual: float, steps: int, verdict: verdicts.LearningVerdict | None = None
) -> str:
    """Compare batch norm's running variance with the variance it sees, without over-reading it.

    Args:
        stored: Mean running variance of the batch norm (over channels).
        actual: Mean variance of its input on a few training images.
        steps: Training steps run.
        verdict: ``validation_verdict``; None when unknown.

    Returns:
        The numbers, and what they mean; batch norm is not blamed for a model at chance.
    """
    ratio = stored / actual if actual else float("nan")
    facts = (
        f"After {steps} training steps: running variance {stored:.4f} (mean over channels) vs "
        f"the variance of the layer's input on the sample images {actual:.4f}; ratio {ratio:.1f}."
    )
    if 0.5 < ratio < 2:
        return f"{facts} Close: the running statistics have settled, inference matches training."
    if verdict is not None and not verdict.learned:
        return (
            f"{facts} Far apart, but the model has not learned (validation accuracy "
            f"{verdict.accuracy:.1%} does not beat the {verdict.majority_rate:.1%} of the "
            "constant guess), so these numbers cannot say what batch norm hides."
        )
    return (
        f"{facts} Far apart: at inference this batch norm scales its input by the wrong amount, "
        "so validation metrics understate what the network learned. More steps fix it."
    )


def _saved_val_labels(artifacts_dir: str | Path) -> list[str] | None:
    """The validation labels of the run's saved splits, None when there are none."""
    try:
        loaded, _ = data_splits.load_splits(course.splits_dir(artifacts_dir))
    except FileNotFoundError:
        return None
    return loaded["val"]["label"].tolist()


def write_cnn_summary(
    artifacts_dir: str | Path, card: Mapping, val_labels: Sequence[str] | None = None
) -> list[str]:
    """Write notebook 03's lines of the demo summary, with Xception's when its card exists.

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR`` (the CNN's history file is read
            from it, and notebook 02's ``xception.json`` when present).
        card: The CNN card ``TrainingRun.save`` returned.
        val_labels: The validation labels, to judge whether the CNN learned; None reads
            them from the saved splits (no judgement when there are none).

    Returns:
        The Markdown lines written.
    """
    phase = card["phases"][0]
    history_file = course.history_paths(artifacts_dir, card["name"])["history_json"]
    gap = overfitting_gap(read_history(history_file))
    best = card["best_val_metrics"]
    labels = _saved_val_labels(artifacts_dir) if val_labels is None else list(val_labels)
    verdict = validation_verdict(card, labels) if labels else None
    if verdict is not None and not verdict.learned:
        judged = ". " + verdicts.not_learned_sentence(
            "The CNN", verdict, verdicts.recipe_note(card)
        )
    else:
        judged = f"; train - val accuracy at the best epoch: {gap['gap']:+.1%}"
    lines = [
        "## 03 · CNN from scratch",
        "",
        f"- {card['parameters']:,} parameters; image size {card['image_size']} px",
        f"- Training: {phase['epochs_run']} epochs in {card['training_seconds']:.1f} s "
        f"(best epoch {phase['best_epoch']})",
        f"- Best validation accuracy: {best['accuracy']:.1%} (loss {best['loss']:.3f}){judged}",
    ]
    xception_file = course.model_path(artifacts_dir, "xception")
    if course.card_path(xception_file).is_file():
        xception = cards.load_card(xception_file)
        lines.append(
            f"- Xception (from 02): best validation accuracy "
            f"{xception['best_val_metrics']['accuracy']:.1%}, "
            f"{int(xception['parameters']):,} parameters"
        )
    course.write_summary(artifacts_dir, "03_cnn", lines)
    return lines
