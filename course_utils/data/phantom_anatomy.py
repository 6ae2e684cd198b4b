"""The head anatomy of a phantom slice in the axial, coronal or sagittal plane.

Orientation follows radiological display: axial slices have anterior at the top,
coronal slices have the top of the head at the top, sagittal slices have anterior on
the left. Landmarks per plane:

* ``axial``: oval head, falx at the midline, either the lateral ventricles or (at the
  skull-base level) the suprasellar cistern, the pons and the fourth ventricle;
* ``coronal``: two hemispheres, falx, corpus callosum, lateral ventricles, Sylvian
  fissures above the temporal lobes, a raised skull base with the sella at the
  midline bottom-centre and the dark sphenoid sinus below it;
* ``sagittal``: one hemisphere's profile, corpus callosum arc over the ventricle,
  cerebellum and brainstem posterior-inferior, orbital roof and sella at the skull base.

Lesion placement asks this module where the sella, the dura and the hemispheres are.
"""

from __future__ import annotations

import math

import numpy as np

from course_utils.data.phantom_geometry import (
    CSF_LEVEL,
    GRAY_LEVEL,
    WHITE_LEVEL,
    Fields,
    Head,
    crop,
    line_weight,
    mix,
    paint_ellipse,
    ramp,
    window,
)

#: The planes a phantom slice can be drawn in.
PLANES = ("axial", "coronal", "sagittal")
#: Share of axial slices (of the classes other than pituitary) cut at the skull base.
AXIAL_LOW_SHARE = 0.35


def check_plane(plane: str) -> None:
    """Check that a plane can be drawn.

    Args:
        plane: The plane to check.

    Raises:
        ValueError: If it is not one of ``PLANES``.
    """
    if plane not in PLANES:
        raise ValueError(f"Unknown plane {plane!r}: use one of {', '.join(PLANES)}.")


def sample_head(plane: str, rng: np.random.Generator, skull_base_level: bool, scale=1.0) -> Head:
    """Draw the shape of one head in a plane.

    Args:
        plane: One of ``PLANES``.
        rng: The phantom's random generator.
        skull_base_level: An axial slice must show the sella (pituitary phantoms).
        scale: Slice scale of an adjacent slice (1 for the original slice).

    Returns:
        The head.
    """
    long_axis = rng.uniform(0.78, 0.92)
    ratio = rng.uniform(1.12, 1.3)
    angle = math.radians(rng.uniform(-9.0, 9.0))
    low = skull_base_level or rng.random() < AXIAL_LOW_SHARE
    depths = rng.uniform(0.85, 1.15, size=2)
    if plane == "axial":
        semi_x, semi_y, bumps = long_axis / ratio, long_axis, ()
    elif plane == "coronal":
        semi_x, semi_y = long_axis * 0.96, long_axis * 0.96 / (0.55 + 0.4 * ratio)
        bumps = ((0.0, 1.0, 0.24 * depths[0], 0.06),)
    else:
        semi_x, semi_y = long_axis, long_axis / ratio
        bumps = ((-0.72, 0.69, 0.22 * depths[0], 0.1), (-0.1, 0.99, 0.14 * depths[1], 0.035))
    shrink = 1.0 - 0.1 * abs(scale - 1.0)  # an adjacent slice is a little smaller
    return Head(
        plane=plane,
        center_x=rng.uniform(-0.04, 0.04),
        center_y=rng.uniform(-0.03, 0.04),
        cos_angle=math.cos(angle),
        sin_angle=math.sin(angle),
        semi_x=semi_x * shrink,
        semi_y=semi_y * shrink,
        skull_thickness=rng.uniform(0.07, 0.1),
        skull_harmonics=tuple(rng.uniform(-0.15, 0.15, size=4).tolist()),
        csf_thickness=rng.uniform(0.018, 0.032),
        bumps=bumps,
        low_slice=plane == "axial" and low,
        slice_scale=float(scale),
    )


# ----------------------------------------------------------------------- landmarks


def sella_center(head: Head, radius: float, gap: float) -> tuple[float, float]:
    """Return the head-frame centre of a round mass of ``radius`` at the sella.

    Axial: on the midline, a little anterior of the centre. Coronal: on the midline
    just above the skull base. Sagittal: above the skull base, a little anterior of
    the centre.
    """
    if head.plane == "axial":
        return 0.0, -head.semi_y * 0.14 - 0.5 * gap
    direction_x = 0.0 if head.plane == "coronal" else -0.08
    floor_x, floor_y = head.skull_point(direction_x, 1.0)
    return floor_x, floor_y - radius - gap


