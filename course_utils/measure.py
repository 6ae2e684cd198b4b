"""Numbers about saliency maps: do they find the lesion, depend on the model, and where they lie.

- ``score_methods``: maps measured against ground-truth lesion masks (phantoms have
  them) with ``pointing_game`` and ``energy_inside`` (from ``course_utils.localisation``,
  which also scores real scans against their tumor boxes);
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
from course_utils.localisation import energy_inside, pointing_chance, pointing_game

# ------------------------------------------------------- measuring the maps


def score_methods(
    model: keras.Model,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    class_indices: Sequence[int],
    methods: Sequence[str] = METHODS,
    tolerance_px: float | None = None,
) -> pd.DataFrame:
    """Measure each method's maps against ground-truth lesion masks.

    Args:
        model: The classifier.
        images: Images (H, W, 3) at the model's size; only those with a lesion.
        masks: Their lesion masks (H, W), not empty.
        class_indices: The class each map explains (true or predicted class).
        methods: Names from ``METHODS``.
        tolerance_px: Pointing-game tolerance in pixels; None: ``TOLERANCE_SHARE`` of the
            map's side (see ``localisation.pointing_game``).

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


def _grown_share(masks: Sequence[np.ndarray], tolerance_px: float | None) -> float:
    """Mean area share of the masks grown by ``tolerance_px`` (the pointing game's chance)."""
    return float(np.mean([pointing_chance(mask, tolerance_px) for mask in masks]))


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


#: The planes a slice can be in (phantoms know theirs; a real scan's is unknown).
PLANES = ("axial", "coronal", "sagittal")
# Where the sella lies, per plane, in the brain's bounding box: the horizontal offset
# from its middle (share of its width) and the vertical range (0 = top, 1 = bottom).
_SELLA_WINDOWS = {
    "axial": (0.1, (0.34, 0.49)),  # anterior is up: midline, a little above the centre
    "coronal": (0.1, (0.7, 1.0)),  # midline skull base
    "sagittal": (0.15, (0.7, 1.0)),  # anterior is left: skull base, near the centre
}


def _position_words(relative_x: float, relative_y: float) -> str:
    """Image words for a point of the head's box: ``"centre"``, ``"upper-left"``, ..."""
    vertical = "upper" if relative_y < 1 / 3 else "lower" if relative_y > 2 / 3 else "middle"
    horizontal = "left" if relative_x < -1 / 6 else "right" if relative_x > 1 / 6 else "centre"
    if vertical == "middle" and horizontal == "centre":
        return "centre"
    return f"{vertical}-{horizontal}"


def _plane_statistics(plane: str | None, side: str, relative_x: float, relative_y: float):
    """Plane-dependent words (None each when the plane is unknown or has no such place)."""
    if plane is None:
        return {"midline": None, "skull_base": None, "sella": None, "region": None}
    reach, (top, bottom) = _SELLA_WINDOWS[plane]
    sella = abs(relative_x) <= reach and top <= relative_y <= bottom
    if plane == "coronal":
        region = "superior" if relative_y < 1 / 3 else "inferior" if relative_y > 2 / 3 else None
    else:
        along = relative_y - 0.5 if plane == "axial" else relative_x
        region = "anterior" if along < -1 / 6 else "posterior" if along > 1 / 6 else None
    return {
        "midline": None if plane == "sagittal" else side == "centre",
        "skull_base": None
        if plane == "axial"
        else bool(relative_y >= 0.7 and abs(relative_x) <= 0.2),
        "sella": bool(sella),
        "region": region or "central",
    }


