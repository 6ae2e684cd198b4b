"""The command line calls the same functions as the notebooks, with clear failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from course_utils import cli, demo
from course_utils.data import phantom_dataset


def test_synth_then_audit(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "phantoms"
    assert (
        cli.main(
            ["data", "synth", str(data), "--per-class", "6", "--image-size", "64", "--seed", "3"]
        )
        == 0
    )
    assert (data / phantom_dataset.MANIFEST_NAME).is_file()
    report_path = tmp_path / "audit.json"
    assert cli.main(["data", "audit", str(data), "--out", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    manifest = json.loads((data / phantom_dataset.MANIFEST_NAME).read_text())
    assert report["summary"]["unreadable"] == len(manifest["planted"]["corrupt"])
    from course_utils.data.audit import audit_dataset

    assert set(report) == set(audit_dataset(data, progress=False).to_dict())
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
    from course_utils import course

    course.write_summary(tmp_path / "artifacts", "01_data", ["## 01 · Data", "- 3 files"])
    results = [
        {"notebook": "01_data", "ok": True, "error": "", "seconds": 4.2},
        {"notebook": "02_transfer", "ok": False, "error": "ValueError: boom", "seconds": 1},
    ]
    text = demo.write_summary(tmp_path, results).read_text()
    assert "| 01_data | ok | 4.2 |" in text
    assert "FAILED: ValueError: boom" in text
    assert "- 3 files" in text and "Total: 5.2 s" in text
    with pytest.raises(ValueError, match="empty"):
        course.write_summary(tmp_path, "x", [])


def test_train_command_fast(phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    from course_utils.predict import load_model_with_card

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
        "--patience",
        "3",
        "--augmentation",
        "none",
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "patience=3" in printed and "augmentation='none'" in printed
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


#: Brightness of each class's images in the evaluate tests; the toy model reads it.
LEVELS = {"glioma": 30, "meningioma": 90, "notumor": 150, "pituitary": 210}


def _grey_images(folder: Path, label: str, count: int) -> list[Path]:
    """Write ``count`` flat grey PNGs whose brightness says the class."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{label}_{index}.png" for index in range(count)]
    for index, path in enumerate(paths):
        Image.new("L", (40, 40), LEVELS[label] + index).save(path)
    return paths


