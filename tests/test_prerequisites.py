"""Prerequisites: a lesson alone in a fresh runtime trains only the models it lacks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from course_utils import cards, course, prerequisites
from course_utils.config import CLASS_NAMES

pytest.importorskip("tensorflow")

from course_utils import train  # noqa: E402


def _fake_model_files(artifacts: Path, name: str) -> None:
    """Put a card and a model file where ``cards.find_models`` looks (contents unused)."""
    model_file = course.model_path(artifacts, name)
    model_file.parent.mkdir(parents=True, exist_ok=True)
    model_file.write_bytes(b"not read")
    course.card_path(model_file).write_text("{}")


def _refuse_training(*args: object, **kwargs: object) -> None:
    raise AssertionError("a model was trained although it was there")


def test_missing_models_lists_what_is_not_there(tmp_path: Path) -> None:
    assert prerequisites.missing_models(tmp_path, ["xception", "cnn"]) == ["xception", "cnn"]
    _fake_model_files(tmp_path, "cnn")
    assert prerequisites.missing_models(tmp_path, ["xception", "cnn"]) == ["xception"]
    assert prerequisites.missing_models(tmp_path, ["cnn"]) == []


def test_nothing_is_trained_when_both_models_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for name in ("xception", "cnn"):
        _fake_model_files(tmp_path, name)
    monkeypatch.setattr(train, "train_cnn", _refuse_training)
    monkeypatch.setattr(train, "train_transfer", _refuse_training)
    monkeypatch.setattr(prerequisites, "measure_throughput", _refuse_training)
    trained = prerequisites.ensure_models(tmp_path, ["xception", "cnn"], fast=True)
    assert trained == []
    assert "Xception, CNN (used as they are)" in capsys.readouterr().out
    assert not course.splits_dir(tmp_path).exists(), "no splits made when nothing is trained"


def test_ensure_models_rejects_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="resnet"):
        prerequisites.ensure_models(tmp_path, ["resnet"], fast=True)


def test_estimate_follows_images_epochs_speed_and_warm_up() -> None:
    speed = prerequisites.Throughput(10.0, 40.0, 2, 32, train_warmup_seconds=5.0)
    speed = dataclasses.replace(speed, predict_warmup_seconds=0.5, build_seconds=0.5)
    cnn = train.TrainConfig.for_model("cnn", fast=True)
    epoch = 100 / 10 + 40 / 40
    assert prerequisites.estimate_training_seconds(cnn, 100, 40, speed) == pytest.approx(
        5.0 + 0.5 + 0.5 + cnn.num_epochs * epoch
    )
    xception = train.TrainConfig.for_model("xception", fast=True)
    extraction = (100 + 40) / 40 + 0.5
    assert prerequisites.estimate_training_seconds(xception, 100, 40, speed) == pytest.approx(
        5.0 + 0.5 + 0.5 + extraction + xception.phase2_epochs * epoch
    )
    no_warmup = prerequisites.Throughput(10.0, 40.0, 2, 32)
    twice_as_fast = prerequisites.Throughput(20.0, 80.0, 2, 32)
    assert prerequisites.estimate_training_seconds(cnn, 100, 40, twice_as_fast) == pytest.approx(
        prerequisites.estimate_training_seconds(cnn, 100, 40, no_warmup) / 2
    )


def test_plan_names_the_model_the_mode_and_the_estimate() -> None:
    speed = prerequisites.Throughput(12.5, 50.0, timed_batches=2, batch_size=32)
    full = train.TrainConfig.for_model("xception", fast=False)
    plan = prerequisites.training_plan(full, 5000, 800, speed)
    seconds = prerequisites.estimate_training_seconds(full, 5000, 800, speed)
    assert "Xception" in plan and "full mode" in plan and "weights imagenet" in plan
    assert prerequisites.describe_duration(seconds) in plan
    assert "12.5" in plan and "50.0" in plan and "5000 training" in plan
    cnn = train.TrainConfig.for_model("cnn", fast=True)
    fast = prerequisites.training_plan(cnn, 64, 16, speed)
    assert "CNN" in fast and "fast mode" in fast and f"up to {cnn.num_epochs} epochs" in fast


def test_durations_read_like_people_say_them() -> None:
    assert prerequisites.describe_duration(42.4) == "42 s"
    assert prerequisites.describe_duration(600) == "10.0 min"
    assert prerequisites.describe_duration(2 * 3600) == "2.0 h"


def test_throughput_is_measured_on_this_machine() -> None:
    config = train.TrainConfig.for_model("cnn", fast=True, batch_size=4, image_size=32)
    table = pd.DataFrame({"path": ["a.png"], "label": ["glioma"]})
    loaded = {"train": table, "val": table}
    speed = prerequisites.measure_throughput(config, loaded, CLASS_NAMES, timed_batches=1)
    assert speed.train_images_per_second > 0 and speed.predict_images_per_second > 0
    assert (speed.timed_batches, speed.batch_size) == (1, 4)


def test_the_missing_model_is_trained_and_the_other_kept(
    phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    artifacts = tmp_path / "artifacts"
    _fake_model_files(artifacts, "xception")
    kept = course.model_path(artifacts, "xception").read_bytes()
    trained = prerequisites.ensure_models(
        artifacts, ["xception", "cnn"], fast=True, data_dir=phantom_root
    )
    assert trained == ["cnn"]
    out = capsys.readouterr().out
    assert "Found in" in out and "Xception (used as they are)" in out
    assert "no CNN model: training it now in fast mode" in out and "Estimated time" in out
    assert "Trained CNN in " in out
    assert course.model_path(artifacts, "xception").read_bytes() == kept
    card = cards.load_card(course.model_path(artifacts, "cnn"))
    fast_cnn = train.TrainConfig.for_model("cnn", fast=True)
    assert card["fast_mode"] is True and card["image_size"] == fast_cnn.image_size
    assert course.dataset_path(course.splits_dir(artifacts)).is_file()
    assert prerequisites.missing_models(artifacts, ["xception", "cnn"]) == []
