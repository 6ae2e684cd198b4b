"""Figures of evaluation: comparisons, confusion matrices, ROC, calibration, intervals, ablations.

Each function takes numbers already computed (by ``metrics``, ``report`` or
``lessons``) and an optional ``ax`` to draw into, returns the Figure and never shows it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from course_utils.viz import figure_and_axes


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
    fig, ax = figure_and_axes(ax, (7, 0.9 + 0.45 * len(measures) * len(numeric)))
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


def plot_confusion_matrix(
    matrix: pd.DataFrame, ax: Axes | None = None, title: str = "", highlight: str | None = None
) -> Figure:
    """Draw a confusion matrix as a seaborn heatmap, counts or row-normalised.

    Args:
        matrix: True classes as rows, predicted classes as columns
            (``metrics.confusion_tables``); integers are written as counts, floats
            as shares.
        ax: Axes to draw into; None makes a new figure.
        title: Title of the axes.
        highlight: A predicted class whose cells to outline in red for every other
            true class, e.g. ``"notumor"``: the missed tumors.

    Returns:
        The Figure.
    """
    import seaborn as sns

    fig, ax = figure_and_axes(ax, (4.6, 3.9))
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
        curves: ``{class: {"fpr", "tpr", "auc"}}`` (``metrics.roc_curves``); classes
            without a curve are listed as such.
        ax: Axes to draw into; None makes a new figure.
        title: Title of the axes.

    Returns:
        The Figure.
    """
    fig, ax = figure_and_axes(ax, (4.6, 4.2))
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
        table: ``metrics.reliability_table`` (``lower``, ``upper``, ``count``,
            ``confidence``, ``accuracy``).
        ax: Axes to draw into; None makes a new figure.
        title: Title of the axes.
        ece: Expected calibration error, written in the corner when given.

    Returns:
        The Figure: blue bars are the accuracy of each bin, hatched red bars the gap
        to the bin's mean confidence (blue below the diagonal: over-confident); the
        number of images is written above each bar.
    """
    fig, ax = figure_and_axes(ax, (4.6, 4.2))
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
        table: ``report.interval_table`` (``model``, ``test set``, ``metric``,
            ``value``, ``low``, ``high``).
        ax: Axes to draw into; None makes a new figure.
        title: Title of the axes.

    Returns:
        The Figure.
    """
    rows = list(dict.fromkeys(zip(table["model"], table["test set"], strict=True)))
    fig, ax = figure_and_axes(ax, (6.4, 0.9 + 0.55 * len(rows)))
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
        mistakes: ``metrics.confident_mistakes`` (``abs_path``, ``true``,
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


def plot_ablation(
    summary: pd.DataFrame,
    goal_accuracy: float | None = None,
    goal_seconds: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw each recipe step's accuracy (mean ± sd over seeds) against its training seconds.

    Args:
        summary: ``ablation.summarise`` (``step``, ``seeds``, ``mean_accuracy``,
            ``sd_accuracy``, ``median_seconds``).
        goal_accuracy: Draw the accuracy goal as a dashed line (None: no line).
        goal_seconds: Draw the time budget as a dotted line (None: no line).
        ax: Axes to draw into; None makes a new figure.

    Returns:
        The Figure.
    """
    fig, ax = figure_and_axes(ax, (7.0, 4.2))
    for index, row in enumerate(summary.itertuples()):
        ax.errorbar(
            row.median_seconds,
            row.mean_accuracy * 100,
            yerr=row.sd_accuracy * 100,
            fmt="o",
            capsize=4,
            color=f"C{index}",
            label=f"{row.step} ({row.seeds} seeds)",
        )
    if goal_accuracy is not None:
        ax.axhline(goal_accuracy * 100, color="grey", linestyle="--", linewidth=1)
        ax.annotate(
            "accuracy goal",
            (0.01, goal_accuracy * 100),
            xycoords=("axes fraction", "data"),
            va="bottom",
            fontsize=8,
            color="grey",
        )
    if goal_seconds is not None:
        ax.axvline(goal_seconds, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("training seconds (median over seeds)")
    ax.set_ylabel("leak-free held-out accuracy (%)")
    ax.set_title("The CNN recipe, one step at a time (bars: ± 1 sd over seeds)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig
