"""Collect measured run times into the one table the docs quote.

A run of the notebooks (``make demo``) leaves ``<run>/summary.json``: one *record* of how long
each notebook and each model's training took, on which machine, under which load. The course
keeps its records in ``docs/run_times.json`` and renders them to ``docs/run_times.md``
(``python -m course_utils times``); every run time the course quotes comes from that table.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path

from course_utils import course

#: Where the course keeps its records and its rendered table (relative to the repository).
RECORDS_FILE = "docs/run_times.json"
TABLE_FILE = "docs/run_times.md"
#: Keys every record must hold (``check_record``).
REQUIRED_RECORD_KEYS = ("label", "mode", "date", "machine", "notebooks", "total_seconds", "ok")
#: How a record was measured: ``make demo``'s fast mode, or the full course.
MODES = ("fast", "full")
#: What to do when a run folder has no record.
RUN_FIX = "run `make demo` (or `python -m course_utils demo --out DIR`) first"
#: A table cell without a measurement.
MISSING = "—"


def record_path(run_dir: str | Path) -> Path:
    """Return where a run writes its record: ``run_dir/summary.json`` (not created here)."""
    return Path(run_dir) / "summary.json"


def format_seconds(seconds: float) -> str:
    """Write a duration the way the table shows it.

    Args:
        seconds: A duration in seconds.

    Returns:
        ``"73.8 s"`` below two minutes, else minutes with one decimal (``"10.1 min"``).

    Raises:
        ValueError: If ``seconds`` is negative.
    """
    if seconds < 0:
        raise ValueError(f"A run time cannot be negative ({seconds} s); check the record.")
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def cpu_model() -> str:
    """Return the CPU's name: ``model name`` of ``/proc/cpuinfo``, else ``platform.processor()``.

    Returns:
        The name, or ``"unknown"`` when neither source says.
    """
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or "unknown"


def load_average() -> float | None:
    """Return the 1-minute load average now, or None where the system does not report it."""
    getloadavg = getattr(os, "getloadavg", None)
    if getloadavg is None:
        return None
    try:
        return round(getloadavg()[0], 2)
    except OSError:
        return None


def package_version(package: str) -> str | None:
    """Return an installed package's version without importing it (None if absent)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_facts() -> dict:
    """Describe this machine and its load now, as a record's ``machine``.

    Returns:
        ``{"cpu_cores", "cpu_model", "load_average_1min", "python", "tensorflow", "keras"}``.
    """
    return {
        "cpu_cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average_1min": load_average(),
        "python": platform.python_version(),
        "tensorflow": package_version("tensorflow"),
        "keras": package_version("keras"),
    }


def training_seconds(artifacts_dir: str | Path) -> dict[str, float]:
    """Read each trained model's training time from its card.

    Args:
        artifacts_dir: The run's ``ARTIFACTS_DIR``.

    Returns:
        ``{model name: card["training_seconds"]}`` for the course's models whose card exists.

    Raises:
        ValueError: If a card exists but is not valid (``cards.load_card``).
    """
    from course_utils import cards  # imports pandas: keep `python -m course_utils` light

    found = {}
    for name in course.MODEL_NAMES:
        model_file = course.model_path(artifacts_dir, name)
        if course.card_path(model_file).is_file():
            found[name] = cards.load_card(model_file)["training_seconds"]
    return found


