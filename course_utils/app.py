"""The lesson-05 mini-app's widgets: upload a scan, see the prediction, its map and the text.

``build_app`` wires ipywidgets to ``analysis.analyse`` with thin callbacks (``App``);
``probability_chart``, ``prediction_html``, ``explanation_html`` and ``sample_label`` are
the HTML and PNG snippets it shows. Bad input shows a message in the status line, never a
traceback, and the app stays usable. Image reading is ``course_utils.images``, the
analysis ``course_utils.analysis``. Nothing happens at import (TensorFlow and ipywidgets
are imported when used).
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from course_utils import images, llm, widgets_compat, wording
from course_utils.render import markdown_html

# ---------------------------------------------------------------------- display


def probability_chart(probabilities: dict[str, float], predicted: str | None = None) -> bytes:
    """Draw the class probabilities (``viz_saliency.plot_probabilities``) as PNG bytes.

    Args:
        probabilities: ``{class: probability}``.
        predicted: The class to highlight.

    Returns:
        The chart as PNG bytes.
    """
    from course_utils import viz_saliency

    buffer = io.BytesIO()
    viz_saliency.plot_probabilities(probabilities, predicted).savefig(buffer, format="png")
    return buffer.getvalue()


def prediction_html(result: dict) -> str:
    """Say the prediction in one line of HTML.

    Args:
        result: An ``analysis.analyse`` result.

    Returns:
        HTML text.
    """
    name = html.escape(result["predicted_class"])
    return (
        f"<b>Prediction: {name}</b> ({result['confidence']:.1%}); map: "
        f"{html.escape(result['method'])}, {result['seconds']:.2f} s"
    )


def explanation_html(explanation: Any) -> str:
    """Show a ``wording.TextExplanation`` as HTML, always with the educational-use notice.

    Args:
        explanation: The explanation (``text``, ``source``, ``ok``).

    Returns:
        HTML text.
    """
    notice = wording.NOTICE in explanation.text
    text = explanation.text if notice else wording.with_notice(explanation.text)
    source = "Gemini" if explanation.source == "gemini" else "offline explainer"
    note = "" if explanation.ok else " (no explanation: see the message)"
    return f"<p><i>Explanation by the {source}{note}:</i></p>" + markdown_html(text)


def sample_label(path: str | Path) -> str:
    """Name a sample scan for the picker: ``<class folder>/<file name>``."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}"


# ----------------------------------------------------------------------- widgets


