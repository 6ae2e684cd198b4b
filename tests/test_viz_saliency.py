"""Tests of course_utils.viz_saliency: lesson 05's figures."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_utils import viz_saliency  # noqa: E402


def _disk(size: int, center: tuple[float, float], radius: float) -> np.ndarray:
    rows, columns = np.mgrid[:size, :size]
    return np.hypot(rows - center[0], columns - center[1]) <= radius


# ------------------------------------------------------------------- figures


def test_figures_have_the_expected_axes():
    image = np.full((32, 32), 90, dtype=np.uint8)
    maps = {m: np.random.default_rng(0).random((32, 32)) for m in ("saliency", "gradcam")}
    fig = viz_saliency.plot_saliency_comparison(image, maps, mask=_disk(32, (16, 16), 5))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    titled = viz_saliency.plot_saliency_comparison(
        image, maps, title="true glioma, predicted glioma"
    )
    titled.canvas.draw()
    renderer = titled.canvas.get_renderer()
    top_of_panel_titles = max(ax.title.get_window_extent(renderer).y1 for ax in titled.axes)
    assert titled._suptitle.get_window_extent(renderer).y0 >= top_of_panel_titles, "overlap"
    plt.close(titled)
    scores = pd.DataFrame(
        {
            "pointing_game": [0.8, 0.5],
            "pointing_chance": [0.1, 0.1],
            "energy_inside": [0.4, 0.2],
            "mask_share": [0.05, 0.05],
        },
        index=pd.Index(["gradcam", "saliency"], name="method"),
    )
    sanity = pd.DataFrame({"spearman": [0.2, 0.9]}, index=["gradcam", "saliency"])
    figures = [fig, viz_saliency.plot_method_scores(scores), viz_saliency.plot_sanity_check(sanity)]
    assert all(isinstance(f, Figure) and len(f.axes) == 1 for f in figures[1:])
    _, ax = plt.subplots()
    assert viz_saliency.plot_sanity_check(sanity, ax=ax) is ax.figure
    for figure in [*figures, ax.figure]:
        plt.close(figure)


def test_plot_probabilities_highlights_the_prediction() -> None:
    fig = viz_saliency.plot_probabilities({"glioma": 0.7, "notumor": 0.3}, "glioma")
    (ax,) = fig.axes
    colours = [bar.get_facecolor() for bar in ax.patches]
    assert len(colours) == 2 and colours[0] != colours[1]
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels == ["notumor", "glioma"]  # first class on top
    _, given = plt.subplots()
    assert viz_saliency.plot_probabilities({"a": 1.0}, ax=given) is given.figure
    plt.close(given.figure)
