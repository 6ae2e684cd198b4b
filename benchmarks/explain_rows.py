"""Benchmark row: prediction + Grad-CAM + vanilla saliency of one image, Xception 299 px."""

from __future__ import annotations

import time

import numpy as np


def _seconds_per_image(function, images: np.ndarray) -> float:
    """Mean seconds of ``function(image)`` over the images (after one warm-up call)."""
    function(images[0])
    started = time.perf_counter()
    for image in images:
        function(image)
    return (time.perf_counter() - started) / len(images)


def _plain_tf_keras_vis(model, layer_name: str):
    """The documented way: model.predict, then new Saliency and Gradcam objects per call."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    def run(image: np.ndarray) -> None:
        index = int(np.argmax(model.predict(image[None], verbose=0)[0]))
        score = CategoricalScore(index)
        Gradcam(model, model_modifier=ReplaceToLinear())(
            score, image, penultimate_layer=layer_name, seek_penultimate_conv_layer=False
        )
        Saliency(model, model_modifier=ReplaceToLinear())(score, image)

    return run


def _saliency_map_calls(model):
    """course_utils.explain.saliency_map twice (no cloning) plus a separate model.predict."""
    from course_utils import explain

    def run(image: np.ndarray) -> None:
        index = int(np.argmax(model.predict(image[None], verbose=0)[0]))
        explain.saliency_map(model, image, index, "gradcam")
        explain.saliency_map(model, image, index, "saliency")

    return run


def row_explain(paths: list[str], labels: list[str], source: str) -> list[dict]:
    """SaliencyExplainer (one compiled pass) vs plain tf-keras-vis calls, Xception 299 px."""
    from course_utils import explain, models

    size, count = 299, 3
    model = models.build_xception_classifier(size, weights=None)
    images = np.random.default_rng(0).uniform(0, 255, (count, size, size, 3)).astype(np.float32)
    started = time.perf_counter()
    explainer = explain.SaliencyExplainer(model)
    trace = time.perf_counter() - started
    fast = _seconds_per_image(explainer, images)
    plain = _seconds_per_image(_plain_tf_keras_vis(model, explainer.layer_name), images)
    no_clone = _seconds_per_image(_saliency_map_calls(model), images)
    note = f"predict + Grad-CAM + saliency, {count} random images, weights=None"
    return [
        {
            "row": f"explain one image, Xception {size} px",
            "a": f"SaliencyExplainer {fast:.2f} s/img",
            "b": f"tf-keras-vis plain (clone per call) {plain:.2f} s/img",
            "ratio": plain / fast,
            "note": f"{note}; one-off trace {trace:.1f} s",
        },
        {
            "row": f"explain one image, Xception {size} px",
            "a": f"SaliencyExplainer {fast:.2f} s/img",
            "b": f"saliency_map x2 + predict (no clone) {no_clone:.2f} s/img",
            "ratio": no_clone / fast,
            "note": note,
        },
    ]
