"""Find the image files of a dataset in the Kaggle layout and read each one once.

``scan_dataset`` only lists folders (fast, no decoding). ``inspect_images`` opens
every listed file, and is the single pass that the exploration and the audit share:
it records size, mode, format, a content hash and a small normalised thumbnail.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from course_utils import config

#: Side of the grayscale thumbnail that the near-duplicate measure compares.
THUMBNAIL_SIZE = 32
#: Largest image (in pixels) the course opens; larger files are reported, not decoded.
MAX_IMAGE_PIXELS = 64_000_000
#: The columns ``inspect_file`` adds to a scan's file table.
INFO_COLUMNS = (
    "readable",
    "error",
    "bytes",
    "sha256",
    "width",
    "height",
    "mode",
    "format",
    "mean_intensity",
)


@dataclass
class ScanResult:
    """What ``scan_dataset`` found under a dataset root.

    Attributes:
        root: The dataset root (the folder that holds ``Training/``).
        files: One row per candidate image: ``path`` (relative, POSIX), ``split``, ``label``.
        unknown_folders: Folders inside a split that are not one of the classes.
        empty_classes: ``split/class`` folders that exist but hold no image file.
        missing_classes: ``split/class`` folders that do not exist.
        ignored_files: Files skipped because their ending is not an image ending.
    """

    root: Path
    files: pd.DataFrame
    unknown_folders: list[str] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)
    missing_classes: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)


def find_split_dirs(root: str | Path) -> dict[str, Path]:
    """Locate the ``Training``/``Testing`` folders of a dataset root.

    Args:
        root: Folder expected to hold ``Training/`` and optionally ``Testing/``
            (matched case-insensitively; ``train``/``test`` are accepted too).

    Returns:
        A mapping from canonical split name to its folder; ``Testing`` may be absent.

    Raises:
        FileNotFoundError: If ``root`` does not exist.
        ValueError: If ``root`` is not a folder or has no training folder.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"Dataset folder {root} does not exist. Pass the folder that holds Training/ "
            f"(DATA_DIR, --data or ${config.DATA_DIR_ENV})."
        )
    if not root.is_dir():
        raise ValueError(f"Dataset path {root} is a file; pass the folder that holds Training/.")
    aliases = {
        "training": config.TRAIN_SPLIT,
        "train": config.TRAIN_SPLIT,
        "testing": config.TEST_SPLIT,
        "test": config.TEST_SPLIT,
    }
    found: dict[str, Path] = {}
    for child in sorted(root.iterdir()):
        split = aliases.get(child.name.lower())
        if split and child.is_dir() and split not in found:
            found[split] = child
    if config.TRAIN_SPLIT not in found:
        raise ValueError(
            f"Dataset folder {root} has no Training/ folder. Expected the Kaggle layout "
            f"Training/<class>/<image> (and optionally Testing/<class>/<image>)."
        )
    return found


def scan_dataset(root: str | Path, class_names: tuple[str, ...] = config.CLASS_NAMES) -> ScanResult:
    """List the image files of a dataset in the Kaggle layout, without opening them.

    Args:
        root: The dataset root, holding ``Training/<class>/`` and optionally ``Testing/<class>/``.
        class_names: The classes to look for; other folders are reported as unknown.

    Returns:
        A ``ScanResult`` whose ``files`` table is sorted by split, label and path.

    Raises:
        FileNotFoundError: If ``root`` does not exist.
        ValueError: If ``root`` has no training folder.
    """
    root = Path(root).expanduser()
    result = ScanResult(root=root, files=pd.DataFrame(columns=["path", "split", "label"]))
    rows: list[dict[str, str]] = []
    for split, split_dir in find_split_dirs(root).items():
        seen: set[str] = set()
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            label = config.canonical_class(class_dir.name, class_names)
            if label is None:
                result.unknown_folders.append(class_dir.relative_to(root).as_posix())
                continue
            seen.add(label)
            images = list_class_folder(root, class_dir, result.ignored_files)
            if not images:
                result.empty_classes.append(class_dir.relative_to(root).as_posix())
            rows += [{"path": path, "split": split, "label": label} for path in images]
        result.missing_classes += [f"{split_dir.name}/{c}" for c in class_names if c not in seen]
    if rows:
        result.files = pd.DataFrame(rows).sort_values(["split", "label", "path"], ignore_index=True)
    return result