@pytest.fixture(scope="module")
def toy_model_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A saved model + card + splits: the model picks the class whose brightness is nearest."""
    import keras
    import numpy as np
    import pandas as pd

    from course_utils import cards
    from course_utils.config import CLASS_NAMES
    from course_utils.data.splits import save_splits

    base = tmp_path_factory.mktemp("toy")
    root, out = base / "data", base / "artifacts"
    rows = []
    for label in CLASS_NAMES:
        for index, path in enumerate(_grey_images(root / "Training" / label, label, 6)):
            split = ("train", "train", "val", "test", "test", "test")[index]
            relative = path.relative_to(root).as_posix()
            rows.append({"path": relative, "label": label, "group": relative, "split": split})
    table = pd.DataFrame(rows).assign(source_split="Training")
    parts = {name: table[table["split"] == name].drop(columns="split") for name in SPLITS[:3]}
    parts["test_leakfree"] = parts["test"].iloc[3:]  # as if the 3 glioma tests had copies
    save_splits(parts, out / "splits", {"root": str(root), "source": "local"})

    levels = np.array([LEVELS[name] for name in CLASS_NAMES], dtype=np.float32)
    inputs = keras.Input((32, 32, 3))
    dense = keras.layers.Dense(4, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    dense.set_weights([np.tile(2 * levels / 3, (3, 1)) / 50, -(levels**2) / 50])
    model.save(out / "toy.keras")
    card = {key: None for key in cards.REQUIRED_CARD_KEYS}
    card.update(
        name="toy",
        class_names=list(CLASS_NAMES),
        image_size=32,
        dataset=cards.dataset_facts(parts["train"]),
        seed=1,
        dataset_preprocessing="none",
    )
    (out / "toy.json").write_text(json.dumps(card))
    return out, root


SPLITS = ("train", "val", "test", "test_leakfree")


def test_evaluate_command_on_the_splits(
    toy_model_dir: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    out, root = toy_model_dir
    target = out / "scores.json"
    argv = ["evaluate", "--model", str(out / "toy.keras"), "--data", str(root)]
    assert cli.main([*argv, "--out", str(target), "--bootstrap", "20"]) == 0
    printed = capsys.readouterr().out
    assert "full test" in printed and "leak-free test" in printed and "100.0%" in printed
    assert "too few to say whether the leak changes accuracy" in printed
    metrics = json.loads(target.read_text())
    assert set(metrics["splits"]) == {"test", "test_leakfree"}
    assert metrics["splits"]["test"]["images"] == 12
    assert metrics["leakage"]["leaked_images"] == 3
    assert metrics["temperature"]["fitted_on"] == "val"
    assert metrics["splits_match_training"] is True
    assert cli.main([*argv, "--split", "leakfree", "--bootstrap", "20"]) == 0
    default = json.loads((out / "metrics_toy.json").read_text())
    assert list(default["splits"]) == ["test_leakfree"]


def test_evaluate_command_on_a_test_folder(
    toy_model_dir: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, _ = toy_model_dir
    folder = tmp_path / "new" / "Testing"
    names = {"pituitary": "pituitary", "No_Tumor": "notumor", "glioma_tumor": "glioma"}
    for name, label in {**names, "meningioma": "meningioma"}.items():
        _grey_images(folder / name, label, 2)
    (folder / "glioma_tumor" / "bad.jpg").write_bytes(b"not a jpeg")
    target = tmp_path / "folder.json"
    argv = ["evaluate", "--model", str(out / "toy.keras"), "--test-dir", str(folder.parent)]
    assert cli.main([*argv, "--out", str(target), "--bootstrap", "20"]) == 0
    printed = capsys.readouterr().out
    assert "note: skipped unreadable file glioma_tumor/bad.jpg" in printed
    assert "test folder" in printed and "100.0%" in printed
    metrics = json.loads(target.read_text())
    assert metrics["splits"]["folder"]["images"] == 8 and len(metrics["skipped_files"]) == 1

    (folder / "astrocytoma").mkdir()
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "extra ['astrocytoma']" in error
    assert "['glioma', 'meningioma', 'notumor', 'pituitary']" in error


def test_evaluate_command_needs_splits_or_data(
    toy_model_dir: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, _ = toy_model_dir
    for name in ("toy.keras", "toy.json"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    assert cli.main(["evaluate", "--model", str(tmp_path / "toy.keras")]) == 2
    assert "No splits in" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model", str(tmp_path / "none.keras")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------ predict


@pytest.fixture(scope="module")
def cnn_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained small CNN with a complete model card."""
    from tiny_cnn import save_tiny_cnn

    return save_tiny_cnn(tmp_path_factory.mktemp("predict"))


@pytest.fixture
def scans(tmp_path: Path) -> list[Path]:
    """A good scan, a text file posing as a PNG, and a second good scan."""
    good, bad, other = tmp_path / "a.png", tmp_path / "notes.png", tmp_path / "b.jpg"
    Image.new("L", (80, 80), 90).save(good)
    bad.write_text("not an image")
    Image.new("RGB", (100, 70), (30, 60, 90)).save(other)
    return [good, bad, other]


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("method", ["gradcam", "scorecam"])
def test_predict_json_bad_image_does_not_stop_the_others(
    cnn_path: Path, scans: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture, method: str
) -> None:
    overlays = tmp_path / "overlays"
    argv = ["predict", "--model", str(cnn_path), *map(str, scans), "--json"]
    status = cli.main([*argv, "--saliency", method, "--overlay-out", str(overlays)])
    entries = _json_lines(capsys.readouterr().out)
    assert status == 0 and [e["ok"] for e in entries] == [True, False, True]
    good = entries[0]
    assert set(good["probabilities"]) == {"glioma", "meningioma", "notumor", "pituitary"}
    assert good["predicted_class"] in good["probabilities"] and good["method"] == method
    assert "side" in good["statistics"] and good["explanation_source"] == "offline"
    assert "Educational use only" in good["explanation"]
    assert Path(good["overlay"]).is_file() and Path(good["overlay"]).parent == overlays
    assert "not an image" in entries[1]["error"] and entries[1]["image"] == str(scans[1])


