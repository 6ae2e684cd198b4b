"""Tests of the phantom dataset writer (course_utils.data.phantom_dataset)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from course_utils.config import CLASS_NAMES, TEST_SPLIT, TRAIN_SPLIT
from course_utils.data import phantom_dataset, phantoms

SMALL = {"per_class": 3, "test_per_class": 2, "image_size": 64, "seed": 5}


def file_digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def is_readable_image(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError, ValueError):
        return False
    return True


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("phantoms") / "small"
    manifest = phantom_dataset.synthesize_dataset(root, progress=False, **SMALL)
    return root, manifest


# -------------------------------------------------------------- synthesize_dataset


def test_dataset_layout_and_counts(small_dataset):
    root, manifest = small_dataset
    assert json.loads((root / phantom_dataset.MANIFEST_NAME).read_text()) == manifest
    params = manifest["params"]
    assert params["generator_version"] == phantoms.GENERATOR_VERSION
    assert params["class_names"] == list(CLASS_NAMES) and params["plant_issues"] is True
    for split in (TRAIN_SPLIT, TEST_SPLIT):
        for class_name in CLASS_NAMES:
            files = [path for path in (root / split / class_name).iterdir() if path.is_file()]
            assert manifest["counts"][split][class_name] == len(files)
    for index in range(SMALL["per_class"]):
        stem = f"ph_gl_tr_{index:04d}"
        with Image.open(root / TRAIN_SPLIT / "glioma" / f"{stem}.jpg") as image:
            assert image.mode == "L" and image.size == (64, 64)
        with Image.open(root / "masks" / TRAIN_SPLIT / "glioma" / f"{stem}.png") as mask:
            assert set(np.unique(np.asarray(mask))) == {0, 255}
    assert (root / TEST_SPLIT / "pituitary" / "ph_pi_te_0001.jpg").is_file()
    train_image = (root / TRAIN_SPLIT / "notumor" / "ph_no_tr_0000.jpg").read_bytes()
    assert train_image != (root / TEST_SPLIT / "notumor" / "ph_no_te_0000.jpg").read_bytes()
    assert not (root / TEST_SPLIT / "pituitary" / "ph_pi_te_0002.jpg").exists()
    assert not list(root.parent.glob(".small.*"))  # no staging folder left behind


def test_every_readable_image_has_a_mask(small_dataset):
    root, manifest = small_dataset
    corrupt = {entry["path"] for entry in manifest["planted"]["corrupt"]}
    for path in root.glob("*/*/*.jpg"):
        relative = path.relative_to(root).as_posix()
        mask = root / "masks" / path.parent.relative_to(root) / f"{path.stem}.png"
        assert mask.is_file() != (relative in corrupt), relative
    notumor_masks = (root / "masks" / TRAIN_SPLIT / "notumor").glob("ph_no_tr_*.png")
    for mask in notumor_masks:
        assert not np.asarray(Image.open(mask)).any()


def test_planted_copies_match_their_originals(small_dataset):
    root, manifest = small_dataset
    planted = manifest["planted"]
    pairs = [(entry["copy"], entry["original"]) for entry in planted["exact_duplicates"]]
    assert len(planted["label_conflict"]) == 1
    conflict = planted["label_conflict"][0]
    pairs.append((conflict["copy"], conflict["original"]))
    pairs += [
        (entry["test"], entry["train"]) for entry in planted["leaks"] if entry["kind"] == "exact"
    ]
    assert len(planted["exact_duplicates"]) == 2 and len(planted["leaks"]) == 3
    for copy, original in pairs:
        assert (root / copy).read_bytes() == (root / original).read_bytes(), copy
        assert original.startswith(f"{TRAIN_SPLIT}/")
    assert Path(conflict["copy"]).parent.name != Path(conflict["original"]).parent.name
    assert conflict["copy"].endswith("_conflict.jpg")
    assert all(entry["test"].startswith(f"{TEST_SPLIT}/") for entry in planted["leaks"])
    assert {entry["kind"] for entry in planted["leaks"]} == {"exact", "near"}
    for copy, original in pairs:
        copy_mask = root / phantom_dataset._mask_path(copy)
        assert copy_mask.read_bytes() == (root / phantom_dataset._mask_path(original)).read_bytes()


def test_planted_near_duplicates_are_close_but_not_identical(small_dataset):
    root, manifest = small_dataset
    planted = manifest["planted"]
    pairs = [(entry["copy"], entry["original"]) for entry in planted["near_duplicates"]]
    pairs += [
        (entry["test"], entry["train"]) for entry in planted["leaks"] if entry["kind"] == "near"
    ]
    assert len(planted["near_duplicates"]) == 2  # 5% of 12 Training images, at least 2
    for copy, original in pairs:
        assert Path(copy).stem.endswith(("_near", "_leak"))
        assert (root / copy).read_bytes() != (root / original).read_bytes()
        copy_pixels = np.asarray(Image.open(root / copy), dtype=float)
        original_pixels = np.asarray(Image.open(root / original), dtype=float)
        assert copy_pixels.shape == original_pixels.shape
        assert 0 < np.abs(copy_pixels - original_pixels).mean() < 20
        assert np.corrcoef(copy_pixels.ravel(), original_pixels.ravel())[0, 1] > 0.9


def test_planted_adjacent_slices_are_the_same_head_a_little_shifted(small_dataset):
    root, manifest = small_dataset
    adjacent = manifest["planted"]["adjacent_slices"]
    assert len(adjacent) == 1  # 10% of 12 Training images, at least 1
    for entry in adjacent:
        copy, original = entry["copy"], entry["original"]
        assert Path(copy).stem == Path(original).stem + "_adj"
        assert Path(copy).parent == Path(original).parent
        assert copy.startswith(f"{TRAIN_SPLIT}/") and abs(entry["slice_offset"]) > 0
        copy_pixels = np.asarray(Image.open(root / copy), dtype=float)
        original_pixels = np.asarray(Image.open(root / original), dtype=float)
        assert np.corrcoef(copy_pixels.ravel(), original_pixels.ravel())[0, 1] > 0.9
        assert np.abs(copy_pixels - original_pixels).mean() > 1  # not a re-encoded copy
        assert manifest["planes"][copy] == manifest["planes"][original]
        assert (root / phantom_dataset._mask_path(copy)).is_file()


def test_manifest_records_every_image_plane(small_dataset):
    root, manifest = small_dataset
    corrupt = {entry["path"] for entry in manifest["planted"]["corrupt"]}
    images = {
        path.relative_to(root).as_posix()
        for split in (TRAIN_SPLIT, TEST_SPLIT)
        for path in (root / split).rglob("*.jpg")
    }
    assert set(manifest["planes"]) == images - corrupt
    assert set(manifest["planes"].values()) <= set(phantoms.PLANES)
    for entry in manifest["planted"]["exact_duplicates"] + manifest["planted"]["near_duplicates"]:
        assert manifest["planes"][entry["copy"]] == manifest["planes"][entry["original"]]


def test_planted_copies_are_a_share_of_the_training_images():
    params = {"per_class": 200, "class_names": list(CLASS_NAMES)}
    share = phantom_dataset.NEAR_DUPLICATE_SHARE
    assert phantom_dataset._planted_count(params, share, 2) == round(800 * share)
    small = {"per_class": 3, "class_names": ["glioma"]}
    assert phantom_dataset._planted_count(small, share, 2) == 2


def test_naive_split_leaks_on_phantoms_and_audit_groups_adjacent_slices(
    phantom_manifest, phantom_audit
):
    from course_utils.data import splits

    groups = {
        path: number for number, group in enumerate(phantom_audit.near_groups) for path in group
    }
    for entry in phantom_manifest["planted"]["adjacent_slices"]:
        assert entry["copy"] in groups, f"the audit missed {entry['copy']}"
        assert groups[entry["copy"]] == groups.get(entry["original"])
    leak = splits.random_split_leakage(phantom_audit.table, test_fraction=0.2, seed=0)
    assert leak["leaked"] > 0 and 0.03 < leak["share"] < 0.6


def test_planted_corrupt_files_are_unreadable(small_dataset, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    root, manifest = small_dataset
    corrupt = manifest["planted"]["corrupt"]
    assert sorted(entry["kind"] for entry in corrupt) == ["empty", "text", "truncated"]
    for entry in corrupt:
        path = root / entry["path"]
        assert entry["path"].startswith(f"{TRAIN_SPLIT}/") and path.suffix == ".jpg"
        assert not is_readable_image(path), entry
        if entry["kind"] == "empty":
            assert path.stat().st_size == 0
        if entry["kind"] == "truncated":
            source = (root / entry["source"]).read_bytes()
            assert source.startswith(path.read_bytes())
            assert 0.3 < path.stat().st_size / len(source) < 0.5
            assert is_readable_image(root / entry["source"])


def test_dataset_is_byte_identical_for_the_same_seed(small_dataset, tmp_path):
    root, _ = small_dataset
    again = tmp_path / "again"
    phantom_dataset.synthesize_dataset(again, progress=False, **SMALL)
    assert file_digests(again) == file_digests(root)
    other = tmp_path / "other"
    phantom_dataset.synthesize_dataset(other, progress=False, **{**SMALL, "seed": 6})
    digests, other_digests = file_digests(root), file_digests(other)
    rendered = [name for name in digests if name.endswith("_0000.jpg")]
    assert rendered and all(digests[name] != other_digests[name] for name in rendered)


def test_images_do_not_depend_on_other_classes_or_counts(small_dataset, tmp_path):
    root, _ = small_dataset
    subset = tmp_path / "subset"
    phantom_dataset.synthesize_dataset(
        subset,
        per_class=2,
        test_per_class=1,
        image_size=64,
        seed=5,
        class_names=("pituitary",),
        plant_issues=False,
        progress=False,
    )
    for relative in ("Training/pituitary/ph_pi_tr_0001.jpg", "Testing/pituitary/ph_pi_te_0000.jpg"):
        assert (subset / relative).read_bytes() == (root / relative).read_bytes()
    assert not (subset / TRAIN_SPLIT / "glioma").exists()


def test_plant_issues_false_plants_nothing(tmp_path):
    root = tmp_path / "clean"
    manifest = phantom_dataset.synthesize_dataset(root, plant_issues=False, progress=False, **SMALL)
    planted = manifest["planted"]
    assert set(planted) == {
        "exact_duplicates",
        "near_duplicates",
        "adjacent_slices",
        "leaks",
        "label_conflict",
        "corrupt",
    }
    assert not any(planted.values())
    for split, count in ((TRAIN_SPLIT, 3), (TEST_SPLIT, 2)):
        assert manifest["counts"][split] == {name: count for name in CLASS_NAMES}
    names = [path.name for path in root.rglob("*.jpg")]
    assert len(names) == 4 * 5 and all(name.count("_") == 3 for name in names)
    assert all(is_readable_image(path) for path in root.rglob("*.jpg"))


def test_default_test_count_is_a_quarter_with_a_floor(tmp_path):
    manifest = phantom_dataset.synthesize_dataset(
        tmp_path / "d",
        per_class=2,
        image_size=64,
        class_names=("notumor",),
        plant_issues=False,
        progress=False,
    )
    assert manifest["params"]["test_per_class"] == 4
    assert manifest["counts"][TEST_SPLIT] == {"notumor": 4}
    assert phantom_dataset._dataset_params(per_class=60)["test_per_class"] == 15


def test_synthesize_replaces_an_older_phantom_dataset_only(tmp_path):
    root = tmp_path / "data"
    phantom_dataset.synthesize_dataset(root, progress=False, **{**SMALL, "per_class": 2})
    manifest = phantom_dataset.synthesize_dataset(root, plant_issues=False, progress=False, **SMALL)
    assert manifest["params"]["per_class"] == 3
    assert not list(root.rglob("*_dup.jpg"))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        phantom_dataset.synthesize_dataset(foreign, progress=False, **SMALL)
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "bad",
    [
        {"per_class": 0},
        {"per_class": 2.5},
        {"test_per_class": 0},
        {"image_size": 32},
        {"seed": -1},
        {"class_names": ("glioma", "tumour")},
        {"class_names": ()},
        {"class_names": "glioma"},
        {"class_names": ("glioma", "glioma")},
    ],
)
def test_synthesize_rejects_bad_parameters(tmp_path, bad):
    with pytest.raises(ValueError):
        phantom_dataset.synthesize_dataset(tmp_path / "bad", progress=False, **{**SMALL, **bad})
    assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------- ensure_phantom_dataset


def test_ensure_reuses_then_regenerates(tmp_path):
    root = tmp_path / "cached"
    assert phantom_dataset.ensure_phantom_dataset(root, progress=False, **SMALL) == root
    manifest_path = root / phantom_dataset.MANIFEST_NAME
    first_mtime = manifest_path.stat().st_mtime_ns
    image = root / TRAIN_SPLIT / "glioma" / "ph_gl_tr_0000.jpg"
    image_mtime = image.stat().st_mtime_ns
    assert phantom_dataset.ensure_phantom_dataset(root, progress=False, **SMALL) == root
    assert manifest_path.stat().st_mtime_ns == first_mtime
    assert image.stat().st_mtime_ns == image_mtime
    phantom_dataset.ensure_phantom_dataset(root, progress=False, **{**SMALL, "seed": 9})
    assert json.loads(manifest_path.read_text())["params"]["seed"] == 9


def test_ensure_defaults_to_a_hashed_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BTMRI_CACHE_DIR", str(tmp_path / "cache"))
    folder = phantom_dataset.ensure_phantom_dataset(progress=False, **SMALL)
    assert folder.parent == tmp_path / "cache" / "phantoms"
    other = phantom_dataset.ensure_phantom_dataset(progress=False, **{**SMALL, "seed": 8})
    assert other.parent == folder.parent and other != folder
    assert phantom_dataset.ensure_phantom_dataset(progress=False, **SMALL) == folder


def test_ensure_rejects_bad_parameters(tmp_path):
    with pytest.raises(ValueError):
        phantom_dataset.ensure_phantom_dataset(tmp_path / "x", per_class=-3)
    with pytest.raises(TypeError):
        phantom_dataset.ensure_phantom_dataset(tmp_path / "x", colour="red")


def test_mask_path_for(tmp_path):
    phantom_dataset.synthesize_dataset(
        tmp_path,
        per_class=2,
        test_per_class=1,
        image_size=64,
        seed=0,
        plant_issues=False,
        progress=False,
    )
    image = sorted((tmp_path / "Training" / "glioma").glob("*.jpg"))[0]
    mask = phantom_dataset.mask_path_for(tmp_path, image.relative_to(tmp_path).as_posix())
    assert mask.is_file() and mask.suffix == ".png"
    with pytest.raises(ValueError, match="Training/glioma/x.jpg"):
        phantom_dataset.mask_path_for(tmp_path, "x.jpg")


# ------------------------------------------------------------------ planted_vs_found


def test_planted_counts_count_exact_leaks_and_conflicts_as_copies(phantom_manifest):
    counts = phantom_dataset.planted_counts(phantom_manifest["planted"])
    assert counts == {
        "corrupt files": 3,
        "byte-identical copies": 2 + 1 + 2,  # duplicates, label conflict, exact leaks
        "test images leaking": 3,
        "label conflicts": 1,
    }


def test_audit_finds_what_was_planted(phantom_root, phantom_audit):
    table = phantom_dataset.planted_vs_found(phantom_root, phantom_audit)
    assert list(table.columns) == ["planted", "found", "match"]
    assert table.loc["corrupt files", "found"] == len(phantom_audit.unreadable) == 3
    assert table["match"].all(), table


def test_planted_vs_found_flags_a_miss_and_needs_a_manifest(phantom_root, phantom_audit, tmp_path):
    class MissedOneLeak:
        unreadable = phantom_audit.unreadable
        exact_copies = phantom_audit.exact_copies
        leaks = phantom_audit.leaks[1:]
        label_conflicts = phantom_audit.label_conflicts

    table = phantom_dataset.planted_vs_found(phantom_root, MissedOneLeak())
    assert table["match"].to_dict() == {
        "corrupt files": True,
        "byte-identical copies": True,
        "test images leaking": False,
        "label conflicts": True,
    }
    with pytest.raises(FileNotFoundError, match="phantom_manifest.json"):
        phantom_dataset.planted_vs_found(tmp_path, phantom_audit)
