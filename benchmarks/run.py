"""Course benchmarks: each row compares two ways of doing one job, measured side by side.

Run with ``make bench`` (or ``python benchmarks/run.py [--rows pipeline,phase1,...]``).
Uses the real data at ../shared/datasets/brain-tumor-mri-224 when present (or
$BTMRI_REAL_DATA), else a phantom dataset generated into a temporary folder.
Prints one Markdown table; numbers are from this machine, this run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(
    os.environ.get("BTMRI_REAL_DATA", REPO.parent / "shared/datasets/brain-tumor-mri-224")
)


def sample_files(count: int, seed: int = 0) -> tuple[list[str], list[str], str]:
    """Pick up to ``count`` image files (real data if present) with their labels."""
    if (REAL_DATA / "Training").is_dir():
        root, source = REAL_DATA, f"real data ({REAL_DATA.name})"
    else:
        from course_utils.data.phantom_dataset import synthesize_dataset

        root = Path(tempfile.mkdtemp()) / "phantoms"
        synthesize_dataset(
            root,
            per_class=max(1, count // 4),
            image_size=224,
            seed=seed,
            plant_issues=False,
            progress=False,
        )
        source = "phantoms"
    files = sorted((root / "Training").glob("*/*.jpg"))
    rng = np.random.default_rng(seed)
    chosen = [
        files[i] for i in sorted(rng.choice(len(files), min(count, len(files)), replace=False))
    ]
    return [str(f) for f in chosen], [f.parent.name for f in chosen], source


def timed(function: Callable[[], int], repeats: int = 1) -> float:
    """Run ``function`` (which returns how many items it processed); return items per second."""
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        items = function()
        best = max(best, items / (time.perf_counter() - started))
    return best


def pil_loader(paths: list[str], image_size: int, batch_size: int) -> int:
    """The plain way: a Python loop with PIL and NumPy, one batch at a time."""
    count = 0
    for start in range(0, len(paths), batch_size):
        batch = [
            np.asarray(
                Image.open(p)
                .convert("RGB")
                .resize((image_size, image_size), Image.Resampling.BILINEAR)
            )
            for p in paths[start : start + batch_size]
        ]
        count += len(np.stack(batch).astype(np.float32))
    return count


def row_pipeline(paths: list[str], labels: list[str], source: str) -> list[dict]:
    """tf.data (parallel decode + resize + prefetch) vs a PIL loop, one uncached pass."""
    from course_utils.config import CLASS_NAMES
    from course_utils.data.pipeline import make_dataset

    def tf_pass() -> int:
        data = make_dataset(paths, labels, CLASS_NAMES, image_size=224, batch_size=32, cache=False)
        return sum(int(x.shape[0]) for x, _ in data)

    tf_pass()  # warm-up: graph tracing and file cache, for both contenders alike
    pil_rate = timed(lambda: pil_loader(paths, 224, 32), repeats=2)
    tf_rate = timed(tf_pass, repeats=2)
    return [
        {
            "row": "input pipeline, 224 px, uncached pass",
            "a": f"tf.data {tf_rate:,.0f} img/s",
            "b": f"PIL loop {pil_rate:,.0f} img/s",
            "ratio": tf_rate / pil_rate,
            "note": f"{len(paths)} files, {source}",
        }
    ]


def _train_rate(
    model, images: np.ndarray, labels: np.ndarray, batch_size: int = 32, repeats: int = 1
) -> float:
    """Training images per second of ``model.fit`` on in-memory arrays (after a warm-up)."""
    model.fit(images[:batch_size], labels[:batch_size], batch_size=batch_size, verbose=0)
    return timed(
        lambda: (
            model.fit(images, labels, batch_size=batch_size, verbose=0, shuffle=False),
            len(images),
        )[1],
        repeats=repeats,
    )


def _random_batch(count: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random raw-pixel images and one-hot labels (speed does not depend on content)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (count, size, size, 3)).astype(np.float32)
    return images, np.eye(4, dtype=np.float32)[rng.integers(0, 4, count)]


def row_phase1(paths: list[str], labels: list[str], source: str) -> list[dict]:
    """Phase-1 epoch: head on cached features vs the full model with a frozen base."""
    from course_utils import models

    size, count = 299, 192
    images, onehot = _random_batch(count, size)
    model = models.compile_model(models.build_xception_classifier(size, weights=None))
    models.set_trainable_for_phase(model, phase=1)
    naive_rate = _train_rate(model, images, onehot, repeats=2)
    started = time.perf_counter()
    features = models.feature_extractor(model).predict(images, batch_size=32, verbose=0)
    extraction = time.perf_counter() - started
    head = models.compile_model(models.get_head(model))
    cached_rate = _train_rate(head, features, onehot, repeats=2)
    return [
        {
            "row": f"phase-1 epoch, Xception {size} px",
            "a": f"cached {cached_rate:,.0f} img/s",
            "b": f"frozen base {naive_rate:,.1f} img/s",
            "ratio": cached_rate / naive_rate,
            "note": f"{count} images; one-off feature extraction {extraction:.1f} s",
        }
    ]


def row_train_step(paths: list[str], labels: list[str], source: str) -> list[dict]:
    """Train-step throughput of both models at the lessons' image sizes."""
    from course_utils import models, train

    cnn_size = train.TrainConfig.for_model("cnn").image_size
    xception_size = train.TrainConfig.for_model("xception").image_size
    cnn = models.compile_model(models.build_cnn(cnn_size))
    cnn_rate = _train_rate(cnn, *_random_batch(192, cnn_size))
    xception = models.compile_model(models.build_xception_classifier(xception_size, weights=None))
    models.set_trainable_for_phase(xception, phase=2)
    models.compile_model(xception)
    xception_rate = _train_rate(xception, *_random_batch(64, xception_size))
    return [
        {
            "row": "train step (batch 32)",
            "a": f"CNN {cnn_size} px {cnn_rate:,.1f} img/s",
            "b": f"Xception phase 2, {xception_size} px {xception_rate:,.1f} img/s",
            "ratio": cnn_rate / xception_rate,
            "note": "CPU; a GPU is 10-50x faster",
        },
        {"row": "_cnn_rate", "value": cnn_rate, "size": cnn_size},
    ]