def list_class_folder(root: Path, class_dir: Path, ignored: list[str]) -> list[str]:
    """Return the relative paths of the image files in one class folder (recursively).

    Args:
        root: The folder the returned paths are relative to.
        class_dir: The class folder to list.
        ignored: A list that receives files skipped for a non-image ending.

    Returns:
        Sorted POSIX paths relative to ``root``; hidden files are left out.
    """
    images = []
    for path in sorted(class_dir.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(root).as_posix()
        if path.suffix.lower() in config.IMAGE_EXTENSIONS:
            images.append(relative)
        else:
            ignored.append(relative)
    return images


def normalised_thumbnail(image: Image.Image, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """Turn an image into a zero-mean, unit-length grayscale thumbnail vector.

    The dot product of two such vectors is the Pearson correlation of the thumbnails:
    1.0 for the same picture whatever its size, JPEG quality or linear brightness.

    Args:
        image: Any PIL image.
        size: Side of the square thumbnail.

    Returns:
        A float32 vector of length ``size * size``.
    """
    gray = image.convert("L").resize((size, size), Image.Resampling.BILINEAR)
    vector = np.asarray(gray, dtype=np.float32).ravel()
    vector -= vector.mean()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def inspect_file(path: str | Path) -> tuple[dict, np.ndarray | None]:
    """Read one file and describe it, never raising for a bad image.

    Args:
        path: The file to read.

    Returns:
        A pair: a dict with ``readable``, ``error``, ``bytes``, ``sha256``, ``width``,
        ``height``, ``mode``, ``format`` and ``mean_intensity``; and the normalised
        thumbnail (None when the file cannot be decoded).
    """
    info: dict = dict.fromkeys(INFO_COLUMNS, "")
    info.update(readable=False, bytes=0, width=0, height=0, mean_intensity=np.nan)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        info["error"] = f"cannot read file: {error}"
        return info, None
    info["bytes"] = len(data)
    info["sha256"] = hashlib.sha256(data).hexdigest()
    if not data:
        info["error"] = "empty file (0 bytes)"
        return info, None
    try:
        image = _decode(data)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        info["error"] = _describe_decode_error(error)
        return info, None
    info.update(width=image.width, height=image.height, mode=image.mode, format=image.format or "")
    if info["format"] not in config.DECODABLE_FORMATS:
        info["error"] = (
            f"{info['format'] or 'unknown'} data: TensorFlow decodes JPEG/PNG/BMP/GIF only"
        )
        return info, None
    info["readable"] = True
    info["mean_intensity"] = float(np.asarray(image.convert("L"), dtype=np.float32).mean())
    return info, normalised_thumbnail(image)


def _decode(data: bytes) -> Image.Image:
    """Fully decode image bytes with PIL, refusing images over the pixel limit."""
    image = Image.open(io.BytesIO(data))
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise Image.DecompressionBombError(
            f"{image.width}x{image.height} pixels is over the course's limit of "
            f"{MAX_IMAGE_PIXELS:,}"
        )
    image.load()
    return image


def _describe_decode_error(error: Exception) -> str:
    """Phrase a PIL decoding error for a report."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image (PIL cannot identify the data)"
    if isinstance(error, Image.DecompressionBombError):
        return f"image too large (decompression-bomb guard): {error}"
    message = str(error)
    if "truncated" in message.lower() or "broken data stream" in message.lower():
        return f"truncated or corrupt image data: {message}"
    return f"cannot decode: {message}"


def inspect_images(
    scan: ScanResult, progress: bool | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Open every file of a scan once: metadata, content hash and thumbnail.

    Args:
        scan: The result of ``scan_dataset``.
        progress: Draw a progress bar; None means ``config.show_progress()``.

    Returns:
        A pair: the scan's file table with the columns of ``inspect_file`` added, and a
        float32 array of shape (number of files, THUMBNAIL_SIZE**2) of thumbnails
        (zeros for unreadable files).
    """
    show = config.show_progress() if progress is None else progress
    rows, thumbnails = [], np.zeros((len(scan.files), THUMBNAIL_SIZE**2), dtype=np.float32)
    paths = scan.files["path"].tolist()
    for index, relative in enumerate(tqdm(paths, desc="Reading images", disable=not show)):
        info, thumbnail = inspect_file(scan.root / relative)
        rows.append(info)
        if thumbnail is not None:
            thumbnails[index] = thumbnail
    info = pd.DataFrame(rows, columns=list(INFO_COLUMNS))
    table = pd.concat([scan.files.reset_index(drop=True), info], axis=1)
    return table, thumbnails
