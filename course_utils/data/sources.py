"""One function that finds or fetches the course's data, and says which it used.

Order of precedence: an explicit folder (``DATA_DIR`` / ``--data`` /
``$BTMRI_DATA_DIR``), else the source asked for: ``"kaggle"`` (download through
``kagglehub``, cached) or ``"phantoms"`` (the synthetic dataset the package makes).
A failed Kaggle download is an error that names the three options; it never
falls back to phantoms behind the learner's back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from course_utils import config
from course_utils.data.scan import find_split_dirs

SOURCES = ("phantoms", "kaggle")


class DatasetUnavailableError(RuntimeError):
    """The requested real dataset cannot be had (offline, not authenticated, …)."""


@dataclass(frozen=True)
class DatasetSource:
    """Where the data comes from.

    Attributes:
        root: Folder in the Kaggle layout (``Training/<class>/…``).
        kind: ``"local"``, ``"kaggle"`` or ``"phantoms"``.
        description: One sentence for the notebook to print.
    """

    root: Path
    kind: str
    description: str

    def to_dict(self) -> dict[str, str]:
        """Return the source as JSON-ready data (``root``, ``source``, ``description``)."""
        return {"root": str(self.root), "source": self.kind, "description": self.description}


def resolve_dataset(
    data_dir: str | Path | None = None,
    source: str = "phantoms",
    kaggle_version: int | None = None,
    phantom_params: dict | None = None,
) -> DatasetSource:
    """Find or fetch the dataset.

    Args:
        data_dir: A local folder in the Kaggle layout; wins over everything else.
            When None, ``$BTMRI_DATA_DIR`` is used if set.
        source: ``"kaggle"`` or ``"phantoms"``, used when no folder is given.
        kaggle_version: Kaggle dataset version (None: the latest).
        phantom_params: Keyword arguments for ``phantom_dataset.ensure_phantom_dataset``.

    Returns:
        The ``DatasetSource``.

    Raises:
        FileNotFoundError: If the given folder does not exist.
        ValueError: If the folder is not in the Kaggle layout or ``source`` is unknown.
        DatasetUnavailableError: If the Kaggle download fails.
    """
    data_dir = data_dir or os.environ.get(config.DATA_DIR_ENV) or None
    if data_dir:
        root = Path(data_dir).expanduser().resolve()
        find_split_dirs(root)
        return DatasetSource(root, "local", f"local copy at {root}")
    if source == "kaggle":
        root = download_kaggle(kaggle_version)
        version = f"version {kaggle_version}" if kaggle_version else "latest version"
        return DatasetSource(root, "kaggle", f"Kaggle {config.KAGGLE_HANDLE} ({version}) at {root}")
    if source == "phantoms":
        from course_utils.data.phantom_dataset import ensure_phantom_dataset

        root = ensure_phantom_dataset(**(phantom_params or {}))
        return DatasetSource(root, "phantoms", f"synthetic MRI phantoms (not real scans) at {root}")
    raise ValueError(f"Unknown data source {source!r}; use one of {SOURCES} or pass a data_dir.")


def download_kaggle(version: int | None = None) -> Path:
    """Download (or reuse the cached) Kaggle dataset and return its root.

    Args:
        version: Dataset version; None downloads the latest.

    Returns:
        The folder that holds ``Training/`` and ``Testing/``.

    Raises:
        DatasetUnavailableError: If ``kagglehub`` cannot download it, with the fixes.
    """
    import kagglehub

    handle = config.KAGGLE_HANDLE + (f"/versions/{version}" if version else "")
    try:
        path = Path(kagglehub.dataset_download(handle))
    except Exception as error:  # noqa: BLE001 - any failure of the download means the same
        raise DatasetUnavailableError(kaggle_help(handle, error)) from error
    return find_kaggle_root(path)


def kaggle_help(handle: str, error: BaseException) -> str:
    """Explain a failed Kaggle download and the three ways forward.

    Args:
        handle: The dataset handle that was asked for.
        error: What ``kagglehub`` raised.

    Returns:
        A paragraph for the learner.
    """
    return (
        f"Could not download the Kaggle dataset {handle!r} "
        f"({type(error).__name__}: {error}). This happens offline, behind a proxy, or when "
        "Kaggle asks you to sign in. Choose one of: (1) sign in to Kaggle (kagglehub.login(), "
        "KAGGLE_USERNAME/KAGGLE_KEY, or Colab secrets) and run again; (2) point the course at "
        f"a copy you already have with DATA_DIR=..., --data DIR or ${config.DATA_DIR_ENV}; "
        "(3) use the synthetic phantoms with DATA_SOURCE='phantoms' (not real scans)."
    )


def find_kaggle_root(path: str | Path, max_depth: int = 3) -> Path:
    """Find the folder holding ``Training/`` inside a downloaded dataset.

    Args:
        path: What the download returned.
        max_depth: How many folder levels to search below ``path``.

    Returns:
        The dataset root.

    Raises:
        ValueError: If no ``Training`` folder is found.
    """
    candidates = [Path(path)]
    for _ in range(max_depth + 1):
        for candidate in candidates:
            try:
                find_split_dirs(candidate)
                return candidate
            except (ValueError, FileNotFoundError):
                continue
        candidates = [
            child
            for c in candidates
            if c.is_dir()
            for child in sorted(c.iterdir())
            if child.is_dir()
        ]
    raise ValueError(
        f"No Training/ folder within {max_depth} levels of {path}; is it this dataset?"
    )
