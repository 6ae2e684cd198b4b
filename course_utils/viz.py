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
