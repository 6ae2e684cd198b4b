"""Run each saliency method of a model over test scans with a lesion region and score the maps.

Real scans get their region from the figshare tumor boxes (``data.boxes``: read from a
boxes CSV or matched on the fly); phantoms from their lesion masks. The same scoring
(``course_utils.localisation``) serves both, so fast mode on phantoms runs this code too.

One model on its test split, as ``python -m course_utils evaluate --localisation`` runs it::

    regions = lesion_regions(test, data_root, card["image_size"])
    result = measure_localisation(model, card, regions)
    metrics["localisation"] = result.record
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from course_utils import config, images, localisation, predict
from course_utils.data import boxes as box_matching
from course_utils.data import phantom_dataset
from course_utils.data.figshare import load_reference
from course_utils.explain import METHODS, check_method, saliency_map

#: Healthy scans have no lesion to point at.
HEALTHY_CLASS = "notumor"
#: What ``lesion_regions`` scores against, per kind of data.
REGION_NAMES = {"box": "figshare tumor box", "mask": "phantom lesion mask"}


def is_phantom_root(data_root: str | Path) -> bool:
    """Tell whether a dataset folder holds phantoms (they carry lesion masks).

    Args:
        data_root: The dataset's root folder.

    Returns:
        True when its phantom manifest is there.
    """
    return (Path(data_root) / phantom_dataset.MANIFEST_NAME).is_file()


def table_boxes(
    table: pd.DataFrame, data_root: str | Path, boxes_csv: str | Path | None = None
) -> pd.DataFrame:
    """Find the figshare tumor box of every scan of a split table.

    Args:
        table: A split table with ``path`` (relative to ``data_root``) and ``label``.
        data_root: The dataset's root.
        boxes_csv: A CSV of ``python -m course_utils data boxes DATA_ROOT`` (its ``file``
            relative to the same root); None matches the scans on the fly (about a
            second per hundred scans).

    Returns:
        The rows of ``table`` that have a box, with ``x0, y0, x1, y1`` and ``similarity``.

    Raises:
        FileNotFoundError: If ``boxes_csv`` does not exist.
        ValueError: If the CSV lacks the box columns.
    """
    corners = ["x0", "y0", "x1", "y1", "similarity"]
    if boxes_csv is not None:
        if not Path(boxes_csv).is_file():
            raise FileNotFoundError(
                f"Boxes file {boxes_csv} does not exist; write it with `python -m course_utils "
                "data boxes DATA_ROOT --out boxes.csv` or leave --boxes out to match on the fly."
            )
        found = pd.read_csv(boxes_csv)
        if not {"file", *corners} <= set(found.columns):
            raise ValueError(f"{boxes_csv} lacks the columns file, {', '.join(corners)}.")
        found = found.rename(columns={"file": "path"})[["path", *corners]]
        return table.merge(found.drop_duplicates("path"), on="path", how="inner")
    reference = load_reference()
    paths = [Path(data_root) / path for path in table["path"]]
    signatures, readable, _ = box_matching.read_signatures(paths, reference.signature_size)
    similarity, slices, transforms = box_matching.match_signatures(signatures, reference)
    keep = readable & (similarity >= box_matching.DEFAULT_THRESHOLD)
    rows = [
        box_matching.tumor_box(reference, int(slices[i]), int(transforms[i]), similarity[i])
        for i in np.flatnonzero(keep)
    ]
    matched = table.iloc[np.flatnonzero(keep)].reset_index(drop=True)
    for column in corners:
        matched[column] = [getattr(box, column) for box in rows]
    return matched


def lesion_regions(
    table: pd.DataFrame,
    data_root: str | Path,
    image_size: int,
    boxes_csv: str | Path | None = None,
    per_class: int | None = None,
    seed: int = config.DEFAULT_SEED,
) -> tuple[pd.DataFrame, list[np.ndarray], list[np.ndarray], str]:
    """Load the tumor scans of a split with their lesion region at the model's size.

    Args:
        table: A split table (``path``, ``label``); healthy scans are left out.
        data_root: The dataset's root.
        image_size: The model's input side.
        boxes_csv: For real scans, a boxes CSV; None matches them on the fly.
        per_class: At most this many scans per class (a seeded sample); None takes all.
        seed: Seed of the sample.

    Returns:
        ``(rows, scans, masks, region)``: the rows kept (with their box corners for real
        scans), the uint8 scans, the bool masks, and the region's name.

    Raises:
        ValueError: If no tumor scan of the table has a region.
    """
    tumors = table[table["label"] != HEALTHY_CLASS].reset_index(drop=True)
    phantoms = is_phantom_root(data_root)
    if phantoms:
        masks = [
            images.load_mask(phantom_dataset.mask_path_for(data_root, p), image_size)
            for p in tumors["path"]
        ]
        keep = [m is not None and m.any() for m in masks]
        rows = tumors[keep].reset_index(drop=True)
    else:
        rows = table_boxes(tumors, data_root, boxes_csv)
    if per_class is not None:
        shuffled = rows.sample(frac=1.0, random_state=seed)
        rows = shuffled.groupby("label").head(per_class).sort_values("path").reset_index(drop=True)
    if rows.empty:
        raise ValueError(
            f"None of the {len(tumors)} tumor scans under {data_root} has a lesion region "
            "(a phantom mask or a figshare box); check the dataset folder."
        )
    scans = [images.load_image_file(Path(data_root) / p, image_size) for p in rows["path"]]
    if phantoms:
        path_masks = dict(zip(tumors["path"], masks, strict=True))
        regions = [path_masks[p] for p in rows["path"]]
    else:
        regions = [
            localisation.box_mask(box, (image_size, image_size))
            for box in rows[["x0", "y0", "x1", "y1"]].to_numpy()
        ]
    return rows, scans, regions, REGION_NAMES["mask" if phantoms else "box"]


def balanced_order(labels: Sequence[str], limit: int | None = None) -> list[int]:
    """Pick row positions class by class in turn, so a limit keeps the classes balanced.

    Args:
        labels: The class of each row.
        limit: At most this many positions; None keeps them all.

    Returns:
        Row positions: the first of each class, then the second of each, and so on.
    """
    labels = pd.Series(list(labels))
    rank = labels.groupby(labels).cumcount()
    order = sorted(range(len(labels)), key=lambda i: (rank[i], labels[i]))
    return sorted(order[: len(order) if limit is None else max(limit, 0)])


def score_localisation(
    model: keras.Model,
    rows: pd.DataFrame,
    scans: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    class_names: Sequence[str],
    methods: Sequence[str] = METHODS,
    limits: Mapping[str, int] | None = None,
    predicted: Sequence[int] | None = None,
    tolerance_px: float | None = localisation.DEFAULT_TOLERANCE_PX,
) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Compute each method's map of the true class for every scan and score it.

    Args:
        model: The classifier.
        rows: One row per scan (``path``, ``label``), as from ``lesion_regions``.
        scans: The scans (H, W, 3) at the model's size.
        masks: Their lesion regions (H, W).
        class_names: The model's class order.
        methods: Names from ``METHODS``.
        limits: ``{method: at most this many scans}`` for slow methods (Score-CAM).
        predicted: Each scan's predicted class index, to record whether it was right.
        tolerance_px: The pointing game's tolerance.

    Returns:
        ``(per_image, maps)``: one row per (scan, method) with ``path``, ``label``,
        ``method``, ``correct``, ``seconds`` and ``localisation.SCORE_COLUMNS``; and
        ``{method: {path: map}}`` for galleries.

    Raises:
        ValueError: If lengths differ, a method is unknown or a label is not a class.
    """
    if not len(rows) == len(scans) == len(masks):
        raise ValueError("rows, scans and masks must have the same length.")
    for method in methods:
        check_method(method)
    truth = [list(class_names).index(label) for label in rows["label"]]
    heads = [localisation.head_region(scan) for scan in scans]
    records, maps = [], {}
    for method in methods:
        maps[method] = {}
        for index in balanced_order(rows["label"], (limits or {}).get(method)):
            started = time.perf_counter()
            heat = saliency_map(model, scans[index], truth[index], method)
            path = rows["path"].iloc[index]
            maps[method][path] = heat
            records.append(
                {
                    "path": path,
                    "label": rows["label"].iloc[index],
                    "method": method,
                    "correct": None if predicted is None else predicted[index] == truth[index],
                    **localisation.score_map(heat, masks[index], heads[index], tolerance_px),
                    "seconds": time.perf_counter() - started,
                }
            )
    return pd.DataFrame(records), maps