def run_record(
    out_dir: str | Path,
    results: Sequence[Mapping],
    label: str = "fast mode (make demo)",
    mode: str = "fast",
) -> dict:
    """Make the record of one run of the notebooks, at the time of writing.

    Args:
        out_dir: The run folder (models and cards in ``out_dir/artifacts``).
        results: What ``demo.run_notebook`` returned for each notebook
            (``notebook``, ``seconds``, ``ok``).
        label: The record's name: its column in the table (one record per label).
        mode: ``"fast"`` or ``"full"``.

    Returns:
        ``{"label", "mode", "date", "machine", "notebooks", "total_seconds", "ok",
        "training_seconds"}``.

    Raises:
        ValueError: If ``mode`` is not ``"fast"`` or ``"full"``.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; use one of {MODES}.")
    notebooks = {result["notebook"]: result["seconds"] for result in results}
    return {
        "label": label,
        "mode": mode,
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "machine": machine_facts(),
        "notebooks": notebooks,
        "total_seconds": round(sum(notebooks.values()), 1),
        "ok": all(result["ok"] for result in results),
        "training_seconds": training_seconds(Path(out_dir) / "artifacts"),
    }


def check_record(record: object, where: str | Path) -> dict:
    """Check a record holds every required key.

    Args:
        record: What was read.
        where: The file it came from (for the message).

    Returns:
        The record.

    Raises:
        ValueError: If it is not a JSON object or lacks keys.
    """
    if not isinstance(record, dict):
        raise ValueError(f"A run-time record in {where} is not a JSON object: {record!r:.80}.")
    missing = [key for key in REQUIRED_RECORD_KEYS if key not in record]
    if missing:
        raise ValueError(
            f"The run-time record {record.get('label', '(no label)')!r} in {where} lacks "
            f"{missing}; re-measure it ({RUN_FIX}) or add the keys."
        )
    return record


def read_record(run_dir: str | Path) -> dict:
    """Read the record a run left in ``run_dir/summary.json``.

    Args:
        run_dir: A run folder of ``make demo`` / ``python -m course_utils demo``.

    Returns:
        The record.

    Raises:
        FileNotFoundError: If the run left no ``summary.json``.
        ValueError: If it is not valid JSON or lacks required keys.
    """
    path = record_path(run_dir)
    return check_record(course.read_json(path, "run summary", RUN_FIX), path)


def load_records(path: str | Path, required: bool = True) -> list[dict]:
    """Read the course's records: a JSON list of records (``docs/run_times.json``).

    Args:
        path: The records file.
        required: Raise when it is missing (else return an empty list).

    Returns:
        The records, in file order.

    Raises:
        FileNotFoundError: If a required file is missing.
        ValueError: If it is not a JSON list of complete records.
    """
    fix = f"create them from a run: `python -m course_utils times runs/demo --records {path}`"
    records = course.read_json(path, "run-time records", fix, required, expected=list)
    return [check_record(record, Path(path)) for record in records or []]


def save_records(path: str | Path, records: Sequence[Mapping]) -> Path:
    """Write the records as a JSON list (the folder is created).

    Args:
        path: The records file.
        records: The records, in the order the table shows them.

    Returns:
        The path written.
    """
    return course.write_json(list(records), path)


def merge_record(records: Sequence[Mapping], record: Mapping) -> list[dict]:
    """Put a record among the others: replace the one with its label, else append it.

    Args:
        records: The records so far (not changed).
        record: The new record.

    Returns:
        A new list in the same order.
    """
    merged = [dict(old) for old in records]
    for index, old in enumerate(merged):
        if old["label"] == record["label"]:
            merged[index] = dict(record)
            return merged
    return [*merged, dict(record)]


def add_runs(
    records_file: str | Path,
    run_dirs: Sequence[str | Path],
    label: str | None = None,
    mode: str | None = None,
) -> list[dict]:
    """Merge the records of run folders into the records file and save it.

    Args:
        records_file: The records file; created when missing and ``run_dirs`` is not empty.
        run_dirs: Run folders holding ``summary.json``; none means read the file only.
        label: Rename each run's record (only with one run folder).
        mode: Override each run's mode (``"fast"`` or ``"full"``).

    Returns:
        The records after merging.

    Raises:
        FileNotFoundError: If a run folder has no record, or no run folder is given and the
            records file is missing.
        ValueError: If ``label`` is given with several run folders, or ``mode`` is unknown.
    """
    if mode is not None and mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; use one of {MODES}.")
    if label is not None and len(run_dirs) > 1:
        raise ValueError(
            f"--label {label!r} names one record but {len(run_dirs)} run folders were given; "
            "pass one run folder per call."
        )
    records = load_records(records_file, required=not run_dirs)
    for run_dir in run_dirs:
        record = read_record(run_dir)
        record.update({"label": label or record["label"], "mode": mode or record["mode"]})
        records = merge_record(records, record)
    if run_dirs:
        save_records(records_file, records)
    return records


def _ordered(names: Sequence[str], preferred: Sequence[str]) -> list[str]:
    """Return ``names`` without repeats: those of ``preferred`` first in its order, then others."""
    unique = list(dict.fromkeys(names))
    return [n for n in preferred if n in unique] + [n for n in unique if n not in preferred]


def _cell(values: Mapping, key: str) -> str:
    """Return a table cell: the formatted duration of ``values[key]``, or ``MISSING``."""
    value = values.get(key)
    return MISSING if value is None else format_seconds(value)


def _machine_line(record: Mapping) -> str:
    """Describe one record's run in a bullet: label, date, machine, load, note."""
    machine = record.get("machine") or {}
    cores = machine.get("cpu_cores") or "?"
    tensorflow, keras = machine.get("tensorflow"), machine.get("keras")
    libraries = f"TensorFlow {tensorflow or 'not installed'} / Keras {keras or 'not installed'}"
    load = machine.get("load_average_1min")
    load_text = (
        "load average not recorded"
        if load is None
        else f"load average {load:.1f} on {cores} cores when recorded"
    )
    line = (
        f"- **{record['label']}** ({record['mode']} mode, {record['date']}): {cores} cores, "
        f"{machine.get('cpu_model', 'unknown CPU')}, Python {machine.get('python', '?')}, "
        f"{libraries}; {load_text}."
    )
    if not record["ok"]:
        line += " Not every notebook finished (see the run's `summary.md`)."
    return f"{line} {record['note']}" if record.get("note") else line


