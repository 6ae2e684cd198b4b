"""The figshare tumor-box reference: content signatures, labels and boxes, read and rebuilt.

The Kaggle "Brain Tumor MRI Dataset" took most of its tumor scans from the figshare brain
tumor dataset (Cheng 2017, CC BY 4.0), which ships each tumor's bounding box. The package
ships a compact reference of those 3,064 slices, ``figshare_boxes.npz`` beside this module:
for each slice its figshare id, label, box (centre and size as fractions of the image side)
and a content signature (a 24x24 grayscale thumbnail, zero-mean and unit-length, stored as
int8). ``course_utils.data.boxes`` matches scans against it; users never download figshare.
``scripts/build_figshare_reference.py`` rebuilds the file from a copy of the figshare images.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from course_utils.data.scan import MAX_IMAGE_PIXELS, normalised_thumbnail

#: Version of the reference file's layout; ``load_reference`` refuses any other.
FORMAT_VERSION = 1
#: Side of the grayscale thumbnail used as a content signature (24x24 keeps the file small
#: and matches as many Kaggle scans as 32x32 does).
SIGNATURE_SIZE = 24
#: File name of the reference shipped inside the package.
REFERENCE_FILE_NAME = "figshare_boxes.npz"
#: The columns of the figshare ``boxes.csv`` (box centre and size as fractions of the side).
BOX_CSV_COLUMNS = ("file", "label", "x_center", "y_center", "width", "height")
#: The attribution the CC BY 4.0 licence of the figshare dataset requires.
ATTRIBUTION = (
    "Tumor boxes and image signatures derived from: Cheng, Jun (2017): brain tumor dataset. "
    "figshare. Dataset. https://doi.org/10.6084/m9.figshare.1512427.v5 (CC BY 4.0). Boxes as "
    "republished in the dataset-brain-tumor folder of the RCS-YOLO repository "
    "(nanonane/RCS-YOLO). Changes: images reduced to 24x24 grayscale thumbnails, "
    "mean-subtracted, unit length, quantised to int8; boxes unchanged."
)
LICENCE = "CC BY 4.0"


@dataclass(frozen=True)
class FigshareReference:
    """The figshare slices that scans are matched against.

    Attributes:
        ids: Figshare slice ids (the image file's stem), shape (n,).
        labels: Figshare class of each slice (``glioma``, ``meningioma``, ``pituitary``).
        boxes: Tumor box of each slice as ``x_center, y_center, width, height`` fractions
            of the image width/height (x to the right, y downwards), shape (n, 4).
        signatures: Unit-length float32 signatures, shape (n, signature_size**2).
        signature_size: Side of the signature thumbnail.
        attribution: The licence's required attribution.
        licence: The licence of the figshare data.
    """

    ids: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    signatures: np.ndarray
    signature_size: int = SIGNATURE_SIZE
    attribution: str = ATTRIBUTION
    licence: str = LICENCE

    def __len__(self) -> int:
        return len(self.ids)


def default_reference_path() -> Path:
    """Return the path of the reference file shipped with the package.

    Returns:
        ``course_utils/data/figshare_boxes.npz``.
    """
    return Path(__file__).resolve().parent / REFERENCE_FILE_NAME


def read_signature(path: str | Path, size: int = SIGNATURE_SIZE) -> np.ndarray:
    """Read an image file and return its content signature.

    JPEG files are decoded at reduced scale (PIL draft mode), which is several times faster
    and gives the same signature to within a fraction of a percent.

    Args:
        path: The image file.
        size: Side of the signature thumbnail.

    Returns:
        A unit-length (or all-zero for a blank image) float32 vector of length ``size**2``.

    Raises:
        ValueError: If the file cannot be read or decoded as an image, or is too large.
    """
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"{image.width}x{image.height} pixels is over the course's limit of "
                    f"{MAX_IMAGE_PIXELS:,}"
                )
            image.draft("L", (size, size))
            return normalised_thumbnail(image, size)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from error


def quantise_signatures(signatures: np.ndarray) -> np.ndarray:
    """Store signatures as int8: each row scaled so its largest magnitude is 127.

    Args:
        signatures: Float signatures, shape (n, d).

    Returns:
        int8 array of shape (n, d); ``dequantise_signatures`` restores unit length.
    """
    peak = np.abs(signatures).max(axis=1, keepdims=True)
    scale = np.where(peak > 0, 127.0 / np.where(peak > 0, peak, 1.0), 0.0)
    return np.round(signatures * scale).astype(np.int8)


def dequantise_signatures(quantised: np.ndarray) -> np.ndarray:
    """Turn int8 signatures back into unit-length float32 rows (zero rows stay zero).

    Args:
        quantised: The int8 array of ``quantise_signatures``.

    Returns:
        float32 array of the same shape with rows of length 1.
    """
    signatures = quantised.astype(np.float32)
    norms = np.linalg.norm(signatures, axis=1, keepdims=True)
    return signatures / np.where(norms > 0, norms, 1.0)


def read_box_table(figshare_dir: str | Path) -> pd.DataFrame:
    """Read and check the ``boxes.csv`` of a figshare copy.

    Args:
        figshare_dir: Folder holding ``boxes.csv`` and ``images/<class>/<id>.jpg``.

    Returns:
        The table, with the columns of ``BOX_CSV_COLUMNS``.

    Raises:
        FileNotFoundError: If the folder or its ``boxes.csv`` is missing.
        ValueError: If a column is missing or a box value is outside [0, 1].
    """
    csv_path = Path(figshare_dir) / "boxes.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"No boxes.csv in {figshare_dir}. Pass the figshare-tumor-boxes folder "
            "(boxes.csv and images/<class>/<id>.jpg), e.g. ../shared/datasets/figshare-tumor-boxes."
        )
    table = pd.read_csv(csv_path)
    missing = [c for c in BOX_CSV_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{csv_path} lacks the columns {missing}; expected {BOX_CSV_COLUMNS}.")
    values = table[list(BOX_CSV_COLUMNS[2:])].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise ValueError(f"{csv_path} has box values outside [0, 1]; boxes must be fractions.")
    return table


def build_reference(figshare_dir: str | Path, size: int = SIGNATURE_SIZE) -> FigshareReference:
    """Compute the reference from a copy of the figshare images and their boxes.

    Args:
        figshare_dir: Folder holding ``boxes.csv`` and the images it lists.
        size: Side of the signature thumbnail.

    Returns:
        The reference, with signatures already passed through int8 quantisation (so it
        equals what ``load_reference`` returns after ``save_reference``).

    Raises:
        FileNotFoundError: If the folder, ``boxes.csv`` or a listed image is missing.
        ValueError: If the table is malformed or an image cannot be decoded.
    """
    root = Path(figshare_dir)
    table = read_box_table(root)
    paths = [root / name for name in table["file"]]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise FileNotFoundError(
            f"{len(absent)} images listed in {root / 'boxes.csv'} are missing, e.g. {absent[0]}."
        )
    signatures = np.stack([read_signature(path, size) for path in paths])
    return FigshareReference(
        ids=np.array([int(Path(name).stem) for name in table["file"]], dtype=np.int32),
        labels=table["label"].astype(str).to_numpy().astype(np.str_),
        boxes=table[list(BOX_CSV_COLUMNS[2:])].to_numpy(dtype=np.float32),
        signatures=dequantise_signatures(quantise_signatures(signatures)),
        signature_size=size,
    )


def save_reference(reference: FigshareReference, path: str | Path) -> Path:
    """Write a reference as a compressed ``.npz`` that is byte-identical for equal content.

    Args:
        reference: The reference to write.
        path: The ``.npz`` file to write (its folder must exist).

    Returns:
        The path written.
    """
    arrays = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int32),
        "signature_size": np.array(reference.signature_size, dtype=np.int32),
        "ids": reference.ids.astype(np.int32),
        "labels": reference.labels.astype(np.str_),
        "boxes": reference.boxes.astype(np.float32),
        "signatures": quantise_signatures(reference.signatures),
        "attribution": np.array(reference.attribution),
        "licence": np.array(reference.licence),
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, buffer.getvalue(), compresslevel=9)
    return Path(path)


def load_reference(path: str | Path | None = None) -> FigshareReference:
    """Load a reference file (by default the one shipped with the package).

    Args:
        path: An ``.npz`` written by ``save_reference``; None means the packaged file.

    Returns:
        The reference, signatures as unit-length float32 rows.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not a reference of this format version.
    """
    path = Path(path) if path is not None else default_reference_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"No figshare reference at {path}. Reinstall the package, or rebuild the file with "
            "`python scripts/build_figshare_reference.py --figshare DIR --out PATH`."
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a readable .npz reference file: {error}") from error
    version = int(contents.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path} has reference format version {version}, this code reads version "
            f"{FORMAT_VERSION}; rebuild it with scripts/build_figshare_reference.py."
        )
    return FigshareReference(
        ids=contents["ids"],
        labels=contents["labels"],
        boxes=contents["boxes"],
        signatures=dequantise_signatures(contents["signatures"]),
        signature_size=int(contents["signature_size"]),
        attribution=str(contents["attribution"]),
        licence=str(contents["licence"]),
    )
