"""The lesson-05 mini-app: upload a scan, see the prediction, its saliency map and an explanation.

The logic is pure functions that tests call directly:

- ``load_image_bytes``: uploaded bytes to a uint8 RGB array at the model's size, with a
  clear ``ValueError`` for anything that is not a usable image;
- ``analyse``: prediction, saliency map, overlay, statistics and explanation of one image;
- ``probability_chart``, ``prediction_html``, ``explanation_html``: what the app shows.

``build_app`` wires them to ipywidgets with thin callbacks (``App``); bad input shows a
message in the status line, never a traceback, and the app stays usable.
Nothing happens at import (TensorFlow and ipywidgets are imported when used).
"""

from __future__ import annotations

import html
import io
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from course_utils import llm
from course_utils.data import scan
from course_utils.render import markdown_html

#: Smallest image side the app accepts (smaller scans hold too little to classify).
MIN_IMAGE_SIDE = 32
#: The methods the app offers; the first two share one pass (``explain.Explainer``).
FAST_METHODS = ("gradcam", "saliency")
#: Options of the slower methods in the app (few maps, few samples: answers in seconds).
APP_METHOD_OPTIONS: dict[str, dict] = {
    "smoothgrad": {"smooth_samples": 10},
    "scorecam": {"max_N": 8},
}
_FAST_EXPLAINERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INTEGER_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


# ------------------------------------------------------------------ image input


def _open_image(data: bytes) -> Image.Image:
    """Decode bytes with PIL under the course's pixel limit; raise ValueError for bad data."""
    if not data:
        raise ValueError("The file is empty (0 bytes). Choose an image file (PNG or JPEG).")
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > scan.MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError(
                f"{image.width}x{image.height} pixels is over the limit"
            )
        image.load()
    except UnidentifiedImageError as error:
        raise ValueError(
            "This file is not an image the app can read. Upload a PNG or JPEG scan."
        ) from error
    except Image.DecompressionBombError as error:
        raise ValueError(
            f"The image is too large ({error}); the app opens images up to "
            f"{scan.MAX_IMAGE_PIXELS:,} pixels. Downscale it first."
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(
            f"The image file is corrupt or truncated ({error}). Export it again and re-upload."
        ) from error
    return image


def _scale_to_uint8(array: np.ndarray) -> np.ndarray:
    """Stretch a 16-bit/32-bit/float image's value range linearly onto 0-255 (no clipping)."""
    values = np.nan_to_num(array.astype(np.float64))
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values - low) / (high - low) * 255.0).astype(np.uint8)


def to_rgb(image: Image.Image) -> np.ndarray:
    """Convert any PIL image to a uint8 RGB array (H, W, 3).

    Transparent pixels (RGBA, LA, palette with transparency) are laid on black, the
    background of an MRI scan; 16-bit and float images are stretched from their own
    value range, not clipped at 255; CMYK, YCbCr, palette and grayscale images go
    through PIL's conversions; EXIF rotation is applied.

    Args:
        image: A decoded PIL image.

    Returns:
        The RGB pixels.
    """
    image = ImageOps.exif_transpose(image) or image
    if image.mode in _INTEGER_MODES:
        grey = _scale_to_uint8(np.asarray(image))
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def load_image_bytes(data: bytes, image_size: int) -> np.ndarray:
    """Turn an uploaded file into the model's input: uint8 RGB (image_size, image_size, 3).

    Resizes as the training pipeline does (area when shrinking, bilinear when growing).

    Args:
        data: The file's bytes.
        image_size: The model's input side (``card["image_size"]``).

    Returns:
        The pixels, uint8 RGB.

    Raises:
        ValueError: With a message for the user when the file is empty, not an image,
            corrupt or truncated, too large (decompression-bomb guard) or too small.
    """
    import tensorflow as tf

    image = _open_image(bytes(data))
    if min(image.width, image.height) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"The image is only {image.width}x{image.height} pixels; the app needs at least "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}. Upload the full-resolution scan."
        )
    pixels = to_rgb(image)
    shrinking = min(pixels.shape[:2]) >= image_size
    resized = tf.image.resize(pixels, (image_size, image_size), "area" if shrinking else "bilinear")
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------- analysis


def fast_explainer(model: Any) -> Any:
    """Return the model's ``explain.Explainer``, built once per model and cached.

    Args:
        model: A Keras classifier.

    Returns:
        The explainer (prediction + Grad-CAM + saliency in one pass).
    """
    from course_utils import explain

    if model not in _FAST_EXPLAINERS:
        _FAST_EXPLAINERS[model] = explain.Explainer(model)
    return _FAST_EXPLAINERS[model]


