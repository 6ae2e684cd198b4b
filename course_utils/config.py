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

#: The training-time augmentations a run can ask for (``data.pipeline.augmenter``).
AUGMENTATIONS = ("standard", "flip", "none")

#: The two halves of the Kaggle layout, ``<root>/<split>/<class>/<file>``.
TRAIN_SPLIT = "Training"
TEST_SPLIT = "Testing"
SPLIT_NAMES: tuple[str, ...] = (TRAIN_SPLIT, TEST_SPLIT)

#: File endings the course reads as images: the formats ``tf.io.decode_image`` decodes.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif"})
#: The PIL format names that match those endings.
DECODABLE_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "BMP", "GIF", "MPO"})

#: The Kaggle dataset (the course's audit of its version-1 download counted 7,020 files,
#: 1,312 of them in Testing: see the README's data section).
KAGGLE_HANDLE = "masoudnickparvar/brain-tumor-mri-dataset"

#: Environment variable that points the course at a local copy of the data.
DATA_DIR_ENV = "BTMRI_DATA_DIR"
#: Environment variable that moves the course's cache (phantoms, features).
CACHE_DIR_ENV = "BTMRI_CACHE_DIR"

#: Where the course's repository lives, and the branch or tag students install: the one source
#: of the notebooks' Colab install cell and badges and the README's badges (a test checks them).
REPO_URL = "https://github.com/btmri-course/brain-tumor-mri-course"
REPO_REF = "main"
#: Where ``USE_DRIVE = True`` keeps a Colab student's artifacts between lessons and sessions.
DRIVE_MOUNT = "/content/drive"
DRIVE_FOLDER = "MyDrive/brain-tumor-mri-course"

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


def colab_badge(notebook: str) -> str:
    """Return the "Open in Colab" badge of a notebook, as Markdown.

    Args:
        notebook: The notebook's name without ending, e.g. ``"03_cnn"``.

    Returns:
        A Markdown image link to the notebook at ``REPO_URL``/``REPO_REF`` in Colab.
    """
    path = REPO_URL.removeprefix("https://github.com/")
    link = f"https://colab.research.google.com/github/{path}/blob/{REPO_REF}/notebooks/{notebook}.ipynb"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({link})"


def colab_setup_source() -> str:
    """Return the source of every notebook's first code cell (installs the course in Colab).

    It keeps TensorFlow's C++ log lines quiet, installs the course from ``REPO_URL`` at
    ``REPO_REF`` only inside Colab (into Colab's own packages), and stops the notebook with
    pip's message when the install fails, instead of a later ``ModuleNotFoundError``.

    Returns:
        Python source for a notebook cell.
    """
    return f"""import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no TensorFlow C++ log lines
if "google.colab" in sys.modules:  # install the course only inside Colab
    import subprocess

    COURSE = "git+{REPO_URL}@{REPO_REF}"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", COURSE]
    installed = subprocess.run(pip, capture_output=True, text=True)
    if installed.returncode != 0:
        raise RuntimeError(
            f"Installing the course failed (pip exit code {{installed.returncode}}):\\n"
            f"{{installed.stderr[-1500:]}}\\nCheck the runtime's internet connection "
            "(Runtime > Disconnect and delete runtime, then run again)."
        )"""


def artifacts_dir(folder: str | Path, use_drive: bool = False) -> Path:
    """Return the run's ``ARTIFACTS_DIR``, on Google Drive when asked for in Colab.

    With ``use_drive`` in Colab, Drive is mounted (Colab asks for permission once) and a
    relative ``folder`` is placed under ``MyDrive/brain-tumor-mri-course``, so models,
    metrics and quiz progress survive between lessons and sessions.

    Args:
        folder: The notebook's ``ARTIFACTS_DIR`` parameter.
        use_drive: The notebook's ``USE_DRIVE`` parameter.

    Returns:
        The folder to use (not created here).
    """
    folder = Path(folder)
    if not use_drive:
        return folder
    if not in_colab():
        print(f"USE_DRIVE works in Google Colab only; using {folder} on this machine.")
        return folder
    from google.colab import drive  # only exists in Colab

    drive.mount(DRIVE_MOUNT)
    target = folder if folder.is_absolute() else Path(DRIVE_MOUNT) / DRIVE_FOLDER / folder
    print(f"ARTIFACTS_DIR is on your Google Drive: {target}")
    return target
