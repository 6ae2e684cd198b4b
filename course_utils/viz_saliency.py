"""Figures of lesson 05: saliency maps side by side, how well they score, the sanity check.

Each function takes already-computed maps or tables (from ``explain`` and ``measure``),
draws, returns the Figure and never shows it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from course_utils import explain
from course_utils.viz import figure_and_axes


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
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(2.6 * (1 + len(maps)), 2.9))
    axes = np.atleast_1d(axes)
    pixels = np.asarray(image)
    axes[0].imshow(pixels.astype(np.uint8), cmap="gray" if pixels.ndim == 2 else None)
    axes[0].set_title("scan")
    for ax, (method, heatmap) in zip(axes[1:], maps.items(), strict=True):
        ax.imshow(explain.overlay(pixels, heatmap, colormap=colormap, alpha=alpha))
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
        table: ``measure.score_methods`` output (methods as index).
        ax: Axes to draw into; None makes a new figure.

    Returns:
        The Figure.
    """
    fig, ax = figure_and_axes(ax, (7, 3.5))
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
        table: ``measure.sanity_check`` output (methods as index).
        ax: Axes to draw into; None makes a new figure.

    Returns:
        The Figure.
    """
    fig, ax = figure_and_axes(ax, (6, 3.2))
    bars = ax.bar(table.index, table["spearman"], color="tab:purple")
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylim(min(-0.1, float(np.nanmin(table["spearman"])) - 0.1), 1.05)
    ax.set_ylabel("Spearman correlation")
    ax.set_title("Sanity check: maps of trained vs randomised model\n(high = ignores the weights)")
    fig.tight_layout()
    return fig


def plot_probabilities(
    probabilities: dict[str, float], predicted: str | None = None, ax: Axes | None = None
) -> Figure:
    """Draw the class probabilities as horizontal bars, the predicted class in red.

    Args:
        probabilities: ``{class: probability}``, drawn top to bottom in this order.
        predicted: The class to highlight.
        ax: Axes to draw into; None makes a standalone Figure (not kept by pyplot, so an
            app can draw one per click without filling memory).

    Returns:
        The Figure.
    """
    names = list(probabilities)
    values = [probabilities[name] for name in names]
    if ax is None:
        ax = Figure(figsize=(4.2, 0.45 * len(names) + 0.6), dpi=90).add_subplot()
    colours = ["tab:red" if name == predicted else "tab:gray" for name in names]
    ax.barh(names[::-1], values[::-1], color=colours[::-1])
    for y, value in enumerate(values[::-1]):
        ax.text(min(value + 0.02, 0.8), y, f"{value:.1%}", va="center")
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    ax.figure.tight_layout()
    return ax.figure


def plot_localisation(summary: pd.DataFrame, label: str = "all", ax: Axes | None = None) -> Figure:
    """Bars of pointing game and energy inside the lesion, with intervals and chance.

    Args:
        summary: ``localisation.summarise_scores`` output (index method, label).
        label: The class to draw (``"all"`` pools the classes).
        ax: Axes to draw into; None makes a new figure.

    Returns:
        The Figure.
    """
    table = summary.xs(label, level="label")
    fig, ax = figure_and_axes(ax, (7.5, 3.6))
    positions, width = np.arange(len(table)), 0.38
    for shift, name, prefix, text in (
        (-width / 2, "pointing_game", "pointing", "pointing game (hit rate)"),
        (width / 2, "energy_inside", "energy", "energy inside the region"),
    ):
        errors = np.abs(
            table[[f"{prefix}_low", f"{prefix}_high"]].to_numpy().T - table[name].to_numpy()
        )
        bars = ax.bar(
            positions + shift, table[name], width, yerr=np.nan_to_num(errors), label=text, capsize=3
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=2)
        ax.hlines(
            table[f"{prefix}_chance"],
            positions + shift - width / 2,
            positions + shift + width / 2,
            colors="black",
            linestyles="dashed",
        )
    ax.plot([], [], "k--", label="chance (region's share of the area)")
    ax.set_xticks(positions, table.index)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share")
    ax.set_title(f"Maps against the lesion region ({label}; 95% bootstrap intervals)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_localisation_gallery(
    scans: list[np.ndarray],
    maps: list[np.ndarray],
    masks: list[np.ndarray],
    titles: list[str],
    columns: int = 4,
    alpha: float = 0.45,
) -> Figure:
    """Show scans with their map and lesion region outlined (white), e.g. hits and misses.

    Args:
        scans: The scans, (H, W) or (H, W, 3) in [0, 255].
        maps: One heatmap per scan, in [0, 1].
        masks: One lesion region per scan (a phantom mask or ``box_mask``).
        titles: One title per panel (class, hit or miss, scores).
        columns: Panels per row.
        alpha: Weight of the heatmap in the overlays.

    Returns:
        The Figure (an empty one with a note when there is nothing to show).
    """
    count = len(scans)
    rows = max(1, -(-count // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, scan, heat, mask, title in zip(axes.ravel(), scans, maps, masks, titles, strict=False):
        ax.imshow(explain.overlay(scan, heat, alpha=alpha))
        ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="white", linewidths=1)
        peak = np.unravel_index(np.argmax(heat), np.shape(heat))
        ax.plot(peak[1], peak[0], marker="+", color="white", markersize=10)
        ax.set_title(title, fontsize=8)
    if count == 0:
        axes[0, 0].text(0.5, 0.5, "no scans to show", ha="center", va="center")
    fig.tight_layout()
    return fig
