"""Where notebooks leave files for the next notebook, in one place.

Notebooks hand off through ``ARTIFACTS_DIR`` only (never through globals)::

    ARTIFACTS_DIR/
      audit.json            # notebook 01: the data audit
      splits/               # notebook 01: train/val/test/test_leakfree CSVs + dataset.json
      figures/              # every notebook: PNG figures
      summary/<notebook>.md # every notebook: a few computed lines for the demo summary
"""

from __future__ import annotations

from pathlib import Path


def figures_dir(artifacts_dir: str | Path) -> Path:
    """Return the figures folder of a run (not created here).

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.

    Returns:
        ``ARTIFACTS_DIR/figures``.
    """
    return Path(artifacts_dir) / "figures"


def splits_dir(artifacts_dir: str | Path) -> Path:
    """Return the folder of the saved splits (not created here).

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.

    Returns:
        ``ARTIFACTS_DIR/splits``.
    """
    return Path(artifacts_dir) / "splits"


def audit_path(artifacts_dir: str | Path) -> Path:
    """Return the path of the audit report (not created here).

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.

    Returns:
        ``ARTIFACTS_DIR/audit.json``.
    """
    return Path(artifacts_dir) / "audit.json"


def summary_path(artifacts_dir: str | Path, notebook: str) -> Path:
    """Return where a notebook's summary snippet goes (not created here).

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.
        notebook: The notebook's name, e.g. ``"01_data"``.

    Returns:
        ``ARTIFACTS_DIR/summary/<notebook>.md``.
    """
    return Path(artifacts_dir) / "summary" / f"{notebook}.md"


def write_summary(artifacts_dir: str | Path, notebook: str, lines: list[str]) -> Path:
    """Leave a Markdown snippet that ``make demo`` adds to ``runs/demo/summary.md``.

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.
        notebook: The notebook's name, e.g. ``"01_data"``.
        lines: Markdown lines, computed from the run's numbers.

    Returns:
        The snippet's path.

    Raises:
        ValueError: If ``lines`` is empty.
    """
    if not lines:
        raise ValueError(f"The summary of {notebook} is empty; pass at least one line.")
    path = summary_path(artifacts_dir, notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
