"""The audit finds what was planted, and exactly the known duplicates of the real data."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from course_utils import config
from course_utils.data import audit


def test_audit_finds_planted_corrupt_files(phantom_audit, phantom_manifest) -> None:
    planted = {entry["path"] for entry in phantom_manifest["planted"]["corrupt"]}
    assert planted, "the phantom generator should plant corrupt files"
    assert set(phantom_audit.unreadable["path"]) == planted


def test_audit_finds_planted_exact_duplicates(phantom_audit, phantom_manifest) -> None:
    planted = phantom_manifest["planted"]
    pairs = planted["exact_duplicates"] + planted["label_conflict"]
    pairs += [
        {"copy": leak["test"], "original": leak["train"]}
        for leak in planted["leaks"]
        if leak["kind"] == "exact"
    ]
    groups = [set(group) for group in phantom_audit.exact_groups]
    for pair in pairs:
        assert any({pair["copy"], pair["original"]} <= group for group in groups), pair
    assert phantom_audit.exact_copies == len(pairs)


def test_audit_finds_planted_near_duplicates(phantom_audit, phantom_manifest) -> None:
    planted = phantom_manifest["planted"]["near_duplicates"]
    assert planted
    groups = [set(group) for group in phantom_audit.near_groups]
    matched = {frozenset(p): r for *p, r in phantom_audit.near_pairs.itertuples(index=False)}
    for pair in planted:
        assert any({pair["copy"], pair["original"]} <= group for group in groups), pair
        similarity = matched[frozenset((pair["copy"], pair["original"]))]
        assert phantom_audit.near_threshold <= similarity < 1.0


def test_audit_finds_planted_leaks_and_leak_free_subset(phantom_audit, phantom_manifest) -> None:
    planted = {leak["test"]: leak for leak in phantom_manifest["planted"]["leaks"]}
    found = {leak["test"]: leak for leak in phantom_audit.leaks}
    assert set(found) == set(planted)
    for test_path, leak in planted.items():
        assert found[test_path]["kind"] == leak["kind"]
        assert leak["train"] in found[test_path]["train"]
    readable_test = phantom_audit.readable[phantom_audit.readable["split"] == config.TEST_SPLIT]
    assert len(phantom_audit.leak_free_test) == len(readable_test) - len(planted)
    assert not set(phantom_audit.leak_free_test) & set(planted)


def test_audit_finds_planted_label_conflict(phantom_audit, phantom_manifest) -> None:
    conflict = phantom_manifest["planted"]["label_conflict"]
    assert len(phantom_audit.label_conflicts) == len(conflict)
    paths = set(phantom_audit.label_conflicts[0]["paths"])
    assert {conflict[0]["copy"], conflict[0]["original"]} <= paths
    assert len(phantom_audit.label_conflicts[0]["labels"]) == 2


def test_clean_phantoms_have_no_findings(tmp_path: Path) -> None:
    from course_utils.data.phantom_dataset import synthesize_dataset

    synthesize_dataset(
        tmp_path,
        per_class=10,
        test_per_class=4,
        image_size=80,
        seed=3,
        plant_issues=False,
        progress=False,
    )
    report = audit.audit_dataset(tmp_path, progress=False)
    summary = report.summary()
    assert summary["unreadable"] == summary["exact_duplicate_copies"] == 0
    assert summary["test_files_leaked"] == summary["label_conflict_groups"] == 0
    assert summary["near_duplicate_groups"] == 0, report.near_groups


def test_report_json_round_trip(phantom_audit, tmp_path: Path) -> None:
    path = phantom_audit.save(tmp_path / "sub" / "audit.json")
    data = json.loads(path.read_text())
    assert data["summary"]["files"] == len(phantom_audit.table)
    assert data["counts"][config.TRAIN_SPLIT]["glioma"] > 0
    for key in (
        "unreadable",
        "exact_duplicate_groups",
        "near_duplicate_groups",
        "cross_split_leaks",
        "label_conflicts",
        "leak_free_test",
    ):
        assert key in data


def test_similar_pairs_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 16)).astype(np.float32)
    vectors[10] = vectors[3] + 0.01
    vectors[40] = vectors[3] * 1.0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pairs = audit.similar_pairs(vectors, 0.99, chunk_size=7)
    assert sorted(zip(pairs["first"], pairs["second"], strict=True)) == [(3, 10), (3, 40), (10, 40)]
    with pytest.raises(ValueError, match="near_threshold"):
        audit.similar_pairs(vectors, 1.5)


def test_leak_through_a_chain_counts(tmp_path: Path) -> None:
    """A test file near a test copy of a training file leaks, even if not directly matched."""
    yy, xx = np.mgrid[0:128, 0:128]
    base = 128 + 100 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    for split, name, pixels in [
        ("Training", "a.png", base),
        ("Testing", "b.png", base),
        ("Testing", "c.png", base * 0.98 + 2),
    ]:
        folder = tmp_path / split / "glioma"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / name)
    report = audit.audit_dataset(tmp_path, progress=False)
    assert {leak["test"] for leak in report.leaks} == {
        "Testing/glioma/b.png",
        "Testing/glioma/c.png",
    }
    assert report.leak_free_test == []


def test_example_pairs(phantom_audit) -> None:
    for kind in ("exact", "near", "leak", "conflict"):
        pairs = audit.example_pairs(phantom_audit, kind, count=2)
        assert 1 <= len(pairs) <= 2
        assert all(first != second for first, second, _ in pairs)
    with pytest.raises(ValueError, match="Unknown kind"):
        audit.example_pairs(phantom_audit, "bogus")


def test_rescaled_reencoded_copy_is_a_near_duplicate(phantom_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(phantom_root / "Training", root / "Training")
    original = sorted((root / "Training" / "glioma").glob("*.jpg"))[0]
    buffer = io.BytesIO()
    Image.open(original).resize((150, 150)).save(buffer, "JPEG", quality=55)
    (root / "Training" / "glioma" / "rescaled.jpg").write_bytes(buffer.getvalue())
    report = audit.audit_dataset(root, progress=False)
    relative = original.relative_to(root).as_posix()
    assert any({relative, "Training/glioma/rescaled.jpg"} <= set(g) for g in report.near_groups)


@pytest.mark.realdata
def test_real_data_exact_duplicates(real_data_dir: Path) -> None:
    report = audit.audit_dataset(real_data_dir, progress=False)
    print(f"audit of {len(report.table)} real files took {report.seconds:.1f} s")
    assert len(report.table) == 5708
    assert report.summary()["unreadable"] == 0
    assert report.exact_copies == 207
    counts = report.counts()[config.TRAIN_SPLIT]
    assert counts.to_dict() == {
        "glioma": 1321,
        "meningioma": 1339,
        "notumor": 1591,
        "pituitary": 1457,
    }
    assert isinstance(report.table, pd.DataFrame)