def row_cnn_bfloat16(paths: list[str], labels: list[str], source: str) -> list[dict]:
    """The default CNN's train step (32-image batches), float32 vs mixed bfloat16, side by side."""
    import keras

    from course_utils import devices, models, train

    config = train.TrainConfig.for_model("cnn")
    if not devices.cpu_supports_bfloat16():
        return [
            {
                "row": "CNN train step, float32 vs bfloat16",
                "a": "not measured",
                "b": "this CPU has no native bfloat16",
                "ratio": 0.0,
                "note": "",
            }
        ]
    rates = {}
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_dtype_policy(policy)
        try:
            cnn = models.compile_model(models.build_cnn(config.image_size), "adam", 2e-3)
            rates[policy] = _train_rate(cnn, *_random_batch(192, config.image_size), repeats=3)
        finally:
            keras.mixed_precision.set_dtype_policy("float32")
    return [
        {
            "row": f"CNN train step, {config.image_size} px, batch 32",
            "a": f"mixed bfloat16 {rates['mixed_bfloat16']:,.1f} img/s",
            "b": f"float32 {rates['float32']:,.1f} img/s",
            "ratio": rates["mixed_bfloat16"] / rates["float32"],
            "note": "measured one after the other in one process; > 1: bfloat16 trains "
            f"faster; CPU flags: {', '.join(devices.speed_flags())}; the course trains in "
            f"bfloat16 here: {devices.bfloat16_trains_faster()} (AMX)",
        }
    ]


