"""The Markdown summary notebook 01 leaves for ``make demo``, computed from the run's numbers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from course_utils import course

if TYPE_CHECKING:
    from course_utils.data.audit import AuditReport

#: The notebook whose summary this is.
NOTEBOOK = "01_data"


def data_summary_lines(
    source_description: str, report: AuditReport, naive: dict, split_table: pd.DataFrame
) -> list[str]:
    """Say in Markdown what notebook 01 found and left for the next lessons.

    Args:
        source_description: ``DatasetSource.description``: where the data came from.
        report: The audit of the data.
        naive: ``splits.random_split_leakage``'s result.
        split_table: ``splits.split_counts``' table (with its ``total`` row).

    Returns:
        The summary's lines, heading first.
    """
    summary = report.summary()
    split_sizes = ", ".join(f"{name} {count:,}" for name, count in split_table.loc["total"].items())
    return [
        "## 01 · Data",
        "",
        f"- Source: {source_description}",
        f"- Files read: {summary['files']:,} ({summary['unreadable']} unreadable) "
        f"in {report.seconds:.1f} s",
        f"- Exact duplicate copies: {summary['exact_duplicate_copies']}; "
        f"near-duplicate groups: {summary['near_duplicate_groups']}",
        leaked_test_images_line(summary),
        naive_split_line(naive),
        f"- Splits: {split_sizes}",
    ]


def leaked_test_images_line(summary: dict) -> str:
    """Say how many test images have a duplicate in Training; "none" when none has.

    Args:
        summary: ``AuditReport.summary()`` (``test_files``, ``test_files_leaked``).

    Returns:
        One Markdown list line.
    """
    leaked, total = summary.get("test_files_leaked", 0), summary.get("test_files", 0)
    if not total:
        return "- No Testing folder: the test split is carved out of Training by duplicate group"
    if not leaked:
        return f"- Test images with a duplicate in Training: none of {total} (no leak found)"
    return f"- Test images with a duplicate in Training: {leaked} of {total}"


def naive_split_line(naive: dict) -> str:
    """Say what a naive random split would leak, honestly when the answer is nothing.

    Args:
        naive: ``splits.random_split_leakage``'s result.

    Returns:
        One Markdown list line; with no leak, it says that no leak was planted or found
        here, so this data cannot show what the grouped split prevents.
    """
    if not naive["leaked"]:
        return (
            f"- A naive random split would leak none of {naive['test_images']} test images: "
            "no duplicates were planted or found to leak, so this data cannot show what the "
            "grouped split prevents"
        )
    return (
        f"- A naive random split would leak {naive['leaked']} of {naive['test_images']} "
        f"test images ({naive['share']:.1%}); the course's grouped split keeps every duplicate "
        "group on one side, so it leaks none"
    )


def write_data_summary(
    artifacts_dir: str | Path,
    source_description: str,
    report: AuditReport,
    naive: dict,
    split_table: pd.DataFrame,
) -> list[str]:
    """Write notebook 01's summary to ``ARTIFACTS_DIR/summary/01_data.md`` and return it.

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.
        source_description: ``DatasetSource.description``.
        report: The audit of the data.
        naive: ``splits.random_split_leakage``'s result.
        split_table: ``splits.split_counts``' table.

    Returns:
        The lines written (``data_summary_lines``).
    """
    lines = data_summary_lines(source_description, report, naive, split_table)
    course.write_summary(artifacts_dir, NOTEBOOK, lines)
    return lines
