"""Numbers for the exploration part of lesson 01 (the drawing is in ``viz``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from course_utils import config


def image_properties(table: pd.DataFrame) -> pd.DataFrame:
    """Count readable images by size, colour mode and file format.

    Args:
        table: An audited file table (``readable``, ``width``, ``height``, ``mode``, ``format``).

    Returns:
        One row per (size, mode, format) with its count, most common first.
    """
    readable = table[table["readable"].astype(bool)]
    sizes = (
        readable["width"].astype(int).astype(str) + "x" + readable["height"].astype(int).astype(str)
    )
    frame = pd.DataFrame({"size": sizes, "mode": readable["mode"], "format": readable["format"]})
    counts = frame.value_counts().rename("images").reset_index()
    return counts.sort_values("images", ascending=False, ignore_index=True)


def sample_paths(
    table: pd.DataFrame, per_class: int, seed: int, split: str = config.TRAIN_SPLIT
) -> dict[str, list[str]]:
    """Pick a seeded random sample of readable files from each class.

    Args:
        table: An audited file table.
        per_class: Files wanted per class (fewer when a class is smaller).
        seed: Seed of the draw.
        split: The split to draw from.

    Returns:
        ``{class name: [relative paths]}`` in the table's class order.
    """
    readable = table[table["readable"].astype(bool) & (table["split"] == split)]
    samples = {}
    for label, files in readable.groupby("label", sort=True):
        count = min(per_class, len(files))
        samples[label] = files.sample(n=count, random_state=seed)["path"].tolist()
    return samples


def intensity_histograms(
    root: str | Path, table: pd.DataFrame, per_class: int = 100, bins: int = 64, seed: int = 42
) -> pd.DataFrame:
    """Average grayscale intensity histogram of a sample of each class.

    Args:
        root: Dataset root the table's paths start from.
        table: An audited file table.
        per_class: Images sampled per class.
        bins: Number of bins over [0, 255].
        seed: Seed of the sample.

    Returns:
        A table with one column per class and one row per bin (index: bin centre),
        each column a density that sums to 1.
    """
    edges = np.linspace(0, 256, bins + 1)
    columns = {}
    for label, paths in sample_paths(table, per_class, seed).items():
        total = np.zeros(bins)
        for path in paths:
            pixels = np.asarray(Image.open(Path(root) / path).convert("L")).ravel()
            total += np.histogram(pixels, bins=edges)[0] / pixels.size
        columns[label] = total / max(total.sum(), 1e-12)
    return pd.DataFrame(columns, index=(edges[:-1] + edges[1:]) / 2)