def convexity_angles(head: Head) -> tuple[float, float]:
    """Return the range of elliptical angles where a convexity meningioma may sit."""
    spread = {"axial": 2.3, "coronal": 1.8, "sagittal": 1.45}[head.plane]
    return -0.5 * math.pi - spread, -0.5 * math.pi + spread


def falx_range(head: Head) -> tuple[float, float] | None:
    """Return the head-frame y range along the falx (None where the plane has no falx)."""
    if head.plane == "axial":
        return -0.62 * head.semi_y, -0.3 * head.semi_y
    if head.plane == "coronal":
        return -0.7 * head.semi_y, -0.35 * head.semi_y
    return None


def glioma_box(head: Head, side: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Return the x and y ranges (head frame) where a glioma's centre may be drawn."""
    if head.plane == "sagittal":
        return (-0.6 * head.semi_x, 0.35 * head.semi_x), (-0.6 * head.semi_y, 0.05 * head.semi_y)
    low = 0.35 if head.plane == "coronal" else 0.55
    span_x = (0.1 * side * head.semi_x, 0.55 * side * head.semi_x)
    return (min(span_x), max(span_x)), (-0.6 * head.semi_y, low * head.semi_y)


def glioma_fits(head: Head, points_x: np.ndarray, points_y: np.ndarray, side: float) -> bool:
    """Tell whether a glioma outline stays inside one hemisphere (or the cerebrum)."""
    if head.plane == "sagittal":
        inside = ((points_x - 0.45 * head.semi_x) / (0.4 * head.semi_x)) ** 2
        inside += ((points_y - 0.5 * head.semi_y) / (0.34 * head.semi_y)) ** 2
        return bool(np.all(inside > 1.0))  # clear of the cerebellum
    return bool(np.all(side * points_x > 0.025))


# ------------------------------------------------------------------------- tissue


def _sulci(fields: Fields, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return gray/white matter with cortical sulci (no plane-specific landmarks)."""
    depth = fields.brain_surface - fields.radius
    cortex = np.float32(rng.uniform(0.07, 0.11)) + np.float32(0.025) * noise[1]
    white = ramp(depth - cortex, 0.05)
    tissue = GRAY_LEVEL + (WHITE_LEVEL - GRAY_LEVEL) * white + 0.035 * noise[0]
    gyri = rng.uniform(26.0, 36.0)
    theta = np.arctan2(fields.sin_theta, fields.cos_theta)
    wave = np.abs(np.sin(np.float32(gyri / 2.0) * theta + np.float32(1.6) * noise[2]))
    sulcus_depth = cortex * np.float32(0.9) + np.float32(0.02) * noise[0]
    sulci = ramp(np.float32(0.2) - wave, 0.14) * ramp(sulcus_depth - depth, 0.04)
    return mix(tissue, CSF_LEVEL + 0.05, sulci * np.float32(0.9))


def _falx(tissue: np.ndarray, fields: Fields, head: Head) -> np.ndarray:
    """Darken the interhemispheric fissure (axial: front and back; coronal: above)."""
    half_width = np.float32(1.3 / fields.head_x.shape[0])  # about 0.65 pixel
    fissure = np.exp(-((fields.head_x / half_width) ** 2))
    if head.plane == "axial":
        fissure *= ramp(np.abs(fields.radius * fields.sin_theta) - np.float32(0.45), 0.15)
    else:
        fissure *= ramp(-fields.head_y - np.float32(0.2 * head.semi_y), 0.05)
    return mix(tissue, CSF_LEVEL, fissure * np.float32(0.8))


def _skull_ring(fields: Fields, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return the intensity of the scalp and skull ring (bright, with a dark inner table)."""
    ring_level = np.float32(rng.uniform(0.7, 0.9))
    ring = ring_level + np.float32(0.05) * noise[1]
    thickness = 1.0 - fields.inner_skull
    table = ramp(fields.inner_skull + thickness * np.float32(0.22) - fields.radius, fields.pixel)
    ring = mix(ring, 0.25, table * np.float32(rng.uniform(0.35, 0.7)))
    skin = ramp(fields.radius - (1.0 - np.float32(0.015)), fields.pixel)
    return mix(ring, ring_level * 0.6, skin)


def _axial_ventricles(image, fields: Fields, head: Head, rng) -> None:
    """Paint the two butterfly-shaped lateral ventricles of an axial slice."""
    scale = np.float32(head.semi_y * rng.uniform(0.7, 1.15))
    shift_y = np.float32(head.semi_y * rng.uniform(-0.06, 0.04))
    rows, columns = crop(head, (0.0, float(shift_y)), 0.4 * float(scale), image.shape[0])
    along = (fields.head_y[rows, columns] - shift_y) / scale  # anterior is negative
    across = np.abs(fields.head_x[rows, columns]) / scale
    bend = np.float32(rng.uniform(0.8, 1.3))
    centerline = np.float32(0.055) + bend * along * along
    frontal = np.exp(-(((along + 0.17) / 0.07) ** 2))
    atrium = np.exp(-(((along - 0.16) / 0.07) ** 2))
    half_width = 0.032 + 0.032 * frontal + np.float32(rng.uniform(0.02, 0.04)) * atrium
    taper = np.sqrt(np.clip(1.0 - (along / np.float32(0.27)) ** 2, 0.0, 1.0))
    edge = np.float32(1.5 * fields.pixel * head.semi_x) / scale
    inside = half_width * taper - np.abs(across - centerline)
    weight = ramp(inside - edge / 2, float(edge))
    image[rows, columns] = mix(image[rows, columns], CSF_LEVEL, weight)


def _axial_skull_base(image, fields: Fields, head: Head, rng) -> None:
    """Paint the suprasellar cistern, the pons and the fourth ventricle of a low axial slice."""
    sx, sy = head.semi_x, head.semi_y
    size = rng.uniform(0.85, 1.15)
    paint_ellipse(image, fields, head, (0.0, -0.03 * sy, 0.13 * sx * size, 0.07 * sy), CSF_LEVEL)
    pons = (0.0, 0.2 * sy, 0.2 * sx * size, 0.12 * sy * size)
    paint_ellipse(image, fields, head, (*pons[:2], pons[2] + 0.03, pons[3] + 0.03), CSF_LEVEL)
    paint_ellipse(image, fields, head, pons, WHITE_LEVEL - 0.06)
    paint_ellipse(image, fields, head, (0.0, 0.36 * sy, 0.04 * sx, 0.025 * sy), CSF_LEVEL)


def _coronal_landmarks(image, fields: Fields, head: Head, rng) -> None:
    """Paint callosum, ventricles, third ventricle, Sylvian fissures and sphenoid sinus."""
    sx, sy = head.semi_x, head.semi_y
    rows, columns, x, y = window(fields, head, (0.0, 0.0), 0.35 * sx)
    callosum_y = np.float32(-0.13 * sy) + np.float32(0.5 * sy / sx**2) * x * x
    callosum = line_weight(y - callosum_y, 0.03 * sy) * ramp(0.3 * sx - np.abs(x), 0.02)
    third = line_weight(x, 0.012 * sx) * ramp(y + 0.02 * sy, 0.02) * ramp(0.2 * sy - y, 0.02)
    crop_pixels = mix(image[rows, columns], WHITE_LEVEL + 0.08, callosum)
    image[rows, columns] = mix(crop_pixels, CSF_LEVEL, third)
    size = rng.uniform(0.8, 1.25)
    for side in (-1.0, 1.0):
        ventricle = (side * 0.085 * sx, -0.06 * sy, 0.05 * sx * size, 0.07 * sy * size)
        paint_ellipse(image, fields, head, ventricle, CSF_LEVEL)
    tilt = rng.uniform(-0.1, 0.1)
    for side in (-1.0, 1.0):
        rows, columns, x, y = window(fields, head, (side * 0.72 * sx, (0.17 + tilt) * sy), 0.3)
        sylvian_y = np.float32((0.17 + tilt) * sy) + np.float32(0.15 * sy) * (np.abs(x) / sx - 0.5)
        sylvian = line_weight(y - sylvian_y, 0.012) * ramp(np.abs(x) - 0.42 * sx, 0.05)
        sylvian *= fields.brain_mask[rows, columns]
        image[rows, columns] = mix(image[rows, columns], CSF_LEVEL, sylvian)
    floor_x, floor_y = head.skull_point(0.0, 1.0)
    sinus = (floor_x, floor_y + 0.12 * sy, 0.14 * sx, 0.07 * sy)
    paint_ellipse(image, fields, head, sinus, 0.06)


def _sagittal_callosum(image, fields: Fields, head: Head, rng) -> None:
    """Paint the corpus callosum arc and the lateral ventricle under it."""
    sx, sy = head.semi_x, head.semi_y
    center_x, center_y = -0.03 * sx, 0.02 * sy
    rows, columns, x, y = window(fields, head, (center_x, center_y - 0.1 * sy), 0.45 * sx)
    arc_x, arc_y = (x - center_x) / (0.42 * sx), (y - center_y) / (0.26 * sy)
    arc = np.sqrt(arc_x * arc_x + arc_y * arc_y)
    upper = ramp(np.float32(0.12 * sy) - (y - center_y), 0.03)
    inner = np.sqrt(arc_x * arc_x + arc_y * arc_y * np.float32(rng.uniform(2.6, 3.6)))
    ventricle = ramp(np.float32(0.84) - arc, 0.05) * ramp(inner - 1.0, 0.1) * upper
    crop_pixels = mix(image[rows, columns], CSF_LEVEL, ventricle * ramp(center_y - y, 0.02))
    callosum = line_weight(arc - np.float32(0.95), 0.09) * upper
    image[rows, columns] = mix(crop_pixels, WHITE_LEVEL + 0.17, callosum)


def _sagittal_landmarks(image, fields: Fields, head: Head, rng) -> None:
    """Paint corpus callosum, ventricle, brainstem, fourth ventricle and cerebellum."""
    sx, sy = head.semi_x, head.semi_y
    _sagittal_callosum(image, fields, head, rng)
    cerebellum = (0.45 * sx, 0.5 * sy, 0.34 * sx, 0.27 * sy)
    paint_ellipse(image, fields, head, (*cerebellum[:2], cerebellum[2] + 0.02, 0.29 * sy), 0.15)
    rows, columns, weight = paint_ellipse(image, fields, head, cerebellum, GRAY_LEVEL + 0.03)
    x, y = fields.head_x[rows, columns], fields.head_y[rows, columns]
    local = np.hypot((x - cerebellum[0]) / cerebellum[2], (y - cerebellum[1]) / cerebellum[3])
    folia = ramp(np.abs(np.sin(local * np.float32(rng.uniform(18.0, 24.0)))) - 0.75, 0.3)
    folia *= weight * ramp(0.7 - local, 0.2)
    image[rows, columns] = mix(image[rows, columns], WHITE_LEVEL + 0.04, folia)
    top_x, top_y, bottom_x = 0.06 * sx, 0.12 * sy, 0.2 * sx
    rows, columns, x, y = window(fields, head, (0.13 * sx, 0.56 * sy), 0.46 * sy)
    along = np.clip((y - top_y) / (sy - top_y), 0.0, 1.0)
    axis_x = top_x + (bottom_x - top_x) * along
    width = 0.085 * sx * (1.0 + 0.45 * np.exp(-(((along - 0.35) / 0.18) ** 2)))
    stem = ramp(width - np.abs(x - axis_x), 0.02) * ramp(y - top_y, 0.03)
    rim = ramp(width + 0.025 - np.abs(x - axis_x), 0.02) * ramp(y - top_y + 0.02, 0.03)
    inside = fields.brain_mask[rows, columns]
    crop_pixels = mix(image[rows, columns], CSF_LEVEL, rim * inside)
    image[rows, columns] = mix(crop_pixels, WHITE_LEVEL - 0.05, stem * inside)
    paint_ellipse(image, fields, head, (0.29 * sx, 0.45 * sy, 0.035 * sx, 0.06 * sy), CSF_LEVEL)


def render_anatomy(head: Head, fields: Fields, noise: np.ndarray, rng: np.random.Generator):
    """Return the lesion-free slice as float32 intensities (roughly 0..1).

    Args:
        head: The head (its ``plane`` chooses the landmarks).
        fields: The head's per-pixel geometry.
        noise: Smooth noise fields (at least 3).
        rng: The phantom's random generator.

    Returns:
        The (H, W) float32 image.
    """
    ring = _skull_ring(fields, noise, rng)
    tissue = _sulci(fields, noise, rng)
    if head.plane != "sagittal":
        tissue = _falx(tissue, fields, head)
    image = ring * ramp(1.0 - fields.radius, fields.pixel)
    image = mix(image, CSF_LEVEL, ramp(fields.inner_skull - fields.radius, fields.pixel))
    image = mix(image, tissue, ramp(fields.brain_surface - fields.radius, fields.pixel))
    if head.plane == "axial" and not head.low_slice:
        _axial_ventricles(image, fields, head, rng)
    elif head.plane == "axial":
        _axial_skull_base(image, fields, head, rng)
    elif head.plane == "coronal":
        _coronal_landmarks(image, fields, head, rng)
    else:
        _sagittal_landmarks(image, fields, head, rng)
    gland = 0.022 * head.semi_y
    gland_x, gland_y = sella_center(head, gland, 0.03 * head.semi_y)
    paint_ellipse(image, fields, head, (gland_x, gland_y, gland, gland), rng.uniform(0.5, 0.65))
    return image
