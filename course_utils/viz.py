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

from course_utils.training_history import history_frame


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Return ``ax``'s figure, or a new figure with one axes.

    Args:
        ax: Axes to draw into, or None for a new figure.
        figsize: Size in inches of the new figure (unused when ``ax`` is given).

    Returns:
        The figure and the axes to draw into.
    """
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
    fig, ax = figure_and_axes(ax, (7, 3.5))
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
            ax.imshow(_gray_pixels(Path(root) / path), cmap="gray")
            mask = (mask_paths or {}).get(path)
            if mask is not None and Path(mask).is_file():
                ax.contour(_gray_pixels(mask) > 127, levels=[0.5], colors="red", linewidths=0.8)
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
    fig, ax = figure_and_axes(ax, (7, 3.5))
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
            ax.imshow(_gray_pixels(Path(root) / path), cmap="gray")
            ax.set_title(_short(path), fontsize=7)
            ax.axis("off")
        left.annotate(caption, (1.05, -0.08), xycoords="axes fraction", ha="center", fontsize=8)
    fig.tight_layout()
    return fig


def _gray_pixels(path: str | Path) -> np.ndarray:
    """Read an image file as grayscale pixels, closing the file."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


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
        folder: Where to write, e.g. ``course.figures_dir(ARTIFACTS_DIR)``.
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


def plot_training_history(
    histories: dict | pd.DataFrame | Sequence[dict | pd.DataFrame],
    phase_names: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """Draw loss and accuracy per epoch, training vs validation, phases one after another.

    Args:
        histories: One history or a list of them, one per training phase: a Keras
            ``History.history`` dict, the dict ``fitting.fit_model`` returns or writes
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
    tables = [history_frame(history).drop(columns="epoch") for history in histories]
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
    fig, ax = figure_and_axes(ax, (6, 3.8))
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
