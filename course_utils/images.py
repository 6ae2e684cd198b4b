"""Image files in and out: any uploaded or stored scan read safely into model input, PNG out.

- ``load_image_bytes`` / ``load_image_file``: bytes or a file to a uint8 RGB array at the
  model's size, with a clear ``ValueError`` for anything that is not a usable image
  (empty, not an image, corrupt, truncated, too large, too small);
- ``load_mask``: a lesion mask file at the model's size (phantoms have them);
- ``to_png_bytes``: an array or PIL image encoded as PNG (for widgets, Gemini, files).

Nothing happens at import (TensorFlow is imported when resizing).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from course_utils.data import scan

#: Smallest image side accepted (smaller scans hold too little to classify).
MIN_IMAGE_SIDE = 32
_INTEGER_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _open_image(data: bytes) -> Image.Image:
    """Decode bytes with PIL under the course's pixel limit; raise ValueError for bad data."""
    if not data:
        raise ValueError("The file is empty (0 bytes). Choose an image file (PNG or JPEG).")
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > scan.MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError(
                f"{image.width}x{image.height} pixels is over the limit"
            )
        image.load()
    except UnidentifiedImageError as error:
        raise ValueError(
            "This file is not an image the app can read. Upload a PNG or JPEG scan."
        ) from error
    except Image.DecompressionBombError as error:
        raise ValueError(
            f"The image is too large ({error}); images are read up to "
            f"{scan.MAX_IMAGE_PIXELS:,} pixels. Downscale it first."
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(
            f"The image file is corrupt or truncated ({error}). Export it again and re-upload."
        ) from error
    return image


def _scale_to_uint8(array: np.ndarray) -> np.ndarray:
    """Stretch a 16-bit/32-bit/float image's value range linearly onto 0-255 (no clipping)."""
    values = np.nan_to_num(array.astype(np.float64))
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values - low) / (high - low) * 255.0).astype(np.uint8)


def to_rgb(image: Image.Image) -> np.ndarray:
    """Convert any PIL image to a uint8 RGB array (H, W, 3).

    Transparent pixels (RGBA, LA, palette with transparency) are laid on black, the
    background of an MRI scan; 16-bit and float images are stretched from their own
    value range, not clipped at 255; CMYK, YCbCr, palette and grayscale images go
    through PIL's conversions; EXIF rotation is applied.

    Args:
        image: A decoded PIL image.

    Returns:
        The RGB pixels.
    """
    image = ImageOps.exif_transpose(image) or image
    if image.mode in _INTEGER_MODES:
        grey = _scale_to_uint8(np.asarray(image))
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def load_image_bytes(data: bytes, image_size: int) -> np.ndarray:
    """Turn an uploaded file into the model's input: uint8 RGB (image_size, image_size, 3).

    Resizes as the training pipeline does (area when shrinking, bilinear when growing).

    Args:
        data: The file's bytes.
        image_size: The model's input side (``card["image_size"]``).

    Returns:
        The pixels, uint8 RGB.

    Raises:
        ValueError: With a message for the user when the file is empty, not an image,
            corrupt or truncated, too large (decompression-bomb guard) or too small.
    """
    import tensorflow as tf

    image = _open_image(bytes(data))
    if min(image.width, image.height) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"The image is only {image.width}x{image.height} pixels; the app needs at least "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}. Upload the full-resolution scan."
        )
    pixels = to_rgb(image)
    shrinking = min(pixels.shape[:2]) >= image_size
    resized = tf.image.resize(pixels, (image_size, image_size), "area" if shrinking else "bilinear")
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)


def load_image_file(path: str | Path, image_size: int) -> np.ndarray:
    """Read an image file into the model's input (see ``load_image_bytes``).

    Args:
        path: The image file.
        image_size: The model's input side (``card["image_size"]``).

    Returns:
        The pixels, uint8 RGB (image_size, image_size, 3).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a usable image (the message says why and what to do).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"The image {path} does not exist; check the path.")
    return load_image_bytes(path.read_bytes(), image_size)


def load_mask(path: str | Path, image_size: int) -> np.ndarray | None:
    """Read a lesion mask file at the model's size (nearest neighbour keeps it binary).

    Args:
        path: The mask image (white = lesion), e.g. from
            ``course_utils.data.phantom_dataset.mask_path_for``.
        image_size: The model's input side.

    Returns:
        A bool (image_size, image_size) mask, or None when the file does not exist (a
        scan without a lesion has no mask).
    """
    path = Path(path)
    if not path.is_file():
        return None
    with Image.open(path) as image:
        mask = image.convert("L").resize((image_size, image_size), Image.Resampling.NEAREST)
    return np.asarray(mask) > 127


def to_png_bytes(image: bytes | np.ndarray | Image.Image) -> bytes:
    """Encode an image as PNG.

    Args:
        image: PNG bytes (returned unchanged), a PIL image, or an array of shape
            (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); float arrays are taken as 0–1.

    Returns:
        The PNG file content.

    Raises:
        ValueError: If the array has another shape or the bytes are not a PNG file.
    """
    if isinstance(image, bytes | bytearray):
        if not bytes(image).startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError("expected PNG bytes (the file does not start with the PNG signature)")
        return bytes(image)
    if not isinstance(image, Image.Image):
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
            raise ValueError(f"cannot make a PNG from an array of shape {array.shape}")
        if array.dtype != np.uint8:
            array = np.clip(np.nan_to_num(array.astype(np.float64)) * 255.0, 0, 255).round()
        image = Image.fromarray(array.astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
