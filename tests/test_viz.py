"""Figures: each returns a Figure with the expected axes and artists, and draws into ``ax=``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_utils import viz  # noqa: E402

HISTORY = {
    "loss": [1.3, 1.0, 0.8],
    "val_loss": [1.2, 1.1, 1.15],
    "accuracy": [0.3, 0.5, 0.7],
    "val_accuracy": [0.35, 0.45, 0.44],
}


def test_plot_class_counts_new_and_given_axes() -> None:
    counts = pd.DataFrame({"train": [10, 20], "test": [3, 4]}, index=["glioma", "notumor"])
    counts.loc["total"] = counts.sum()
    fig = viz.plot_class_counts(counts, title="counts")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.patches) == 4  # total row dropped: 2 classes x 2 splits
    assert ax.get_title() == "counts"
    other, given = plt.subplots()
    assert viz.plot_class_counts(counts, ax=given) is other
    assert len(given.patches) == 4


def test_plot_sample_grid(image_root: Path) -> None:
    samples = {"glioma": ["glioma/0.png", "glioma/1.png"], "notumor": ["notumor/0.png"]}
    masks = {"glioma/0.png": image_root / "mask.png"}
    fig = viz.plot_sample_grid(image_root, samples, masks)
    assert isinstance(fig, Figure) and len(fig.axes) == 4  # 2 rows x 2 columns
    assert sum(len(ax.images) for ax in fig.axes) == 3
    assert fig.axes[0].get_title(loc="left") == "glioma"


def test_plot_intensity_histograms() -> None:
    histograms = pd.DataFrame(
        {"glioma": [0.1, 0.5, 0.4], "notumor": [0.2, 0.3, 0.5]}, index=[10, 128, 240]
    )
    fig = viz.plot_intensity_histograms(histograms)
    assert isinstance(fig, Figure) and len(fig.axes) == 1 and len(fig.axes[0].lines) == 2
    other, given = plt.subplots()
    assert viz.plot_intensity_histograms(histograms, ax=given) is other
    assert len(given.lines) == 2 and given.get_yscale() == "log"


def test_plot_image_pairs(image_root: Path) -> None:
    pairs = [("glioma/0.png", "glioma/1.png", "r = 0.99"), ("notumor/0.png", "notumor/1.png", "x")]
    fig = viz.plot_image_pairs(image_root, pairs)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert sum(len(ax.images) for ax in fig.axes) == 4
    assert len(viz.plot_image_pairs(image_root, pairs, max_pairs=1).axes) == 2
    empty = viz.plot_image_pairs(image_root, [])
    assert len(empty.axes) == 1 and empty.axes[0].texts[0].get_text() == "no pairs to show"


def test_plot_image_batch() -> None:
    images = np.random.default_rng(0).uniform(0, 255, (5, 16, 16, 3))
    fig = viz.plot_image_batch(images, [f"image {i}" for i in range(5)], columns=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 8  # 2 rows x 4 columns
    assert sum(len(ax.images) for ax in fig.axes) == 5
    assert fig.axes[4].get_title() == "image 4"


def test_save_figure(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = viz.save_figure(fig, tmp_path / "figures", "line")
    assert path == tmp_path / "figures" / "line.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_training_history_phases() -> None:
    phase2 = {"history": {key: values[:2] for key, values in HISTORY.items()}}  # fit_model result
    phase2["history"]["val_loss"] = [1.0, 1.05]
    fig = viz.plot_training_history([HISTORY, phase2], ["phase 1", "phase 2"], title="run")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    loss_ax, accuracy_ax = fig.axes
    # training, validation, one phase boundary, and (loss panel) the best-epoch marker
    assert len(loss_ax.lines) == 4 and len(accuracy_ax.lines) == 3
    training = loss_ax.lines[0]
    assert list(training.get_xdata()) == [1, 2, 3, 4, 5]
    assert list(training.get_ydata()) == HISTORY["loss"] + HISTORY["loss"][:2]
    boundary = loss_ax.lines[2]
    assert list(boundary.get_xdata()) == [3.5, 3.5]
    best = loss_ax.lines[3]
    assert list(best.get_xdata()) == [4] and list(best.get_ydata()) == [1.0]
    assert best.get_label() == "lowest val loss (epoch 4)"
    assert {t.get_text() for t in loss_ax.texts} == {"phase 1", "phase 2"}
    assert fig._suptitle.get_text() == "run"


def test_plot_training_history_single_history_and_csv_table() -> None:
    table = pd.DataFrame({"epoch": [0, 1, 2], **HISTORY, "learning_rate": [1e-3] * 3})
    fig = viz.plot_training_history(table)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 2  # no phase boundary
    assert list(fig.axes[1].lines[1].get_ydata()) == HISTORY["val_accuracy"]
    assert fig.axes[0].get_xlabel() == "epoch"
    with pytest.raises(ValueError, match="phase names"):
        viz.plot_training_history([HISTORY], ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        viz.plot_training_history([])


def test_plot_learning_rate_comparison() -> None:
    curves = {1e-2: [1.4, 1.5], 1e-4: [1.38, 1.37], 1e-3: [1.3, 1.1]}
    fig = viz.plot_learning_rate_comparison(curves)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    lines = fig.axes[0].lines
    assert len(lines) == 3
    assert [line.get_label() for line in lines] == ["lr = 0.0001", "lr = 0.001", "lr = 0.01"]
    assert list(lines[1].get_ydata()) == [1.3, 1.1]
    other, given = plt.subplots()
    assert viz.plot_learning_rate_comparison(curves, ax=given, reference=np.log(4)) is other
    assert len(given.lines) == 4  # three rates and the reference


def test_plot_feature_maps() -> None:
    maps = np.random.default_rng(0).uniform(0, 1, (12, 12, 10)).astype("float32")
    maps[..., 3] = 0.0  # a silent channel must not divide by zero
    fig = viz.plot_feature_maps(maps, columns=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 12  # 3 rows x 4 columns
    assert sum(len(ax.images) for ax in fig.axes) == 10
    shown = fig.axes[3].images[0].get_array()
    assert np.all(np.asarray(shown) == 0)
    image = np.full((12, 12, 3), 128.0)
    with_input = viz.plot_feature_maps(maps, columns=4, image=image, max_maps=7, title="conv1")
    assert len(with_input.axes) == 8 and sum(len(ax.images) for ax in with_input.axes) == 8
    assert with_input.axes[0].get_title() == "input" and with_input.axes[1].get_title() == "#0"
    with pytest.raises(ValueError, match="height, width, channels"):
        viz.plot_feature_maps(maps[..., 0])
