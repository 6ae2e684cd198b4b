"""Rebuild ``course_utils/data/figshare_boxes.npz`` from a copy of the figshare tumor boxes.

Usage::

    python scripts/build_figshare_reference.py \
        --figshare ../shared/datasets/figshare-tumor-boxes \
        --out course_utils/data/figshare_boxes.npz

The input folder holds ``boxes.csv`` (``file,label,x_center,y_center,width,height``) and
``images/<class>/<id>.jpg``; see course_utils/data/figshare.py for the file's contents.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from course_utils.data import figshare

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Build the reference and write it; print its size and the time taken."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--figshare",
        type=Path,
        default=REPO.parent / "shared/datasets/figshare-tumor-boxes",
        help="folder with boxes.csv and images/<class>/<id>.jpg",
    )
    parser.add_argument("--out", type=Path, default=figshare.default_reference_path())
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        reference = figshare.build_reference(args.figshare)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    path = figshare.save_reference(reference, args.out)
    print(
        f"Wrote {path}: {len(reference)} slices, {path.stat().st_size / 2**20:.2f} MiB, "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
