"""Run the course's notebooks headless (papermill) and summarise the run from its files."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path

from course_utils import config, course, run_times

#: Lines that are log noise, not lesson output: TensorFlow's C++ log lines (``I0000 …``,
#: ``E0000 … cuInit``), absl's start-up warning and Python warnings, Keras retracing warnings.
NOISE_PATTERNS = (
    re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d"),
    re.compile(r"absl::InitializeLog|^WARNING:absl|cuInit|oneDNN custom operations"),
    re.compile(r"triggered tf\.function retracing"),
)

#: Parameters every notebook takes in fast mode on phantoms.
FAST_PARAMETERS = {"FAST_MODE": True, "DATA_SOURCE": "phantoms", "SEED": config.DEFAULT_SEED}


def summary_path(out_dir: str | Path) -> Path:
    """Return where ``run_demo`` writes the run's summary: ``out_dir/summary.md``."""
    return Path(out_dir) / "summary.md"


def run_notebook(
    name: str, out_dir: str | Path, parameters: dict, folder: str | Path | None = None
) -> dict:
    """Execute one notebook with papermill and save the executed copy.

    Args:
        name: Notebook name without ending, e.g. ``"01_data"``.
        out_dir: Folder for the executed notebook.
        parameters: Values injected after the ``parameters`` cell.
        folder: Where the notebooks are; None means ``course.notebooks_dir()``.

    Returns:
        ``{"notebook", "seconds", "output", "ok", "error"}``.
    """
    import papermill

    source = Path(folder or course.notebooks_dir()) / f"{name}.ipynb"
    output = Path(out_dir) / f"{name}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = {"notebook": name, "output": str(output), "ok": True, "error": ""}
    try:
        papermill.execute_notebook(
            source,
            output,
            parameters=parameters,
            cwd=source.parent,
            kernel_name="python3",
            progress_bar=False,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no start-up warnings
        )
    except papermill.PapermillExecutionError as error:
        result.update(ok=False, error=f"{error.ename}: {error.evalue}")
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def run_demo(
    out_dir: str | Path, notebooks: Sequence[str] | None = None, folder: str | Path | None = None
) -> list[dict]:
    """Run the course's notebooks in fast mode on phantoms and write a summary.

    Args:
        out_dir: Run folder; notebooks go to ``out_dir``, artifacts and figures to
            ``out_dir/artifacts``, the summary to ``out_dir/summary.md``.
        notebooks: Names to run; None runs every notebook of ``course.NOTEBOOKS`` and
            ``course.PRACTICE_NOTEBOOKS`` that exists.
        folder: Where the notebooks are; None means ``course.notebooks_dir()``.

    Returns:
        One result dict per notebook run (stops after the first failure).
    """
    folder = Path(folder or course.notebooks_dir())
    out_dir = Path(out_dir).resolve()
    names = notebooks or [
        n for n in course.NOTEBOOKS + course.PRACTICE_NOTEBOOKS if (folder / f"{n}.ipynb").is_file()
    ]
    parameters = {**FAST_PARAMETERS, "ARTIFACTS_DIR": str(out_dir / "artifacts")}
    results = []
    for name in names:
        print(f"[demo] running {name} …", flush=True)
        results.append(run_notebook(name, out_dir, parameters, folder))
        print(
            f"[demo] {name}: {'ok' if results[-1]['ok'] else 'FAILED'} in "
            f"{results[-1]['seconds']} s",
            flush=True,
        )
        if not results[-1]["ok"]:
            break
    write_summary(out_dir, results)
    return results


def write_summary(out_dir: Path, results: list[dict]) -> Path:
    """Write ``summary.md`` (run times, then each notebook's snippet) and ``summary.json``.

    Notebooks leave a Markdown snippet at ``ARTIFACTS_DIR/summary/<notebook>.md``;
    ``summary.json`` is the run's record of ``run_times.run_record`` (run times, machine, load,
    the models' training times), which ``python -m course_utils times`` collects.

    Args:
        out_dir: The demo's run folder.
        results: What ``run_notebook`` returned for each notebook.

    Returns:
        The summary's path.
    """
    lines = [
        "# Course demo run",
        "",
        "Fast mode on synthetic phantoms (not real scans).",
        "",
        "| notebook | status | seconds |",
        "|---|---|---:|",
    ]
    lines += [
        f"| {r['notebook']} | {'ok' if r['ok'] else 'FAILED: ' + r['error'][:80]} | "
        f"{r['seconds']} |"
        for r in results
    ]
    lines += ["", f"Total: {sum(r['seconds'] for r in results):.1f} s", ""]
    for result in results:
        snippet = course.summary_path(out_dir / "artifacts", result["notebook"])
        if snippet.is_file():
            lines += [snippet.read_text().strip(), ""]
    path = summary_path(out_dir)
    path.write_text("\n".join(lines))
    course.write_json(run_times.run_record(out_dir, results), run_times.record_path(out_dir))
    return path


def log_noise(executed_notebook: str | Path) -> list[str]:
    """Return the log-noise lines in an executed notebook's text outputs.

    Args:
        executed_notebook: A notebook written by ``run_notebook``.

    Returns:
        Each stream or text output line that matches ``NOISE_PATTERNS`` (empty when clean).
    """
    notebook = json.loads(Path(executed_notebook).read_text())
    lines = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            lines += "".join(text).splitlines() if isinstance(text, list) else text.splitlines()
    return [line for line in lines if any(p.search(line) for p in NOISE_PATTERNS)]
