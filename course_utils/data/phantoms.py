"""Draw one synthetic MRI "phantom" slice and its lesion mask (arrays only, no files).

The phantoms imitate T1 post-contrast brain slices (dark background, bright skull,
thin dark CSF layer, gray/white matter with sulci, Rician-like noise) in one of three
planes, axial, coronal or sagittal (anatomy in ``course_utils.data.phantom_anatomy``),
with one lesion per image placed where each tumor type occurs in that plane, about as
large as the real tumors (``LESION_SIZES``):

* ``meningioma``: round, sharply bounded, bright extra-axial mass on the dura of the
  convexity or (axial, coronal) against the falx;
* ``glioma``: irregular, heterogeneous intra-axial mass inside one hemisphere (in a
  sagittal slice: inside the cerebrum, clear of the cerebellum);
* ``pituitary``: round mass at the sella, the size of a macroadenoma (axial: midline,
  just anterior of the centre; coronal: midline skull base; sagittal: skull base centre);
* ``notumor``: no lesion.

:func:`render_phantom` computes one slice from a random generator, so the same
generator state always gives the same pixels; ``slice_offset`` draws an adjacent slice
of the same head and lesion. Writing a whole dataset (files, planted problems,
manifest, cache) is ``course_utils.data.phantom_dataset``'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from course_utils.config import CLASS_NAMES
from course_utils.data import phantom_anatomy as anatomy
from course_utils.data.phantom_anatomy import PLANES, check_plane
from course_utils.data.phantom_geometry import (
    CSF_LEVEL,
    WHITE_LEVEL,
    Fields,
    Head,
    base_grid,
    crop,
    distance_to_skull,
    head_fields,
    line_weight,
    mix,
    ramp,
    smooth_noise,
)

__all__ = [
    "GENERATOR_VERSION",
    "MIN_IMAGE_SIZE",
    "PLANES",
    "Phantom",
    "check_class_name",
    "check_image_size",
    "check_plane",
    "render_phantom",
]

#: Bump when the rendering changes, so cached phantom folders are regenerated.
GENERATOR_VERSION = 4
#: Smallest image side the renderer supports.
MIN_IMAGE_SIZE = 64
#: How wide the lesions are, as a share of the image's width (10th, 50th and 90th
#: percentile of the mask's extent): the phantoms' (generator version 4, 200 draws at
#: 128 px) next to the figshare tumor boxes that most Kaggle tumor scans come from
#: (``../shared/datasets/figshare-tumor-boxes``, 3,064 slices). Version 2 drew every
#: lesion about two thirds as wide, and the fast CNN then learned gliomas slowly and its
#: Grad-CAM (a 12 x 12 grid) often peaked beside the small pituitary masses.
LESION_SIZES = {
    "glioma": {"phantoms": (0.11, 0.16, 0.22), "figshare": (0.09, 0.17, 0.26)},
    "meningioma": {"phantoms": (0.09, 0.13, 0.18), "figshare": (0.08, 0.14, 0.22)},
    "pituitary": {"phantoms": (0.07, 0.09, 0.13), "figshare": (0.06, 0.10, 0.15)},
}
#: How much a lesion grows or shrinks per unit of ``slice_offset`` (an adjacent slice).
SLICE_STEP = 0.06


class Phantom(NamedTuple):
    """One rendered phantom slice.

    Attributes:
        image: The grayscale image (uint8, HxW).
        lesion_mask: The lesion's ground truth (bool, HxW; empty for ``"notumor"``).
        brain_mask: The region inside the skull's inner edge (bool, HxW).
        plane: ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    """

    image: np.ndarray
    lesion_mask: np.ndarray
    brain_mask: np.ndarray
    plane: str


# ----------------------------------------------------------------------------- lesions


def _lesion_contrast(rng: np.random.Generator) -> float:
    """Return how strongly a lesion stands out: about one in five is faint."""
    if rng.random() < 0.2:
        return rng.uniform(0.25, 0.45)
    return rng.uniform(0.6, 1.0)


def _meningioma_site(head: Head, radius: float, rng: np.random.Generator) -> tuple:
    """Draw where a meningioma sits: ``(centre x, centre y, falx side or 0)``.

    A falx meningioma (a quarter of those in axial and coronal slices) lies on one side
    of the falx; the others lie on the convexity dura.
    """
    falx = anatomy.falx_range(head)
    depth = radius * rng.uniform(0.3, 0.7)
    if falx is not None and rng.random() < 0.25:
        side = 1.0 if rng.random() < 0.5 else -1.0
        return side * (radius - depth), rng.uniform(*falx), side
    theta = rng.uniform(*anatomy.convexity_angles(head))
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    edge_x, edge_y = head.skull_point(cos_t, sin_t)
    normal = np.array([cos_t / head.semi_x, sin_t / head.semi_y])
    normal /= np.linalg.norm(normal)
    return edge_x - normal[0] * depth, edge_y - normal[1] * depth, 0.0


def _meningioma(image, fields: Fields, head: Head, noise, rng) -> np.ndarray:
    """Paint a bright, round, extra-axial mass against the dura or falx; return its mask."""
    radius = head.semi_y * rng.uniform(0.11, 0.27) * head.slice_scale
    center_x, center_y, falx_side = _meningioma_site(head, radius, rng)
    rows, columns = crop(head, (center_x, center_y), radius * 1.8, image.shape[0])
    local_x = fields.head_x[rows, columns] - np.float32(center_x)
    local_y = fields.head_y[rows, columns] - np.float32(center_y)
    distance = np.hypot(local_x, local_y) / np.float32(radius)
    shape = distance + np.clip(noise[1][rows, columns], -3.0, 3.0) * np.float32(0.03)
    radius_map = fields.radius[rows, columns]
    inside = ramp(fields.inner_skull[rows, columns] - radius_map, fields.pixel)
    pixel = 2.0 / image.shape[0]
    if falx_side:
        inside = inside * ramp(np.float32(falx_side) * fields.head_x[rows, columns], pixel)
        dura = line_weight(fields.head_x[rows, columns], pixel) * inside
    else:
        surface = ramp(fields.brain_surface[rows, columns] - radius_map, fields.pixel)
        dura = inside * (1.0 - surface)
    edge = pixel / radius
    cleft = np.exp(-(((shape - 1.0 - edge) / edge) ** 2)) * inside
    crop_pixels = mix(image[rows, columns], CSF_LEVEL, cleft * np.float32(0.5))
    level = WHITE_LEVEL + _lesion_contrast(rng) * (0.92 - WHITE_LEVEL)
    texture = np.float32(level) + 0.025 * noise[0][rows, columns]
    tail = dura * ramp(np.float32(rng.uniform(1.2, 1.7)) - distance, 0.3) * np.float32(0.6)
    crop_pixels = mix(crop_pixels, np.float32(level), tail)
    image[rows, columns] = mix(crop_pixels, texture, ramp(1.0 - shape, edge) * inside)
    mask = np.zeros(image.shape, dtype=bool)
    mask[rows, columns] = (shape < 1.0) & fields.brain_mask[rows, columns] & (inside > 0.5)
    return mask


def _lobulated_radius(local_x: np.ndarray, local_y: np.ndarray, harmonics: np.ndarray):
    """Return the radius, relative to the mean, of a lobulated outline at each point."""
    distance = np.maximum(np.hypot(local_x, local_y), 1e-6)
    cos_1, sin_1 = local_x / distance, local_y / distance
    cos_k, sin_k = cos_1, sin_1
    relative = np.ones_like(distance)
    for k in range(len(harmonics) // 2):
        cos_k, sin_k = cos_k * cos_1 - sin_k * sin_1, sin_k * cos_1 + cos_k * sin_1
        relative += harmonics[2 * k] * cos_k + harmonics[2 * k + 1] * sin_k
    return distance, relative


def _glioma_center(head: Head, radius: float, harmonics: np.ndarray, rng) -> tuple:
    """Draw a centre that keeps the whole glioma inside one hemisphere, off the skull."""
    angles = np.linspace(0.0, 2.0 * math.pi, 48, endpoint=False)
    outline_x, outline_y = np.cos(angles), np.sin(angles)
    _, relative = _lobulated_radius(outline_x, outline_y, harmonics)
    reach = radius * relative * 1.36  # the noisy edge reaches 1.36 times the outline
    side = 1.0 if rng.random() < 0.5 else -1.0
    span_x, span_y = anatomy.glioma_box(head, side)
    for _ in range(200):
        center_x, center_y = rng.uniform(*span_x), rng.uniform(*span_y)
        points_x, points_y = center_x + reach * outline_x, center_y + reach * outline_y
        fits = anatomy.glioma_fits(head, points_x, points_y, side)
        if fits and np.all(distance_to_skull(head, points_x, points_y) > 0.06):
            return center_x, center_y, radius, float(relative.max())
        radius *= 0.99
        reach *= 0.99
    fallback_x = sum(span_x) / 2.0
    return fallback_x, sum(span_y) / 2.0, 0.05 * head.semi_y, float(relative.max())


def _glioma(image, fields: Fields, head: Head, noise, rng) -> np.ndarray:
    """Paint an irregular, heterogeneous intra-axial mass; return its mask."""
    harmonics = rng.uniform(-1.0, 1.0, size=6) * np.array([0.18, 0.18, 0.12, 0.12, 0.05, 0.05])
    radius = head.semi_y * rng.uniform(0.13, 0.29)
    center_x, center_y, radius, widest = _glioma_center(head, radius, harmonics, rng)
    radius *= head.slice_scale
    rows, columns = crop(head, (center_x, center_y), radius * widest * 2.4, image.shape[0])
    local_x = fields.head_x[rows, columns] - np.float32(center_x)
    local_y = fields.head_y[rows, columns] - np.float32(center_y)
    distance, relative = _lobulated_radius(local_x, local_y, harmonics.astype(np.float32))
    infiltration = np.clip(noise[2][rows, columns], -2.0, 2.0) * np.float32(0.18)
    shape = distance / (np.float32(radius) * relative) + infiltration
    contrast = _lesion_contrast(rng)
    crop_pixels = image[rows, columns]
    edema = ramp(1.0 - (shape - 1.0) / 0.6, 1.0) * np.float32(0.12 * contrast)
    edema *= ramp(fields.brain_surface[rows, columns] - fields.radius[rows, columns], 0.02)
    crop_pixels = crop_pixels * (1.0 - edema)
    body = np.float32(0.4 - 0.14 * contrast) + 0.05 * noise[0][rows, columns]
    crop_pixels = mix(crop_pixels, body, ramp(1.0 - shape, 0.25))
    if rng.random() < 0.7:  # enhancing rim around a necrotic core
        core = rng.uniform(0.25, 0.5)
        rim = np.exp(-(((shape - (core + 1.0) / 2.0) / (0.35 * (1.0 - core))) ** 2))
        rim *= np.clip(0.8 + 0.3 * noise[1][rows, columns], 0.3, 1.0) * np.float32(contrast)
        crop_pixels = mix(crop_pixels, np.float32(0.55 + 0.4 * contrast), rim)
        necrosis = np.float32(rng.uniform(0.18, 0.3)) + 0.04 * noise[1][rows, columns]
        crop_pixels = mix(crop_pixels, necrosis, ramp(core - shape, 0.15))
    image[rows, columns] = crop_pixels
    mask = np.zeros(image.shape, dtype=bool)
    mask[rows, columns] = (shape < 1.0) & fields.brain_mask[rows, columns]
    return mask


def _pituitary(image, fields: Fields, head: Head, noise, rng) -> np.ndarray:
    """Paint a round mass at the sella (a macroadenoma, as in the real scans); return its mask."""
    radius = head.semi_y * rng.uniform(0.08, 0.17) * head.slice_scale
    gap = head.semi_y * rng.uniform(0.03, 0.08)
    center_x, center_y = anatomy.sella_center(head, radius, gap)
    center_x += head.semi_x * rng.uniform(-0.02, 0.02)
    rows, columns = crop(head, (center_x, center_y), radius * 1.3, image.shape[0])
    local_x = fields.head_x[rows, columns] - np.float32(center_x)
    local_y = fields.head_y[rows, columns] - np.float32(center_y)
    stretch = np.float32(rng.uniform(0.85, 1.15))
    shape = np.hypot(local_x * stretch, local_y / stretch) / np.float32(radius)
    level = 0.62 + _lesion_contrast(rng) * 0.3
    texture = np.float32(level) + 0.03 * noise[0][rows, columns]
    if rng.random() < 0.3:  # cystic, darker centre
        texture = mix(texture, np.float32(0.3), ramp(0.55 - shape, 0.2))
    edge = 1.5 / image.shape[0] / radius
    image[rows, columns] = mix(image[rows, columns], texture, ramp(1.0 - shape, edge))
    mask = np.zeros(image.shape, dtype=bool)
    mask[rows, columns] = (shape < 1.0) & fields.brain_mask[rows, columns]
    return mask


_LESION_PAINTERS: dict[str, Callable[..., np.ndarray]] = {
    "glioma": _glioma,
    "meningioma": _meningioma,
    "pituitary": _pituitary,
}


# ------------------------------------------------------------------------- rendering


def _acquire(image: np.ndarray, rng: np.random.Generator, slice_offset: float) -> np.ndarray:
    """Apply coil bias, Rician-like noise and a global contrast change; return uint8 pixels.

    An adjacent slice (``slice_offset`` not 0) keeps the scanner settings but gets its
    own noise.
    """
    grid_x, grid_y = base_grid(image.shape[0])
    bias_x, bias_y = rng.uniform(-0.08, 0.08, size=2).astype(np.float32)
    sigma = np.float32(rng.uniform(0.01, 0.04))
    gamma, gain, lift = rng.uniform(0.8, 1.25), rng.uniform(0.85, 1.1), rng.uniform(0.0, 0.03)
    if slice_offset:
        words = [int(rng.integers(2**32)), int(round(slice_offset * 1000)) % 2**16]
        rng = np.random.default_rng(words)
    image = image * (np.float32(1.0) + bias_x * grid_x + bias_y * grid_y)
    real = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    magnitude = np.sqrt(real * real + imaginary * imaginary)
    levels = np.linspace(0.0, 1.0, 4096)
    table = np.clip(255.0 * (gain * levels**gamma + lift) + 0.5, 0, 255)
    magnitude *= np.float32(4095.0)
    np.minimum(magnitude, np.float32(4095.0), out=magnitude)
    return table.astype(np.uint8)[magnitude.astype(np.intp)]


def check_class_name(class_name: str) -> None:
    """Check that a class can be rendered.

    Args:
        class_name: The class to check.

    Raises:
        ValueError: If it is not one of ``config.CLASS_NAMES``.
    """
    if class_name not in CLASS_NAMES:
        raise ValueError(f"Unknown class name {class_name!r}: use one of {', '.join(CLASS_NAMES)}.")


def check_image_size(image_size: int) -> None:
    """Check that an image side can be rendered.

    Args:
        image_size: The side of the square image, in pixels.

    Raises:
        ValueError: If it is not an int of at least ``MIN_IMAGE_SIZE``.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise ValueError(f"image_size must be an int, got {image_size!r}.")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"image_size={image_size} is too small: use at least {MIN_IMAGE_SIZE} pixels."
        )


