"""Audit a dataset: unreadable files, exact and near duplicates, train/test leakage.

Exact duplicates share a SHA-256 content hash. Near duplicates are pictures whose
32x32 grayscale thumbnails correlate at ``near_threshold`` or more (Pearson): the
same slice re-encoded, rescaled or re-windowed scores above 0.999, while different
slices of different patients rarely pass 0.99. (A 64-bit perceptual hash is the
textbook tool, but axial brain slices share so much low-frequency structure that
it gives hundreds of false matches on this data.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from course_utils import config, course
from course_utils.data.scan import ScanResult, inspect_images, scan_dataset

#: Default correlation above which two thumbnails count as the same picture.
NEAR_THRESHOLD = 0.99


@dataclass
class AuditReport:
    """Everything the audit found; ``to_dict`` is the JSON the CLI writes.

    Attributes:
        root: The dataset root.
        table: One row per file: scan columns, ``inspect_file`` columns, and ``group``
            (files in one exact/near duplicate group share it; -1 for unreadable files).
        scan: The folder scan (unknown folders, empty classes, ignored files).
        exact_groups: Lists of paths with identical bytes (readable files only).
        near_groups: Groups of two or more different files that look the same.
        leaks: One entry per test file whose duplicate group reaches into training.
        label_conflicts: Duplicate groups whose files carry more than one label.
        near_pairs: Every matched pair of different files: ``first``, ``second`` (paths)
            and ``similarity`` (thumbnail correlation).
        near_threshold: The correlation threshold used.
        seconds: Wall time of the audit.
    """

    root: Path
    table: pd.DataFrame
    scan: ScanResult
    exact_groups: list[list[str]] = field(default_factory=list)
    near_groups: list[list[str]] = field(default_factory=list)
    leaks: list[dict] = field(default_factory=list)
    label_conflicts: list[dict] = field(default_factory=list)
    near_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    near_threshold: float = NEAR_THRESHOLD
    seconds: float = 0.0

    @property
    def readable(self) -> pd.DataFrame:
        """The rows of the files that decode."""
        return self.table[self.table["readable"].astype(bool)]

    @property
    def unreadable(self) -> pd.DataFrame:
        """Path, split, label and reason of each file that does not decode."""
        bad = self.table[~self.table["readable"].astype(bool)]
        return bad[["path", "split", "label", "error"]].reset_index(drop=True)

    @property
    def exact_copies(self) -> int:
        """How many files are extra byte-identical copies of another file."""
        return sum(len(group) - 1 for group in self.exact_groups)

    @property
    def leak_free_test(self) -> list[str]:
        """Readable test files whose duplicate group holds no training file."""
        leaked = {leak["test"] for leak in self.leaks}
        test = self.readable[self.readable["split"] == config.TEST_SPLIT]
        return [path for path in test["path"] if path not in leaked]

    def counts(self) -> pd.DataFrame:
        """Readable images per class (rows) and split (columns), with totals."""
        counts = pd.crosstab(self.readable["label"], self.readable["split"])
        return counts.reindex(columns=[s for s in config.SPLIT_NAMES if s in counts.columns])

    def summary(self) -> dict[str, int | float]:
        """The headline numbers of the audit, for a table or a log line."""
        test_files = int((self.readable["split"] == config.TEST_SPLIT).sum())
        return {
            "files": len(self.table),
            "readable": len(self.readable),
            "unreadable": len(self.unreadable),
            "exact_duplicate_groups": len(self.exact_groups),
            "exact_duplicate_copies": self.exact_copies,
            "near_duplicate_groups": len(self.near_groups),
            "test_files": test_files,
            "test_files_leaked": len(self.leaks),
            "leak_free_test_files": len(self.leak_free_test),
            "label_conflict_groups": len(self.label_conflicts),
            "seconds": round(self.seconds, 2),
        }

    def to_dict(self) -> dict:
        """Return the whole report as JSON-ready data (paths relative to the root)."""
        counts = self.counts()
        return {
            "root": str(self.root),
            "near_threshold": self.near_threshold,
            "summary": self.summary(),
            "counts": {s: counts[s].astype(int).to_dict() for s in counts.columns},
            "unreadable": self.unreadable.to_dict(orient="records"),
            "unknown_folders": self.scan.unknown_folders,
            "empty_classes": self.scan.empty_classes,
            "missing_classes": self.scan.missing_classes,
            "ignored_files": self.scan.ignored_files,
            "exact_duplicate_groups": self.exact_groups,
            "near_duplicate_groups": self.near_groups,
            "cross_split_leaks": self.leaks,
            "label_conflicts": self.label_conflicts,
            "leak_free_test": self.leak_free_test,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``to_dict()`` as indented JSON (parent folders are created).

        Args:
            path: The JSON file to write.

        Returns:
            The path written.
        """
        return course.write_json(self.to_dict(), path)


