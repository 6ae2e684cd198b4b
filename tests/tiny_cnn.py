"""Small shared test helpers: a tiny CNN saved with its model card, stand-in scans and images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

#: Brightness of each class's images in ``write_brightness_folders``; brightness models read it.
BRIGHTNESS_LEVELS = {"glioma": 30, "meningioma": 90, "notumor": 150, "pituitary": 210}


def save_tiny_cnn(folder: Path) -> Path:
    """Save an untrained 64-px CNN as ``folder/cnn.keras`` with its ``cnn.json`` card.

    Args:
        folder: Where to save it.

    Returns:
        The ``.keras`` path.
    """
    # Imported here so the scan helpers below never load TensorFlow.
    from course_utils import cards, models
    from course_utils.config import CLASS_NAMES

    path = folder / "cnn.keras"
    models.build_cnn(64, filters=(8, 16), last_block_convs=1).save(path)
    card = dict.fromkeys(cards.REQUIRED_CARD_KEYS)
    card.update(name="cnn", class_names=list(CLASS_NAMES), image_size=64, seed=1)
    cards.write_card(path, card)
    return path


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    """Encode ``image`` as file bytes, as an upload would arrive.

    Args:
        image: The image to encode.
        fmt: The Pillow format name ("PNG", "JPEG", ...).

    Returns:
        The encoded bytes.
    """
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def disk_scan(size: int = 80) -> Image.Image:
    """A bright disk on black: a stand-in scan.

    Args:
        size: Width and height in pixels.

    Returns:
        A grayscale ("L") image.
    """
    y, x = np.mgrid[:size, :size]
    disk = ((x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 3) ** 2) * 200
    return Image.fromarray(disk.astype(np.uint8), "L")


def random_image(size: int, seed: int = 0) -> np.ndarray:
    """A uniform-noise RGB image in [0, 255].

    Args:
        size: Width and height in pixels.
        seed: Random seed.

    Returns:
        A float32 array of shape ``(size, size, 3)``.
    """
    return np.random.default_rng(seed).uniform(0, 255, (size, size, 3)).astype(np.float32)


def write_brightness_folders(root: Path, folders: dict[str, str], per_class: int = 3) -> Path:
    """``{folder name: class}`` -> flat grey PNGs whose brightness encodes the class.

    Args:
        root: The folder to create the class folders in.
        folders: Folder name -> class name (a key of ``BRIGHTNESS_LEVELS``).
        per_class: Images per folder.

    Returns:
        ``root``.
    """
    for folder, label in folders.items():
        (root / folder).mkdir(parents=True)
        for index in range(per_class):
            pixels = np.full((40, 40), BRIGHTNESS_LEVELS[label] + index, dtype=np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{index}.png")
    return root