def row_cnn_width(paths: list[str], labels: list[str], source: str) -> list[dict]:
    """The wider and the deeper CNN's train step against their recipe's, side by side.

    Each pair is measured at its recipe's batch size: the 16-image recipe against the wider
    and the deeper CNN, and the 8-image batch-norm recipe against its deeper, its 1.25 times
    wider, its wider-late, its stride-2 and its stride-2 1.5 times wider CNN. The models take
    turns five times and each keeps its median rate, so a machine whose speed drifts during
    the row slows them all alike.
    """
    import keras

    from course_utils import ablation, devices, models, train

    named = {step.name: step for step in ablation.RECIPE_STEPS}
    pairs = (
        (ablation.BATCH_16_STEP, ablation.WIDER_STEP),
        (ablation.BATCH_16_STEP, ablation.DEEPER_STEP),
        (ablation.BATCH_NORM_STEP, ablation.DEEPER_BATCH_NORM_STEP),
        (ablation.BATCH_NORM_STEP, ablation.WIDER_BATCH_NORM_STEP),
        (ablation.BATCH_NORM_STEP, ablation.WIDER_LATE_STEP),
        (ablation.BATCH_NORM_STEP, ablation.STRIDE_STEP),
        (ablation.BATCH_NORM_STEP, ablation.STRIDE_WIDER_STEP),
    )
    names = list(dict.fromkeys(name for pair in pairs for name in pair))
    configs = {name: train.TrainConfig.for_model("cnn", **named[name].overrides) for name in names}
    devices.configure_devices(cpu_bfloat16=configs[names[0]].cpu_bfloat16)
    policy = keras.mixed_precision.dtype_policy().name
    try:
        compiled = {
            name: models.compile_model(
                models.build_cnn(config.image_size, **config.model_options), "adam", 2e-3
            )
            for name, config in configs.items()
        }
        size = configs[names[0]].image_size
        images, onehot = _random_batch(max(c.batch_size for c in configs.values()) * 24, size)
        rates: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(5):
            for name, model in compiled.items():
                batch_size = configs[name].batch_size
                rates[name].append(_train_rate(model, images, onehot, batch_size=batch_size))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    median = {name: float(np.median(measured)) for name, measured in rates.items()}
    shape = {
        name: f"{config.filters[0]} to {config.filters[-1]} channels, "
        f"{config.last_block_convs} convs in the last block"
        + (", stride-2 first conv" if config.first_block_stride == 2 else "")
        for name, config in configs.items()
    }
    return [
        {
            "row": f"CNN train step, batch {configs[base].batch_size}, {size} px",
            "a": f"{shape[base]} {median[base]:,.1f} img/s",
            "b": f"{shape[name]} {median[name]:,.1f} img/s",
            "ratio": median[base] / median[name],
            "note": f"{policy}, medians of 5 interleaved turns; > 1: the {name!r} CNN takes "
            "that many times the seconds per epoch",
        }
        for base, name in pairs
    ]


def row_cnn_batch(paths: list[str], labels: list[str], source: str) -> list[dict]:
    """The default CNN's train step on 16-image against 8-image batches, side by side.

    One model trains at both batch sizes in five interleaved turns and each size keeps its
    median rate: the 8-image defaults do the 16-image recipe's compute in twice the steps.
    """
    import keras

    from course_utils import ablation, devices, models, train

    named = {step.name: step for step in ablation.RECIPE_STEPS}
    config = train.TrainConfig.for_model("cnn", **named[ablation.DEFAULT_STEP].overrides)
    sizes = (named[ablation.BATCH_16_STEP].overrides["batch_size"], config.batch_size)
    devices.configure_devices(cpu_bfloat16=config.cpu_bfloat16)
    policy = keras.mixed_precision.dtype_policy().name
    try:
        model = models.build_cnn(config.image_size, **config.model_options)
        models.compile_model(model, "adam", 2e-3)
        images, onehot = _random_batch(max(sizes) * 24, config.image_size)
        rates: dict[int, list[float]] = {size: [] for size in sizes}
        for _ in range(5):
            for size in sizes:
                rates[size].append(_train_rate(model, images, onehot, batch_size=size))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    bigger, smaller = (float(np.median(rates[size])) for size in sizes)
    return [
        {
            "row": f"CNN train step, {config.image_size} px, batch {sizes[0]} vs {sizes[1]}",
            "a": f"batch {sizes[0]} {bigger:,.1f} img/s",
            "b": f"batch {sizes[1]} {smaller:,.1f} img/s",
            "ratio": bigger / smaller,
            "note": f"{policy}, medians of 5 interleaved turns; > 1: batch {sizes[1]} takes "
            "that many times the seconds per epoch",
        }
    ]


def row_pipeline_vs_cnn(
    paths: list[str], labels: list[str], source: str, cnn_rate: float | None = None
) -> list[dict]:
    """The augmented training pipeline's throughput vs the CNN's training throughput."""
    from course_utils import models, train
    from course_utils.config import CLASS_NAMES
    from course_utils.data.pipeline import make_dataset

    size = train.TrainConfig.for_model("cnn").image_size
    data = make_dataset(
        paths, labels, CLASS_NAMES, image_size=size, batch_size=32, training=True, seed=0
    )
    sum(1 for _ in data)  # first pass fills the cache, as the first epoch does
    pipeline_rate = timed(lambda: sum(int(x.shape[0]) for x, _ in data))
    if cnn_rate is None:
        cnn = models.compile_model(models.build_cnn(size))
        cnn_rate = _train_rate(cnn, *_random_batch(192, size))
    return [
        {
            "row": f"augmented pipeline vs CNN epoch, {size} px",
            "a": f"pipeline {pipeline_rate:,.0f} img/s",
            "b": f"CNN {cnn_rate:,.1f} img/s",
            "ratio": pipeline_rate / cnn_rate,
            "note": "> 1: the pipeline is not the bottleneck (it also runs during training)",
        }
    ]


