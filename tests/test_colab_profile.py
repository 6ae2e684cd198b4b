"""The Colab profile: inside Google Colab's pins, nothing pinned moved and models travel.

``make test-colab`` runs the whole suite in a virtualenv built with
``pip install -c colab-core-constraints.txt``, with ``BTMRI_COLAB_CONSTRAINTS`` naming that
file; these tests then check that the install changed no pinned package, that notebooks run
on that virtualenv's own kernel, and that models saved by the main environment load and
predict identically there. ``.ci/run`` runs ``make test`` (main environment: saves the
travelling models to ``runs/travel-models/``, or ``BTMRI_TRAVEL_DIR``) and then
``make test-colab`` on the same checkout (loads them).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

CONSTRAINTS = os.environ.get("BTMRI_COLAB_CONSTRAINTS")
REPO_ROOT = Path(__file__).resolve().parents[1]
TRAVEL_DIR = Path(os.environ.get("BTMRI_TRAVEL_DIR", REPO_ROOT / "runs" / "travel-models"))
TRAVEL_MANIFEST = "travel.json"

colab_only = pytest.mark.skipif(
    not CONSTRAINTS, reason="runs in the Colab profile only (make test-colab)"
)
main_only = pytest.mark.skipif(
    bool(CONSTRAINTS), reason="runs in the main environment only (make test)"
)


def read_pins(path: Path) -> dict[str, str]:
    """Return ``{distribution name: version}`` of a ``name==version`` constraints file."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+).*", line)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


@colab_only
def test_every_pinned_package_is_at_colabs_version() -> None:
    pins = read_pins(Path(CONSTRAINTS))
    assert len(pins) >= 20, f"{CONSTRAINTS} lists too few pins: {pins}"
    moved = {}
    for name, version in pins.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # pinned in Colab but not needed by the course
        if installed != version:
            moved[name] = (version, installed)
    assert not moved, f"the course's install moved Colab's pins (pinned, installed): {moved}"


@colab_only
def test_the_course_needs_colabs_core_packages_at_their_pins() -> None:
    for name in ("tensorflow", "keras", "ipykernel", "ipywidgets", "ipython", "google-genai"):
        assert importlib.metadata.version(name) == read_pins(Path(CONSTRAINTS))[name]


