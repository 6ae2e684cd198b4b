"""Notebook 01's summary: Markdown lines computed from the audit and the splits."""

from __future__ import annotations

from pathlib import Path

from course_utils import course
from course_utils.data import run_summary, splits


def test_write_data_summary_reports_the_run(phantom_audit, tmp_path: Path) -> None:
    parts = splits.make_splits(phantom_audit.table, seed=3)
    naive = splits.random_split_leakage(phantom_audit.table, seed=3)
    table = splits.split_counts(parts)
    lines = run_summary.write_data_summary(tmp_path, "test phantoms", phantom_audit, naive, table)
    assert lines[0] == "## 01 · Data"
    assert course.summary_path(tmp_path, "01_data").read_text() == "\n".join(lines) + "\n"
    text = "\n".join(lines)
    audit_summary = phantom_audit.summary()
    assert "- Source: test phantoms" in text
    assert (
        f"Files read: {audit_summary['files']:,} ({audit_summary['unreadable']} unreadable)" in text
    )
    assert f"Exact duplicate copies: {phantom_audit.exact_copies};" in text
    leaked = audit_summary["test_files_leaked"]
    assert leaked and naive["leaked"]  # the phantoms plant leaks
    assert f"duplicate in Training: {leaked} of {audit_summary['test_files']}" in text
    assert f"would leak {naive['leaked']} of {naive['test_images']}" in text
    assert f"train {len(parts['train']):,}, val {len(parts['val']):,}" in lines[-1]


def test_no_leak_is_reported_as_none_not_as_a_punchline() -> None:
    naive = {"leaked": 0, "test_images": 120, "share": 0.0}
    line = run_summary.naive_split_line(naive)
    assert line.startswith("- A naive random split would leak none of 120 test images")
    assert "no duplicates were planted or found" in line and "leaks none" not in line
    assert "leaks none" in run_summary.naive_split_line({**naive, "leaked": 5, "share": 0.04})
    clean = run_summary.leaked_test_images_line({"test_files": 43, "test_files_leaked": 0})
    assert clean == "- Test images with a duplicate in Training: none of 43 (no leak found)"
    assert "3 of 43" in run_summary.leaked_test_images_line(
        {"test_files": 43, "test_files_leaked": 3}
    )
    assert "No Testing folder" in run_summary.leaked_test_images_line({"test_files": 0})
