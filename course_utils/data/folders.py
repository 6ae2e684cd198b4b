"""Scan any test folder laid out as one sub-folder per class, in a model's class order.

A test folder from elsewhere (``DIR/<class>/<image>`` or a dataset root with
``Testing/``) is read with the model card's classes: folder names may be aliases
(``glioma_tumor``, ``No_Tumor``), unreadable files are skipped and reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from course_utils import config
from course_utils.data.scan import inspect_file, list_class_folder


def find_test_root(folder: str | Path) -> Path:
    """Return the folder that holds the class folders: ``DIR/Testing`` if present, else DIR.

    Args:
        folder: ``DIR`` with ``DIR/<class>/<image>`` or ``DIR/Testing/<class>/<image>``.

    Returns:
        The folder of the class folders.

    Raises:
        FileNotFoundError: If the folder does not exist.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Test folder {folder} does not exist or is not a folder; pass a folder laid out "
            "as DIR/<class>/<image> or DIR/Testing/<class>/<image>."
        )
    for child in sorted(folder.iterdir()):
        if child.is_dir() and child.name.lower() in ("testing", "test"):
            return child
    return folder


def _class_mismatch(root: Path, class_names: Sequence[str], missing: list, extra: list) -> str:
    """Explain a test folder whose classes differ from the model's."""
    return (
        f"The test folder {root} does not match the model's classes {list(class_names)} (from "
        f"its card): missing {missing or 'none'}, extra {extra or 'none'}. Use one sub-folder "
        "per class of the model, named as in its card (DIR/<class>/<image> or "
        "DIR/Testing/<class>/<image>), each with at least one readable image."
    )


def class_folders(root: Path, class_names: Sequence[str]) -> dict[str, list[Path]]:
    """Map each of the model's classes to its folders under ``root``.

    Args:
        root: The folder of the class folders (``find_test_root``).
        class_names: The model's classes (its card); aliases such as ``glioma_tumor`` count.

    Returns:
        ``{class: [folders]}`` in the card's class order.

    Raises:
        ValueError: If a class has no folder or a folder is not one of the classes.
    """
    found: dict[str, list[Path]] = {}
    extra = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = config.canonical_class(child.name, tuple(class_names))
        if label is None:
            extra.append(child.name)
        else:
            found.setdefault(label, []).append(child)
    missing = [name for name in class_names if name not in found]
    if missing or extra:
        raise ValueError(_class_mismatch(root, class_names, missing, extra))
    return {name: found[name] for name in class_names}


def scan_test_folder(
    folder: str | Path, class_names: Sequence[str]
) -> tuple[pd.DataFrame, list[str]]:
    """List the readable images of a test folder in the Kaggle class-folder layout.

    Each file is opened once (``scan.inspect_file``); unreadable ones are skipped and
    reported, because one corrupt file would stop the whole prediction pass.

    Args:
        folder: ``DIR`` (``DIR/<class>/<image>``) or a dataset root with ``Testing/``.
        class_names: The model's class order (its card), never the folders' order.

    Returns:
        ``(table, skipped)``: ``path`` (relative), ``abs_path`` and ``label`` of every
        readable image, and one ``"path: reason"`` line per skipped file.

    Raises:
        FileNotFoundError: If the folder does not exist.
        ValueError: If its classes differ from ``class_names`` or a class has no readable
            image.
    """
    root = find_test_root(folder)
    rows, skipped = [], []
    for label, folders in class_folders(root, class_names).items():
        for class_dir in folders:
            for relative in list_class_folder(root, class_dir, []):
                info, _ = inspect_file(root / relative)
                if info["readable"]:
                    rows.append(
                        {"path": relative, "abs_path": str(root / relative), "label": label}
                    )
                else:
                    skipped.append(f"{relative}: {info['error']}")
    table = pd.DataFrame(rows, columns=["path", "abs_path", "label"])
    empty = [name for name in class_names if name not in set(table["label"])]
    if empty:
        raise ValueError(_class_mismatch(root, class_names, empty, []))
    return table, skipped
