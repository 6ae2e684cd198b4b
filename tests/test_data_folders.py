"""Scanning a class-folder test directory in a model's class order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils.data import folders as test_folders

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")

#: Brightness of each class's images; the brightness model below reads it.
LEVELS = {"glioma": 30, "meningioma": 90, "notumor": 150, "pituitary": 210}


def _write_folder(root: Path, folders: dict[str, str], per_class: int = 3) -> Path:
    """``{folder name: class}`` -> flat grey PNGs whose brightness encodes the class."""
    for folder, label in folders.items():
        (root / folder).mkdir(parents=True)
        for index in range(per_class):
            pixels = np.full((40, 40), LEVELS[label] + index, dtype=np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{index}.png")
    return root


def test_scan_test_folder_layouts_aliases_and_unreadable_files(tmp_path: Path) -> None:
    folders = {
        "glioma_tumor": "glioma",
        "meningioma": "meningioma",
        "no_tumor": "notumor",
        "Pituitary": "pituitary",
    }
    root = _write_folder(tmp_path / "flat", folders)
    (root / "meningioma" / "broken.jpg").write_bytes(b"not an image")
    table, skipped = test_folders.scan_test_folder(root, CLASSES)
    assert len(table) == 12 and set(table["label"]) == set(CLASSES)
    assert len(skipped) == 1 and skipped[0].startswith("meningioma/broken.jpg:")
    nested = _write_folder(tmp_path / "kaggle" / "Testing", {c: c for c in CLASSES}, 1)
    table, _ = test_folders.scan_test_folder(nested.parent, CLASSES)
    assert len(table) == 4 and table["abs_path"].str.contains("/Testing/").all()


@pytest.mark.parametrize(
    ("folders", "message"),
    [
        (
            {"glioma": "glioma", "notumor": "notumor", "pituitary": "pituitary"},
            r"missing \['meningioma'\]",
        ),
        ({**{c: c for c in CLASSES}, "astrocytoma": "glioma"}, r"extra \['astrocytoma'\]"),
    ],
)
def test_test_folder_with_other_classes_is_a_clear_error(
    tmp_path: Path, folders: dict, message: str
) -> None:
    root = _write_folder(tmp_path / "data", folders, 1)
    with pytest.raises(ValueError, match=message) as error:
        test_folders.scan_test_folder(root, CLASSES)
    assert "glioma" in str(error.value) and str(root) in str(error.value)


def test_class_folder_without_readable_images_is_an_error(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "data", {c: c for c in CLASSES}, 1)
    (root / "glioma" / "0.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"missing \['glioma'\]"):
        test_folders.scan_test_folder(root, CLASSES)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        test_folders.scan_test_folder(tmp_path / "nowhere", CLASSES)
