"""The mini-app: bad uploads give clear messages, analyse works for every method, widgets work."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import app, llm, render
from course_utils.config import CLASS_NAMES


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _scan(size: int = 80) -> Image.Image:
    """A bright disk on black: a stand-in scan."""
    y, x = np.mgrid[:size, :size]
    disk = ((x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 3) ** 2) * 200
    return Image.fromarray(disk.astype(np.uint8), "L")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, dict]:
    """An untrained small CNN saved with a model card."""
    from course_utils import models, train

    out = tmp_path_factory.mktemp("app-model")
    model = models.build_cnn(64, filters=(8, 16), last_block_convs=1)
    path = out / "cnn.keras"
    model.save(path)
    card = dict.fromkeys(train.REQUIRED_CARD_KEYS)
    card.update(name="cnn", class_names=list(CLASS_NAMES), image_size=64, seed=1)
    train.write_model_card(path, card)
    loaded, card = train.load_model_with_card(path)
    return path, loaded, card


# ------------------------------------------------------------------ bad input


def test_empty_file() -> None:
    with pytest.raises(ValueError, match="empty"):
        app.load_image_bytes(b"", 64)


def test_not_an_image() -> None:
    with pytest.raises(ValueError, match="not an image"):
        app.load_image_bytes(b"hello, this is a text file\n" * 10, 64)


def test_truncated_jpeg() -> None:
    data = _png(_scan(200).convert("RGB"), "JPEG")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        app.load_image_bytes(data[: len(data) // 2], 64)


def test_huge_png_header_is_refused_before_decoding() -> None:
    import struct
    import zlib

    data = bytearray(_png(Image.new("L", (40, 40), 0)))  # a real PNG whose header then lies
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    with pytest.raises(ValueError, match="too large"):
        app.load_image_bytes(bytes(data), 64)


def test_pixel_limit_is_the_scan_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    from course_utils.data import scan

    monkeypatch.setattr(scan, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match="1,000 pixels"):
        app.load_image_bytes(_png(_scan(80)), 64)


def test_tiny_image_names_the_minimum() -> None:
    with pytest.raises(ValueError, match=f"at least {app.MIN_IMAGE_SIDE}x{app.MIN_IMAGE_SIDE}"):
        app.load_image_bytes(_png(Image.new("L", (8, 8), 100)), 64)


# ------------------------------------------------------------------ conversions


def test_grayscale_becomes_rgb_at_size() -> None:
    pixels = app.load_image_bytes(_png(_scan(80)), 64)
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    assert (pixels[..., 0] == pixels[..., 2]).all() and pixels.max() > 150


def test_rgba_is_laid_on_black() -> None:
    image = Image.new("RGBA", (40, 40), (255, 255, 255, 0))
    image.paste((200, 100, 50, 255), (10, 10, 30, 30))
    pixels = app.load_image_bytes(_png(image), 40)
    assert tuple(pixels[0, 0]) == (0, 0, 0)
    assert tuple(pixels[20, 20]) == (200, 100, 50)


def test_16_bit_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 4095, 64).astype(np.uint16), (64, 1))  # 12-bit data
    data = _png(Image.fromarray(ramp))  # mode I;16
    pixels = app.load_image_bytes(data, 64)
    row = pixels[32, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert (np.diff(row) >= 0).all() and len(np.unique(row)) > 50


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = Image.new("CMYK", (48, 48), (0, 255, 255, 0))  # red in CMYK
    pixels = app.load_image_bytes(_png(image, "JPEG"), 48)
    red, green, blue = pixels[24, 24].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_palette_image_becomes_rgb() -> None:
    image = Image.new("RGB", (48, 48), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    pixels = app.load_image_bytes(_png(image), 48)
    assert np.allclose(pixels[24, 24], (10, 200, 30), atol=3)


def test_large_image_is_downscaled() -> None:
    pixels = app.load_image_bytes(_png(_scan(300)), 64)
    assert pixels.shape == (64, 64, 3)


# ------------------------------------------------------------------ analyse


@pytest.mark.parametrize("method", ["gradcam", "saliency", "smoothgrad", "gradcam++", "scorecam"])
def test_analyse_every_method(tiny_model, method: str) -> None:
    _, model, card = tiny_model
    image = app.load_image_bytes(_png(_scan(80)), 64)
    result = app.analyse(model, card, image, method, llm.make_explainer("offline"))
    assert list(result["probabilities"]) == list(CLASS_NAMES)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert result["predicted_class"] == CLASS_NAMES[result["class_index"]]
    assert result["heatmap"].shape == (64, 64)
    assert result["overlay"].shape == (64, 64, 3) and result["overlay"].dtype == np.uint8
    assert "side" in result["statistics"]
    assert result["explanation"].ok and llm.NOTICE in result["explanation"].text


def test_analyse_caches_the_fast_explainer(tiny_model) -> None:
    _, model, _ = tiny_model
    assert app.fast_explainer(model) is app.fast_explainer(model)


def test_analyse_unknown_method(tiny_model) -> None:
    _, model, card = tiny_model
    with pytest.raises(ValueError, match="Unknown saliency method"):
        app.analyse(model, card, np.zeros((64, 64, 3), np.uint8), "lime", None)


def test_markdown_to_html_escapes_and_formats() -> None:
    out = render.markdown_html("A <script>x</script> **bold**\n\n**Caveats:**\n- one\n- two")
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<strong>bold</strong>" in out and "<li>one</li>" in out


def test_probability_chart_is_png() -> None:
    assert app.probability_chart({"a": 0.7, "b": 0.3}, "a").startswith(b"\x89PNG")


# ------------------------------------------------------------------ widgets


def _upload(widget_app: app.App, data: bytes, name: str) -> None:
    widget_app.upload.value = (
        {
            "name": name,
            "type": "image/png",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime.now(datetime.UTC),
        },
    )


def test_widget_good_then_bad_then_good(tiny_model, tmp_path: Path) -> None:
    path, _, _ = tiny_model
    sample = tmp_path / "glioma" / "scan.png"
    sample.parent.mkdir()
    _scan(90).save(sample)
    widget = app.build_app({"cnn": path}, [sample])
    ui = widget.app
    _upload(ui, _png(_scan(80)), "good.png")
    assert "Prediction:" in ui.prediction.value and "Done" in ui.status.value
    assert bytes(ui.overlay.value)[:4] == bytes(ui.scan.value)[:4] == b"\x89PNG"
    assert llm.NOTICE in ui.explanation.value

    _upload(ui, b"not an image at all", "notes.txt")
    assert "not an image" in ui.status.value and "Traceback" not in ui.status.value
    assert ui.prediction.value == "" and bytes(ui.overlay.value) == b""

    ui.sample.value = str(sample)
    assert "Prediction:" in ui.prediction.value and "glioma/scan.png" in ui.status.value
    ui.method.value = "gradcam++"
    assert ui.run() is not None and "gradcam++" in ui.prediction.value


def test_widget_without_input_or_models(tiny_model) -> None:
    path, _, _ = tiny_model
    ui = app.build_app({"cnn": path}).app
    assert ui.run() is None and "first" in ui.status.value
    empty = app.build_app({}).app
    empty.data = b"x"
    assert empty.run() is None and "notebooks 02/03" in empty.status.value


def test_widget_reports_a_missing_model(tmp_path: Path) -> None:
    ui = app.build_app({"gone": tmp_path / "gone.keras"}).app
    _upload(ui, _png(_scan(80)), "good.png")
    assert "does not exist" in ui.status.value


def test_widget_key_classes() -> None:
    ui = app.build_app({}).app
    assert "btmri-overlay" in ui.overlay._dom_classes
    assert "btmri-status" in ui.status._dom_classes
    assert "btmri-upload" in ui.upload._dom_classes
