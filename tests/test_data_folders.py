"""Scanning a class-folder test directory in a model's class order."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_cnn import write_brightness_folders

from course_utils.data import folders as test_folders

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def test_scan_test_folder_layouts_aliases_and_unreadable_files(tmp_path: Path) -> None:
    folders = {
        "glioma_tumor": "glioma",
        "meningioma": "meningioma",
        "no_tumor": "notumor",
        "Pituitary": "pituitary",
    }
    root = write_brightness_folders(tmp_path / "flat", folders)
    (root / "meningioma" / "broken.jpg").write_bytes(b"not an image")
    table, skipped = test_folders.scan_test_folder(root, CLASSES)
    assert len(table) == 12 and set(table["label"]) == set(CLASSES)
    assert len(skipped) == 1 and skipped[0].startswith("meningioma/broken.jpg:")
    nested = write_brightness_folders(tmp_path / "kaggle" / "Testing", {c: c for c in CLASSES}, 1)
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
    root = write_brightness_folders(tmp_path / "data", folders, 1)
    with pytest.raises(ValueError, match=message) as error:
        test_folders.scan_test_folder(root, CLASSES)
    assert "glioma" in str(error.value) and str(root) in str(error.value)


def test_class_folder_without_readable_images_is_an_error(tmp_path: Path) -> None:
    root = write_brightness_folders(tmp_path / "data", {c: c for c in CLASSES}, 1)
    (root / "glioma" / "0.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"missing \['glioma'\]"):
        test_folders.scan_test_folder(root, CLASSES)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        test_folders.scan_test_folder(tmp_path / "nowhere", CLASSES)