def similar_pairs(thumbnails: np.ndarray, threshold: float, chunk_size: int = 1024) -> pd.DataFrame:
    """Find all pairs of thumbnails whose correlation reaches a threshold.

    Args:
        thumbnails: Array (n, d) of zero-mean unit-length vectors (``normalised_thumbnail``).
        threshold: Smallest correlation that counts as a match, in (0, 1].
        chunk_size: Rows compared at once (bounds memory to chunk_size * n floats).

    Returns:
        A table with columns ``first``, ``second`` (row indices, first < second) and
        ``similarity``.

    Raises:
        ValueError: If the threshold is outside (0, 1].
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"near_threshold must be in (0, 1], got {threshold}.")
    firsts, seconds, values = [], [], []
    for start in range(0, len(thumbnails), chunk_size):
        block = thumbnails[start : start + chunk_size] @ thumbnails.T
        rows, cols = np.nonzero(block >= threshold - 1e-6)
        keep = cols > rows + start
        firsts.append(rows[keep] + start)
        seconds.append(cols[keep])
        values.append(block[rows[keep], cols[keep]])
    if not firsts:
        return pd.DataFrame({"first": [], "second": [], "similarity": []})
    return pd.DataFrame(
        {
            "first": np.concatenate(firsts),
            "second": np.concatenate(seconds),
            "similarity": np.concatenate(values).astype(float),
        }
    )


def duplicate_groups(table: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """Label each file with its duplicate group: connected exact or near matches.

    Args:
        table: File table with ``readable`` and ``sha256`` columns.
        pairs: Near-duplicate pairs from ``similar_pairs`` (row indices into ``table``).

    Returns:
        An int array, one group id per row; -1 for unreadable files.
    """
    size = len(table)
    first, second = list(pairs["first"]), list(pairs["second"])
    readable = table["readable"].astype(bool).to_numpy()
    for _, rows in table[readable].groupby("sha256").groups.items():
        rows = list(rows)
        first += rows[:-1]
        second += rows[1:]
    graph = coo_matrix((np.ones(len(first)), (first, second)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    return np.where(readable, labels, -1)


def audit_dataset(
    root: str | Path,
    class_names: tuple[str, ...] = config.CLASS_NAMES,
    near_threshold: float = NEAR_THRESHOLD,
    progress: bool | None = None,
) -> AuditReport:
    """Audit a dataset in the Kaggle layout.

    Args:
        root: The dataset root (holds ``Training/`` and optionally ``Testing/``).
        class_names: The classes of the course.
        near_threshold: Thumbnail correlation from which two files are near duplicates.
        progress: Draw a progress bar; None means ``config.show_progress()``.

    Returns:
        The ``AuditReport``.

    Raises:
        FileNotFoundError: If ``root`` does not exist.
        ValueError: If ``root`` is not in the Kaggle layout or the threshold is invalid.
    """
    started = time.perf_counter()
    scan = scan_dataset(root, class_names)
    table, thumbnails = inspect_images(scan, progress=progress)
    readable_rows = np.flatnonzero(table["readable"].astype(bool).to_numpy())
    pairs = similar_pairs(thumbnails[readable_rows], near_threshold)
    pairs[["first", "second"]] = readable_rows[pairs[["first", "second"]].to_numpy(dtype=int)]
    table["group"] = duplicate_groups(table, pairs)
    report = AuditReport(root=scan.root, table=table, scan=scan, near_threshold=near_threshold)
    paths = table["path"].to_numpy()
    report.near_pairs = pd.DataFrame(
        {
            "first": paths[pairs["first"].to_numpy(int)],
            "second": paths[pairs["second"].to_numpy(int)],
            "similarity": pairs["similarity"].to_numpy(),
        }
    )
    report.exact_groups = _exact_groups(report.readable)
    report.near_groups = _near_groups(report.readable)
    report.leaks = _cross_split_leaks(table, thumbnails)
    report.label_conflicts = _label_conflicts(report.readable)
    report.seconds = time.perf_counter() - started
    return report


def _exact_groups(readable: pd.DataFrame) -> list[list[str]]:
    """Group paths with the same content hash (groups of two or more)."""
    groups = readable.groupby("sha256")["path"].apply(sorted)
    return sorted(group for group in groups if len(group) > 1)


def _near_groups(readable: pd.DataFrame) -> list[list[str]]:
    """Duplicate groups that hold at least two different files (not only exact copies)."""
    groups = readable.groupby("group").agg(paths=("path", sorted), hashes=("sha256", "nunique"))
    return sorted(row.paths for row in groups.itertuples() if row.hashes > 1)


def _cross_split_leaks(table: pd.DataFrame, thumbnails: np.ndarray) -> list[dict]:
    """For each test file, the training files in its duplicate group.

    A group is transitive (A~B and B~C puts A, B and C together), so a test file also
    leaks when it reaches a training file through another file: the strict reading.
    """
    readable = table[table["readable"].astype(bool)]
    leaks = []
    for _, members in readable.groupby("group"):
        train = members[members["split"] == config.TRAIN_SPLIT]
        if train.empty:
            continue
        for test in members[members["split"] == config.TEST_SPLIT].itertuples():
            similarity = thumbnails[train.index] @ thumbnails[test.Index]
            exact = bool((train["sha256"] == test.sha256).any())
            leaks.append(
                {
                    "test": test.path,
                    "kind": "exact" if exact else "near",
                    "train": sorted(train["path"]),
                    "similarity": round(float(similarity.max()), 5),
                }
            )
    return sorted(leaks, key=lambda leak: leak["test"])


def _label_conflicts(readable: pd.DataFrame) -> list[dict]:
    """Duplicate groups whose members carry different class labels."""
    conflicts = []
    for _, members in readable.groupby("group"):
        if members["label"].nunique() > 1:
            conflicts.append(
                {"paths": sorted(members["path"]), "labels": sorted(members["label"].unique())}
            )
    return conflicts


def example_pairs(report: AuditReport, kind: str, count: int = 4) -> list[tuple[str, str, str]]:
    """Pick pairs of files to show for one kind of finding, spread over all findings.

    Args:
        report: The audit report.
        kind: ``"exact"``, ``"near"`` (not byte-identical), ``"leak"`` or ``"conflict"``.
        count: Most pairs to return.

    Returns:
        ``(first path, second path, caption)`` triples, for ``viz.plot_image_pairs``.

    Raises:
        ValueError: If ``kind`` is unknown.
    """
    labels = dict(zip(report.table["path"], report.table["label"], strict=True))
    if kind == "exact":
        pairs = [(g[0], g[1], "byte-identical") for g in report.exact_groups]
    elif kind == "near":
        hashes = dict(zip(report.table["path"], report.table["sha256"], strict=True))
        near = report.near_pairs
        near = near[
            [hashes[a] != hashes[b] for a, b in zip(near["first"], near["second"], strict=True)]
        ]
        pairs = [(a, b, f"near duplicate, r={r:.4f}") for a, b, r in near.itertuples(index=False)]
    elif kind == "leak":
        pairs = [
            (leak["train"][0], leak["test"], f"{leak['kind']} leak, r={leak['similarity']:.4f}")
            for leak in report.leaks
        ]
    elif kind == "conflict":
        pairs = [
            (c["paths"][0], c["paths"][1], " vs ".join(labels[p] for p in c["paths"][:2]))
            for c in report.label_conflicts
        ]
    else:
        raise ValueError(f"Unknown kind {kind!r}; use 'exact', 'near', 'leak' or 'conflict'.")
    picks = np.unique(np.linspace(0, len(pairs) - 1, num=min(count, len(pairs))).astype(int))
    return [pairs[i] for i in picks] if pairs else []
