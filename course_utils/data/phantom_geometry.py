"""Per-pixel geometry and painting helpers shared by the phantom anatomy and lesions.

A phantom head is an ellipse in a *head frame* (x to the image's right, y down,
lengths in half-image units, rotated and shifted by a few percent). The skull's
inner edge is an elliptical radius below 1 that wobbles with the angle and can be
pushed inwards by ``bumps`` (the skull base in coronal and sagittal slices). Nothing
here is random by itself: every random choice is made by the caller's generator.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

#: Tissue intensities before the global contrast change (0 = black, 1 = white).
CSF_LEVEL = 0.11
GRAY_LEVEL = 0.42
WHITE_LEVEL = 0.58

_NOISE_DOWNSCALE = 4  # smooth noise is drawn on a grid this many times coarser


@dataclass(frozen=True)
class Head:
    """Random shape parameters of one head (lengths in half-image units).

    ``bumps`` are ``(direction x, direction y, depth, width²)``: the inner skull moves
    inwards by ``depth`` (elliptical radius) around that unit direction.
    """

    plane: str
    center_x: float
    center_y: float
    cos_angle: float
    sin_angle: float
    semi_x: float
    semi_y: float
    skull_thickness: float
    skull_harmonics: tuple[float, float, float, float]
    csf_thickness: float
    bumps: tuple[tuple[float, float, float, float], ...] = ()
    low_slice: bool = False  # axial only: the skull-base level instead of the ventricles
    slice_scale: float = 1.0  # > 1 or < 1 in an adjacent slice: lesions grow or shrink

    def inner_radius(self, cos_theta: np.ndarray, sin_theta: np.ndarray) -> np.ndarray:
        """Return the skull's inner edge, in elliptical radius, at the given angles."""
        c1, s1, c2, s2 = self.skull_harmonics
        cos_double = cos_theta * cos_theta - sin_theta * sin_theta
        sin_double = 2.0 * sin_theta * cos_theta
        wobble = c1 * cos_theta + s1 * sin_theta + c2 * cos_double + s2 * sin_double
        inner = 1.0 - self.skull_thickness * (1.0 + wobble)
        for direction_x, direction_y, depth, width in self.bumps:
            gap = (cos_theta - direction_x) ** 2 + (sin_theta - direction_y) ** 2
            inner = inner - np.float32(depth) * np.exp(gap * np.float32(-1.0 / width))
        return inner

    def to_pixels(self, head_x: float, head_y: float, image_size: int) -> tuple[float, float]:
        """Convert head-frame coordinates to (column, row) pixel coordinates."""
        x = self.center_x + self.cos_angle * head_x - self.sin_angle * head_y
        y = self.center_y + self.sin_angle * head_x + self.cos_angle * head_y
        return (x + 1.0) * image_size / 2.0 - 0.5, (y + 1.0) * image_size / 2.0 - 0.5

    def skull_point(self, cos_theta: float, sin_theta: float) -> tuple[float, float]:
        """Return the head-frame point of the inner skull in an (elliptical) direction."""
        norm = math.hypot(cos_theta, sin_theta)
        cos_theta, sin_theta = cos_theta / norm, sin_theta / norm
        inner = float(self.inner_radius(np.float32(cos_theta), np.float32(sin_theta)))
        return self.semi_x * inner * cos_theta, self.semi_y * inner * sin_theta


@dataclass
class Fields:
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


@functools.lru_cache(maxsize=8)
def base_grid(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return read-only pixel-centre coordinates in [-1, 1] (x to the right, y down)."""
    axis = (np.arange(image_size, dtype=np.float32) + 0.5) * (2.0 / image_size) - 1.0
    grid_x, grid_y = np.meshgrid(axis, axis)
    grid_x.setflags(write=False)
    grid_y.setflags(write=False)
    return grid_x, grid_y


def head_fields(head: Head, image_size: int) -> Fields:
    """Compute the per-pixel geometry of a head."""
    grid_x, grid_y = base_grid(image_size)
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
    return Fields(
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


def distance_to_skull(head: Head, head_x: np.ndarray, head_y: np.ndarray) -> np.ndarray:
    """Approximate distance (half-image units) from points inside to the inner skull."""
    norm_x, norm_y = head_x / head.semi_x, head_y / head.semi_y
    radius = np.maximum(np.hypot(norm_x, norm_y), 1e-6)
    cos_theta, sin_theta = norm_x / radius, norm_y / radius
    gradient = np.hypot(cos_theta / head.semi_x, sin_theta / head.semi_y)
    return (head.inner_radius(cos_theta, sin_theta) - radius) / gradient


def crop(head: Head, center: tuple[float, float], reach: float, size: int) -> tuple:
    """Return the (rows, columns) slices of a square around a head-frame point."""
    column, row = head.to_pixels(center[0], center[1], size)
    half = reach * size / 2.0 + 2.0
    rows = slice(max(0, int(row - half)), min(size, int(math.ceil(row + half)) + 1))
    columns = slice(max(0, int(column - half)), min(size, int(math.ceil(column + half)) + 1))
    return rows, columns


def ramp(values: np.ndarray, width: float) -> np.ndarray:
    """Map a signed distance to a soft 0..1 edge of the given width."""
    weight = values * np.float32(1.0 / width)
    weight += np.float32(0.5)
    np.maximum(weight, np.float32(0.0), out=weight)
    return np.minimum(weight, np.float32(1.0), out=weight)


def mix(base: np.ndarray, target: np.ndarray | float, weight: np.ndarray) -> np.ndarray:
    """Blend ``target`` over ``base`` with a 0..1 weight."""
    return base + (target - base) * weight


def smooth_noise(rng: np.random.Generator, image_size: int, sigmas: tuple) -> np.ndarray:
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


def window(fields: Fields, head: Head, center: tuple[float, float], reach: float) -> tuple:
    """Return ``(rows, columns, head x, head y)`` of the square around a head-frame point."""
    rows, columns = crop(head, center, reach, fields.head_x.shape[0])
    return rows, columns, fields.head_x[rows, columns], fields.head_y[rows, columns]


def paint_ellipse(image: np.ndarray, fields: Fields, head: Head, ellipse: tuple, level) -> tuple:
    """Blend a soft ellipse ``(centre x, centre y, semi x, semi y)`` of one level.

    Returns:
        ``(rows, columns, weight)``: the painted window and its 0..1 weight.
    """
    center_x, center_y, semi_x, semi_y = ellipse
    rows, columns, x, y = window(fields, head, (center_x, center_y), max(semi_x, semi_y))
    local_x = (x - np.float32(center_x)) / np.float32(semi_x)
    local_y = (y - np.float32(center_y)) / np.float32(semi_y)
    distance = np.sqrt(local_x * local_x + local_y * local_y)
    edge = 2.0 / image.shape[0] / min(semi_x, semi_y)
    weight = ramp(np.float32(1.0) - distance, edge)
    image[rows, columns] = mix(image[rows, columns], level, weight)
    return rows, columns, weight


def line_weight(values: np.ndarray, half_width: float) -> np.ndarray:
    """Return a soft 0..1 line where a signed distance (head units) is near zero."""
    return np.exp(-((values * np.float32(1.0 / half_width)) ** 2))
