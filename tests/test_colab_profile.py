"""The Colab profile: inside Google Colab's pins, nothing pinned moved and models travel.

``make test-colab`` runs the whole suite in a virtualenv built with
``pip install -c colab-core-constraints.txt``, with ``BTMRI_COLAB_CONSTRAINTS`` naming that
file; these tests then check that the install changed no pinned package. In the main
environment they are skipped.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from pathlib import Path

import pytest

CONSTRAINTS = os.environ.get("BTMRI_COLAB_CONSTRAINTS")

pytestmark = pytest.mark.skipif(
    not CONSTRAINTS, reason="runs in the Colab profile only (make test-colab)"
)


def read_pins(path: Path) -> dict[str, str]:
    """Return ``{distribution name: version}`` of a ``name==version`` constraints file."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+).*", line)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


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


def test_the_course_needs_colabs_core_packages_at_their_pins() -> None:
    for name in ("tensorflow", "keras", "ipykernel", "ipywidgets", "ipython", "google-genai"):
        assert importlib.metadata.version(name) == read_pins(Path(CONSTRAINTS))[name]
