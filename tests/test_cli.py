"""The command line calls the same functions as the notebooks, with clear failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import cli


def test_synth_then_audit(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "phantoms"
    assert (
        cli.main(
            ["data", "synth", str(data), "--per-class", "6", "--image-size", "64", "--seed", "3"]
        )
        == 0
    )
    assert (data / "phantom_manifest.json").is_file()
    report_path = tmp_path / "audit.json"
    assert cli.main(["data", "audit", str(data), "--out", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    manifest = json.loads((data / "phantom_manifest.json").read_text())
    assert report["summary"]["unreadable"] == len(manifest["planted"]["corrupt"])
    for key in (
        "counts",
        "unreadable",
        "exact_duplicate_groups",
        "near_duplicate_groups",
        "cross_split_leaks",
        "label_conflicts",
        "leak_free_test",
    ):
        assert key in report
    assert '"exact_duplicate_copies"' in capsys.readouterr().out


def test_split_command(phantom_root: Path, tmp_path: Path) -> None:
    from course_utils.data.splits import load_splits

    assert (
        cli.main(
            [
                "data",
                "split",
                str(phantom_root),
                "--out",
                str(tmp_path / "s"),
                "--val-fraction",
                "0.25",
            ]
        )
        == 0
    )
    loaded, dataset = load_splits(tmp_path / "s")
    assert len(loaded["train"]) > 0 and dataset["root"] == str(phantom_root.resolve())


@pytest.mark.parametrize("make_bad", ["missing", "no_training", "a_file"])
def test_audit_bad_data_dir_exits_nonzero_with_one_line(tmp_path: Path, make_bad: str) -> None:
    target = tmp_path / "data"
    if make_bad == "no_training":
        target.mkdir()
    elif make_bad == "a_file":
        target.write_text("not a folder")
    result = subprocess.run(
        [sys.executable, "-m", "course_utils", "data", "audit", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(target) in lines[0]


def test_write_summary_collects_snippets(tmp_path: Path) -> None:
    from course_utils import artifacts

    artifacts.write_summary(tmp_path / "artifacts", "01_data", ["## 01 · Data", "- 3 files"])
    results = [
        {"notebook": "01_data", "ok": True, "error": "", "seconds": 4.2},
        {"notebook": "02_transfer", "ok": False, "error": "ValueError: boom", "seconds": 1},
    ]
    text = cli.write_summary(tmp_path, results).read_text()
    assert "| 01_data | ok | 4.2 |" in text
    assert "FAILED: ValueError: boom" in text
    assert "- 3 files" in text and "Total: 5.2 s" in text
    with pytest.raises(ValueError, match="empty"):
        artifacts.write_summary(tmp_path, "x", [])


def test_train_command_fast(phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    from course_utils.train import load_model_with_card

    out = tmp_path / "artifacts"
    argv = [
        "train",
        "cnn",
        "--data",
        str(phantom_root),
        "--out",
        str(out),
        "--fast",
        "--epochs",
        "1",
        "--image-size",
        "64",
        "--seed",
        "5",
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    for split in ("val", "test", "test_leakfree"):
        assert f"{split}: accuracy" in printed
    model, card = load_model_with_card(out / "cnn.keras")
    assert card["image_size"] == 64 and card["seed"] == 5
    assert card["dataset"]["root"] == str(phantom_root.resolve())
    assert model.output_shape == (None, 4)
    assert cli.main(argv) == 0, "a second run reuses the saved splits"
    assert "Using the splits in" in capsys.readouterr().out


def test_train_command_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["train", "cnn", "--data", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