def _check_slice_offset(slice_offset: float) -> float:
    """Return the offset as a float, or raise ValueError outside [-1, 1]."""
    if isinstance(slice_offset, bool) or not isinstance(slice_offset, int | float | np.number):
        raise ValueError(f"slice_offset must be a number in [-1, 1], got {slice_offset!r}.")
    if not -1.0 <= float(slice_offset) <= 1.0:
        raise ValueError(f"slice_offset={slice_offset} is out of range: use a number in [-1, 1].")
    return float(slice_offset)


def render_phantom(
    class_name: str,
    image_size: int,
    rng: np.random.Generator,
    plane: str | None = None,
    slice_offset: float = 0.0,
) -> Phantom:
    """Render one synthetic T1 post-contrast slice of the given class.

    The plane is drawn from ``rng`` first (one draw, whatever ``plane`` says), so
    forcing a plane leaves every other detail of the phantom as it would be.

    Args:
        class_name: One of ``config.CLASS_NAMES``; ``"notumor"`` draws no lesion.
        image_size: Side of the square image in pixels (at least 64).
        rng: The random generator that decides every detail of this phantom.
        plane: ``"axial"``, ``"coronal"`` or ``"sagittal"``; None draws one at random.
        slice_offset: In [-1, 1]; not 0 draws an adjacent slice of the same head and
            lesion (slightly smaller head, lesion a few percent larger or smaller, new
            noise), as the same generator state with offset 0 would give the original.

    Returns:
        A :class:`Phantom` ``(image, lesion_mask, brain_mask, plane)``: the grayscale
        image (uint8, HxW), the lesion's ground truth (bool, HxW, empty for
        ``"notumor"``; inside the brain mask), the region inside the skull's inner edge
        (bool, HxW) and the plane drawn.

    Raises:
        ValueError: If the class, the image size, the plane or the offset is invalid.
    """
    check_class_name(class_name)
    check_image_size(image_size)
    offset = _check_slice_offset(slice_offset)
    if plane is not None:
        check_plane(plane)
    image_size = int(image_size)
    drawn = PLANES[int(rng.integers(len(PLANES)))]
    plane = drawn if plane is None else plane
    scale = 1.0 + SLICE_STEP * offset
    head = anatomy.sample_head(plane, rng, class_name == "pituitary", scale)
    fields = head_fields(head, image_size)
    noise = smooth_noise(rng, image_size, (2.5, 1.2, 1.0))
    image = anatomy.render_anatomy(head, fields, noise, rng)
    painter = _LESION_PAINTERS.get(class_name)
    if painter is None:
        lesion_mask = np.zeros((image_size, image_size), dtype=bool)
    else:
        lesion_mask = painter(image, fields, head, noise, rng)
    return Phantom(_acquire(image, rng, offset), lesion_mask, fields.brain_mask, plane)
