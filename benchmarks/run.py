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
REAL_DATA = Path(os.environ.get("BTMRI_REAL_DATA", REPO.parent / "shared/datasets/brain-tumor-mri-224"))


def sample_files(count: int, seed: int = 0) -> tuple[list[str], list[str], str]:
    """Pick up to ``count`` image files (real data if present) with their labels."""
    if (REAL_DATA / "Training").is_dir():
        root, source = REAL_DATA, f"real data ({REAL_DATA.name})"
    else:
        from course_utils.synthetic import synthesize_dataset

        root = Path(tempfile.mkdtemp()) / "phantoms"
        synthesize_dataset(root, per_class=max(1, count // 4), image_size=224, seed=seed,
                           plant_issues=False, progress=False)
        source = "phantoms"
    files = sorted((root / "Training").glob("*/*.jpg"))
    rng = np.random.default_rng(seed)
    chosen = [files[i] for i in sorted(rng.choice(len(files), min(count, len(files)), replace=False))]
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
        batch = [np.asarray(Image.open(p).convert("RGB").resize((image_size, image_size),
                                                               Image.Resampling.BILINEAR))
                 for p in paths[start:start + batch_size]]
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
    return [{"row": "input pipeline, 224 px, uncached pass",
             "a": f"tf.data {tf_rate:,.0f} img/s", "b": f"PIL loop {pil_rate:,.0f} img/s",
             "ratio": tf_rate / pil_rate, "note": f"{len(paths)} files, {source}"}]


ROWS = {"pipeline": row_pipeline}


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
        results += ROWS[name](paths, labels, source)
    print(f"\nMachine: {os.cpu_count()} CPU cores; {source}\n")
    print("| benchmark | A | B | A/B | note |\n|---|---|---|---:|---|")
    for r in results:
        print(f"| {r['row']} | {r['a']} | {r['b']} | {r['ratio']:.1f}× | {r['note']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
