"""Splits: stratified, seeded, disjoint by duplicate group, saved and loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from course_utils import config, course
from course_utils.data import splits


def _table(labels_per_group: list[str], copies: int = 1, split: str = config.TRAIN_SPLIT):
    rows = []
    for group, label in enumerate(labels_per_group):
        for copy in range(copies):
            rows.append(
                {
                    "path": f"{split}/{label}/{group}_{copy}.jpg",
                    "split": split,
                    "label": label,
                    "readable": True,
                    "sha256": f"h{group}_{copy}",
                    "group": group,
                }
            )
    return pd.DataFrame(rows)


def test_carve_split_is_stratified_grouped_and_seeded() -> None:
    table = _table(["glioma"] * 40 + ["notumor"] * 80, copies=2)
    rest, carved = splits.carve_split(table, 0.25, seed=1)
    assert not set(rest["group"]) & set(carved["group"])
    assert len(rest) + len(carved) == len(table)
    share = carved["label"].value_counts(normalize=True)
    assert share["notumor"] == pytest.approx(2 / 3, abs=0.05)
    again, _ = splits.carve_split(table, 0.25, seed=1)
    other, _ = splits.carve_split(table, 0.25, seed=2)
    assert rest.index.equals(again.index)
    assert not rest.index.equals(other.index)


def test_carve_split_errors() -> None:
    table = _table(["glioma"] * 3 + ["notumor"] * 30)
    with pytest.raises(ValueError, match="only 3 distinct images"):
        splits.carve_split(table, 0.2, seed=0)
    with pytest.raises(ValueError, match="fraction"):
        splits.carve_split(table, 0.8, seed=0)


def test_make_splits_on_phantoms(phantom_audit, phantom_manifest) -> None:
    result = splits.make_splits(phantom_audit.table, val_fraction=0.25, seed=0)
    assert set(result) == set(splits.SPLIT_FILES)
    groups = {name: set(part["group"]) for name, part in result.items()}
    assert not groups["train"] & groups["val"]
    assert not (groups["train"] | groups["val"]) & groups["test_leakfree"]
    assert groups["test_leakfree"] <= groups["test"]
    every_path = pd.concat(result.values())["path"]
    planted = phantom_manifest["planted"]
    for entry in planted["corrupt"]:
        assert entry["path"] not in set(every_path)
    for entry in planted["label_conflict"]:
        assert entry["copy"] not in set(every_path) and entry["original"] not in set(every_path)
    for entry in planted["exact_duplicates"]:
        in_train = {entry["copy"], entry["original"]} & set(result["train"]["path"])
        assert len(in_train) <= 1, "byte-identical copies are dropped"
    leaked = {leak["test"] for leak in planted["leaks"]}
    assert leaked <= set(result["test"]["path"])
    assert not leaked & set(result["test_leakfree"]["path"])


def test_make_splits_carves_test_when_no_testing_folder() -> None:
    table = _table(["glioma"] * 30 + ["meningioma"] * 30)
    result = splits.make_splits(table, val_fraction=0.2, test_fraction=0.2, seed=0)
    assert len(result["test"]) > 0
    assert result["test"]["path"].tolist() == result["test_leakfree"]["path"].tolist()
    total = sum(len(result[name]) for name in ("train", "val", "test"))
    assert total == len(table)


def test_make_splits_needs_audit_columns() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        splits.make_splits(pd.DataFrame({"path": ["a"], "label": ["glioma"]}))


def test_save_and_load_round_trip(phantom_audit, tmp_path: Path) -> None:
    result = splits.make_splits(phantom_audit.table, val_fraction=0.25, seed=0)
    splits.save_splits(
        result,
        tmp_path / "splits",
        {
            "root": str(phantom_audit.root),
            "source": "phantoms",
            "class_names": list(config.CLASS_NAMES),
        },
    )
    loaded, dataset = splits.load_splits(tmp_path / "splits")
    assert dataset["source"] == "phantoms"
    assert dataset["counts"]["train"] == len(result["train"])
    for name in splits.SPLIT_FILES:
        assert loaded[name]["path"].tolist() == result[name]["path"].tolist()
        assert all(Path(p).is_file() for p in loaded[name]["abs_path"])
    counts = splits.split_counts(loaded)
    assert counts.loc["total", "train"] == len(result["train"])


def test_load_splits_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="notebook 01"):
        splits.load_splits(tmp_path)
    with pytest.raises(ValueError, match="dataset"):
        splits.save_splits({}, tmp_path, {"root": "x"})


def test_encode_labels() -> None:
    encoded = splits.encode_labels(["notumor", "glioma"], config.CLASS_NAMES)
    assert encoded.tolist() == [2, 0] and encoded.dtype == np.int32
    with pytest.raises(ValueError, match="tumour"):
        splits.encode_labels(["tumour"], config.CLASS_NAMES)


@pytest.mark.realdata
def test_real_data_splits_share_no_duplicates(real_data_dir: Path) -> None:
    from course_utils.data.audit import audit_dataset

    report = audit_dataset(real_data_dir, progress=False)
    result = splits.make_splits(report.table, seed=42)
    groups = {name: set(part["group"]) for name, part in result.items()}
    assert not groups["train"] & groups["val"]
    assert not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]
    assert sum(len(result[n]) for n in ("train", "val", "test")) == 5708 - 207


def test_ensure_splits_reuses_or_makes(
    phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    target = tmp_path / "splits"
    assert splits.ensure_splits(target, phantom_root, "kaggle", seed=3) == target
    assert "auditing and splitting" in capsys.readouterr().out
    loaded, dataset = splits.load_splits(target)
    assert dataset["source"] == "local" and dataset["seed"] == 3
    before = (target / "train.csv").stat().st_mtime_ns
    splits.ensure_splits(target, tmp_path / "ignored-when-splits-exist")
    assert (target / "train.csv").stat().st_mtime_ns == before
    assert "Using the splits of notebook 01" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        splits.ensure_splits(tmp_path / "other", tmp_path / "missing")


def test_random_split_leakage_counts_test_files_whose_group_is_in_train() -> None:
    # 40 groups of 2 copies: a naive 50/50 split sends some pairs to both sides.
    table = _table(["glioma", "notumor"] * 20, copies=2)
    table["sha256"] = [f"h{group}" for group in table["group"]]  # the copies are identical
    result = splits.random_split_leakage(table, test_fraction=0.5, seed=3)
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(table, test_size=0.5, stratify=table["label"], random_state=3)
    expected = int(test["group"].isin(set(train["group"])).sum())
    assert result["test_images"] == 40
    assert result["leaked"] == result["exact_leaked"] == expected > 0
    assert result["share"] == pytest.approx(expected / 40)
    assert splits.random_split_leakage(table, 0.5, seed=3) == result  # seeded


def test_random_split_leakage_without_duplicates_and_errors() -> None:
    table = _table(["glioma", "meningioma", "notumor", "pituitary"] * 10)
    result = splits.random_split_leakage(table, test_fraction=0.25, seed=0)
    assert result == {"test_images": 10, "leaked": 0, "exact_leaked": 0, "share": 0.0, "seed": 0}
    with pytest.raises(ValueError, match="test_fraction"):
        splits.random_split_leakage(table, test_fraction=1.0)
    with pytest.raises(ValueError, match="missing"):
        splits.random_split_leakage(table.drop(columns="group"))


def test_random_split_leakage_on_real_data(real_data_dir: Path) -> None:
    """The figure quoted in notebook 01 and the question bank: 203 of 857 at seed 42."""
    from course_utils.data.audit import audit_dataset

    report = audit_dataset(real_data_dir, progress=False)
    result = splits.random_split_leakage(report.table, test_fraction=0.15, seed=42)
    assert (result["test_images"], result["leaked"], result["exact_leaked"]) == (857, 203, 55)


def test_load_or_make_splits_reuses_only_the_same_root_and_seed(
    phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = {"root": str(phantom_root), "source": "local", "description": "test"}
    target = tmp_path / "splits"
    loaded, dataset = splits.load_or_make_splits(target, source, seed=3)
    assert course.dataset_path(target).is_file() and dataset["seed"] == 3
    assert set(loaded) == set(splits.SPLIT_FILES)
    before = (target / "train.csv").stat().st_mtime_ns
    capsys.readouterr()
    splits.load_or_make_splits(target, source, seed=3)
    assert "Using the splits" in capsys.readouterr().out
    assert (target / "train.csv").stat().st_mtime_ns == before
    _, any_saved = splits.load_or_make_splits(target)  # None matches any saved splits
    assert any_saved["seed"] == 3
    _, reseeded = splits.load_or_make_splits(target, source, seed=4)
    assert reseeded["seed"] == 4 and "Auditing and splitting" in capsys.readouterr().out
    copy = tmp_path / "copy"
    shutil.copytree(phantom_root, copy)
    _, other_root = splits.load_or_make_splits(target, {**source, "root": str(copy)}, seed=4)
    assert other_root["root"] == str(copy.resolve())  # another root: split again


def test_load_or_make_splits_without_splits_or_source_says_how_to_make_them(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError, match="data split"):
        splits.load_or_make_splits(tmp_path / "none")


def test_load_or_make_splits_rereads_the_files_from_another_root(
    phantom_root: Path, tmp_path: Path
) -> None:
    source = {"root": str(phantom_root), "source": "local", "description": "test"}
    target = tmp_path / "splits"
    splits.load_or_make_splits(target, source, seed=3)
    copy = tmp_path / "moved"
    shutil.copytree(phantom_root, copy)
    loaded, dataset = splits.load_or_make_splits(target, data_root=copy)
    assert dataset["root"] == str(phantom_root.resolve())
    for table in loaded.values():
        assert all(path.startswith(str(copy.resolve())) for path in table["abs_path"])
    with pytest.raises(FileNotFoundError, match="missing under"):
        splits.load_or_make_splits(target, data_root=tmp_path / "empty")
