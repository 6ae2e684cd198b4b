"""Benchmark row: the CNN recipe's ablation on the real data, every step with several seeds.

Each step of ``ablation.RECIPE_STEPS`` trains the full-size CNN (``train_cnn``, as the CLI
does) on the shared copy's training split and scores it on the leak-free held-out split.
A step with ``train_on_val`` trains on the train and validation splits together (the
leak-free split has no duplicate of either). Steps that differ only at test time (the
mirror flip) score the same trained model. Every
run is appended to ``course_utils/cnn_ablation.json`` as soon as it ends, so a bench cut
short keeps what it measured, and a rerun skips the (step, seed) pairs already there
(``CNN_RECIPE_FRESH=1`` measures them again). ``CNN_RECIPE_SEEDS`` (default ``1,2,3``) and
``CNN_RECIPE_STEPS`` (step indices, default all) choose what runs. 5 to 27
minutes per training on 2 cores: this row is for a quiet machine, run alone.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(
    os.environ.get("BTMRI_REAL_DATA", REPO.parent / "shared/datasets/brain-tumor-mri-224")
)
COMMAND = "python benchmarks/run.py --rows cnn_recipe"


def _chosen(variable: str, default: list[int]) -> list[int]:
    """Read a comma list of integers from the environment."""
    text = os.environ.get(variable, "")
    return [int(part) for part in text.split(",") if part.strip()] or default


def _training_splits(step, loaded: dict) -> dict:
    """The split tables a step trains on: with ``train_on_val``, train is train + val."""
    import pandas as pd

    if not step.train_on_val:
        return loaded
    return {**loaded, "train": pd.concat([loaded["train"], loaded["val"]], ignore_index=True)}


def _train_once(step, seed: int, loaded, dataset, out_dir: Path) -> dict:
    """Train one step's CNN with one seed; return its seconds, epochs and both accuracies."""
    import keras

    from course_utils import devices, train
    from course_utils.data.pipeline import static_tuning
    from course_utils.fitting import training_precision

    config = train.TrainConfig.for_model("cnn", seed=seed, **step.overrides)
    strategy = devices.configure_devices(cpu_bfloat16=config.cpu_bfloat16)
    policy = keras.mixed_precision.dtype_policy().name
    try:
        class_names = tuple(dataset["class_names"])
        splits = _training_splits(step, loaded)
        model, card = train.train_cnn(config, splits, class_names, out_dir, dataset, strategy)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    test = loaded["test_leakfree"]
    scores = {
        flip: train.split_accuracy(model, test, class_names, config.image_size, test_time_flip=flip)
        for flip in (False, True)
    }
    phase = card["phases"][0]
    return {
        "seconds": card["training_seconds"],
        "epochs_run": phase["epochs_run"],
        "best_epoch": phase["best_epoch"],
        "images": len(test),
        "train_images": card["split_sizes"]["train"],
        "train_on_val": step.train_on_val,
        "dtype_policy": policy,
        "scored_in": training_precision(model),
        "tf_data_autotune": bool(static_tuning().autotune.enabled),
        "recorded_on": datetime.date.today().isoformat(),
        "cpu_flags": devices.speed_flags(),
        "scores": scores,
        "config": {
            key: value
            for key, value in dataclasses.asdict(config).items()
            if key not in ("fast", "weights", "num_epochs_phase2")
        },
    }


def row_cnn_recipe(paths: list[str], labels: list[str], source: str) -> list[dict]:
    """Measure every chosen step and seed; return one table row per measured step."""
    from course_utils import ablation
    from course_utils.config import DEFAULT_SEED
    from course_utils.data.sources import resolve_dataset
    from course_utils.data.splits import load_or_make_splits

    if not (REAL_DATA / "Training").is_dir():
        return [_row("cnn_recipe", "not measured", f"needs the real data at {REAL_DATA}")]
    results = REPO / ablation.RESULTS_FILE
    seeds = _chosen("CNN_RECIPE_SEEDS", [1, 2, 3])
    steps = [ablation.RECIPE_STEPS[i] for i in _chosen("CNN_RECIPE_STEPS", [])] or list(
        ablation.RECIPE_STEPS
    )
    fresh = os.environ.get("CNN_RECIPE_FRESH") == "1"
    done = {(run["step"], run["seed"]) for run in ablation.load_runs(results)}
    facts = {
        "command": COMMAND,
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}",
        "dataset": f"{REAL_DATA.name}: train split, scored on the leak-free held-out split",
    }
    with tempfile.TemporaryDirectory() as folder:
        source_facts = resolve_dataset(str(REAL_DATA)).to_dict()
        loaded, dataset = load_or_make_splits(Path(folder) / "splits", source_facts, DEFAULT_SEED)
        for seed in seeds:
            trained: dict = {}
            for step in steps:
                if (step.name, seed) in done and not fresh:
                    continue
                key = (repr(sorted(step.overrides.items())), step.train_on_val)
                if key not in trained:
                    out_dir = Path(folder) / f"{len(trained)}_{seed}"
                    trained[key] = _train_once(step, seed, loaded, dataset, out_dir)
                run = dict(trained[key])
                scores = run.pop("scores")
                accuracy = scores[step.test_time_flip]
                record = {"step": step.name, "seed": seed, "accuracy": accuracy, **run}
                record.update(accuracy_one_view=scores[False], accuracy_with_mirror=scores[True])
                ablation.append_run(results, record, facts)
                print(
                    f"[cnn_recipe] {step.name} seed {seed}: {accuracy:.4f} "
                    f"in {run['seconds']:.0f} s",
                    flush=True,
                )
    summary = ablation.summarise(ablation.load_runs(results))
    return [_summary_row(row) for row in summary.itertuples()]


def _summary_row(row) -> dict:
    """One Markdown row: a step's accuracy (mean ± sd, worst seed) and its seconds."""
    from course_utils.ablation import GOAL_TRAINING_SECONDS, sd_text

    spread = sd_text(row.sd_accuracy)
    accuracy = f"{row.mean_accuracy:.2%} ± {spread} (worst {row.min_accuracy:.2%})"
    return _row(
        f"cnn_recipe: {row.step}",
        accuracy,
        f"{row.median_seconds:.0f} s training",
        f"{row.seeds} seed(s); goal met: {bool(row.meets_goal)}; A/B here: training time "
        f"over the {GOAL_TRAINING_SECONDS:.0f} s budget",
        row.median_seconds / GOAL_TRAINING_SECONDS,
    )


def _row(name: str, a: str, b: str, note: str = "", ratio: float = 0.0) -> dict:
    """A row of the bench table."""
    return {"row": name, "a": a, "b": b, "ratio": ratio, "note": note}
