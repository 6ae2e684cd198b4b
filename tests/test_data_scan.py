"""Scanning folders and reading files: layout errors, odd formats, bad files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import config
from course_utils.data import scan


def _write_image(
    path: Path, mode: str = "L", size: tuple[int, int] = (40, 40), fmt: str = "JPEG", seed: int = 0
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, fmt)
    return path


@pytest.fixture
def odd_dataset(tmp_path: Path) -> Path:
    """A dataset with one example of every kind of trouble the audit must report."""
    root = tmp_path / "data"
    train = root / "Training"
    _write_image(train / "glioma" / "ok.jpg")
    _write_image(train / "glioma" / "rgba.png", mode="RGBA", fmt="PNG", seed=1)
    _write_image(train / "glioma" / "palette.png", mode="P", fmt="PNG", seed=2)
    _write_image(train / "meningioma" / "gray.bmp", fmt="BMP", seed=3)
    _write_image(train / "meningioma" / "webp_in_disguise.jpg", fmt="WEBP", seed=4)
    (train / "meningioma" / "empty.jpg").write_bytes(b"")
    (train / "meningioma" / "notes.jpg").write_text("this is not an image")
    good = io.BytesIO()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(good, "JPEG")
    (train / "pituitary").mkdir(parents=True)
    (train / "pituitary" / "truncated.jpg").write_bytes(good.getvalue()[:200])
    (train / "pituitary" / "readme.txt").write_text("ignored")
    (train / "notumor").mkdir()
    _write_image(train / "scans_misc" / "x.jpg", seed=5)
    _write_image(root / "Testing" / "no_tumor" / "alias.jpg", seed=6)
    return root


def test_find_split_dirs_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan.find_split_dirs(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        scan.find_split_dirs(tmp_path / "file.txt")
    with pytest.raises(ValueError, match="no Training/ folder"):
        scan.find_split_dirs(tmp_path)


def test_find_split_dirs_accepts_lower_case_names(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "testing").mkdir()
    assert set(scan.find_split_dirs(tmp_path)) == {config.TRAIN_SPLIT, config.TEST_SPLIT}


def test_scan_reports_folders_and_ignored_files(odd_dataset: Path) -> None:
    result = scan.scan_dataset(odd_dataset)
    assert result.unknown_folders == ["Training/scans_misc"]
    assert result.empty_classes == ["Training/notumor"]
    assert "Testing/glioma" in result.missing_classes
    assert result.ignored_files == ["Training/pituitary/readme.txt"]
    # the alias folder no_tumor maps to notumor
    testing = result.files[result.files["split"] == config.TEST_SPLIT]
    assert testing["label"].tolist() == ["notumor"]
    assert len(result.files) == 9


def test_inspect_file_reasons(odd_dataset: Path) -> None:
    train = odd_dataset / "Training"
    reasons = {
        "meningioma/empty.jpg": "empty file",
        "meningioma/notes.jpg": "not an image",
        "pituitary/truncated.jpg": "truncated",
        "meningioma/webp_in_disguise.jpg": "WEBP data",
    }
    for relative, expected in reasons.items():
        info, thumbnail = scan.inspect_file(train / relative)
        assert not info["readable"]
        assert expected in info["error"], (relative, info["error"])
        assert thumbnail is None
    info, thumbnail = scan.inspect_file(train / "glioma" / "rgba.png")
    assert info["readable"] and info["mode"] == "RGBA" and info["format"] == "PNG"
    assert thumbnail.shape == (scan.THUMBNAIL_SIZE**2,)
    assert np.isclose(np.linalg.norm(thumbnail), 1.0, atol=1e-5)


def test_inspect_file_refuses_huge_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_image(tmp_path / "big.png", size=(300, 300), fmt="PNG")
    monkeypatch.setattr(scan, "MAX_IMAGE_PIXELS", 10_000)
    info, _ = scan.inspect_file(path)
    assert not info["readable"]
    assert "too large" in info["error"]


def test_thumbnail_is_invariant_to_reencoding_and_scale() -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:200, 0:200]
    pixels = 120 + 80 * np.sin(xx / 15) * np.cos(yy / 23) + rng.normal(0, 5, (200, 200))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.resize((120, 120)).save(buffer, "JPEG", quality=60)
    copy = Image.open(io.BytesIO(buffer.getvalue()))
    other = Image.fromarray(np.clip(255 - pixels.T, 0, 255).astype(np.uint8))
    base = scan.normalised_thumbnail(image)
    assert base @ scan.normalised_thumbnail(copy) > 0.995
    assert base @ scan.normalised_thumbnail(other) < 0.9


def test_inspect_images_table_lines_up(odd_dataset: Path) -> None:
    result = scan.scan_dataset(odd_dataset)
    table, thumbnails = scan.inspect_images(result, progress=False)
    assert len(table) == len(result.files) == len(thumbnails)
    assert table["readable"].sum() == 5
    unreadable_rows = np.flatnonzero(~table["readable"].to_numpy(bool))
    assert not thumbnails[unreadable_rows].any()
    assert set(scan.INFO_COLUMNS) <= set(table.columns)
