"""Benchmark row: ``data boxes`` on the shared Training copy: seconds and match rates."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(
    os.environ.get("BTMRI_REAL_DATA", REPO.parent / "shared/datasets/brain-tumor-mri-224")
)
#: The issue's bar: seconds for the whole Training copy on 2 cores.
TARGET_SECONDS = 30.0
CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def row_boxes(paths: list[str], labels: list[str], source: str) -> list[dict]:
    """Time ``python -m course_utils data boxes`` on the real Training copy (all files)."""
    if not (REAL_DATA / "Training").is_dir():
        note = f"skipped: no real data at {REAL_DATA}"
        return [{"row": "data boxes", "a": "n/a", "b": "n/a", "ratio": float("nan"), "note": note}]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "boxes.csv"
        command = [sys.executable, "-m", "course_utils", "data", "boxes", str(REAL_DATA)]
        started = time.perf_counter()
        subprocess.run(
            [*command, "--out", str(out)],
            check=True,
            capture_output=True,
            env={**os.environ, "BTMRI_QUIET": "1"},
            cwd=REPO,
        )
        seconds = time.perf_counter() - started
        found = pd.read_csv(out)["label"].value_counts()
    totals = {c: len(list((REAL_DATA / "Training" / c).glob("*.jpg"))) for c in CLASSES}
    rates = ", ".join(
        f"{c} {found.get(c, 0)}/{n} ({found.get(c, 0) / n:.1%})" for c, n in totals.items()
    )
    return [
        {
            "row": "data boxes, real Training copy",
            "a": f"course {seconds:.1f} s",
            "b": f"target {TARGET_SECONDS:.0f} s",
            "ratio": seconds / TARGET_SECONDS,
            "note": f"{sum(totals.values())} files, whole command; matched {rates}; "
            f"{os.cpu_count()} cores",
        }
    ]