def test_predict_all_bad_exits_1(cnn_path: Path, scans: list[Path], capsys) -> None:
    assert cli.main(["predict", "--model", str(cnn_path), str(scans[1]), "--json"]) == 1
    assert not _json_lines(capsys.readouterr().out)[0]["ok"]


def test_predict_text_output(cnn_path: Path, scans: list[Path], capsys) -> None:
    assert cli.main(["predict", "--model", str(cnn_path), str(scans[0]), str(scans[1])]) == 0
    out = capsys.readouterr().out
    assert "a.png:" in out and "notes.png: error: " in out and "Educational use only" in out


def test_predict_missing_model_is_a_usage_error(tmp_path: Path, scans: list[Path], capsys):
    assert cli.main(["predict", "--model", str(tmp_path / "x.keras"), str(scans[0])]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_predict_with_gemini_uses_the_sdk_environment(
    cnn_path: Path, scans: list[Path], capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gemini_stub import GeminiStub, answer_body, error_body, reply

    answer = {
        "highlighted_region": "A bright region.",
        "matches_typical_location": False,
        "typical_location": "Varies.",
        "caveats": ["Untrained model."],
    }
    script = [
        reply(200, answer_body(json.dumps(answer))),
        reply(400, error_body(400, "API key not valid.", "INVALID_ARGUMENT", "API_KEY_INVALID")),
    ]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with GeminiStub(script) as stub:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", stub.url)
        monkeypatch.setenv("GEMINI_API_KEY", "cli-key")
        argv = ["predict", "--model", str(cnn_path), str(scans[0]), str(scans[2])]
        status = cli.main([*argv, "--explain", "gemini", "--gemini-model", "gemini-test", "--json"])
        requests = list(stub.requests)
    first, second = _json_lines(capsys.readouterr().out)
    assert status == 0 and first["ok"] and second["ok"]
    assert first["explanation_source"] == "gemini" and "A bright region." in first["explanation"]
    assert "key" in second["explanation_error"].lower() and second["explanation"]
    assert requests[0].model == "gemini-test"
    assert requests[0].headers["x-goog-api-key"] == "cli-key"
    assert len(requests[0].image_bytes()) == 2


def test_log_noise_finds_tensorflow_lines(tmp_path: Path) -> None:
    notebook = {
        "cells": [
            {
                "outputs": [
                    {"output_type": "stream", "text": ["I0000 00:00:1796 port.cc:153] oneDNN\n"]},
                    {"output_type": "stream", "text": "Epoch 1/3\nE0000 00:00:17 cuda.cc] x\n"},
                    {
                        "output_type": "stream",
                        "text": "5 out of the last 5 calls to <f> "
                        "triggered tf.function retracing.\n",
                    },
                    {"output_type": "execute_result", "data": {"text/plain": "accuracy 0.9"}},
                ]
            }
        ]
    }
    path = tmp_path / "run.ipynb"
    path.write_text(json.dumps(notebook))
    assert len(demo.log_noise(path)) == 3
    notebook["cells"][0]["outputs"] = notebook["cells"][0]["outputs"][3:]
    path.write_text(json.dumps(notebook))
    assert demo.log_noise(path) == []


def test_predict_writes_no_tensorflow_log_lines(cnn_path: Path, scans: list[Path]) -> None:
    """A fresh ``python -m course_utils predict`` keeps TensorFlow's start-up noise out."""
    import os

    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "course_utils", "predict", "--model", str(cnn_path)]
        + [str(scans[0]), str(scans[2]), "--saliency", "scorecam", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert len(_json_lines(result.stdout)) == 2
    noise = [
        line
        for line in result.stderr.splitlines()
        if any(pattern.search(line) for pattern in demo.NOISE_PATTERNS)
    ]
    assert noise == [], noise


def test_the_bfloat16_flag_defaults_to_the_model_and_can_be_turned_off() -> None:
    from course_utils.train_config import TrainConfig

    parser = cli.build_parser()
    base = ["train", "cnn", "--data", "unused"]
    unset = parser.parse_args(base).bfloat16
    assert unset is None and TrainConfig.for_model("cnn", cpu_bfloat16=unset).cpu_bfloat16
    assert parser.parse_args([*base, "--no-bfloat16"]).bfloat16 is False
    assert parser.parse_args([*base, "--bfloat16"]).bfloat16 is True
