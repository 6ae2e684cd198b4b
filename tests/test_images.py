"""course_utils.images: bad files give clear messages, every image mode becomes RGB at size."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_cnn import disk_scan, png_bytes

from course_utils import images

# ------------------------------------------------------------------ bad input


def test_empty_file() -> None:
    with pytest.raises(ValueError, match="empty"):
        images.load_image_bytes(b"", 64)


def test_not_an_image() -> None:
    with pytest.raises(ValueError, match="not an image"):
        images.load_image_bytes(b"hello, this is a text file\n" * 10, 64)


def test_truncated_jpeg() -> None:
    data = png_bytes(disk_scan(200).convert("RGB"), "JPEG")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        images.load_image_bytes(data[: len(data) // 2], 64)


def test_huge_png_header_is_refused_before_decoding() -> None:
    import struct
    import zlib

    data = bytearray(png_bytes(Image.new("L", (40, 40), 0)))  # a real PNG whose header then lies
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    with pytest.raises(ValueError, match="too large"):
        images.load_image_bytes(bytes(data), 64)


def test_pixel_limit_is_the_scan_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    from course_utils.data import scan

    monkeypatch.setattr(scan, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match="1,000 pixels"):
        images.load_image_bytes(png_bytes(disk_scan(80)), 64)


def test_tiny_image_names_the_minimum() -> None:
    with pytest.raises(
        ValueError, match=f"at least {images.MIN_IMAGE_SIDE}x{images.MIN_IMAGE_SIDE}"
    ):
        images.load_image_bytes(png_bytes(Image.new("L", (8, 8), 100)), 64)


# ------------------------------------------------------------------ conversions


def test_grayscale_becomes_rgb_at_size() -> None:
    pixels = images.load_image_bytes(png_bytes(disk_scan(80)), 64)
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    assert (pixels[..., 0] == pixels[..., 2]).all() and pixels.max() > 150


def test_rgba_is_laid_on_black() -> None:
    image = Image.new("RGBA", (40, 40), (255, 255, 255, 0))
    image.paste((200, 100, 50, 255), (10, 10, 30, 30))
    pixels = images.load_image_bytes(png_bytes(image), 40)
    assert tuple(pixels[0, 0]) == (0, 0, 0)
    assert tuple(pixels[20, 20]) == (200, 100, 50)


def test_16_bit_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 4095, 64).astype(np.uint16), (64, 1))  # 12-bit data
    data = png_bytes(Image.fromarray(ramp))  # mode I;16
    pixels = images.load_image_bytes(data, 64)
    row = pixels[32, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert (np.diff(row) >= 0).all() and len(np.unique(row)) > 50


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = Image.new("CMYK", (48, 48), (0, 255, 255, 0))  # red in CMYK
    pixels = images.load_image_bytes(png_bytes(image, "JPEG"), 48)
    red, green, blue = pixels[24, 24].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_palette_image_becomes_rgb() -> None:
    image = Image.new("RGB", (48, 48), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    pixels = images.load_image_bytes(png_bytes(image), 48)
    assert np.allclose(pixels[24, 24], (10, 200, 30), atol=3)


def test_large_image_is_downscaled() -> None:
    pixels = images.load_image_bytes(png_bytes(disk_scan(300)), 64)
    assert pixels.shape == (64, 64, 3)


# ------------------------------------------------------------------ files and masks


def test_load_image_file_and_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    disk_scan(80).save(path)
    np.testing.assert_array_equal(
        images.load_image_file(path, 64), images.load_image_bytes(path.read_bytes(), 64)
    )
    with pytest.raises(FileNotFoundError, match="gone.png"):
        images.load_image_file(tmp_path / "gone.png", 64)


def test_load_mask_is_binary_at_size_and_none_when_missing(tmp_path: Path) -> None:
    mask = np.zeros((100, 100), dtype=np.uint8)
    mask[20:40, 60:90] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    loaded = images.load_mask(tmp_path / "mask.png", 50)
    assert loaded.shape == (50, 50) and loaded.dtype == bool
    assert loaded[15, 37] and not loaded[5, 5] and loaded.sum() == 10 * 15
    assert images.load_mask(tmp_path / "none.png", 50) is None


def test_to_png_bytes() -> None:
    png = png_bytes(disk_scan(40))
    assert images.to_png_bytes(png) == png
    for image in (np.zeros((5, 6)), np.zeros((5, 6, 1), np.uint8), np.ones((5, 6, 4))):
        decoded = Image.open(io.BytesIO(images.to_png_bytes(image)))
        assert decoded.size == (6, 5)
    with pytest.raises(ValueError, match="shape"):
        images.to_png_bytes(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="PNG"):
        images.to_png_bytes(b"not a png")
