"""The Markdown model card: numbers from the files, warnings, missing and corrupt files, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course_utils import cli, evaluate, leakage, model_card

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def _card(source: str = "phantoms", image_size: int = 96, max_epochs: int = 3) -> dict:
    """A CNN card with the keys ``train`` writes."""
    phase = {
        "phase": "1: all layers",
        "epochs_run": max_epochs,
        "max_epochs": max_epochs,
        "best_epoch": max_epochs - 1,
        "learning_rate": 0.002,
        "seconds": 5.61,
        "trainable_params": 1016852,
        "best_val_metrics": {"accuracy": 0.8125, "loss": 0.4321},
    }
    return {
        "card_version": 1,
        "created": "2026-01-02T03:04:05+00:00",
        "model_file": "cnn.keras",
        "library_versions": {"tensorflow": "2.99.0", "keras": "3.99.0"},
        "architecture": "CNN from scratch (test)",
        "preprocessing": "unit",
        "name": "cnn",
        "class_names": list(CLASSES),
        "image_size": image_size,
        "colour_mode": "rgb",
        "input_value_range": "[0,255] raw pixels; preprocessing inside the model",
        "dataset": {"source": source, "root": "/data/x", "train_files_sha256": "ab" * 32},
        "split_sizes": {"train": 138, "val": 23},
        "seed": 42,
        "training_seconds": 6.7,
        "best_val_metrics": phase["best_val_metrics"],
        "phases": [phase],
        "parameters": 1018356,
    }


def _split_result(y_pred: np.ndarray, y_true: np.ndarray) -> dict:
    """``evaluate_predictions`` on confident one-hot-ish probabilities."""
    probabilities = np.full((len(y_pred), 4), 0.1 / 3)
    probabilities[np.arange(len(y_pred)), y_pred] = 0.9
    return evaluate.evaluate_predictions(y_true, probabilities, CLASSES, 1.5, n_bootstrap=100)


def _metrics(tmp_path: Path) -> dict:
    """Metrics as ``evaluate`` saves them (NaN as null), with two tumors called healthy."""
    y = np.repeat(np.arange(4), 10)
    y_pred = y.copy()
    y_pred[[0, 10]] = 2  # a glioma and a meningioma called notumor
    y_pred[[20, 30, 31]] = 1  # one healthy image and two pituitary ones called meningioma
    leaked = np.r_[np.ones(12, bool), np.zeros(28, bool)]
    correct = np.r_[np.ones(33, bool), np.zeros(7, bool)]  # 12/12 leaked, 21/28 clean right
    leak = leakage.compare_groups(correct, leaked, n_resamples=200)
    metrics = {
        "model": "cnn",
        "dataset": _card()["dataset"],
        "temperature": {"value": 1.5, "fitted_on": "val", "val_images": 23, "at_bound": False},
        "splits": {"test": _split_result(y_pred, y), "test_leakfree": _split_result(y[4:], y[4:])},
        "leakage": leak,
        "splits_match_training": True,
    }
    metrics["splits"]["test_leakfree"]["macro_auc"] = float("nan")  # saved as null
    path = evaluate.save_metrics(metrics, tmp_path / "metrics.json")
    return json.loads(path.read_text())


AUDIT = {
    "root": "/data/x",
    "summary": {
        "files": 211,
        "readable": 208,
        "unreadable": 3,
        "exact_duplicate_groups": 5,
        "exact_duplicate_copies": 7,
        "near_duplicate_groups": 11,
        "test_files": 43,
        "test_files_leaked": 3,
        "leak_free_test_files": 40,
        "label_conflict_groups": 1,
    },
}


def test_rendered_card_holds_the_computed_numbers(tmp_path: Path) -> None:
    metrics = _metrics(tmp_path)
    text = model_card.render_model_card(_card(), metrics, AUDIT)
    test = metrics["splits"]["test"]
    low, high = test["bootstrap"]["accuracy"]
    assert test["accuracy"] == 0.875
    assert f"**Accuracy:** 87.5% (95% bootstrap CI {low:.1%} to {high:.1%}, 100 resamples)" in text
    f1_low, f1_high = test["bootstrap"]["macro_f1"]
    assert f"{test['macro_f1']:.3f} (95% CI {f1_low:.3f} to {f1_high:.3f})" in text
    assert "**Missed tumors:** 2/30 tumor images (6.7%) predicted as notumor" in text
    assert "false alarms: 0.0% of healthy images" in text
    calibration = test["calibration"]
    assert f"{calibration['ece']:.3f} before, {calibration['ece_after_temperature']:.3f}" in text
    assert "T = 1.50, fitted on 23 validation images" in text
    assert "### Full test split (40 images)" in text
    assert "### Leak-free test split (36 images)" in text
    assert "| CNN | leak-free test | 36 |" in text and "| CNN | full test | 40 |" in text
    assert "**Macro AUC (one-vs-rest):** n/a" in text  # the null AUC of the leak-free split
    assert "| pituitary | 1.000 | 0.800 | 0.889 | 10 | 0.0% |" in text
    assert "| glioma | 1.000 | 0.900 | 0.947 | 10 | 10.0% |" in text
    assert "100.0% on the 12 test images with a copy in training, 75.0% on the 28 without" in (text)
    assert "difference +25.0 points (95% CI" in text and "Fisher's exact p = " in text
    assert "inflat" not in text and "has not learned" not in text  # a model that learned
    assert "| 1: all layers | 3 / 3 | 2 | 0.002 | 81.2% | 0.432 | 1,016,852 | 5.6 |" in text


def test_card_of_a_model_at_chance_and_a_bounded_temperature(tmp_path: Path) -> None:
    metrics = _metrics(tmp_path)
    y = np.repeat(np.arange(4), 10)
    constant = evaluate.evaluate_predictions(y, np.tile([0.7, 0.1, 0.1, 0.1], (40, 1)), CLASSES)
    metrics["splits"] = {"test": constant, "test_leakfree": constant}
    metrics["temperature"].update(value=20.0, at_bound=True)
    card = {**_card(), "fast_mode": True}
    text = model_card.render_model_card(card, json.loads(json.dumps(metrics)), AUDIT)
    assert "> **CNN has not learned: its accuracy 25.0%" in text
    assert "fast-mode run on synthetic phantoms" in text
    assert "difference +" not in text  # no leak interpretation at chance
    assert "T = 20.00 hit the bound: the model's probabilities could not be calibrated" in text
    assert "T = 20.00, fitted on" not in text


def test_card_sections_and_audit_facts() -> None:
    text = model_card.render_model_card(_card(), None, AUDIT, {"counts": {"test": 43, "val": 23}})
    for heading in ("## Model details", "## Intended use", "## Data", "## Metrics"):
        assert heading in text
    assert "## Limitations" in text and "## Saliency caveats" in text
    assert "**Education only:**" in text and "**Not a medical device.**" in text
    assert "Not for diagnosis, triage" in text
    assert "211 files, 208 readable, 3 unreadable" in text
    assert "7 extra byte-identical copies in 5 groups" in text and "11 groups" in text
    assert "1 group of one picture with two labels" in text
    assert "43 images) is kept whole" in text and "3 of its images have a duplicate" in text
    assert "leak-free test subset (40 images)" in text
    assert "| images | 138 | 23 | 43 |" in text
    assert "0 = glioma, 1 = meningioma, 2 = notumor, 3 = pituitary" in text
    assert "about 6x6 cells for this 96 px model" in text
    assert "**Training time:** 6.7 s; best validation" in text  # no policy recorded
    bfloat16 = model_card.render_model_card(
        {**_card(), "training_precision": "mixed_bfloat16"}, None, AUDIT, None
    )
    assert " in `mixed_bfloat16` (saved in float32); best validation" in bfloat16
    plain = model_card.render_model_card({**_card(), "training_precision": "float32"}, None)
    assert "**Training time:** 6.7 s; best validation" in plain


def test_warning_for_phantoms_and_fast_mode_only() -> None:
    phantom = model_card.render_model_card(_card("phantoms", 128, 30))
    assert "WARNING: demo model. These numbers only prove that the code runs." in phantom
    assert "synthetic phantoms" in phantom and "fast mode" not in phantom.split("## Model")[0]
    fast = model_card.render_model_card({**_card("local", 96, 3), "fast_mode": True})
    assert "only prove that the code runs" in fast and "**fast mode** (96 px images" in fast
    unflagged = model_card.render_model_card({**_card("local", 96, 3), "fast_mode": False})
    assert "WARNING" not in unflagged  # small and short, but the card says it was not fast
    real = model_card.render_model_card(_card("local", 128, 30))
    assert "WARNING" not in real and "only prove that the code runs" not in real
    random_base = model_card.render_model_card({**_card("local", 128, 30), "weights": "random"})
    assert "trained from random weights, without ImageNet pretraining" in random_base
    assert "trained from random weights" not in real
    flagged = model_card.render_model_card({**_card("local", 128, 30), "fast_mode": True})
    assert "in **fast mode** (128 px images, at most 30 epochs per phase)" in flagged


def test_missing_metrics_and_provenance_warnings(tmp_path: Path) -> None:
    text = model_card.render_model_card(_card(), None)
    assert (
        "Not evaluated yet: run notebook 04 or `python -m course_utils evaluate --model PATH`."
    ) in text
    metrics = {**_metrics(tmp_path), "splits_match_training": False}
    metrics["dataset"] = {"train_files_sha256": "cd" * 32}
    text = model_card.render_model_card(_card(), metrics)
    assert "`splits_match_training` is false" in text
    assert "computed for another training run" in text


def _model_folder(folder: Path, metrics: dict | None = None) -> Path:
    """Write cnn.keras (placeholder bytes), its card, and optionally its metrics."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cnn.keras").write_bytes(b"not read by the card writer")
    (folder / "cnn.json").write_text(json.dumps(_card()))
    if metrics is not None:
        (folder / "metrics_cnn.json").write_text(json.dumps(metrics))
    return folder / "cnn.keras"


