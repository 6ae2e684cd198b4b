"""The app page (``notebooks/app.ipynb``, what ``make app`` serves) run by papermill and driven.

The papermill runs need no browser; the browser test serves the notebook with Voilà and drives
it in a real headless Chromium (Debian's, no download). It is skipped when
``/usr/bin/chromium``, Voilà or Playwright is missing (``.ci/run`` installs Chromium with apt
when it can). It prints how long the page took to be ready (kernel start to the upload button
shown); the speed target is a benchmark row (``benchmarks/app_rows.py``), not an assertion.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from course_utils import course, demo

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOK_DIR / f"{course.APP_NOTEBOOK}.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 90
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
RESULT_TIMEOUT_MS = 90_000
LOADED_OVERLAY = """() => {
    const img = document.querySelector("img.btmri-overlay");
    return img !== null && img.complete && img.naturalWidth > 0;
}"""


@pytest.fixture(scope="module")
def voila_bin() -> Path:
    """Voilà's executable; skips (before any training) when a piece is missing."""
    voila = Path(sys.executable).with_name("voila")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    if not voila.is_file():
        pytest.skip("voila is not installed (pip install voila)")
    pytest.importorskip("playwright.sync_api")
    return voila


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_artifacts(phantom_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ARTIFACTS_DIR with the phantoms' splits and a CNN trained for one epoch."""
    from course_utils import train
    from course_utils.config import CLASS_NAMES
    from course_utils.data import splits

    out = tmp_path_factory.mktemp("browser") / "artifacts"
    split_dir = splits.ensure_splits(course.splits_dir(out), phantom_root, "phantoms", 42)
    tables, dataset = splits.load_splits(split_dir)
    config = train.TrainConfig.for_model(
        "cnn", fast=True, image_size=64, num_epochs=1, batch_size=16
    )
    train.train_cnn(config, tables, CLASS_NAMES, out, dataset=dataset)
    return out


@pytest.fixture(scope="module")
def voila_url(
    voila_bin: Path, app_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Serve the app notebook with Voilà on a free localhost port; always stop it."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("voila") / "voila.log").open("w")
    env = {
        **os.environ,
        "BTMRI_ARTIFACTS_DIR": str(app_artifacts),
        "BTMRI_FAST_MODE": "1",
        "BTMRI_EXPLAINER": "offline",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    command = [
        str(voila_bin),
        str(NOTEBOOK),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(port, process, log.name)
        yield url
    finally:
        _stop(process)
        log.close()


def _log_tail(log: str, chars: int = 4000) -> str:
    return Path(log).read_text()[-chars:]


def _wait_until_up(port: int, process: subprocess.Popen, log: str) -> None:
    """Wait until Voilà accepts connections (bounded), or fail with its log.

    Only the port is probed: serving one notebook, every GET would start a kernel.
    """
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"voila exited with {process.returncode}:\n{_log_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"voila did not start within {START_TIMEOUT_S} s:\n{_log_tail(log)}")


def _stop(process: subprocess.Popen) -> None:
    """Stop Voilà and its kernel (its own process group), with bounded waits."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def _phantom_scan(phantom_root: Path) -> Path:
    return next((phantom_root / "Testing" / "glioma").glob("*.jpg"))


def _run_app_notebook(artifacts: Path, out_dir: Path) -> tuple[dict, list[dict]]:
    """Run the app notebook with papermill in fast mode; return the result and its outputs."""
    parameters = {**demo.FAST_PARAMETERS, "ARTIFACTS_DIR": str(artifacts)}
    result = demo.run_notebook(course.APP_NOTEBOOK, out_dir, parameters, NOTEBOOK_DIR)
    assert result["ok"], result["error"]
    assert demo.log_noise(result["output"]) == [], "TensorFlow/absl lines in the outputs"
    executed = json.loads(Path(result["output"]).read_text())
    return result, [o for c in executed["cells"] for o in c.get("outputs", [])]


def _printed(outputs: list[dict]) -> str:
    return "".join("".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream")


def _shows_a_widget(outputs: list[dict]) -> bool:
    return any(WIDGET_VIEW in o.get("data", {}) for o in outputs)


@pytest.mark.notebook
@pytest.mark.slow
def test_app_notebook_runs_on_a_fast_cnn(app_artifacts: Path, tmp_path: Path) -> None:
    result, outputs = _run_app_notebook(app_artifacts, tmp_path)
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert _shows_a_widget(outputs), "the app widget is displayed"
    printed = _printed(outputs)
    assert "No trained model" not in printed
    assert "Not offered: Xception" in printed  # only the CNN was trained
    print(f"app notebook ran in {result['seconds']} s (papermill, fast CNN)")


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.standalone
def test_app_notebook_without_models_trains_the_quick_cnn(tmp_path: Path) -> None:
    """A fresh Colab runtime: no model in ARTIFACTS_DIR, so the page trains the fast CNN."""
    artifacts = tmp_path / "empty"
    result, outputs = _run_app_notebook(artifacts, tmp_path / "run")
    printed = _printed(outputs)
    assert "No trained model in" in printed and "make demo" in printed, printed
    assert course.card_path(course.model_path(artifacts, "cnn")).is_file(), printed
    assert "Not offered: Xception" in printed and "Not offered: CNN" not in printed
    assert _shows_a_widget(outputs), "the app is displayed with the new CNN"
    print(f"app notebook trained the quick CNN and ran in {result['seconds']} s")


@pytest.mark.browser
@pytest.mark.slow
def test_upload_scan_then_bad_file_then_scan(
    voila_url: str, phantom_root: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    scan, bad = _phantom_scan(phantom_root), tmp_path / "notes.png"
    bad.write_text("this is not an image")
    expect.set_options(timeout=RESULT_TIMEOUT_MS)  # the first analysis loads and traces the model
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(RESULT_TIMEOUT_MS)
            started = time.monotonic()  # Voilà starts the page's kernel on this request
            page.goto(voila_url, timeout=RESULT_TIMEOUT_MS)
            page.locator(".btmri-upload").wait_for(state="visible")
            ready = time.monotonic() - started
            print(f"app page ready {ready:.1f} s after the request (kernel start to upload button)")
            expect(page.locator("body")).to_contain_text("Educational use only")
            expect(page.locator("body")).not_to_contain_text("Check yourself")  # no lesson
            assert page.locator(".btmri-sample option").count() > 1, "test scans to pick"

            started = time.monotonic()
            _upload(page, scan)
            expect(page.locator(".btmri-prediction")).to_contain_text("Prediction:")
            print(f"first result {time.monotonic() - started:.1f} s after the upload")
            overlay = page.locator("img.btmri-overlay")
            expect(overlay).to_have_attribute("src", _png_blob())
            page.wait_for_function(LOADED_OVERLAY)
            assert overlay.evaluate("img => img.naturalWidth") == 64  # the model's input size
            expect(page.locator(".btmri-explanation")).to_contain_text("Educational use only")

            _upload(page, bad)
            expect(page.locator(".btmri-status")).to_contain_text("not an image")
            expect(page.locator(".btmri-prediction")).to_have_text("")

            _upload(page, scan)
            expect(page.locator(".btmri-prediction")).to_contain_text("Prediction:")
            expect(page.locator(".btmri-status")).to_contain_text("Done")
        finally:
            browser.close()


def _upload(page, path: Path) -> None:
    """Choose a file in the FileUpload (its file input is not in the DOM: use the chooser)."""
    with page.expect_file_chooser() as chooser:
        page.locator(".btmri-upload").click()
    chooser.value.set_files(str(path))


def _png_blob():
    import re

    return re.compile(r"^(blob:|data:image/png)")
