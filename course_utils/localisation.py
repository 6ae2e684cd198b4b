"""Score saliency maps against a lesion region: a mask or a box (no TensorFlow).

- ``box_mask``: a tumor box (fractions ``x0, y0, x1, y1``) as a mask at the map's size;
- ``pointing_game``, ``energy_inside`` and their chance rates: one map against one region;
- ``head_region``, ``energy_outside``: how much of a map lies off the head (a shortcut
  check: a model reading the background, the frame or text burnt into the image);
- ``score_map``: all of these for one map; ``summarise_scores``: per method and class,
  with bootstrap intervals; ``localisation_record``: the JSON block of the metrics file;
  ``card_section``: its Markdown for the model card.

Running the maps (TensorFlow) is ``course_utils.localisation_run``. Nothing happens at import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from course_utils import config, metrics

#: Pointing-game tolerance as a share of the map's side: Zhang et al. (2018) grow the region
#: by 15 px on 224 px images; the same share is used at every size (6.4 px at 96 px).
TOLERANCE_SHARE = 15 / 224
#: ``tolerance_px=None`` means ``TOLERANCE_SHARE`` of the map's larger side.
DEFAULT_TOLERANCE_PX = None


def tolerance_for(shape: Sequence[int], tolerance_px: float | None = None) -> float:
    """Return the pointing game's tolerance in pixels for a map of this shape.

    Args:
        shape: The map's (H, W).
        tolerance_px: An explicit tolerance, or None for ``TOLERANCE_SHARE`` of max(H, W).

    Returns:
        The tolerance in pixels.
    """
    return float(tolerance_px) if tolerance_px is not None else TOLERANCE_SHARE * max(shape[:2])


#: The label of the row that pools every class in ``summarise_scores``.
ALL_CLASSES = "all"
#: The per-map numbers of ``score_map``, in table order.
SCORE_COLUMNS = (
    "pointing_game",
    "pointing_chance",
    "energy_inside",
    "energy_chance",
    "energy_outside_head",
    "background_share",
)


# ------------------------------------------------------------------ regions


def box_mask(box: Sequence[float], shape: tuple[int, int]) -> np.ndarray:
    """Draw a box given as fractions of the image as a mask of ``shape``.

    A pixel belongs to the box when its centre does; a box thinner than a pixel still
    marks the pixel holding its centre, so the mask is never empty.

    Args:
        box: ``x0, y0, x1, y1`` as fractions of width and height (x right, y down).
        shape: ``(height, width)`` of the map the box will score.

    Returns:
        A bool mask of ``shape``.

    Raises:
        ValueError: If the box is not 4 numbers with ``0 <= x0 <= x1 <= 1`` (same for y).
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (0.0 <= x0 <= x1 <= 1.0 and 0.0 <= y0 <= y1 <= 1.0):
        raise ValueError(
            f"Box {tuple(box)} is not x0, y0, x1, y1 fractions with x0 <= x1 and y0 <= y1 in "
            "[0, 1]; read it from a boxes CSV (python -m course_utils data boxes)."
        )
    height, width = shape
    columns = (np.arange(width) + 0.5) / width
    rows = (np.arange(height) + 0.5) / height
    mask = ((rows >= y0) & (rows <= y1))[:, None] & ((columns >= x0) & (columns <= x1))[None, :]
    if not mask.any():
        row = min(int((y0 + y1) / 2 * height), height - 1)
        column = min(int((x0 + x1) / 2 * width), width - 1)
        mask[row, column] = True
    return mask


def head_region(image: np.ndarray) -> np.ndarray:
    """Estimate the head in a scan: the largest bright blob, holes filled.

    Args:
        image: The scan, (H, W) or (H, W, 3), any intensity range.

    Returns:
        A bool mask (H, W); the whole frame when the image is black.
    """
    gray = np.asarray(image, dtype=np.float32)
    gray = gray.mean(axis=-1) if gray.ndim == 3 else gray
    if gray.max() <= 0:
        return np.ones(gray.shape, dtype=bool)
    region = ndimage.binary_fill_holes(gray > 0.1 * gray.max())
    labels, count = ndimage.label(region)
    if count > 1:  # the head, not specks of noise or burnt-in text
        sizes = ndimage.sum(region, labels, range(1, count + 1))
        region = labels == 1 + int(np.argmax(sizes))
    return ndimage.binary_fill_holes(region)


# ------------------------------------------------------- one map, one region


