"""Benchmark row: the fast-mode CNN on the fast phantom set, with and without dropout.

Both runs use ``TrainConfig.for_model("cnn", fast=True)`` (the recipe of ``make demo``)
on the same splits and seed; B differs only by dropout 0.3 around the dense layer (the
full recipe's). Reported: accuracy on the leak-free phantom test split, the Grad-CAM
pointing game on its tumor scans (true class) and the training seconds.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np

#: The demo's bars (issue: the demo that learns).
TARGET_ACCURACY = 0.90
TARGET_POINTING = 0.80


def _splits(folder: Path):
    """Audit and split the fast phantom set into ``folder`` as notebook 01 does."""
    from course_utils import course
    from course_utils.data import splits

    split_dir = splits.ensure_splits(course.splits_dir(folder), None, "phantoms")
    return splits.load_splits(split_dir)


def _train_and_score(config, loaded, dataset, out_dir: Path) -> dict:
    """Train one fast CNN; return its seconds, leak-free accuracy and pointing game."""
    from course_utils import images, measure, predict, train
    from course_utils.data import phantom_dataset

    class_names = tuple(dataset["class_names"])
    run = train.TrainingRun(config, loaded, class_names, out_dir, dataset)
    started = time.perf_counter()
    model = run.build_model()
    run.save(model, [run.train_all_layers(model)])
    seconds = time.perf_counter() - started
    model, card = predict.load_model_with_card(out_dir / "cnn.keras")
    root, test = Path(dataset["root"]), loaded["test_leakfree"]
    scans = np.stack([images.load_image_file(root / p, config.image_size) for p in test["path"]])
    truth = np.array([class_names.index(label) for label in test["label"]])
    accuracy = float(np.mean(predict.predict_images(model, card, scans).argmax(axis=1) == truth))
    lesions = [i for i, label in enumerate(test["label"]) if label != "notumor"]
    masks = [
        images.load_mask(
            phantom_dataset.mask_path_for(root, test["path"].iloc[i]), config.image_size
        )
        for i in lesions
    ]
    scores = measure.score_methods(
        model, [scans[i] for i in lesions], masks, [int(truth[i]) for i in lesions], ["gradcam"]
    ).loc["gradcam"]
    return {
        "seconds": seconds,
        "accuracy": accuracy,
        "images": len(test),
        "pointing": float(scores["pointing_game"]),
        "chance": float(scores["pointing_chance"]),
    }


def row_fast_cnn(paths: list[str], labels: list[str], source: str) -> list[dict]:
    """Train the fast CNN twice (dropout 0 and 0.3) on the fast phantoms, side by side."""
    from course_utils import train

    with tempfile.TemporaryDirectory() as folder:
        loaded, dataset = _splits(Path(folder))
        fast = train.TrainConfig.for_model("cnn", fast=True)
        with_dropout = dataclasses.replace(fast, dropout=0.3)
        a = _train_and_score(fast, loaded, dataset, Path(folder) / "a")
        b = _train_and_score(with_dropout, loaded, dataset, Path(folder) / "b")
    met = a["accuracy"] >= TARGET_ACCURACY and a["pointing"] >= TARGET_POINTING

    def text(result: dict, dropout: float) -> str:
        return (
            f"dropout {dropout:g}: {result['accuracy']:.1%} leak-free, pointing game "
            f"{result['pointing']:.2f}, {result['seconds']:.0f} s"
        )

    return [
        {
            "row": f"fast CNN on phantoms ({fast.num_epochs} epochs, {fast.image_size} px)",
            "a": text(a, fast.dropout or 0.0),
            "b": text(b, 0.3),
            "ratio": b["seconds"] / a["seconds"],
            "note": f"{a['images']} leak-free test phantoms; pointing-game chance "
            f"{a['chance']:.2f}; targets >= {TARGET_ACCURACY:.0%} and >= {TARGET_POINTING} "
            f"{'met' if met else 'MISSED'} (seed {fast.seed}, one run each); "
            f"{os.cpu_count()} cores",
        }
    ]
