"""Package-wide rules: nothing happens at import, config helpers behave."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import config

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "course_utils"

#: The layout of the package (issue 10): each of these modules must exist.
EXPECTED_MODULES = [
    "course_utils",
    "course_utils.config",
    "course_utils.course",
    "course_utils.data.sources",
    "course_utils.data.scan",
    "course_utils.data.audit",
    "course_utils.data.splits",
    "course_utils.data.pipeline",
    "course_utils.data.explore",
    "course_utils.data.phantoms",
    "course_utils.data.phantom_dataset",
    "course_utils.data.run_summary",
    "course_utils.models",
    "course_utils.train",
    "course_utils.cards",
    "course_utils.predict",
    "course_utils.metrics",
    "course_utils.evaluate",
    "course_utils.model_card",
    "course_utils.explain",
    "course_utils.llm",
    "course_utils.render",
    "course_utils.app",
    "course_utils.quiz",
    "course_utils.quiz_drill",
    "course_utils.quiz_widget",
    "course_utils.demo",
    "course_utils.viz",
    "course_utils.cli",
]


def _package_modules() -> list[str]:
    """Every module of the package, found on disk (``__main__`` left out: it runs the CLI)."""
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] != "__main__":
            names.append(".".join(parts))
    return names


MODULES = _package_modules()


def test_package_has_the_planned_modules() -> None:
    missing = sorted(set(EXPECTED_MODULES) - set(MODULES))
    assert not missing, f"modules of the planned layout are missing: {missing}"


def test_import_has_no_side_effects(tmp_path: Path) -> None:
    """Importing every module creates no file, sets no seed and leaves rcParams alone."""
    code = f"""
import os, random, matplotlib
import keras, pandas, scipy, sklearn, tensorflow, tf_keras_vis  # may draw random numbers
os.chdir({str(tmp_path / "work")!r})
before_rc = dict(matplotlib.rcParams)
state = random.getstate()
import numpy as np
np_state = np.random.get_state()[1].copy()
for name in {MODULES!r}:
    __import__(name)
assert os.listdir('.') == [], os.listdir('.')
assert random.getstate() == state
assert (np.random.get_state()[1] == np_state).all()
changed = [k for k, v in matplotlib.rcParams.items() if before_rc.get(k) != v]
assert not changed, changed
"""
    (tmp_path / "work").mkdir()
    env = {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "home" / ".cache" / "brain-tumor-mri-course").exists()


def test_canonical_class() -> None:
    assert config.canonical_class("Glioma") == "glioma"
    assert config.canonical_class("no_tumor") == "notumor"
    assert config.canonical_class("pituitary_tumor") == "pituitary"
    assert config.canonical_class("scans") is None


def test_cache_dir_and_progress(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(config.CACHE_DIR_ENV, str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c"
    assert not (tmp_path / "c").exists(), "cache_dir() must not create the folder"
    monkeypatch.delenv(config.CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert config.cache_dir() == tmp_path / "brain-tumor-mri-course"
    monkeypatch.setenv("CI", "true")
    assert config.in_ci() and not config.show_progress()
    monkeypatch.setenv("CI", "false")
    monkeypatch.delenv("BTMRI_QUIET", raising=False)
    assert not config.in_ci() and config.show_progress()
    assert not config.in_colab()