def _check_pair(heatmap: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (float heatmap, bool mask), or raise ValueError on a shape mismatch/empty mask."""
    heat, region = np.asarray(heatmap, dtype=np.float64), np.asarray(mask, dtype=bool)
    if heat.shape != region.shape or heat.ndim != 2:
        raise ValueError(
            f"heatmap {heat.shape} and mask {region.shape} must be 2-D with the same shape; "
            "compute the map at the mask's image size (or draw the box with box_mask)."
        )
    if not region.any():
        raise ValueError("The mask is empty (no lesion, e.g. a 'notumor' scan); skip that image.")
    return heat, region


def grown_mask(mask: np.ndarray, tolerance_px: float | None = DEFAULT_TOLERANCE_PX) -> np.ndarray:
    """Grow a mask by ``tolerance_px`` pixels (Euclidean distance).

    Args:
        mask: (H, W) bool region.
        tolerance_px: How far to grow it (0 keeps it as it is); None: ``tolerance_for``.

    Returns:
        The grown bool mask.
    """
    tolerance = tolerance_for(np.shape(mask), tolerance_px)
    return ndimage.distance_transform_edt(~np.asarray(mask, dtype=bool)) <= tolerance


def pointing_game(
    heatmap: np.ndarray, mask: np.ndarray, tolerance_px: float | None = DEFAULT_TOLERANCE_PX
) -> bool:
    """Say whether the map's maximum falls inside the lesion (pointing game, Zhang et al.).

    Args:
        heatmap: (H, W) map.
        mask: (H, W) bool lesion mask (or ``box_mask``), not empty.
        tolerance_px: The mask is grown by this many pixels first, so a peak on the
            lesion's border counts.

    Returns:
        True if the (first) maximum lies in the grown mask.

    Raises:
        ValueError: If the shapes differ or the mask is empty.
    """
    heat, region = _check_pair(heatmap, mask)
    return bool(grown_mask(region, tolerance_px)[np.unravel_index(np.argmax(heat), heat.shape)])


def pointing_chance(mask: np.ndarray, tolerance_px: float | None = DEFAULT_TOLERANCE_PX) -> float:
    """Return the pointing game's chance rate: the grown region's share of the area.

    A peak dropped at a random pixel hits the grown region this often.

    Args:
        mask: (H, W) bool lesion mask.
        tolerance_px: The pointing game's tolerance.

    Returns:
        A share in [0, 1].
    """
    return float(grown_mask(mask, tolerance_px).mean())


def energy_inside(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Return the share of the map's total mass that lies inside the mask.

    A map that ignores the lesion scores about the mask's share of the image area
    (its chance rate, ``mask.mean()``); one that looks only at the lesion scores 1.

    Args:
        heatmap: (H, W) non-negative map.
        mask: (H, W) bool lesion mask, not empty.

    Returns:
        A share in [0, 1]; NaN for an all-zero map (it points nowhere).

    Raises:
        ValueError: If the shapes differ, the mask is empty or the map has negative values.
    """
    heat, region = _check_pair(heatmap, mask)
    if heat.min() < 0:
        raise ValueError("heatmap has negative values; pass a map scaled to [0, 1].")
    total = heat.sum()
    return float(heat[region].sum() / total) if total > 0 else float("nan")


def energy_outside(heatmap: np.ndarray, region: np.ndarray) -> float:
    """Return the share of the map's mass outside a region (e.g. off the head).

    Args:
        heatmap: (H, W) non-negative map.
        region: (H, W) bool region, e.g. ``head_region(image)``.

    Returns:
        A share in [0, 1]; NaN for an all-zero map.

    Raises:
        ValueError: If the shapes differ, the region is empty or the map is negative.
    """
    inside = energy_inside(heatmap, region)
    return 1.0 - inside if np.isfinite(inside) else float("nan")


def score_map(
    heatmap: np.ndarray,
    mask: np.ndarray,
    head: np.ndarray | None = None,
    tolerance_px: float | None = DEFAULT_TOLERANCE_PX,
) -> dict[str, float]:
    """Score one map against one lesion region, with each score's chance rate.

    Args:
        heatmap: (H, W) non-negative map.
        mask: (H, W) bool lesion region (mask or ``box_mask``), not empty.
        head: (H, W) bool head region for the shortcut check; None leaves it NaN.
        tolerance_px: The pointing game's tolerance.

    Returns:
        ``{column: value}`` for ``SCORE_COLUMNS`` (the pointing game as 0.0 or 1.0);
        ``background_share`` (the area off the head: a flat map's energy off the head).

    Raises:
        ValueError: If shapes differ, the mask is empty or the map is negative.
    """
    return {
        "pointing_game": float(pointing_game(heatmap, mask, tolerance_px)),
        "pointing_chance": pointing_chance(mask, tolerance_px),
        "energy_inside": energy_inside(heatmap, mask),
        "energy_chance": float(np.mean(mask)),
        "energy_outside_head": energy_outside(heatmap, head) if head is not None else np.nan,
        "background_share": 1.0 - float(np.mean(head)) if head is not None else np.nan,
    }


# ------------------------------------------------------------- many maps


def mean_interval(
    values: Sequence[float],
    chances: Sequence[float],
    n_resamples: int = 1000,
    seed: int = config.DEFAULT_SEED,
) -> dict[str, float]:
    """Mean of a score, its chance rate, and bootstrap intervals of both the score and the lift.

    The images are resampled with their chance rates (``metrics.bootstrap_interval``),
    so the lift's interval says whether the score beats chance on this many images.

    Args:
        values: The score of each image (NaNs are left out, with their chances).
        chances: Each image's chance rate.
        n_resamples: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        ``mean``, ``low``, ``high``, ``chance``, ``lift`` (mean - chance), ``lift_low``,
        ``lift_high`` and ``images``; intervals are NaN below 2 images.
    """
    score, chance = np.asarray(values, dtype=float), np.asarray(chances, dtype=float)
    keep = np.isfinite(score) & np.isfinite(chance)
    score, chance = score[keep], chance[keep]
    result = {"mean": float(np.mean(score)) if len(score) else np.nan}
    result["chance"] = float(np.mean(chance)) if len(chance) else np.nan
    result["lift"] = result["mean"] - result["chance"]
    result["low"] = result["high"] = result["lift_low"] = result["lift_high"] = np.nan
    if len(score) >= 2:
        with np.errstate(invalid="ignore"):
            low, high = metrics.bootstrap_interval(
                score, chance, lambda s, _: float(np.mean(s)), n_resamples, seed=seed
            )
            lift_low, lift_high = metrics.bootstrap_interval(
                score, chance, lambda s, c: float(np.mean(s - c)), n_resamples, seed=seed
            )
        result.update(low=low, high=high, lift_low=lift_low, lift_high=lift_high)
    return {**result, "images": int(len(score))}


def summarise_scores(
    per_image: pd.DataFrame,
    n_resamples: int = 1000,
    seed: int = config.DEFAULT_SEED,
) -> pd.DataFrame:
    """Pool per-image scores per method and class (and all classes), with intervals.

    Args:
        per_image: One row per (image, method) with ``method``, ``label`` and the
            ``SCORE_COLUMNS`` (``localisation_run.score_localisation``'s table).
        n_resamples: Bootstrap resamples of the intervals.
        seed: Seed of the resampling.

    Returns:
        One row per (method, class) with the class ``ALL_CLASSES`` pooling them:
        ``images``, ``pointing_game`` (hit rate) with ``pointing_low``/``_high``,
        ``pointing_chance``, ``pointing_lift_low``/``_high``, the same for
        ``energy_inside`` (chance ``energy_chance``), ``energy_outside_head`` and
        ``background_share`` (a flat map's energy off the head).

    Raises:
        ValueError: If a required column is missing or the table is empty.
    """
    missing = {"method", "label", *SCORE_COLUMNS} - set(per_image.columns)
    if missing or per_image.empty:
        raise ValueError(
            f"Per-image scores need rows and the columns method, label and {SCORE_COLUMNS}; "
            f"missing {sorted(missing) or 'rows'}."
        )
    rows = []
    for method, scores in per_image.groupby("method", sort=False):
        groups = [(ALL_CLASSES, scores), *scores.groupby("label", sort=True)]
        for label, group in groups:
            pointing = mean_interval(
                group["pointing_game"], group["pointing_chance"], n_resamples, seed
            )
            energy = mean_interval(
                group["energy_inside"], group["energy_chance"], n_resamples, seed
            )
            rows.append(
                {
                    "method": method,
                    "label": label,
                    "images": pointing["images"],
                    **_prefixed(pointing, "pointing", "pointing_game"),
                    **_prefixed(energy, "energy", "energy_inside"),
                    **{column: _nan_mean(group[column]) for column in SCORE_COLUMNS[-2:]},
                }
            )
    return pd.DataFrame(rows).set_index(["method", "label"])


def _nan_mean(values: pd.Series) -> float:
    """Mean of the defined values; NaN when there are none."""
    return float(np.nanmean(values)) if values.notna().any() else np.nan


def _prefixed(numbers: Mapping[str, float], prefix: str, name: str) -> dict[str, float]:
    """Rename ``mean_interval``'s keys for a summary row (``mean`` becomes ``name``)."""
    return {
        name: numbers["mean"],
        f"{prefix}_low": numbers["low"],
        f"{prefix}_high": numbers["high"],
        f"{prefix}_chance": numbers["chance"],
        f"{prefix}_lift_low": numbers["lift_low"],
        f"{prefix}_lift_high": numbers["lift_high"],
    }


def localisation_record(summary: pd.DataFrame, region: str, settings: Mapping[str, object]) -> dict:
    """Turn a summary into the ``localisation`` block of the metrics JSON.

    Args:
        summary: ``summarise_scores`` output.
        region: What the maps were scored against, e.g. ``"figshare box"`` or
            ``"phantom mask"``.
        settings: How they were computed (split, images per class, class explained,
            tolerance, resamples, seconds ...), stored as they are.

    Returns:
        ``{"region", "settings", "methods": {method: {class: {numbers}}}}``, JSON-ready
        once passed through ``course.to_jsonable``.
    """
    methods: dict[str, dict] = {}
    for (method, label), row in summary.iterrows():
        methods.setdefault(str(method), {})[str(label)] = {
            key: (int(value) if key == "images" else float(value)) for key, value in row.items()
        }
    return {"region": region, "settings": dict(settings), "methods": methods}


def record_table(record: Mapping) -> pd.DataFrame:
    """Rebuild the summary table from a ``localisation`` block (e.g. read from JSON).

    Args:
        record: ``localisation_record`` output, possibly through JSON (NaN as None).

    Returns:
        The ``summarise_scores`` table (index method, label).
    """
    rows = [
        {"method": method, "label": label, **{k: np.nan if v is None else v for k, v in n.items()}}
        for method, classes in record["methods"].items()
        for label, n in classes.items()
    ]
    return pd.DataFrame(rows).set_index(["method", "label"])


# ------------------------------------------------------------------- words


def _share(value: float, low: float, high: float) -> str:
    """``0.62 (0.55-0.70)``, or ``n/a`` for a missing number."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.2f}"
    return f"{value:.2f} ({low:.2f}-{high:.2f})"


def verdict(lift_low: float, lift_high: float) -> str:
    """Say whether a score beats its chance rate, from the lift's interval.

    Args:
        lift_low: Lower end of the score-minus-chance interval.
        lift_high: Upper end.

    Returns:
        ``"above chance"``, ``"below chance"`` or ``"not distinguishable from chance"``.
    """
    if lift_low is not None and np.isfinite(lift_low) and lift_low > 0:
        return "above chance"
    if lift_high is not None and np.isfinite(lift_high) and lift_high < 0:
        return "below chance"
    return "not distinguishable from chance"


def markdown_rows(table: pd.DataFrame) -> list[str]:
    """Render a summary as a Markdown table: scores with intervals next to chance.

    Args:
        table: ``summarise_scores`` (or ``record_table``) output.

    Returns:
        The table's lines.
    """
    lines = [
        "| method | class | images | pointing game | chance | energy inside | chance | "
        "energy off head | flat map |",
        "|---|---|---:|---|---:|---|---:|---:|---:|",
    ]
    for (method, label), row in table.iterrows():
        outside, background = row["energy_outside_head"], row.get("background_share")
        lines.append(
            f"| {method} | {label} | {int(row['images'])} | "
            f"{_share(row['pointing_game'], row['pointing_low'], row['pointing_high'])} | "
            f"{row['pointing_chance']:.2f} | "
            f"{_share(row['energy_inside'], row['energy_low'], row['energy_high'])} | "
            f"{row['energy_chance']:.2f} | "
            f"{_share(outside, None, None)} | {_share(background, None, None)} |"
        )
    return lines


def card_section(metrics_numbers: Mapping | None) -> list[str]:
    """The model card's "Localisation" section from the metrics' ``localisation`` block.

    Args:
        metrics_numbers: The saved metrics (``metrics_<name>.json``), or None.

    Returns:
        Markdown lines; a "not measured" line when the block is absent.
    """
    lines = ["## Localisation of the saliency maps", ""]
    record = (metrics_numbers or {}).get("localisation")
    if not record or not record.get("methods"):
        return lines + [
            "Not measured: run `python -m course_utils evaluate --model PATH --localisation` "
            "(real scans get figshare tumor boxes; phantoms their masks).",
            "",
        ]
    table = record_table(record)
    settings = record.get("settings") or {}
    lines += [
        f"Maps of the {settings.get('class_explained', 'true')} class scored against each "
        f"scan's {record['region']} on the {settings.get('split', 'test')} split; 95 % "
        f"bootstrap intervals ({settings.get('n_resamples', '?')} resamples). Chance is the "
        "region's share of the image (grown by the pointing tolerance for the pointing game).",
        "",
        *markdown_rows(table),
        "",
    ]
    for method in table.index.get_level_values("method").unique():
        row = table.loc[(method, ALL_CLASSES)]
        pointing = verdict(row["pointing_lift_low"], row["pointing_lift_high"])
        energy = verdict(row["energy_lift_low"], row["energy_lift_high"])
        lines.append(f"- {method}: pointing game {pointing}, energy inside {energy}.")
    lines += [
        "- A box is larger than the tumor, so energy inside a box overstates energy inside the "
        "tumor; a score above chance shows the map points near the tumor, not that the model "
        "used the tumor's appearance, nor that the maps are right where the box is absent.",
        "",
    ]
    return lines
