"""The mini-app's widgets: good and bad uploads, samples, methods, and its HTML snippets."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from tiny_cnn import disk_scan, png_bytes, save_tiny_cnn

from course_utils import app, render, widgets_compat, wording


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained small CNN saved with a model card."""
    return save_tiny_cnn(tmp_path_factory.mktemp("app-model"))


def test_markdown_to_html_escapes_and_formats() -> None:
    out = render.markdown_html("A <script>x</script> **bold**\n\n**Caveats:**\n- one\n- two")
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<strong>bold</strong>" in out and "<li>one</li>" in out


def test_probability_chart_is_png() -> None:
    assert app.probability_chart({"a": 0.7, "b": 0.3}, "a").startswith(b"\x89PNG")


# ------------------------------------------------------------------ widgets


def _upload(widget_app: app.App, data: bytes, name: str) -> None:
    """Upload ``data`` as ``name`` the way the browser does in the installed ipywidgets.

    ipywidgets 8: the front end sets ``value`` (a tuple of file dicts). ipywidgets 7 (Colab):
    ``value`` is read-only; the front end sends ``metadata``, ``data`` and a bumped
    ``_counter``, from which the widget builds ``{name: {"metadata", "content"}}``.
    """
    upload = widget_app.upload
    if widgets_compat.ipywidgets_major() >= 8:
        upload.value = (
            {
                "name": name,
                "type": "image/png",
                "size": len(data),
                "content": memoryview(data),
                "last_modified": datetime.datetime.now(datetime.UTC),
            },
        )
    else:
        metadata = {"name": name, "type": "image/png", "size": len(data), "lastModified": 0}
        upload.set_state(
            {"metadata": [metadata], "data": [memoryview(data)], "_counter": upload._counter + 1}
        )


def test_uploaded_files_reads_both_ipywidgets_shapes() -> None:
    content = b"\x89PNG..."
    version_8 = ({"name": "a.png", "type": "image/png", "content": memoryview(content)},)
    version_7 = {"a.png": {"metadata": {"name": "a.png"}, "content": content}}
    expected = [("a.png", content)]
    assert widgets_compat.uploaded_files(version_8) == expected
    assert widgets_compat.uploaded_files(version_7) == expected
    assert widgets_compat.uploaded_files(()) == widgets_compat.uploaded_files({}) == []
    with pytest.raises(ValueError, match="FileUpload value"):
        widgets_compat.uploaded_files("a.png")


def test_simulated_upload_reaches_the_widget_value() -> None:
    ui = app.build_app({}).app
    _upload(ui, b"bytes of a scan", "scan.png")
    assert widgets_compat.uploaded_files(ui.upload.value) == [("scan.png", b"bytes of a scan")]
    assert ui.data == b"bytes of a scan" and "notebooks 02/03" in ui.status.value


def test_app_widget_displays_as_a_cell_value() -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    widget = app.build_app({})
    with capture_output() as captured:
        display(widget)
    (output,) = captured.outputs
    assert output.data[widgets_compat.WIDGET_MIME]["model_id"] == widget.model_id


def test_widget_good_then_bad_then_good(tiny_model, tmp_path: Path) -> None:
    path = tiny_model
    sample = tmp_path / "glioma" / "scan.png"
    sample.parent.mkdir()
    disk_scan(90).save(sample)
    widget = app.build_app({"cnn": path}, [sample])
    ui = widget.app
    _upload(ui, png_bytes(disk_scan(80)), "good.png")
    assert "Prediction:" in ui.prediction.value and "Done" in ui.status.value
    assert bytes(ui.overlay.value)[:4] == bytes(ui.scan.value)[:4] == b"\x89PNG"
    assert wording.NOTICE in ui.explanation.value

    _upload(ui, b"not an image at all", "notes.txt")
    assert "not an image" in ui.status.value and "Traceback" not in ui.status.value
    assert ui.prediction.value == "" and bytes(ui.overlay.value) == b""

    ui.sample.value = str(sample)
    assert "Prediction:" in ui.prediction.value and "glioma/scan.png" in ui.status.value
    ui.method.value = "gradcam++"
    assert ui.run() is not None and "gradcam++" in ui.prediction.value


def test_widget_without_input_or_models(tiny_model) -> None:
    path = tiny_model
    ui = app.build_app({"cnn": path}).app
    assert ui.run() is None and "first" in ui.status.value
    empty = app.build_app({}).app
    empty.data = b"x"
    assert empty.run() is None and "notebooks 02/03" in empty.status.value


def test_widget_reports_a_missing_model(tmp_path: Path) -> None:
    ui = app.build_app({"gone": tmp_path / "gone.keras"}).app
    _upload(ui, png_bytes(disk_scan(80)), "good.png")
    assert "does not exist" in ui.status.value


def test_widget_key_classes() -> None:
    ui = app.build_app({}).app
    assert "btmri-overlay" in ui.overlay._dom_classes
    assert "btmri-status" in ui.status._dom_classes
    assert "btmri-upload" in ui.upload._dom_classes
