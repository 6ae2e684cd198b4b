"""Shared fixtures: a small phantom dataset, the real data (when present), quiet logs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("BTMRI_QUIET", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = Path(
    os.environ.get("BTMRI_REAL_DATA", REPO_ROOT.parent / "shared/datasets/brain-tumor-mri-224")
)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep every cache the tests (and the notebook kernels they start) write in a temp folder."""
    os.environ["BTMRI_CACHE_DIR"] = str(tmp_path_factory.mktemp("course-cache"))


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure after each test, without ever importing matplotlib."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small phantom dataset with planted problems, made once per test session."""
    from course_utils.data.phantom_dataset import synthesize_dataset

    root = tmp_path_factory.mktemp("phantoms") / "data"
    synthesize_dataset(root, per_class=16, test_per_class=6, image_size=96, seed=7, progress=False)
    return root


@pytest.fixture(scope="session")
def phantom_manifest(phantom_root: Path) -> dict:
    """The manifest of ``phantom_root`` (what was planted)."""
    import json

    from course_utils.data.phantom_dataset import MANIFEST_NAME

    return json.loads((phantom_root / MANIFEST_NAME).read_text())


@pytest.fixture(scope="session")
def phantom_audit(phantom_root: Path):
    """The audit report of ``phantom_root``."""
    from course_utils.data.audit import audit_dataset

    return audit_dataset(phantom_root, progress=False)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The shared real copy of the Kaggle Training half; the test is skipped without it."""
    if not (REAL_DATA / "Training").is_dir():
        pytest.skip(f"real data not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture()
def image_root(tmp_path: Path) -> Path:
    """Four small grayscale PNGs in two class folders, and one mask."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("glioma", "notumor"):
        (tmp_path / label).mkdir()
        for index in range(2):
            pixels = rng.integers(0, 255, (24, 24), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{index}.png")
    mask = np.zeros((24, 24), dtype=np.uint8)
    mask[8:16, 8:16] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path


@pytest.fixture(scope="module")
def cnn():
    """An untrained 64-px small CNN (seed 1), built once per test module."""
    import keras

    from course_utils import models

    keras.utils.set_random_seed(1)
    return models.build_cnn(64, filters=(8, 16), last_block_convs=1)


@pytest.fixture(scope="module")
def strided_cnn():
    """The same small CNN with the full recipe's stride-2 first convolution (no first pool)."""
    import keras

    from course_utils import models

    keras.utils.set_random_seed(1)
    return models.build_cnn(64, filters=(8, 16), last_block_convs=1, first_block_stride=2)


@pytest.fixture(scope="module")
def xception():
    """An untrained 71-px Xception classifier (seed 2), built once per test module."""
    import keras

    from course_utils import models

    keras.utils.set_random_seed(2)
    return models.build_xception_classifier(71, weights=None, pooling="avg")
