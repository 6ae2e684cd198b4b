"""Numbers about saliency maps: do they find the lesion, depend on the model, and where they lie.

- ``pointing_game``, ``energy_inside``, ``score_methods``: maps measured against
  ground-truth lesion masks (phantoms have them);
- ``randomised_copy``, ``sanity_check``: the model-randomisation test of Adebayo et al.
  (2018): a map that barely changes when the learned weights are destroyed does not
  explain what the model learned;
- ``saliency_statistics``: where a map's mass lies, for an explainer that words it.

Maps come from ``course_utils.explain.saliency_map``. Nothing happens at import.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd
from scipy import ndimage, stats

from course_utils.explain import METHODS, check_method, saliency_map

# ------------------------------------------------------- measuring the maps


def _check_pair(heatmap: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (float heatmap, bool mask), or raise ValueError on a shape mismatch/empty mask."""
    heat, region = np.asarray(heatmap, dtype=np.float64), np.asarray(mask, dtype=bool)
    if heat.shape != region.shape or heat.ndim != 2:
        raise ValueError(
            f"heatmap {heat.shape} and mask {region.shape} must be 2-D with the same shape; "
            "compute the map at the mask's image size."
        )
    if not region.any():
        raise ValueError("The mask is empty (no lesion, e.g. a 'notumor' scan); skip that image.")
    return heat, region


def pointing_game(heatmap: np.ndarray, mask: np.ndarray, tolerance_px: float = 2.0) -> bool:
    """Say whether the map's maximum falls inside the lesion (pointing game, Zhang et al.).

    Args:
        heatmap: (H, W) map.
        mask: (H, W) bool lesion mask, not empty.
        tolerance_px: The mask is grown by this many pixels (Euclidean) first, so a peak
            on the lesion's border counts.

    Returns:
        True if the (first) maximum lies in the grown mask.

    Raises:
        ValueError: If the shapes differ or the mask is empty.
    """
    heat, region = _check_pair(heatmap, mask)
    grown = ndimage.distance_transform_edt(~region) <= tolerance_px
    return bool(grown[np.unravel_index(np.argmax(heat), heat.shape)])


