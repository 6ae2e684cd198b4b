"""Evaluation figures: each returns a Figure with the expected artists and draws into ``ax=``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_utils import viz_metrics  # noqa: E402


def test_plot_model_comparison() -> None:
    table = pd.DataFrame(
        {
            "parameters": [423_268, 23_221_420],
            "training seconds": [6.0, 10.0],
            "best val accuracy": [0.8, 0.9],
        },
        index=["CNN", "Xception"],
    )
    fig = viz_metrics.plot_model_comparison(table)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.patches) == 6  # 2 models x 3 measures
    widths = sorted(patch.get_width() for patch in ax.patches)
    assert widths[-1] == pytest.approx(1.0) and widths[0] == pytest.approx(423_268 / 23_221_420)
    labels = {text.get_text() for text in ax.texts}
    assert {"23.2 M", "423 k", "90.0%", "6"} <= labels
    other, given = plt.subplots()
    assert viz_metrics.plot_model_comparison(table.loc[["CNN"]], ax=given) is other
    assert len(given.patches) == 3


# --- evaluation (lesson 04) ----------------------------------------------------------

CONFUSION = pd.DataFrame(
    [[5, 0, 1, 0], [0, 4, 0, 0], [0, 1, 6, 0], [0, 0, 2, 3]],
    index=pd.Index(["glioma", "meningioma", "notumor", "pituitary"], name="true"),
    columns=pd.Index(["glioma", "meningioma", "notumor", "pituitary"], name="predicted"),
)


def test_plot_confusion_matrix_counts_rates_and_missed_tumors() -> None:
    fig = viz_metrics.plot_confusion_matrix(CONFUSION, highlight="notumor")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts[:4] == ["5", "0", "1", "0"] and len(texts) == 16
    outlined = [p for p in ax.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(outlined) == 3  # the three tumor rows in the notumor column
    assert "missed tumors" in ax.get_xlabel()
    rates = CONFUSION / CONFUSION.sum(axis=1).to_numpy()[:, None]
    other, given = plt.subplots()
    assert viz_metrics.plot_confusion_matrix(rates, ax=given) is other
    assert given.texts[0].get_text() == "0.83"


def test_plot_roc_curves() -> None:
    curves = {
        "glioma": {"fpr": [0, 0.1, 1], "tpr": [0, 0.9, 1], "auc": 0.95},
        "notumor": {"fpr": [], "tpr": [], "auc": float("nan")},
    }
    fig = viz_metrics.plot_roc_curves(curves)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == "glioma (AUC 0.950)" and "no curve" in labels[1] and labels[2] == "chance"
    other, given = plt.subplots()
    assert viz_metrics.plot_roc_curves(curves, ax=given) is other


def test_plot_reliability_diagram() -> None:
    table = pd.DataFrame(
        {
            "lower": [0.0, 0.5],
            "upper": [0.5, 1.0],
            "count": [0, 10],
            "confidence": [float("nan"), 0.9],
            "accuracy": [float("nan"), 0.6],
        }
    )
    fig = viz_metrics.plot_reliability_diagram(table, ece=0.3)
    ax = fig.axes[0]
    assert len(ax.patches) == 2  # one filled bin: accuracy bar + gap bar
    assert ax.patches[0].get_height() == pytest.approx(0.6)
    assert ax.patches[1].get_height() == pytest.approx(0.3)
    assert any(t.get_text() == "ECE = 0.300" for t in ax.texts)
    count = next(t for t in ax.texts if t.get_text() == "10")
    assert count.get_position()[1] == pytest.approx(0.91)  # above the taller bar
    other, given = plt.subplots()
    assert viz_metrics.plot_reliability_diagram(table, ax=given) is other


def test_plot_metric_intervals() -> None:
    table = pd.DataFrame(
        {
            "model": ["CNN"] * 4,
            "test set": ["full test", "full test", "leak-free test", "leak-free test"],
            "metric": ["accuracy", "macro-F1"] * 2,
            "value": [0.9, 0.88, 0.85, 0.84],
            "low": [0.85, 0.82, 0.8, 0.78],
            "high": [0.94, 0.92, 0.9, 0.89],
        }
    )
    fig = viz_metrics.plot_metric_intervals(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "CNN · full test",
        "CNN · leak-free test",
    ]
    assert len(ax.get_legend().get_texts()) == 2
    other, given = plt.subplots()
    assert viz_metrics.plot_metric_intervals(table, ax=given) is other


def test_plot_confident_mistakes(image_root: Path) -> None:
    mistakes = pd.DataFrame(
        {
            "abs_path": [
                str(image_root / "glioma" / "0.png"),
                str(image_root / "notumor" / "1.png"),
            ],
            "true": ["glioma", "notumor"],
            "predicted": ["notumor", "glioma"],
            "probability": [0.97, 0.6],
        }
    )
    fig = viz_metrics.plot_confident_mistakes(mistakes, columns=4, title="mistakes")
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == "true glioma\npredicted notumor (0.97)"
    assert fig.axes[0].title.get_color() == "darkred"
    empty = viz_metrics.plot_confident_mistakes(mistakes.iloc[:0])
    assert empty.axes[0].texts[0].get_text() == "no mistakes to show"


def test_plot_ablation_draws_one_point_per_step_and_the_goals() -> None:
    summary = pd.DataFrame(
        {
            "step": ["baseline", "+ bfloat16"],
            "seeds": [3, 3],
            "mean_accuracy": [0.95, 0.96],
            "sd_accuracy": [0.004, 0.002],
            "median_seconds": [700.0, 600.0],
        }
    )
    fig = viz_metrics.plot_ablation(summary, goal_accuracy=0.975, goal_seconds=600)
    ax = fig.axes[0]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "baseline (3 seeds)",
        "+ bfloat16 (3 seeds)",
    ]
    points = [line.get_xydata()[0].tolist() for line in ax.lines if len(line.get_xydata()) == 1]
    assert [700.0, 95.0] in points and [600.0, 96.0] in points
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert dashed and dashed[0].get_ydata()[0] == pytest.approx(97.5)
    plt.close(fig)