class App:
    """The mini-app's widgets and thin callbacks (the logic lives in ``course_utils.analysis``).

    Args:
        models: ``{display name: path of the .keras file}``; loaded when first used.
        samples: Scans offered in the sample picker (e.g. the test split), or None.
        explainer: A text explainer (``llm.make_explainer``).
    """

    def __init__(self, models: dict[str, str | Path], samples: Sequence, explainer: Any):
        import ipywidgets as w

        from course_utils import explain

        self.paths, self.explainer, self.loaded = dict(models), explainer, {}
        self.data: bytes | None = None
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="Upload scan")
        options = [("(pick a sample scan)", "")] + [(sample_label(p), str(p)) for p in samples]
        self.sample = w.Dropdown(options=options, description="Sample")
        self.model = w.Dropdown(options=list(self.paths), description="Model")
        self.method = w.Dropdown(options=list(explain.METHODS), value="gradcam", description="Map")
        self.button = w.Button(description="Run", button_style="primary")
        self.status = w.HTML("Upload a scan or pick a sample.")
        self.prediction, self.explanation = w.HTML(""), w.HTML("")
        self.chart = w.Image(format="png", layout=w.Layout(width="380px"))
        self.scan = w.Image(format="png", layout=w.Layout(width="256px"))
        self.overlay = w.Image(format="png", layout=w.Layout(width="256px"))
        self._style()
        self.widget = self._layout()
        self.upload.observe(self._on_upload, names="value")
        self.sample.observe(self._on_sample, names="value")
        self.button.on_click(lambda _button: self.run())

    def _style(self) -> None:
        """Give the key widgets stable CSS classes (the browser test finds them)."""
        for widget, name in [
            (self.upload, "upload"),
            (self.sample, "sample"),
            (self.status, "status"),
            (self.prediction, "prediction"),
            (self.explanation, "explanation"),
            (self.chart, "chart"),
            (self.scan, "scan"),
            (self.overlay, "overlay"),
        ]:
            widget.add_class(f"btmri-{name}")

    def _layout(self) -> Any:
        """Arrange the widgets."""
        import ipywidgets as w

        notice = w.HTML(
            f"<b>{html.escape(wording.NOTICE)}</b> A course exercise, not a medical tool."
        )
        controls = w.HBox([self.upload, self.sample])
        settings = w.HBox([self.model, self.method, self.button])
        pictures = w.HBox([self.scan, self.overlay])
        return w.VBox(
            [notice, controls, settings, self.status, self.prediction, self.chart, pictures,
             self.explanation]
        )  # fmt: skip

    def _on_upload(self, change: dict) -> None:
        """FileUpload changed: analyse the uploaded file."""
        files = widgets_compat.uploaded_files(change["new"])
        if files:
            name, self.data = files[-1]
            self.run(name=name)

    def _on_sample(self, change: dict) -> None:
        """Sample picker changed: analyse that scan."""
        if change["new"]:
            self.data = Path(change["new"]).read_bytes()
            self.run(name=sample_label(change["new"]))

    def _model(self, name: str) -> tuple[Any, dict]:
        """Load a model and its card once."""
        from course_utils import predict

        if name not in self.loaded:
            self.loaded[name] = predict.load_model_with_card(self.paths[name])
        return self.loaded[name]

    def run(self, name: str = "the scan") -> dict | None:
        """Analyse the current input and show the result; show any problem in the status line.

        Args:
            name: What to call the input in the status line.

        Returns:
            The ``analysis.analyse`` result, or None when there was a problem.
        """
        if self.data is None or not self.model.value:
            self.status.value = (
                "Upload a scan or pick a sample first."
                if self.paths
                else ("No trained model found: run notebooks 02/03 first.")
            )
            return None
        from course_utils import analysis  # TensorFlow: only once there is something to run

        self.status.value = f"Analysing {html.escape(name)} …"
        try:
            model, card = self._model(self.model.value)
            image = images.load_image_bytes(self.data, int(card["image_size"]))
            result = analysis.analyse(model, card, image, self.method.value, self.explainer)
        except (ValueError, OSError) as error:
            self._show_error(name, str(error))
            return None
        except Exception as error:  # noqa: BLE001 (the app must survive anything)
            self._show_error(name, f"unexpected {type(error).__name__}: {error}")
            return None
        self._show(result)
        self.status.value = f"Done: {html.escape(name)}."
        return result

    def _show_error(self, name: str, message: str) -> None:
        """Put a problem in the status line and clear the old result."""
        self.status.value = (
            f"<span style='color:#b00'>⚠ {html.escape(name)}: {html.escape(message)}</span>"
        )
        self.prediction.value = self.explanation.value = ""
        self.chart.value = self.scan.value = self.overlay.value = b""

    def _show(self, result: dict) -> None:
        """Show an ``analysis.analyse`` result."""
        self.prediction.value = prediction_html(result)
        self.chart.value = probability_chart(result["probabilities"], result["predicted_class"])
        self.scan.value = images.to_png_bytes(result["image"])
        self.overlay.value = images.to_png_bytes(result["overlay"])
        self.explanation.value = explanation_html(result["explanation"])


def build_app(
    models: dict[str, str | Path],
    samples: Sequence[str | Path] | None = None,
    explainer_kind: str = "offline",
    gemini_model: str = llm.DEFAULT_MODEL,
) -> Any:
    """Build the mini-app.

    Args:
        models: ``{display name: path of the .keras file}`` (each with its ``.json`` card).
        samples: Scans for the sample picker (e.g. test-split paths), or None.
        explainer_kind: ``"offline"``, ``"gemini"`` or ``"auto"`` (``llm.make_explainer``).
        gemini_model: The Gemini model id.

    Returns:
        The app's top ``ipywidgets`` widget (display it); ``.app`` holds the ``App``.
    """
    explainer = llm.make_explainer(explainer_kind, model_id=gemini_model)
    app = App(models, list(samples or []), explainer)
    app.widget.app = app
    return app.widget