def energy_inside(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Return the share of the map's total mass that lies inside the mask.

    A map that ignores the lesion scores about the mask's share of the image area;
    one that looks only at the lesion scores 1.

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


def score_methods(
    model: keras.Model,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    class_indices: Sequence[int],
    methods: Sequence[str] = METHODS,
    tolerance_px: float = 2.0,
) -> pd.DataFrame:
    """Measure each method's maps against ground-truth lesion masks.

    Args:
        model: The classifier.
        images: Images (H, W, 3) at the model's size; only those with a lesion.
        masks: Their lesion masks (H, W), not empty.
        class_indices: The class each map explains (true or predicted class).
        methods: Names from ``METHODS``.
        tolerance_px: Pointing-game tolerance (see ``pointing_game``).

    Returns:
        One row per method: ``pointing_game`` (hit rate), ``pointing_chance`` (mean area
        share of the grown mask: a random point's hit rate), ``energy_inside`` (mean),
        ``mask_share`` (mean area share of the mask: energy of a flat map),
        ``seconds`` per image and ``images``.

    Raises:
        ValueError: If the inputs differ in length or a method is unknown.
    """
    if not len(images) == len(masks) == len(class_indices):
        raise ValueError("images, masks and class_indices must have the same length.")
    for method in methods:
        check_method(method)
    rows = []
    for method in methods:
        hits, energies, started = [], [], time.perf_counter()
        for image, mask, index in zip(images, masks, class_indices, strict=True):
            heat = saliency_map(model, image, index, method)
            hits.append(pointing_game(heat, mask, tolerance_px))
            energies.append(energy_inside(heat, mask))
        rows.append(
            {
                "method": method,
                "pointing_game": float(np.mean(hits)),
                "pointing_chance": _grown_share(masks, tolerance_px),
                "energy_inside": float(np.nanmean(energies)),
                "mask_share": float(np.mean([np.mean(m) for m in masks])),
                "seconds": (time.perf_counter() - started) / max(len(images), 1),
                "images": len(images),
            }
        )
    return pd.DataFrame(rows).set_index("method")


def _grown_share(masks: Sequence[np.ndarray], tolerance_px: float) -> float:
    """Mean area share of the masks grown by ``tolerance_px`` (the pointing game's chance)."""
    grown = [ndimage.distance_transform_edt(~np.asarray(m, bool)) <= tolerance_px for m in masks]
    return float(np.mean([g.mean() for g in grown]))


# ---------------------------------------------------------- sanity check


def _weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Layers that own weights, in graph order, with nested sub-models opened up."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _weighted_layers(layer)
        elif layer.weights:
            found.append(layer)
    return found


def _seeded_initializer(layer: keras.layers.Layer, variable, seed: int):
    """The layer's own initializer for ``variable`` (seeded), else Glorot/kept as it is."""
    name = variable.name.split("/")[-1]
    for attribute in (f"{name}_initializer", f"{name.removesuffix('_kernel')}_initializer"):
        initializer = getattr(layer, attribute, None)
        if initializer is not None:
            config = initializer.get_config()
            if "seed" in config:
                config["seed"] = seed
            return type(initializer).from_config(config)
    return keras.initializers.GlorotUniform(seed=seed) if len(variable.shape) >= 2 else None


def randomised_copy(model: keras.Model, num_layers: int = 4, seed: int = 0) -> keras.Model:
    """Copy the model and re-initialise its top layers (Adebayo et al., 2018).

    The copy has the same architecture and weights, except the last ``num_layers``
    layers that own weights (counted from the output, inside the ``head`` too; batch
    norms count), which get fresh values from their own initializers, seeded.

    Args:
        model: The trained model (not changed).
        num_layers: How many weighted layers, from the top, to re-initialise.
        seed: Seed of the initializers.

    Returns:
        The randomised copy.

    Raises:
        ValueError: If ``num_layers`` is below 1 or above the number of weighted layers.
    """
    weighted = _weighted_layers(model)
    if not 1 <= num_layers <= len(weighted):
        raise ValueError(f"num_layers={num_layers}; use 1 to {len(weighted)} for {model.name!r}.")
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for offset, layer in enumerate(_weighted_layers(copy)[-num_layers:]):
        for number, variable in enumerate(layer.weights):
            initializer = _seeded_initializer(layer, variable, seed + 97 * offset + number)
            if initializer is not None:
                variable.assign(initializer(variable.shape, dtype=variable.dtype))
    return copy


def _spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of two maps; NaN when either is flat."""
    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(stats.spearmanr(first.ravel(), second.ravel()).statistic)


def sanity_check(
    model: keras.Model,
    images: Sequence[np.ndarray],
    class_indices: Sequence[int],
    methods: Sequence[str] = METHODS,
    randomised: keras.Model | None = None,
    num_layers: int = 4,
    seed: int = 0,
) -> pd.DataFrame:
    """Compare each method's maps from the trained model and from a randomised copy.

    High rank correlation means the map hardly depends on the learned weights (it
    shows edges of the image, not the model's reasons).

    Args:
        model: The trained model.
        images: Images (H, W, 3) at the model's size.
        class_indices: The class each map explains.
        methods: Names from ``METHODS``.
        randomised: The model to compare with; None makes ``randomised_copy(model,
            num_layers, seed)``.
        num_layers: Layers re-initialised when ``randomised`` is None.
        seed: Seed of the re-initialisation.

    Returns:
        One row per method: ``spearman`` (mean rank correlation), ``spearman_min``,
        ``flat_maps`` (pairs left out because a map was flat) and ``images``.

    Raises:
        ValueError: If the inputs differ in length or a method is unknown.
    """
    if len(images) != len(class_indices):
        raise ValueError("images and class_indices must have the same length.")
    for method in methods:
        check_method(method)
    other = randomised if randomised is not None else randomised_copy(model, num_layers, seed)
    rows = []
    for method in methods:
        values = [
            _spearman(
                saliency_map(model, image, index, method), saliency_map(other, image, index, method)
            )
            for image, index in zip(images, class_indices, strict=True)
        ]
        defined = [v for v in values if np.isfinite(v)]
        rows.append(
            {
                "method": method,
                "spearman": float(np.mean(defined)) if defined else float("nan"),
                "spearman_min": float(np.min(defined)) if defined else float("nan"),
                "flat_maps": len(values) - len(defined),
                "images": len(values),
            }
        )
    return pd.DataFrame(rows).set_index("method")


# ------------------------------------------------------- where the mass lies


def _head_region(image: np.ndarray | None, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """A brain-region estimate when no mask is given: the image's bright head, or the frame."""
    if image is None:
        return np.ones(shape, dtype=bool), "image frame"
    gray = np.asarray(image, dtype=np.float32)
    gray = gray.mean(axis=-1) if gray.ndim == 3 else gray
    if gray.shape != shape or gray.max() <= 0:
        return np.ones(shape, dtype=bool), "image frame"
    region = ndimage.binary_fill_holes(gray > 0.1 * gray.max())
    labels, count = ndimage.label(region)
    if count > 1:  # keep the largest component (the head), drop specks of noise
        sizes = ndimage.sum(region, labels, range(1, count + 1))
        region = labels == 1 + int(np.argmax(sizes))
    return region, "image threshold"


def _hot_spot(heat: np.ndarray, level: float = 0.9) -> tuple[int, int]:
    """(row, column) of the centre of the pixels above ``level`` x max, or of the maximum.

    A flat-topped blob has many maxima; its centre describes it better than the first.
    """
    hot = heat >= level * heat.max()
    row, column = (int(round(c)) for c in ndimage.center_of_mass(hot))
    if hot[row, column]:
        return row, column
    return tuple(int(i) for i in np.unravel_index(np.argmax(heat), heat.shape))


def _spread(heat: np.ndarray, share: float = 0.5) -> float:
    """Smallest share of the image area that holds ``share`` of the map's mass."""
    values = np.sort(heat.ravel())[::-1]
    needed = int(np.searchsorted(np.cumsum(values), share * values.sum())) + 1
    return needed / values.size


def saliency_statistics(
    heatmap: np.ndarray,
    brain_mask: np.ndarray | None = None,
    image: np.ndarray | None = None,
    midline_band: float = 0.06,
    skull_band: float = 0.08,
) -> dict:
    """Describe where a map's mass lies, in numbers an explainer can put into words.

    Sides are *image* sides: in the radiological convention of most axial MRI the
    image's left is the patient's right.

    Args:
        heatmap: (H, W) non-negative map, e.g. from ``saliency_map``.
        brain_mask: (H, W) bool region inside the skull, when known (phantoms).
        image: The scan (H, W) or (H, W, 3); without ``brain_mask`` the head is found by
            an intensity threshold of it, without both the image frame stands in.
        midline_band: Centroid offsets from the brain's middle below this share of the
            width count as ``"midline"``.
        skull_band: A peak nearer the brain's edge than this share of the image side
            counts as ``near_skull``.

    Returns:
        ``centroid_x``/``centroid_y`` (centre of mass) and ``peak_x``/``peak_y`` (centre
        of the hottest pixels) as fractions of width and height (0 = left/top),
        ``side`` (``"left"``, ``"right"`` or ``"midline"``, from the centroid),
        ``edge_distance`` (peak to the brain's edge, share of the side), ``near_skull``,
        ``skull_base`` (peak in the lowest 30 % of the brain, within 12 % of its
        middle), ``spread`` (share of the area holding 50 % of the mass) and
        ``region_source`` (``"brain mask"``, ``"image threshold"`` or ``"image frame"``).

    Raises:
        ValueError: If the map is not 2-D, has negative values or no mass.
    """
    heat = np.asarray(heatmap, dtype=np.float64)
    if heat.ndim != 2 or heat.min() < 0 or heat.sum() <= 0:
        raise ValueError("heatmap must be a 2-D non-negative map with some mass (not all zeros).")
    if brain_mask is not None:
        region, source = np.asarray(brain_mask, dtype=bool), "brain mask"
    else:
        region, source = _head_region(image, heat.shape)
    height, width = heat.shape
    centroid_y, centroid_x = ndimage.center_of_mass(heat)
    peak_y, peak_x = _hot_spot(heat)
    rows, columns = np.nonzero(region)
    middle = (columns.min() + columns.max()) / 2
    offset = (centroid_x - middle) / width
    side = "midline" if abs(offset) < midline_band else ("left" if offset < 0 else "right")
    edge = float(ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1][peak_y, peak_x])
    relative_y = (peak_y - rows.min()) / max(rows.max() - rows.min(), 1)
    relative_x = (peak_x - middle) / max(columns.max() - columns.min(), 1)
    return {
        "centroid_x": (centroid_x + 0.5) / width,
        "centroid_y": (centroid_y + 0.5) / height,
        "peak_x": (peak_x + 0.5) / width,
        "peak_y": (peak_y + 0.5) / height,
        "side": side,
        "edge_distance": edge / max(height, width),
        "near_skull": bool(edge / max(height, width) < skull_band),
        "skull_base": bool(relative_y >= 0.7 and abs(relative_x) <= 0.12),
        "spread": _spread(heat),
        "region_source": source,
    }