def row_evaluate(paths: list[str], labels: list[str], source: str) -> list[dict]:
    """Evaluating Xception (224 px) on 1,300 images end to end: course code vs a plain loop.

    Both decode, predict and compute the same metrics (1,000 bootstrap resamples); the
    course reads with tf.data while the model predicts, the plain way loads every image
    with PIL into one NumPy array first, then calls ``model.predict`` on it.
    """
    import pandas as pd

    from course_utils import evaluate, models
    from course_utils.config import CLASS_NAMES
    from course_utils.data.splits import encode_labels

    count, size = 1300, 224
    if len(paths) < count:
        paths, labels, source = sample_files(count)
    split = pd.DataFrame({"abs_path": paths[:count], "label": labels[:count]})
    y_true = encode_labels(split["label"], CLASS_NAMES)
    card = {"name": "xception", "class_names": list(CLASS_NAMES), "image_size": size}
    model = models.build_xception_classifier(size, weights=None)
    # warm-up for both: trace each predict path, read every file once (page cache)
    evaluate.evaluate_model(model, card, {"test": split.head(64)}, n_bootstrap=10)
    model.predict(np.zeros((64, size, size, 3), np.uint8), batch_size=64, verbose=0)
    sum(len(Path(p).read_bytes()) for p in split["abs_path"])

    started = time.perf_counter()
    result = evaluate.evaluate_model(model, card, {"test": split}, n_bootstrap=1000)
    course = time.perf_counter() - started

    started = time.perf_counter()
    images = np.stack(
        [
            np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
            for p in split["abs_path"]
        ]
    )
    probabilities = model.predict(images, batch_size=64, verbose=0).astype(np.float64)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    evaluate.evaluate_predictions(y_true, probabilities, CLASS_NAMES, n_bootstrap=1000)
    plain = time.perf_counter() - started
    verdict = "met" if course < 60 else "MISSED"
    metrics_seconds = result.metrics["seconds"]["metrics"]
    return [
        {
            "row": f"evaluate Xception {size} px end to end",
            "a": f"course (tf.data) {course:.1f} s",
            "b": f"PIL array + predict {plain:.1f} s",
            "ratio": plain / course,
            "note": f"{len(split)} images, {source}; metrics {metrics_seconds:.1f} s "
            f"of A; target < 60 s {verdict}; {os.cpu_count()} cores",
        }
    ]


ROWS = {
    "pipeline": row_pipeline,
    "phase1": row_phase1,
    "train_step": row_train_step,
    "cnn_bfloat16": row_cnn_bfloat16,
    "cnn_width": row_cnn_width,
    "cnn_batch": row_cnn_batch,
    "pipeline_vs_cnn": row_pipeline_vs_cnn,
    "evaluate": row_evaluate,
    "explain": lambda paths, labels, source: _explain_rows().row_explain(paths, labels, source),
    "boxes": lambda *row_args: __import__("boxes_rows").row_boxes(*row_args),
    "app": lambda *row_args: __import__("app_rows").row_app(*row_args),
    "fast_cnn": lambda *row_args: __import__("fast_cnn_rows").row_fast_cnn(*row_args),
    "cnn_recipe": lambda *row_args: __import__("cnn_recipe_rows").row_cnn_recipe(*row_args),
}


def _explain_rows():
    """Import the saliency benchmark row (next to this script, so on the script's path)."""
    import explain_rows

    return explain_rows


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmark rows and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {list(ROWS)}")
    parser.add_argument("--files", type=int, default=1024, help="images used by the data rows")
    args = parser.parse_args(argv)
    paths, labels, source = sample_files(args.files)
    results = []
    for name in args.rows.split(","):
        if name not in ROWS:
            parser.error(f"unknown row {name!r}; choose from {list(ROWS)}")
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        if name == "pipeline_vs_cnn":
            cnn = next((r["value"] for r in results if r["row"] == "_cnn_rate"), None)
            results += row_pipeline_vs_cnn(paths, labels, source, cnn)
        else:
            results += ROWS[name](paths, labels, source)
    results = [r for r in results if not r["row"].startswith("_")]
    print(f"\nMachine: {os.cpu_count()} CPU cores; {source}\n")
    print("| benchmark | A | B | A/B | note |\n|---|---|---|---:|---|")
    for r in results:
        print(f"| {r['row']} | {r['a']} | {r['b']} | {r['ratio']:.1f}× | {r['note']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