def test_notebooks_run_on_this_environments_own_python() -> None:
    """``demo.run_notebook`` asks for kernel ``python3``: it must start this very interpreter.

    jupyter_client finds ``python3`` in ``sys.prefix/share/jupyter/kernels`` (the venv's own
    ipykernel spec, ``argv[0] == "python"``) and swaps a bare ``python`` for
    ``sys.executable``; a user-wide kernelspec pointing at another Python would win instead.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    assert Path(spec.resource_dir).resolve().is_relative_to(Path(sys.prefix).resolve()), (
        spec.resource_dir
    )
    python = spec.argv[0]
    assert python == "python" or Path(python).resolve() == Path(sys.executable).resolve(), spec.argv


# ------------------------------------------------------------- models that travel


def _small_models() -> dict:
    """The travelling models: ``{name: (model, build spec)}``, small but real architectures."""
    from course_utils import models

    cnn_options = {"filters": [8, 16], "last_block_convs": 1, "dense_units": 16}
    xception_options = {"pooling": "avg", "dense_units": 16}
    cnn = models.build_cnn(64, 4, **{**cnn_options, "filters": (8, 16)})
    xception = models.build_xception_classifier(71, 4, weights=None, **xception_options)
    return {
        "cnn": (cnn, {**models.build_spec("cnn", 64, 4), **cnn_options}),
        "xception": (xception, {**models.build_spec("xception", 71, 4), **xception_options}),
    }


def _save_like_training(model, build: dict, folder: Path) -> Path:
    """Save a model as ``train.TrainingRun.save`` does: ``.keras``, ``.weights.h5``, card."""
    from course_utils import cards, course, fitting

    model_file = course.model_path(folder, build["builder"])
    fitting.save_for_inference(model, model_file)
    model.save_weights(course.weights_path(model_file))
    card = {
        "name": build["builder"],
        "class_names": ["glioma", "meningioma", "notumor", "pituitary"],
        "image_size": build["image_size"],
        "colour_mode": "rgb",
        "input_value_range": cards.INPUT_VALUE_RANGE,
        "preprocessing": "xception" if build["builder"] == "xception" else "unit",
        "architecture": f"untrained {build['builder']} that travels between environments",
        "dataset": {"source": "none (untrained)"},
        "split_sizes": {"train": 0, "val": 0},
        "seed": 0,
        "build": build,
    }
    card.update({key: None for key in cards.REQUIRED_CARD_KEYS if key not in card})
    cards.write_card(model_file, card)
    return model_file


@main_only
@pytest.mark.slow
def test_main_environment_saves_models_that_travel() -> None:
    """Save a small CNN and a small Xception, fixed inputs and this environment's predictions.

    The Colab-profile test below loads them (``.ci/run`` runs both on one checkout).
    """
    import keras

    from course_utils import course

    keras.utils.set_random_seed(0)
    TRAVEL_DIR.mkdir(parents=True, exist_ok=True)
    manifest = {"keras": keras.__version__, "python": sys.version.split()[0], "models": {}}
    for name, (model, build) in _small_models().items():
        size = build["image_size"]
        images = np.random.default_rng(1).uniform(0, 255, (3, size, size, 3)).astype("float32")
        predictions = model.predict(images, verbose=0)
        model_file = _save_like_training(model, build, TRAVEL_DIR)
        np.save(TRAVEL_DIR / f"{name}_inputs.npy", images)
        np.save(TRAVEL_DIR / f"{name}_predictions.npy", predictions)
        manifest["models"][name] = model_file.name
        reloaded, _card = _load(model_file)
        np.testing.assert_allclose(reloaded.predict(images, verbose=0), predictions, atol=1e-6)
    course.write_json(manifest, TRAVEL_DIR / TRAVEL_MANIFEST)


def _load(model_file: Path):
    from course_utils import predict

    return predict.load_model_with_card(model_file)


@colab_only
def test_models_saved_by_the_main_environment_predict_identically_here() -> None:
    """Models saved by the main environment load (``load_model_with_card``) and agree to 1e-5.

    ``load_model_with_card`` rebuilds the architecture from the card's ``build`` entry and
    loads ``<name>.weights.h5``. Observed on 2026-12-04 (saved by Keras 3.15.1, loaded by
    Colab's Keras 3.13.2): plain ``keras.saving.load_model`` of the ``.keras`` file fails for
    both models with "Functional could not be deserialized properly ... Error when
    deserializing class 'Conv2D'": 3.15 writes initializer configs with keys
    (``input_axes``, ``output_axes`` of ``GlorotUniform``) that 3.13 does not accept. That is
    why the card's ``build`` entry and the ``.weights.h5`` file exist; the failure is only
    printed below (``-s``), not asserted, since a later Keras may fix it.
    """
    manifest_file = TRAVEL_DIR / TRAVEL_MANIFEST
    if not manifest_file.is_file():
        pytest.skip(
            f"no travelling models at {TRAVEL_DIR}: run `make test` (main environment) first, "
            "or set BTMRI_TRAVEL_DIR to the folder it wrote"
        )
    import keras

    manifest = json.loads(manifest_file.read_text())
    assert set(manifest["models"]) == {"cnn", "xception"}, manifest
    for name, file_name in manifest["models"].items():
        images = np.load(TRAVEL_DIR / f"{name}_inputs.npy")
        expected = np.load(TRAVEL_DIR / f"{name}_predictions.npy")
        model, card = _load(TRAVEL_DIR / file_name)
        assert card["build"]["builder"] == name
        np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-5)
        try:
            keras.saving.load_model(TRAVEL_DIR / file_name)
        except Exception as error:  # noqa: BLE001 (only reported: saved by another Keras)
            print(f"{name}: keras {manifest['keras']} .keras file does not load here: {error}")