def test_write_markdown_card_reads_the_files(tmp_path: Path) -> None:
    model = _model_folder(tmp_path / "artifacts", _metrics(tmp_path))
    (model.parent / "audit.json").write_text(json.dumps(AUDIT))
    (model.parent / "splits").mkdir()
    counts = {"train": 138, "val": 23, "test": 40, "test_leakfree": 36}
    (model.parent / "splits" / "dataset.json").write_text(json.dumps({"counts": counts}))
    path = model_card.write_markdown_card(model)
    assert path == model.parent / "cnn_card.md"
    text = path.read_text()
    assert "87.5%" in text and "211 files" in text and "| images | 138 | 23 | 40 | 36 |" in text


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cnn\.keras does not exist.*notebook 02/03"):
        model_card.write_markdown_card(tmp_path / "cnn.keras")
    (tmp_path / "cnn.keras").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match=r"cnn\.json does not exist.*course_utils train"):
        model_card.write_markdown_card(tmp_path / "cnn.keras")
    model = _model_folder(tmp_path / "a")
    assert "Not evaluated yet" in model_card.write_markdown_card(model).read_text()
    (model.parent / "metrics_cnn.json").write_text('{"splits": {"test": ')
    with pytest.raises(ValueError, match=r"metrics_cnn\.json is not valid JSON"):
        model_card.write_markdown_card(model)
    (model.parent / "cnn.json").write_text(json.dumps({"name": "cnn"}))
    with pytest.raises(ValueError, match="lacks"):
        model_card.write_markdown_card(model)


def test_cli_card_writes_next_to_the_model_and_honours_out(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    model = _model_folder(tmp_path / "artifacts", _metrics(tmp_path))
    assert cli.main(["card", str(model)]) == 0
    written = model.parent / "cnn_card.md"
    assert str(written) in capsys.readouterr().out and written.read_text().startswith("# Model")
    out = tmp_path / "docs" / "card.md"
    assert cli.main(["card", str(model), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out and "87.5%" in out.read_text()
    assert cli.main(["card", str(tmp_path / "none.keras")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_card_from_weights_only_and_without_tensorflow(tmp_path: Path) -> None:
    model = _model_folder(tmp_path / "artifacts", _metrics(tmp_path))
    model.rename(model.with_name("cnn.weights.h5"))  # a model that travels as weights + card
    assert "87.5%" in model_card.write_markdown_card(model).read_text()
    code = (
        "import sys; from course_utils import cli; "
        f"status = cli.main(['card', {str(model)!r}, '--out', {str(tmp_path / 'c.md')!r}]); "
        "print(status, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[-2] == "0 []"
    assert (tmp_path / "c.md").read_text().startswith("# Model card: CNN")