def _prediction_and_map(
    model: Any, image: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and the heatmap of the predicted class, by the fastest route."""
    from course_utils import explain

    if method in FAST_METHODS:
        result = fast_explainer(model)(image)
        return result.probabilities, getattr(result, method)
    probabilities = np.asarray(model(image[None].astype(np.float32), training=False))[0]
    options = APP_METHOD_OPTIONS.get(method, {})
    heatmap = explain.saliency_map(model, image, int(np.argmax(probabilities)), method, **options)
    return probabilities.astype(np.float32), heatmap


def analyse(model: Any, card: dict, image: np.ndarray, method: str, explainer: Any) -> dict:
    """Predict one image, map the predicted class's saliency and explain it.

    Args:
        model: A classifier taking raw [0, 255] RGB pixels.
        card: Its model card (``class_names`` in output order).
        image: uint8 RGB (S, S, 3) at ``card["image_size"]`` (``load_image_bytes``).
        method: One of ``explain.METHODS``.
        explainer: An ``llm`` explainer (``make_explainer``).

    Returns:
        ``image``, ``probabilities`` ({class: p} in card order), ``predicted_class``,
        ``class_index``, ``confidence``, ``method``, ``heatmap`` (S, S in [0, 1]),
        ``overlay`` (uint8 RGB), ``statistics`` (``saliency_statistics``),
        ``explanation`` (``llm.Explanation``) and ``seconds``.

    Raises:
        ValueError: If the method is unknown or the image has the wrong shape.
    """
    from course_utils import explain

    if method not in explain.METHODS:
        raise ValueError(f"Unknown saliency method {method!r}; use one of {explain.METHODS}.")
    start = time.perf_counter()
    probabilities, heatmap = _prediction_and_map(model, image, method)
    names = list(card["class_names"])
    index = int(np.argmax(probabilities))
    shown = explain.overlay(image, heatmap)
    statistics = explain.saliency_statistics(heatmap, image=image)
    table = {name: float(p) for name, p in zip(names, probabilities, strict=True)}
    text = explainer.explain(
        llm.to_png_bytes(image), llm.to_png_bytes(shown), names[index], table, method, statistics
    )
    return {
        "image": image,
        "probabilities": table,
        "predicted_class": names[index],
        "class_index": index,
        "confidence": float(probabilities[index]),
        "method": method,
        "heatmap": heatmap,
        "overlay": shown,
        "statistics": statistics,
        "explanation": text,
        "seconds": time.perf_counter() - start,
    }


# ---------------------------------------------------------------------- display


def probability_chart(probabilities: dict[str, float], predicted: str | None = None) -> bytes:
    """Draw the class probabilities as a horizontal bar chart.

    Args:
        probabilities: ``{class: probability}``.
        predicted: The class to highlight.

    Returns:
        The chart as PNG bytes.
    """
    from matplotlib.figure import Figure

    names = list(probabilities)
    values = [probabilities[name] for name in names]
    fig = Figure(figsize=(4.2, 0.45 * len(names) + 0.6), dpi=90)
    ax = fig.add_subplot()
    colours = ["tab:red" if name == predicted else "tab:gray" for name in names]
    ax.barh(names[::-1], values[::-1], color=colours[::-1])
    for y, value in enumerate(values[::-1]):
        ax.text(min(value + 0.02, 0.8), y, f"{value:.1%}", va="center")
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def prediction_html(result: dict) -> str:
    """Say the prediction in one line of HTML.

    Args:
        result: An ``analyse`` result.

    Returns:
        HTML text.
    """
    name = html.escape(result["predicted_class"])
    return (
        f"<b>Prediction: {name}</b> ({result['confidence']:.1%}); map: "
        f"{html.escape(result['method'])}, {result['seconds']:.2f} s"
    )


def explanation_html(explanation: Any) -> str:
    """Show an ``llm.Explanation`` as HTML, always with the educational-use notice.

    Args:
        explanation: The explanation (``text``, ``source``, ``ok``).

    Returns:
        HTML text.
    """
    text = explanation.text if llm.NOTICE in explanation.text else llm.with_notice(explanation.text)
    source = "Gemini" if explanation.source == "gemini" else "offline explainer"
    note = "" if explanation.ok else " (no explanation: see the message)"
    return f"<p><i>Explanation by the {source}{note}:</i></p>" + markdown_html(text)


def sample_label(path: str | Path) -> str:
    """Name a sample scan for the picker: ``<class folder>/<file name>``."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}"


# ----------------------------------------------------------------------- widgets


class App:
    """The mini-app's widgets and thin callbacks (logic lives in the functions above).

    Args:
        models: ``{display name: path of the .keras file}``; loaded when first used.
        samples: Scans offered in the sample picker (e.g. the test split), or None.
        explainer: An ``llm`` explainer.
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

        notice = w.HTML(f"<b>{html.escape(llm.NOTICE)}</b> A course exercise, not a medical tool.")
        controls = w.HBox([self.upload, self.sample])
        settings = w.HBox([self.model, self.method, self.button])
        images = w.HBox([self.scan, self.overlay])
        return w.VBox(
            [notice, controls, settings, self.status, self.prediction, self.chart, images,
             self.explanation]
        )  # fmt: skip

    def _on_upload(self, change: dict) -> None:
        """FileUpload changed: analyse the uploaded file."""
        files = change["new"]
        if files:
            self.data = bytes(files[0]["content"])
            self.run(name=files[0].get("name", "upload"))

    def _on_sample(self, change: dict) -> None:
        """Sample picker changed: analyse that scan."""
        if change["new"]:
            self.data = Path(change["new"]).read_bytes()
            self.run(name=sample_label(change["new"]))

    def _model(self, name: str) -> tuple[Any, dict]:
        """Load a model and its card once."""
        from course_utils import train

        if name not in self.loaded:
            self.loaded[name] = train.load_model_with_card(self.paths[name])
        return self.loaded[name]

    def run(self, name: str = "the scan") -> dict | None:
        """Analyse the current input and show the result; show any problem in the status line.

        Args:
            name: What to call the input in the status line.

        Returns:
            The ``analyse`` result, or None when there was a problem.
        """
        if self.data is None or not self.model.value:
            self.status.value = (
                "Upload a scan or pick a sample first."
                if self.paths
                else ("No trained model found: run notebooks 02/03 first.")
            )
            return None
        self.status.value = f"Analysing {html.escape(name)} …"
        try:
            model, card = self._model(self.model.value)
            image = load_image_bytes(self.data, int(card["image_size"]))
            result = analyse(model, card, image, self.method.value, self.explainer)
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
        """Show an ``analyse`` result."""
        self.prediction.value = prediction_html(result)
        self.chart.value = probability_chart(result["probabilities"], result["predicted_class"])
        self.scan.value = llm.to_png_bytes(result["image"])
        self.overlay.value = llm.to_png_bytes(result["overlay"])
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
