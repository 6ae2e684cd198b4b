"""Draw one synthetic MRI "phantom" slice and its lesion mask (arrays only, no files).

The phantoms imitate axial, T1 post-contrast brain slices (dark background, bright
skull ring, thin dark CSF layer, gray/white matter with sulci, dark lateral
ventricles, Rician-like noise) with one lesion per image placed where each tumor
type occurs:

* ``meningioma``: round, sharply bounded, bright extra-axial mass on the dura;
* ``glioma``: irregular, heterogeneous intra-axial mass inside one hemisphere;
* ``pituitary``: small round mass at the midline skull base (low centre);
* ``notumor``: no lesion.

:func:`render_phantom` computes one slice from a random generator, so the same
generator state always gives the same pixels. Writing a whole dataset (files, planted
problems, manifest, cache) is ``course_utils.data.phantom_dataset``'s job.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from course_utils.config import CLASS_NAMES

#: Bump when the rendering changes, so cached phantom folders are regenerated.
GENERATOR_VERSION = 1
#: Smallest image side the renderer supports.
MIN_IMAGE_SIZE = 64

_NOISE_DOWNSCALE = 4  # smooth noise is drawn on a grid this many times coarser


# Tissue intensities before the global contrast change (0 = black, 1 = white).
_CSF_LEVEL = 0.11
_GRAY_LEVEL = 0.42
_WHITE_LEVEL = 0.58


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Head:
    """Random shape parameters of one head (lengths in half-image units)."""

    center_x: float
    center_y: float
    cos_angle: float
    sin_angle: float
    semi_x: float
    semi_y: float
    skull_thickness: float
    skull_harmonics: tuple[float, float, float, float]
    csf_thickness: float

    def inner_radius(self, cos_theta: np.ndarray, sin_theta: np.ndarray) -> np.ndarray:
        """Return the skull's inner edge, in elliptical radius, at the given angles."""
        c1, s1, c2, s2 = self.skull_harmonics
        cos_double = cos_theta * cos_theta - sin_theta * sin_theta
        sin_double = 2.0 * sin_theta * cos_theta
        wobble = c1 * cos_theta + s1 * sin_theta + c2 * cos_double + s2 * sin_double
        return 1.0 - self.skull_thickness * (1.0 + wobble)

    def to_pixels(self, head_x: float, head_y: float, image_size: int) -> tuple[float, float]:
        """Convert head-frame coordinates to (column, row) pixel coordinates."""
        x = self.center_x + self.cos_angle * head_x - self.sin_angle * head_y
        y = self.center_y + self.sin_angle * head_x + self.cos_angle * head_y
        return (x + 1.0) * image_size / 2.0 - 0.5, (y + 1.0) * image_size / 2.0 - 0.5


@dataclass
class _Fields:
    """Per-pixel geometry of one head, shared by the anatomy and the lesions."""

    head_x: np.ndarray  # head-frame coordinates (rotated, centred)
    head_y: np.ndarray
    radius: np.ndarray  # elliptical radius: 1 on the outer edge of the head
    cos_theta: np.ndarray  # direction of each pixel around the ellipse
    sin_theta: np.ndarray
    inner_skull: np.ndarray  # elliptical radius of the skull's inner edge
    brain_surface: np.ndarray  # elliptical radius of the brain's surface
    pixel: float  # one pixel, in elliptical-radius units
    brain_mask: np.ndarray  # bool: inside the skull's inner edge


def _sample_head(rng: np.random.Generator) -> _Head:
    """Draw the shape of one head."""
    semi_y = rng.uniform(0.78, 0.92)
    angle = math.radians(rng.uniform(-9.0, 9.0))
    return _Head(
        center_x=rng.uniform(-0.04, 0.04),
        center_y=rng.uniform(-0.03, 0.04),
        cos_angle=math.cos(angle),
        sin_angle=math.sin(angle),
        semi_x=semi_y / rng.uniform(1.12, 1.3),
        semi_y=semi_y,
        skull_thickness=rng.uniform(0.07, 0.1),
        skull_harmonics=tuple(rng.uniform(-0.18, 0.18, size=4).tolist()),
        csf_thickness=rng.uniform(0.018, 0.032),
    )


