"""Course-wide constants and small environment helpers.

Nothing here touches the file system or global state at import time: paths are
computed by functions, so importing the package never creates a folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The four classes of the Kaggle "Brain Tumor MRI Dataset", in the order every
#: model, metric and figure of the course uses.
CLASS_NAMES: tuple[str, ...] = ("glioma", "meningioma", "notumor", "pituitary")

#: Folder names of older copies of the data (e.g. the Sartaj Bhuvaji dataset) that
#: mean one of the four classes.
CLASS_ALIASES: dict[str, str] = {
    "glioma_tumor": "glioma",
    "meningioma_tumor": "meningioma",
    "no_tumor": "notumor",
    "no": "notumor",
    "pituitary_tumor": "pituitary",
}

#: The two halves of the Kaggle layout, ``<root>/<split>/<class>/<file>``.
TRAIN_SPLIT = "Training"
TEST_SPLIT = "Testing"
SPLIT_NAMES: tuple[str, ...] = (TRAIN_SPLIT, TEST_SPLIT)

#: File endings the course reads as images: the formats ``tf.io.decode_image`` decodes.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif"})
#: The PIL format names that match those endings.
DECODABLE_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "BMP", "GIF", "MPO"})

#: The Kaggle dataset and its known versions (image counts: total, Training, Testing).
KAGGLE_HANDLE = "masoudnickparvar/brain-tumor-mri-dataset"
KAGGLE_VERSIONS: dict[int, tuple[int, int, int]] = {
    1: (7023, 5712, 1311),
}

#: Environment variable that points the course at a local copy of the data.
DATA_DIR_ENV = "BTMRI_DATA_DIR"
#: Environment variable that moves the course's cache (phantoms, features).
CACHE_DIR_ENV = "BTMRI_CACHE_DIR"

#: Where the course's repository lives (used for the Colab install cell and badges).
REPO_URL = "https://github.com/btmri-course/brain-tumor-mri-course"

DEFAULT_IMAGE_SIZE = 224
DEFAULT_SEED = 42


def in_colab() -> bool:
    """Tell whether the code runs inside Google Colab.

    Returns:
        True when the ``google.colab`` module has been imported by the runtime.
    """
    return "google.colab" in sys.modules


def in_ci() -> bool:
    """Tell whether the code runs under continuous integration.

    Returns:
        True when the ``CI`` environment variable is set to a true-ish value.
    """
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def show_progress() -> bool:
    """Decide whether long loops should draw a progress bar.

    Returns:
        False under CI or when ``BTMRI_QUIET`` is set, True otherwise.
    """
    return not in_ci() and not os.environ.get("BTMRI_QUIET")


def cache_dir() -> Path:
    """Return the course's cache folder (not created here).

    Returns:
        ``$BTMRI_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/brain-tumor-mri-course``
        (``~/.cache/...`` by default).
    """
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "brain-tumor-mri-course"


def canonical_class(folder_name: str, class_names: tuple[str, ...] = CLASS_NAMES) -> str | None:
    """Map a class folder's name to one of the course's classes.

    Args:
        folder_name: The folder's name as found on disk (any case).
        class_names: The classes the course knows.

    Returns:
        The canonical class name, or None when the folder is not a known class.
    """
    name = folder_name.strip().lower()
    if name in class_names:
        return name
    alias = CLASS_ALIASES.get(name)
    return alias if alias in class_names else None