def _table_lines(records: Sequence[Mapping]) -> list[str]:
    """Return the table's lines: a row per notebook, the total, a row per trained model."""
    notebooks = _ordered(
        [name for record in records for name in record["notebooks"]],
        course.NOTEBOOKS + course.PRACTICE_NOTEBOOKS,
    )
    models = _ordered(
        [name for record in records for name in record.get("training_seconds") or {}],
        course.MODEL_NAMES,
    )
    lines = [
        "| notebook | " + " | ".join(record["label"] for record in records) + " |",
        "|---|" + "---:|" * len(records),
    ]
    lines += [
        f"| {name} | " + " | ".join(_cell(r["notebooks"], name) for r in records) + " |"
        for name in notebooks
    ]
    totals = [f"**{format_seconds(record['total_seconds'])}**" for record in records]
    lines.append("| **total** | " + " | ".join(totals) + " |")
    return lines + [
        f"| training: {course.display_name(name)} | "
        + " | ".join(_cell(r.get("training_seconds") or {}, name) for r in records)
        + " |"
        for name in models
    ]


def render_table(records: Sequence[Mapping]) -> str:
    """Render the records as the Markdown page the docs quote (``docs/run_times.md``).

    Args:
        records: The records; one column each, in this order.

    Returns:
        The page: a do-not-edit header, one table (a row per notebook, the total, a row per
        trained model) and one bullet per record saying where and when it was measured.

    Raises:
        ValueError: If ``records`` is empty.
    """
    if not records:
        raise ValueError(
            "No run-time records to render; add one with `python -m course_utils times RUN_DIR`."
        )
    header = [
        "# Measured run times",
        "",
        f"Generated by `python -m course_utils times` from `{RECORDS_FILE}`: do not edit by "
        "hand (re-measure, then re-run the command).",
        "",
    ]
    bullets = [_machine_line(record) for record in records]
    return "\n".join([*header, *_table_lines(records), "", *bullets, ""])


def write_table(path: str | Path, records: Sequence[Mapping]) -> Path:
    """Write ``render_table(records)`` to ``path`` (the folder is created).

    Args:
        path: The Markdown file, e.g. ``docs/run_times.md``.
        records: The records.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_table(records))
    return path