@dataclass
class LocalisationResult:
    """The maps of one model scored against the lesion regions of its test scans.

    Attributes:
        rows: The scans scored (``path``, ``label``, box corners for real scans).
        per_image: One row per (scan, method): scores, chance rates, ``correct``.
        summary: ``localisation.summarise_scores`` (per method and class, intervals).
        record: The JSON block stored under ``metrics["localisation"]``.
        maps: ``{method: {path: map}}``.
    """

    rows: pd.DataFrame
    per_image: pd.DataFrame
    summary: pd.DataFrame
    record: dict
    maps: dict


def measure_localisation(
    model: keras.Model,
    card: Mapping,
    regions: tuple[pd.DataFrame, list, list, str],
    methods: Sequence[str] = METHODS,
    limits: Mapping[str, int] | None = None,
    n_resamples: int = 1000,
    seed: int = config.DEFAULT_SEED,
    split: str = "test",
) -> LocalisationResult:
    """Score every method's maps on the scans of ``lesion_regions`` and summarise them.

    Args:
        model: The classifier.
        card: Its model card (class order, image size).
        regions: ``lesion_regions`` output.
        methods: Names from ``METHODS``.
        limits: ``{method: at most this many scans}`` (e.g. ``{"scorecam": 60}``).
        n_resamples: Bootstrap resamples of the intervals.
        seed: Seed of the bootstrap.
        split: The split's name, recorded in the settings.

    Returns:
        The ``LocalisationResult``.
    """
    rows, scans, masks, region = regions
    started = time.perf_counter()
    predicted = predict.predict_images(model, card, np.stack(scans)).argmax(axis=1).tolist()
    per_image, maps = score_localisation(
        model, rows, scans, masks, card["class_names"], methods, limits, predicted
    )
    summary = localisation.summarise_scores(per_image, n_resamples, seed)
    settings = {
        "split": split,
        "class_explained": "true",
        "scans": len(rows),
        "scans_per_class": rows["label"].value_counts().sort_index().to_dict(),
        "limits": dict(limits or {}),
        "tolerance_share": localisation.TOLERANCE_SHARE,
        "n_resamples": n_resamples,
        "accuracy_on_these_scans": float(np.mean(per_image.groupby("path")["correct"].first())),
        "seconds": round(time.perf_counter() - started, 1),
    }
    record = localisation.localisation_record(summary, region, settings)
    return LocalisationResult(rows, per_image, summary, record, maps)