@functools.lru_cache(maxsize=8)
def _base_grid(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return read-only pixel-centre coordinates in [-1, 1] (x to the right, y down)."""
    axis = (np.arange(image_size, dtype=np.float32) + 0.5) * (2.0 / image_size) - 1.0
    grid_x, grid_y = np.meshgrid(axis, axis)
    grid_x.setflags(write=False)
    grid_y.setflags(write=False)
    return grid_x, grid_y


def _head_fields(head: _Head, image_size: int) -> _Fields:
    """Compute the per-pixel geometry of a head."""
    grid_x, grid_y = _base_grid(image_size)
    shifted_x = grid_x - np.float32(head.center_x)
    shifted_y = grid_y - np.float32(head.center_y)
    cos_a, sin_a = np.float32(head.cos_angle), np.float32(head.sin_angle)
    head_x = cos_a * shifted_x + sin_a * shifted_y
    head_y = cos_a * shifted_y - sin_a * shifted_x
    norm_x = head_x / np.float32(head.semi_x)
    norm_y = head_y / np.float32(head.semi_y)
    radius = np.sqrt(norm_x * norm_x + norm_y * norm_y)
    safe_radius = np.maximum(radius, np.float32(1e-6))
    cos_theta, sin_theta = norm_x / safe_radius, norm_y / safe_radius
    inner_skull = head.inner_radius(cos_theta, sin_theta)
    return _Fields(
        head_x=head_x,
        head_y=head_y,
        radius=radius,
        cos_theta=cos_theta,
        sin_theta=sin_theta,
        inner_skull=inner_skull,
        brain_surface=inner_skull - np.float32(head.csf_thickness),
        pixel=2.0 / image_size / min(head.semi_x, head.semi_y),
        brain_mask=radius < inner_skull,
    )


def _distance_to_skull(head: _Head, head_x: np.ndarray, head_y: np.ndarray) -> np.ndarray:
    """Approximate distance (half-image units) from points inside to the inner skull."""
    norm_x, norm_y = head_x / head.semi_x, head_y / head.semi_y
    radius = np.maximum(np.hypot(norm_x, norm_y), 1e-6)
    cos_theta, sin_theta = norm_x / radius, norm_y / radius
    gradient = np.hypot(cos_theta / head.semi_x, sin_theta / head.semi_y)
    return (head.inner_radius(cos_theta, sin_theta) - radius) / gradient


def _crop(head: _Head, center: tuple[float, float], reach: float, size: int) -> tuple:
    """Return the (rows, columns) slices of a square around a head-frame point."""
    column, row = head.to_pixels(center[0], center[1], size)
    half = reach * size / 2.0 + 2.0
    rows = slice(max(0, int(row - half)), min(size, int(math.ceil(row + half)) + 1))
    columns = slice(max(0, int(column - half)), min(size, int(math.ceil(column + half)) + 1))
    return rows, columns


# ---------------------------------------------------------------------------- texture


def _ramp(values: np.ndarray, width: float) -> np.ndarray:
    """Map a signed distance to a soft 0..1 edge of the given width."""
    weight = values * np.float32(1.0 / width)
    weight += np.float32(0.5)
    np.maximum(weight, np.float32(0.0), out=weight)
    return np.minimum(weight, np.float32(1.0), out=weight)


def _mix(base: np.ndarray, target: np.ndarray | float, weight: np.ndarray) -> np.ndarray:
    """Blend ``target`` over ``base`` with a 0..1 weight."""
    return base + (target - base) * weight


def _smooth_noise(rng: np.random.Generator, image_size: int, sigmas: tuple) -> np.ndarray:
    """Return smooth noise fields (one per sigma, in coarse pixels) of unit spread."""
    coarse = max(16, image_size // _NOISE_DOWNSCALE)
    fields = np.empty((len(sigmas), image_size, image_size), dtype=np.float32)
    raw = rng.standard_normal((len(sigmas), coarse, coarse), dtype=np.float32)
    for index, sigma in enumerate(sigmas):
        smooth = ndimage.gaussian_filter(raw[index], sigma, mode="wrap")
        smooth /= max(float(smooth.std()), 1e-6)
        resized = Image.fromarray(smooth).resize((image_size, image_size), Image.BILINEAR)
        fields[index] = np.asarray(resized)
    return fields


# ---------------------------------------------------------------------------- anatomy


def _brain_tissue(fields: _Fields, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return gray/white matter with cortical sulci and a midline fissure."""
    depth = fields.brain_surface - fields.radius
    cortex = np.float32(rng.uniform(0.07, 0.11)) + np.float32(0.025) * noise[1]
    white = _ramp(depth - cortex, 0.05)
    tissue = _GRAY_LEVEL + (_WHITE_LEVEL - _GRAY_LEVEL) * white + 0.035 * noise[0]
    gyri = rng.uniform(26.0, 36.0)
    theta = np.arctan2(fields.sin_theta, fields.cos_theta)
    wave = np.abs(np.sin(np.float32(gyri / 2.0) * theta + np.float32(1.6) * noise[2]))
    sulcus_depth = cortex * np.float32(0.9) + np.float32(0.02) * noise[0]
    sulci = _ramp(np.float32(0.2) - wave, 0.14) * _ramp(sulcus_depth - depth, 0.04)
    tissue = _mix(tissue, _CSF_LEVEL + 0.05, sulci * np.float32(0.9))
    half_width = np.float32(1.3 / fields.head_x.shape[0])  # about 0.65 pixel
    fissure = np.exp(-((fields.head_x / half_width) ** 2))  # front and back, not the centre
    fissure *= _ramp(np.abs(fields.radius * fields.sin_theta) - np.float32(0.45), 0.15)
    return _mix(tissue, _CSF_LEVEL, fissure * np.float32(0.8))


def _skull_ring(fields: _Fields, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return the intensity of the scalp and skull ring (bright, with a dark inner table)."""
    ring_level = np.float32(rng.uniform(0.7, 0.9))
    ring = ring_level + np.float32(0.05) * noise[1]
    thickness = 1.0 - fields.inner_skull
    table = _ramp(fields.inner_skull + thickness * np.float32(0.22) - fields.radius, fields.pixel)
    ring = _mix(ring, 0.25, table * np.float32(rng.uniform(0.35, 0.7)))
    skin = _ramp(fields.radius - (1.0 - thickness * np.float32(0.15)), fields.pixel)
    return _mix(ring, ring_level * 0.6, skin)


def _ventricle_shape(fields: _Fields, head: _Head, rng: np.random.Generator) -> tuple:
    """Return the crop and soft 0..1 weight of the two butterfly-shaped lateral ventricles."""
    scale = np.float32(head.semi_y * rng.uniform(0.7, 1.15))
    shift_y = np.float32(head.semi_y * rng.uniform(-0.06, 0.04))
    rows, columns = _crop(head, (0.0, float(shift_y)), 0.4 * float(scale), fields.head_x.shape[0])
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
    return rows, columns, _ramp(inside - edge / 2, float(edge))


def _sella_center(head: _Head, radius: float, gap: float) -> tuple[float, float]:
    """Return the head-frame centre of a round mass of ``radius`` above the skull base."""
    bottom = head.semi_y * float(head.inner_radius(np.float32(0.0), np.float32(1.0)))
    return 0.0, bottom - radius - gap


def _paint_disk(image: np.ndarray, fields: _Fields, head: _Head, disk: tuple, level: float):
    """Blend a soft disk ``(centre x, centre y, radius)`` of constant level into the image."""
    center_x, center_y, radius = disk
    rows, columns = _crop(head, (center_x, center_y), radius, image.shape[0])
    distance = np.hypot(
        fields.head_x[rows, columns] - center_x, fields.head_y[rows, columns] - center_y
    )
    weight = _ramp(np.float32(radius) - distance, 2.0 / image.shape[0])
    image[rows, columns] = _mix(image[rows, columns], level, weight)


def _render_anatomy(head: _Head, fields: _Fields, noise: np.ndarray, rng: np.random.Generator):
    """Return the lesion-free slice as float32 intensities (roughly 0..1)."""
    ring = _skull_ring(fields, noise, rng)
    tissue = _brain_tissue(fields, noise, rng)
    image = ring * _ramp(1.0 - fields.radius, fields.pixel)
    image = _mix(image, _CSF_LEVEL, _ramp(fields.inner_skull - fields.radius, fields.pixel))
    image = _mix(image, tissue, _ramp(fields.brain_surface - fields.radius, fields.pixel))
    rows, columns, ventricles = _ventricle_shape(fields, head, rng)
    image[rows, columns] = _mix(image[rows, columns], _CSF_LEVEL, ventricles)
    gland = 0.022 * head.semi_y
    gland_x, gland_y = _sella_center(head, gland, 0.03 * head.semi_y)
    _paint_disk(image, fields, head, (gland_x, gland_y, gland), rng.uniform(0.5, 0.65))
    return image


# ----------------------------------------------------------------------------- lesions


def _lesion_contrast(rng: np.random.Generator) -> float:
    """Return how strongly a lesion stands out: about one in five is faint."""
    if rng.random() < 0.2:
        return rng.uniform(0.25, 0.45)
    return rng.uniform(0.6, 1.0)


def _meningioma(image, fields: _Fields, head: _Head, noise, rng) -> np.ndarray:
    """Paint a bright, round, extra-axial mass against the dura; return its mask."""
    radius = head.semi_y * rng.uniform(0.08, 0.19)
    theta = rng.uniform(-0.5 * math.pi - 2.3, -0.5 * math.pi + 2.3)  # convexity, not skull base
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    inner = float(head.inner_radius(np.float32(cos_t), np.float32(sin_t)))
    normal = np.array([cos_t / head.semi_x, sin_t / head.semi_y])
    normal /= np.linalg.norm(normal)
    depth = radius * rng.uniform(0.3, 0.7)
    center_x = head.semi_x * inner * cos_t - normal[0] * depth
    center_y = head.semi_y * inner * sin_t - normal[1] * depth
    rows, columns = _crop(head, (center_x, center_y), radius * 1.8, image.shape[0])
    local_x = fields.head_x[rows, columns] - np.float32(center_x)
    local_y = fields.head_y[rows, columns] - np.float32(center_y)
    distance = np.hypot(local_x, local_y) / np.float32(radius)
    shape = distance + np.clip(noise[1][rows, columns], -3.0, 3.0) * np.float32(0.03)
    radius_map = fields.radius[rows, columns]
    inside = _ramp(fields.inner_skull[rows, columns] - radius_map, fields.pixel)
    dura = inside * (1.0 - _ramp(fields.brain_surface[rows, columns] - radius_map, fields.pixel))
    edge = 2.0 / image.shape[0] / radius
    cleft = np.exp(-(((shape - 1.0 - edge) / edge) ** 2)) * inside
    crop = _mix(image[rows, columns], _CSF_LEVEL, cleft * np.float32(0.5))
    level = _WHITE_LEVEL + _lesion_contrast(rng) * (0.92 - _WHITE_LEVEL)
    texture = np.float32(level) + 0.025 * noise[0][rows, columns]
    tail = dura * _ramp(np.float32(rng.uniform(1.2, 1.7)) - distance, 0.3) * np.float32(0.6)
    crop = _mix(crop, np.float32(level), tail)
    image[rows, columns] = _mix(crop, texture, _ramp(1.0 - shape, edge) * inside)
    mask = np.zeros(image.shape, dtype=bool)
    mask[rows, columns] = (shape < 1.0) & fields.brain_mask[rows, columns]
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


def _glioma_center(head: _Head, radius: float, harmonics: np.ndarray, rng) -> tuple:
    """Draw a centre that keeps the whole glioma inside one hemisphere, off the skull."""
    angles = np.linspace(0.0, 2.0 * math.pi, 48, endpoint=False)
    outline_x, outline_y = np.cos(angles), np.sin(angles)
    _, relative = _lobulated_radius(outline_x, outline_y, harmonics)
    reach = radius * relative * 1.36  # the noisy edge reaches 1.36 times the outline
    side = 1.0 if rng.random() < 0.5 else -1.0
    for _ in range(200):
        center_x = side * rng.uniform(0.1, 0.55) * head.semi_x
        center_y = rng.uniform(-0.6, 0.55) * head.semi_y
        points_x, points_y = center_x + reach * outline_x, center_y + reach * outline_y
        off_midline = np.all(side * points_x > 0.025)
        if off_midline and np.all(_distance_to_skull(head, points_x, points_y) > 0.06):
            return center_x, center_y, radius, float(relative.max())
        radius *= 0.99
        reach *= 0.99
    return side * 0.4 * head.semi_x, 0.0, 0.05 * head.semi_y, float(relative.max())


def _glioma(image, fields: _Fields, head: _Head, noise, rng) -> np.ndarray:
    """Paint an irregular, heterogeneous intra-axial mass; return its mask."""
    harmonics = rng.uniform(-1.0, 1.0, size=6) * np.array([0.18, 0.18, 0.12, 0.12, 0.05, 0.05])
    radius = head.semi_y * rng.uniform(0.09, 0.2)
    center_x, center_y, radius, widest = _glioma_center(head, radius, harmonics, rng)
    rows, columns = _crop(head, (center_x, center_y), radius * widest * 2.4, image.shape[0])
    local_x = fields.head_x[rows, columns] - np.float32(center_x)
    local_y = fields.head_y[rows, columns] - np.float32(center_y)
    distance, relative = _lobulated_radius(local_x, local_y, harmonics.astype(np.float32))
    infiltration = np.clip(noise[2][rows, columns], -2.0, 2.0) * np.float32(0.18)
    shape = distance / (np.float32(radius) * relative) + infiltration
    contrast = _lesion_contrast(rng)
    crop = image[rows, columns]
    edema = _ramp(1.0 - (shape - 1.0) / 0.6, 1.0) * np.float32(0.12 * contrast)
    edema *= _ramp(fields.brain_surface[rows, columns] - fields.radius[rows, columns], 0.02)
    crop = crop * (1.0 - edema)
    body = np.float32(0.4 - 0.14 * contrast) + 0.05 * noise[0][rows, columns]
    crop = _mix(crop, body, _ramp(1.0 - shape, 0.25))
    if rng.random() < 0.7:  # enhancing rim around a necrotic core
        core = rng.uniform(0.25, 0.5)
        rim = np.exp(-(((shape - (core + 1.0) / 2.0) / (0.35 * (1.0 - core))) ** 2))
        rim *= np.clip(0.8 + 0.3 * noise[1][rows, columns], 0.3, 1.0) * np.float32(contrast)
        crop = _mix(crop, np.float32(0.55 + 0.4 * contrast), rim)
        necrosis = np.float32(rng.uniform(0.18, 0.3)) + 0.04 * noise[1][rows, columns]
        crop = _mix(crop, necrosis, _ramp(core - shape, 0.15))
    image[rows, columns] = crop
    mask = np.zeros(image.shape, dtype=bool)
    mask[rows, columns] = (shape < 1.0) & fields.brain_mask[rows, columns]
    return mask


def _pituitary(image, fields: _Fields, head: _Head, noise, rng) -> np.ndarray:
    """Paint a small round mass at the midline skull base (sella); return its mask."""
    radius = head.semi_y * rng.uniform(0.045, 0.1)
    center_x, center_y = _sella_center(head, radius, head.semi_y * rng.uniform(0.03, 0.08))
    center_x += head.semi_x * rng.uniform(-0.02, 0.02)
    rows, columns = _crop(head, (center_x, center_y), radius * 1.3, image.shape[0])
    local_x = fields.head_x[rows, columns] - np.float32(center_x)
    local_y = fields.head_y[rows, columns] - np.float32(center_y)
    stretch = np.float32(rng.uniform(0.85, 1.15))
    shape = np.hypot(local_x * stretch, local_y / stretch) / np.float32(radius)
    level = 0.62 + _lesion_contrast(rng) * 0.3
    texture = np.float32(level) + 0.03 * noise[0][rows, columns]
    if rng.random() < 0.3:  # cystic, darker centre
        texture = _mix(texture, np.float32(0.3), _ramp(0.55 - shape, 0.2))
    edge = 1.5 / image.shape[0] / radius
    image[rows, columns] = _mix(image[rows, columns], texture, _ramp(1.0 - shape, edge))
    mask = np.zeros(image.shape, dtype=bool)
    mask[rows, columns] = (shape < 1.0) & fields.brain_mask[rows, columns]
    return mask


_LESION_PAINTERS: dict[str, Callable[..., np.ndarray]] = {
    "glioma": _glioma,
    "meningioma": _meningioma,
    "pituitary": _pituitary,
}


# ------------------------------------------------------------------------- rendering


def _acquire(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply coil bias, Rician-like noise and a global contrast change; return uint8 pixels."""
    grid_x, grid_y = _base_grid(image.shape[0])
    bias_x, bias_y = rng.uniform(-0.08, 0.08, size=2).astype(np.float32)
    image = image * (np.float32(1.0) + bias_x * grid_x + bias_y * grid_y)
    sigma = np.float32(rng.uniform(0.01, 0.04))
    real = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    magnitude = np.sqrt(real * real + imaginary * imaginary)
    gamma, gain = rng.uniform(0.8, 1.25), rng.uniform(0.85, 1.1)
    levels = np.linspace(0.0, 1.0, 4096)
    table = np.clip(255.0 * (gain * levels**gamma + rng.uniform(0.0, 0.03)) + 0.5, 0, 255)
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


def render_phantom(
    class_name: str, image_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one synthetic axial T1 post-contrast slice of the given class.

    Args:
        class_name: One of ``config.CLASS_NAMES``; ``"notumor"`` draws no lesion.
        image_size: Side of the square image in pixels (at least 64).
        rng: The random generator that decides every detail of this phantom.

    Returns:
        ``(image, lesion_mask, brain_mask)``: the grayscale image (uint8, HxW), the
        lesion's ground truth (bool, HxW, empty for ``"notumor"``) and the region
        inside the skull's inner edge (bool, HxW), which contains the lesion mask.

    Raises:
        ValueError: If the class is unknown or the image size is below 64.
    """
    check_class_name(class_name)
    check_image_size(image_size)
    image_size = int(image_size)
    head = _sample_head(rng)
    fields = _head_fields(head, image_size)
    noise = _smooth_noise(rng, image_size, (2.5, 1.2, 1.0))
    image = _render_anatomy(head, fields, noise, rng)
    painter = _LESION_PAINTERS.get(class_name)
    if painter is None:
        lesion_mask = np.zeros((image_size, image_size), dtype=bool)
    else:
        lesion_mask = painter(image, fields, head, noise, rng)
    return _acquire(image, rng), lesion_mask, fields.brain_mask