def saliency_statistics(
    heatmap: np.ndarray,
    brain_mask: np.ndarray | None = None,
    image: np.ndarray | None = None,
    midline_band: float = 0.06,
    skull_band: float = 0.08,
    plane: str | None = None,
) -> dict:
    """Describe where a map's mass lies, in numbers an explainer can put into words.

    Sides are *image* sides: in the radiological convention of most axial MRI the
    image's left is the patient's right. Words that need the slice's plane (midline,
    skull base, sella, anterior...) are given only when ``plane`` is known (phantoms
    know it); for a real scan of unknown plane they are None.

    Args:
        heatmap: (H, W) non-negative map, e.g. from ``saliency_map``.
        brain_mask: (H, W) bool region inside the skull, when known (phantoms).
        image: The scan (H, W) or (H, W, 3); without ``brain_mask`` the head is found by
            an intensity threshold of it, without both the image frame stands in.
        midline_band: Centroid offsets from the brain's middle below this share of the
            width count as ``"centre"`` (the midline, in an axial or coronal slice).
        skull_band: A peak nearer the brain's edge than this share of the image side
            counts as ``near_skull``.
        plane: ``"axial"`` (anterior up), ``"coronal"`` or ``"sagittal"`` (anterior
            left), or None when unknown.

    Returns:
        ``centroid_x``/``centroid_y`` (centre of mass) and ``peak_x``/``peak_y`` (centre
        of the hottest pixels) as fractions of width and height (0 = left/top),
        ``side`` (``"left"``, ``"right"`` or ``"centre"`` of the image, from the
        centroid), ``position`` (the centroid's ninth of the head's box: ``"centre"``,
        ``"upper-left"``, ``"lower-centre"``...), ``edge_distance`` (peak to the
        brain's edge, share of the side), ``near_skull``, ``spread`` (share of the area
        holding 50 % of the mass), ``region_source`` (``"brain mask"``, ``"image
        threshold"`` or ``"image frame"``), ``plane``, and the plane-dependent
        ``midline`` (axial, coronal), ``skull_base`` (coronal, sagittal: peak in the
        lowest 30 % of the brain, near its middle), ``sella`` (the peak where the
        sella lies in that plane) and ``region`` (``"anterior"``/``"central"``/
        ``"posterior"``; coronal: ``"superior"``/``"central"``/``"inferior"``), each
        None when the plane is unknown or lacks that place.

    Raises:
        ValueError: If the map is not 2-D, has negative values or no mass, or the
            plane is unknown.
    """
    heat = np.asarray(heatmap, dtype=np.float64)
    if heat.ndim != 2 or heat.min() < 0 or heat.sum() <= 0:
        raise ValueError("heatmap must be a 2-D non-negative map with some mass (not all zeros).")
    if plane is not None and plane not in PLANES:
        raise ValueError(f"Unknown plane {plane!r}: use one of {', '.join(PLANES)} or None.")
    if brain_mask is not None:
        region, source = np.asarray(brain_mask, dtype=bool), "brain mask"
    else:
        region, source = _head_region(image, heat.shape)
    height, width = heat.shape
    centroid_y, centroid_x = ndimage.center_of_mass(heat)
    peak_y, peak_x = _hot_spot(heat)
    rows, columns = np.nonzero(region)
    middle = (columns.min() + columns.max()) / 2
    box_width, box_height = max(columns.max() - columns.min(), 1), max(rows.max() - rows.min(), 1)
    offset = (centroid_x - middle) / width
    side = "centre" if abs(offset) < midline_band else ("left" if offset < 0 else "right")
    edge = float(ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1][peak_y, peak_x])
    relative_y = (peak_y - rows.min()) / box_height
    relative_x = (peak_x - middle) / box_width
    position = _position_words(
        (centroid_x - middle) / box_width, (centroid_y - rows.min()) / box_height
    )
    return {
        "centroid_x": (centroid_x + 0.5) / width,
        "centroid_y": (centroid_y + 0.5) / height,
        "peak_x": (peak_x + 0.5) / width,
        "peak_y": (peak_y + 0.5) / height,
        "side": side,
        "position": position,
        "edge_distance": edge / max(height, width),
        "near_skull": bool(edge / max(height, width) < skull_band),
        "spread": _spread(heat),
        "region_source": source,
        "plane": plane,
        **_plane_statistics(plane, side, relative_x, relative_y),
    }
