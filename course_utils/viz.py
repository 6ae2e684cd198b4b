"""Figures of the course. Each function draws, returns the Figure, and never shows it.

Functions take already-computed numbers (from ``data``, ``evaluate`` …) and an
optional ``ax`` to draw into, so a notebook can place them in its own layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image


def _figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Return ``ax``'s figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def plot_class_counts(counts: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Figure:
    """Bar chart of images per class, one bar colour per split.

    Args:
        counts: Classes as rows, splits as columns (e.g. ``AuditReport.counts()``).
        ax: Axes to draw into; None makes a new figure.
        title: Title of the axes.

    Returns:
        The Figure.
    """
    fig, ax = _figure_and_axes(ax, (7, 3.5))
    counts = counts.drop(index="total", errors="ignore")
    counts.plot.bar(ax=ax, rot=0, width=0.8)
    for container in ax.containers:
        ax.bar_label(container, fontsize=8)
    ax.set_xlabel("")
    ax.set_ylabel("images")
    ax.set_title(title or "Images per class")
    ax.legend(title="split", fontsize=8)
    fig.tight_layout()
    return fig


def plot_sample_grid(
    root: str | Path, samples: dict[str, list[str]], mask_paths: dict[str, Path] | None = None
) -> Figure:
    """Show a few images of each class, one row per class.

    Args:
        root: Dataset root the sample paths start from.
        samples: ``{class name: [relative paths]}`` (e.g. ``explore.sample_paths``).
        mask_paths: Optional ``{relative path: mask file}``; a mask's outline is drawn in red.

    Returns:
        The Figure.
    """
    rows, columns = len(samples), max((len(p) for p in samples.values()), default=1)
    fig, axes = plt.subplots(rows, columns, figsize=(1.8 * columns, 1.9 * rows), squeeze=False)
    for axes_row, (label, paths) in zip(axes, samples.items(), strict=True):
        for ax in axes_row:
            ax.axis("off")
        for ax, path in zip(axes_row, paths, strict=False):
            ax.imshow(Image.open(Path(root) / path).convert("L"), cmap="gray")
            mask = (mask_paths or {}).get(path)
            if mask is not None and Path(mask).is_file():
                ax.contour(
                    np.asarray(Image.open(mask)) > 127, levels=[0.5], colors="red", linewidths=0.8
                )
        axes_row[0].set_title(label, loc="left", fontsize=10)
    fig.tight_layout()
    return fig


def plot_intensity_histograms(histograms: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Overlay the mean intensity histogram of each class.

    Args:
        histograms: Bin centres as index, one density column per class
            (``explore.intensity_histograms``).
        ax: Axes to draw into; None makes a new figure.

    Returns:
        The Figure.
    """
    fig, ax = _figure_and_axes(ax, (7, 3.5))
    for label in histograms.columns:
        ax.plot(histograms.index, histograms[label], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("grayscale intensity (0-255)")
    ax.set_ylabel("share of pixels (log)")
    ax.set_title("Intensity histogram per class")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_image_pairs(
    root: str | Path, pairs: Sequence[tuple[str, str, str]], max_pairs: int = 6
) -> Figure:
    """Show pairs of images side by side, e.g. duplicates the audit found.

    Args:
        root: Dataset root the paths start from.
        pairs: ``(first path, second path, caption)`` triples.
        max_pairs: Most pairs to draw.

    Returns:
        The Figure (a note instead of images when there is no pair).
    """
    pairs = list(pairs)[:max_pairs]
    if not pairs:
        fig, ax = plt.subplots(figsize=(5, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no pairs to show", ha="center", va="center")
        return fig
    fig, axes = plt.subplots(len(pairs), 2, figsize=(5, 2.6 * len(pairs)), squeeze=False)
    for (first, second, caption), (left, right) in zip(pairs, axes, strict=True):
        for ax, path in ((left, first), (right, second)):
            ax.imshow(Image.open(Path(root) / path).convert("L"), cmap="gray")
            ax.set_title(_short(path), fontsize=7)
            ax.axis("off")
        left.annotate(caption, (1.05, -0.08), xycoords="axes fraction", ha="center", fontsize=8)
    fig.tight_layout()
    return fig


def _short(path: str, width: int = 38) -> str:
    """Shorten a path for a title, keeping its end."""
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def plot_image_batch(
    images: np.ndarray, titles: Sequence[str], columns: int = 8, value_range: tuple = (0, 255)
) -> Figure:
    """Show a batch of images in a grid (e.g. one batch of the training pipeline).

    Args:
        images: Array (n, height, width, channels).
        titles: One title per image.
        columns: Images per row.
        value_range: The range the pixel values are in, mapped to black..white.

    Returns:
        The Figure.
    """
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    low, high = value_range
    for index, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if index < count:
            ax.imshow(np.clip((np.asarray(images[index]) - low) / (high - low), 0, 1))
            ax.set_title(titles[index], fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, folder: str | Path, name: str, dpi: int = 110) -> Path:
    """Save a figure as PNG into a folder (created if missing).

    Args:
        fig: The figure.
        folder: Where to write, e.g. ``ARTIFACTS_DIR / "figures"``.
        name: File name without ending.
        dpi: Resolution.

    Returns:
        The path of the PNG written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# --- training (lessons 02 and 03) ----------------------------------------------------


def _history_table(history: dict | pd.DataFrame) -> pd.DataFrame:
    """Return one history (Keras dict, ``fit_model`` result or CSV table) as a table."""
    if isinstance(history, pd.DataFrame):
        return history.drop(columns="epoch", errors="ignore").reset_index(drop=True)
    values = history.get("history", history)
    return pd.DataFrame({key: list(column) for key, column in values.items()})


def plot_training_history(
    histories: dict | pd.DataFrame | Sequence[dict | pd.DataFrame],
    phase_names: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """Draw loss and accuracy per epoch, training vs validation, phases one after another.

    Args:
        histories: One history or a list of them, one per training phase: a Keras
            ``History.history`` dict, the dict ``train.fit_model`` returns or writes
            to ``<name>_history.json``, or the table of ``<name>_history.csv``.
        phase_names: A name per phase, written above its epochs.
        title: Title of the figure.

    Returns:
        The Figure: a loss panel and an accuracy panel; a dotted line marks where a
        phase ends, a circle the epoch with the lowest validation loss.

    Raises:
        ValueError: If no history is given or the names do not match the phases.
    """
    if isinstance(histories, dict | pd.DataFrame):
        histories = [histories]
    tables = [_history_table(history) for history in histories]
    if not tables:
        raise ValueError("Pass at least one training history.")
    if phase_names is not None and len(phase_names) != len(tables):
        raise ValueError(f"{len(tables)} phases but {len(phase_names)} phase names.")
    table = pd.concat(tables, ignore_index=True)
    epochs = np.arange(1, len(table) + 1)
    ends = np.cumsum([len(t) for t in tables])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for column, label, style in (
            (metric, "training", "-"),
            (f"val_{metric}", "validation", "--"),
        ):
            if column in table:
                ax.plot(epochs, table[column], style, marker="o", markersize=3, label=label)
        for end in ends[:-1]:
            ax.axvline(end + 0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("epoch (all phases)" if len(tables) > 1 else "epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric.capitalize(), pad=16 if phase_names else 6)
        ax.set_xlim(0.5, len(table) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.ticklabel_format(axis="y", useOffset=False)
    if "val_loss" in table and table["val_loss"].notna().any():
        best = int(np.nanargmin(table["val_loss"].to_numpy()))
        axes[0].plot(
            best + 1,
            table["val_loss"][best],
            "o",
            markersize=11,
            markerfacecolor="none",
            color="black",
            label=f"lowest val loss (epoch {best + 1})",
        )
    if phase_names:
        starts = np.concatenate([[0], ends[:-1]])
        for start, end, name in zip(starts, ends, phase_names, strict=True):
            for ax in axes:
                ax.text(
                    (start + end + 1) / 2,
                    1.01,
                    name,
                    transform=ax.get_xaxis_transform(),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color="dimgrey",
                )
    if "accuracy" in table or "val_accuracy" in table:
        axes[1].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_learning_rate_comparison(
    curves: dict[float, Sequence[float]], ax: Axes | None = None, reference: float | None = None
) -> Figure:
    """Draw the validation loss per epoch for several learning rates.

    Args:
        curves: ``{learning rate: [validation loss per epoch]}``
            (``lessons.compare_learning_rates``).
        ax: Axes to draw into; None makes a new figure.
        reference: Optional loss to mark with a dashed line, e.g. ``ln(number of
            classes)``, the loss of a uniform guess.

    Returns:
        The Figure.
    """
    fig, ax = _figure_and_axes(ax, (6, 3.8))
    for rate, losses in sorted(curves.items()):
        ax.plot(
            np.arange(1, len(losses) + 1), losses, marker="o", markersize=3, label=f"lr = {rate:g}"
        )
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1, label="uniform guess")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_title("Validation loss per learning rate")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_feature_maps(
    maps: np.ndarray,
    columns: int = 8,
    image: np.ndarray | None = None,
    max_maps: int | None = None,
    title: str = "",
) -> Figure:
    """Show the channels of one layer's output for one image, each on its own scale.

    Args:
        maps: Array ``(height, width, channels)`` (``lessons.feature_maps``).
        columns: Panels per row.
        image: Optional input image ``(height, width, 3)`` in [0, 255], drawn first.
        max_maps: Most channels to draw; None draws all.
        title: Title of the figure.

    Returns:
        The Figure; bright means a strong response of that channel's filter there.

    Raises:
        ValueError: If ``maps`` is not 3-dimensional.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (height, width, channels), got shape {maps.shape}.")
    count = maps.shape[-1] if max_maps is None else min(max_maps, maps.shape[-1])
    panels = count + (image is not None)
    rows = max(1, int(np.ceil(panels / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(1.5 * columns, 1.6 * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat:
        ax.axis("off")
    if image is not None:
        flat[0].imshow(np.clip(np.asarray(image) / 255.0, 0, 1), cmap="gray")
        flat[0].set_title("input", fontsize=8)
        flat = flat[1:]
    for channel, ax in zip(range(count), flat, strict=False):
        channel_map = maps[..., channel]
        span = float(channel_map.max() - channel_map.min())
        shown = (channel_map - channel_map.min()) / span if span > 0 else np.zeros_like(channel_map)
        ax.imshow(shown, cmap="magma", vmin=0, vmax=1)
        ax.set_title(f"#{channel}", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _format_value(column: str, value: float) -> str:
    """Format a comparison value: accuracies as percent, large counts with k / M."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if "accuracy" in column:
        return f"{value:.1%}"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f} M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.0f} k"
    return f"{value:.3g}"


def plot_model_comparison(table: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Compare models on several measures with different units in one bar chart.

    Each measure is a group of bars, one per model, drawn relative to the largest
    value of that measure; the labels give the real values.

    Args:
        table: Models as rows, numeric measures as columns (e.g. parameters, training
            seconds, best val accuracy; ``lessons.compare_cards``).
        ax: Axes to draw into; None makes a new figure.

    Returns:
        The Figure.
    """
    numeric = table.apply(pd.to_numeric, errors="coerce").astype(float)
    measures = list(numeric.columns)
    fig, ax = _figure_and_axes(ax, (7, 0.9 + 0.45 * len(measures) * len(numeric)))
    height = 0.8 / max(len(numeric), 1)
    positions = np.arange(len(measures))
    for index, (name, row) in enumerate(numeric.iterrows()):
        largest = numeric.abs().max().replace(0, np.nan)
        relative = (row.abs() / largest).fillna(0).to_numpy()
        offsets = positions - 0.4 + height * (index + 0.5)
        bars = ax.barh(offsets, relative, height=height * 0.9, label=str(name))
        labels = [_format_value(measure, row[measure]) for measure in measures]
        ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
    ax.set_yticks(positions, measures)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3)
    ax.set_xticks([])
    ax.set_xlabel("relative to the largest value of each measure")
    ax.set_title("Model comparison")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


# --- evaluation (lesson 04) ----------------------------------------------------------


def plot_confusion_matrix(
    matrix: pd.DataFrame, ax: Axes | None = None, title: str = "", highlight: str | None = None
) -> Figure:
    """Draw a confusion matrix as a seaborn heatmap, counts or row-normalised.

    Args:
        matrix: True classes as rows, predicted classes as columns
            (``evaluate.confusion_tables``); integers are written as counts, floats
            as shares.
        ax: Axes to draw into; None makes a new figure.
        title: Title of the axes.
        highlight: A predicted class whose cells to outline in red for every other
            true class, e.g. ``"notumor"``: the missed tumors.

    Returns:
        The Figure.
    """
    import seaborn as sns

    fig, ax = _figure_and_axes(ax, (4.6, 3.9))
    counts = pd.api.types.is_integer_dtype(matrix.to_numpy().dtype)
    sns.heatmap(
        matrix,
        annot=True,
        fmt="d" if counts else ".2f",
        cmap="Blues",
        vmin=0,
        vmax=None if counts else 1,
        cbar=False,
        square=True,
        linewidths=0.5,
        ax=ax,
    )
    if highlight is not None and highlight in matrix.columns:
        column = list(matrix.columns).index(highlight)
        for row, label in enumerate(matrix.index):
            if label != highlight:
                ax.add_patch(
                    plt.Rectangle((column, row), 1, 1, fill=False, edgecolor="red", linewidth=2)
                )
    ax.set_xlabel(f"predicted{' (red: missed tumors)' if highlight else ''}")
    ax.set_ylabel("true")
    ax.set_title(title or ("Confusion matrix (counts)" if counts else "Confusion matrix (rows)"))
    fig.tight_layout()
    return fig


def plot_roc_curves(curves: dict, ax: Axes | None = None, title: str = "") -> Figure:
    """Draw one-vs-rest ROC curves, one per class, with their AUC in the legend.

    Args:
        curves: ``{class: {"fpr", "tpr", "auc"}}`` (``evaluate.roc_curves``); classes
            without a curve are listed as such.
        ax: Axes to draw into; None makes a new figure.
        title: Title of the axes.

    Returns:
        The Figure.
    """
    fig, ax = _figure_and_axes(ax, (4.6, 4.2))
    for name, curve in curves.items():
        if len(curve["fpr"]):
            ax.plot(curve["fpr"], curve["tpr"], label=f"{name} (AUC {curve['auc']:.3f})")
        else:
            ax.plot([], [], " ", label=f"{name} (no curve: one class only)")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_title(title or "ROC, one class vs the rest")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_reliability_diagram(
    table: pd.DataFrame, ax: Axes | None = None, title: str = "", ece: float | None = None
) -> Figure:
    """Draw a reliability diagram: accuracy per confidence bin against the diagonal.

    Args:
        table: ``evaluate.reliability_table`` (``lower``, ``upper``, ``count``,
            ``confidence``, ``accuracy``).
        ax: Axes to draw into; None makes a new figure.
        title: Title of the axes.
        ece: Expected calibration error, written in the corner when given.

    Returns:
        The Figure: blue bars are the accuracy of each bin, hatched red bars the gap
        to the bin's mean confidence (blue below the diagonal: over-confident); the
        number of images is written above each bar.
    """
    fig, ax = _figure_and_axes(ax, (4.6, 4.2))
    filled = table[table["count"] > 0]
    width = (filled["upper"] - filled["lower"]).to_numpy()
    centres = ((filled["upper"] + filled["lower"]) / 2).to_numpy()
    bars = ax.bar(
        centres,
        filled["accuracy"],
        width=width,
        color="tab:blue",
        edgecolor="white",
        label="accuracy",
    )
    ax.bar(
        centres,
        filled["confidence"] - filled["accuracy"],
        bottom=filled["accuracy"],
        width=width,
        fill=False,
        hatch="///",
        edgecolor="tab:red",
        linewidth=0.8,
        label="gap to mean confidence",
    )
    tops = np.fmax(filled["accuracy"], filled["confidence"]).to_numpy()
    for bar, top, count in zip(bars, tops, filled["count"], strict=True):
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            top + 0.01,
            str(count),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    if ece is not None:
        ax.text(0.04, 0.93, f"ECE = {ece:.3f}", transform=ax.transAxes, fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(title or "Reliability diagram")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_metric_intervals(table: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Figure:
    """Draw point estimates with their confidence intervals, one row per model and test set.

    Args:
        table: ``evaluate.interval_table`` (``model``, ``test set``, ``metric``,
            ``value``, ``low``, ``high``).
        ax: Axes to draw into; None makes a new figure.
        title: Title of the axes.

    Returns:
        The Figure.
    """
    rows = list(dict.fromkeys(zip(table["model"], table["test set"], strict=True)))
    fig, ax = _figure_and_axes(ax, (6.4, 0.9 + 0.55 * len(rows)))
    metrics = list(dict.fromkeys(table["metric"]))
    for offset, metric in zip(np.linspace(-0.12, 0.12, len(metrics)), metrics, strict=True):
        part = table[table["metric"] == metric]
        y = [rows.index(key) + offset for key in zip(part["model"], part["test set"], strict=True)]
        errors = np.vstack([part["value"] - part["low"], part["high"] - part["value"]])
        ax.errorbar(
            part["value"], y, xerr=np.clip(errors, 0, None), fmt="o", capsize=3, label=metric
        )
    ax.set_yticks(range(len(rows)), [f"{model} · {split}" for model, split in rows])
    ax.invert_yaxis()
    ax.set_xlabel("value (bars: 95% bootstrap interval)")
    ax.set_title(title or "Accuracy and macro-F1 with 95% intervals")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_confident_mistakes(
    mistakes: pd.DataFrame, columns: int = 4, title: str = "", healthy: str | None = "notumor"
) -> Figure:
    """Show the wrong predictions a model was most sure of, with true and predicted class.

    Args:
        mistakes: ``evaluate.confident_mistakes`` (``abs_path``, ``true``,
            ``predicted``, ``probability``).
        columns: Images per row.
        title: Title of the figure.
        healthy: The "no tumor" class: a tumor predicted as it (a missed tumor) gets a
            red caption.

    Returns:
        The Figure (a note instead of images when there is no mistake).
    """
    if mistakes.empty:
        fig, ax = plt.subplots(figsize=(5, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no mistakes to show", ha="center", va="center")
        return fig
    columns = max(1, min(columns, len(mistakes)))
    rows = int(np.ceil(len(mistakes) / columns))
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.3 * columns, 2.8 * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (_, row) in zip(axes.ravel(), mistakes.iterrows(), strict=False):
        ax.imshow(Image.open(row["abs_path"]).convert("L"), cmap="gray")
        ax.set_title(
            f"true {row['true']}\npredicted {row['predicted']} ({row['probability']:.2f})",
            fontsize=8,
            color="darkred" if row["true"] != healthy and row["predicted"] == healthy else "black",
        )
    if title:
        fig.suptitle(title)
    return fig


# --- saliency maps (lesson 05) ------------------------------------------------------


def plot_saliency_comparison(
    image: np.ndarray,
    maps: dict[str, np.ndarray],
    mask: np.ndarray | None = None,
    alpha: float = 0.45,
    colormap: str = "jet",
    title: str = "",
) -> Figure:
    """Show the scan and each method's overlay side by side.

    Args:
        image: The scan, (H, W) or (H, W, 3), values in [0, 255].
        maps: ``{method name: heatmap (H, W) in [0, 1]}``.
        mask: Ground-truth lesion mask (H, W); its outline is drawn on every panel.
        alpha: Weight of the heatmap in the overlays.
        colormap: A name in ``matplotlib.colormaps``.
        title: A title above all panels (room is kept for it).

    Returns:
        The Figure, with ``1 + len(maps)`` axes.
    """
    from course_utils.explain import overlay as _overlay  # TensorFlow only when drawing maps

    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(2.6 * (1 + len(maps)), 2.9))
    axes = np.atleast_1d(axes)
    pixels = np.asarray(image)
    axes[0].imshow(pixels.astype(np.uint8), cmap="gray" if pixels.ndim == 2 else None)
    axes[0].set_title("scan")
    for ax, (method, heatmap) in zip(axes[1:], maps.items(), strict=True):
        ax.imshow(_overlay(pixels, heatmap, colormap=colormap, alpha=alpha))
        ax.set_title(method)
    for ax in axes:
        if mask is not None and np.any(mask):
            ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="white", linewidths=1)
        ax.axis("off")
    if title:
        fig.suptitle(title)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
    else:
        fig.tight_layout()
    return fig


def plot_method_scores(table: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Bars of pointing-game hit rate and energy inside the lesion, with chance levels.

    Args:
        table: ``explain.score_methods`` output (methods as index).
        ax: Axes to draw into; None makes a new figure.

    Returns:
        The Figure.
    """
    fig, ax = _figure_and_axes(ax, (7, 3.5))
    positions = np.arange(len(table))
    width = 0.38
    for shift, column, chance, label in (
        (-width / 2, "pointing_game", "pointing_chance", "pointing game (hit rate)"),
        (width / 2, "energy_inside", "mask_share", "energy inside lesion"),
    ):
        bars = ax.bar(positions + shift, table[column], width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.hlines(
            table[chance],
            positions + shift - width / 2,
            positions + shift + width / 2,
            colors="black",
            linestyles="dashed",
        )
    ax.plot([], [], "k--", label="chance (lesion's share of the area)")
    ax.set_xticks(positions, table.index)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share")
    ax.set_title("How well each map finds the lesion")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_sanity_check(table: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Bars of the rank correlation between maps of the trained and randomised model.

    Args:
        table: ``explain.sanity_check`` output (methods as index).
        ax: Axes to draw into; None makes a new figure.

    Returns:
        The Figure.
    """
    fig, ax = _figure_and_axes(ax, (6, 3.2))
    bars = ax.bar(table.index, table["spearman"], color="tab:purple")
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylim(min(-0.1, float(np.nanmin(table["spearman"])) - 0.1), 1.05)
    ax.set_ylabel("Spearman correlation")
    ax.set_title("Sanity check: maps of trained vs randomised model\n(high = ignores the weights)")
    fig.tight_layout()
    return fig
