"""Give real scans a real tumor box by matching them to their figshare originals by content.

Each scan's signature (``course_utils.data.figshare``) is compared with every figshare slice
under the 8 flips and rotations of the square, in one matrix product per chunk of scans;
the best pair above the threshold (0.98 by default) gives the scan the slice's box, mapped
back through the same flip or rotation into the scan's own coordinates. Boxes are corners
``x0, y0, x1, y1`` as fractions of the scan's width and height (x right, y down).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from course_utils import config
from course_utils.data.figshare import FigshareReference, load_reference, read_signature
from course_utils.data.scan import normalised_thumbnail

#: Smallest thumbnail correlation that counts as the same slice (see the figshare README:
#: Kaggle scans with a figshare original score above it, no-tumor scans below).
DEFAULT_THRESHOLD = 0.98
#: The 8 symmetries of the square, as applied to a scan to line it up with its original.
TRANSFORMS: tuple[str, ...] = (
    "identity",
    "mirror",
    "flip",
    "rotate180",
    "transpose",
    "rotate90",
    "rotate270",
    "antitranspose",
)
#: The columns of the CSV written by ``python -m course_utils data boxes``.
CSV_COLUMNS = (
    "file",
    "label",
    "x0",
    "y0",
    "x1",
    "y1",
    "similarity",
    "figshare_id",
    "figshare_label",
    "transform",
)
#: Scans compared per matrix product (bounds memory: chunk x 8 x reference floats).
CHUNK_SIZE = 512


@dataclass(frozen=True)
class TumorBox:
    """A scan's tumor box, taken from the figshare slice it matched.

    Attributes:
        x0: Left edge, as a fraction of the scan's width.
        y0: Top edge, as a fraction of the scan's height.
        x1: Right edge.
        y1: Bottom edge.
        similarity: Correlation of the signatures (1.0 for the same picture).
        figshare_id: Id of the matched figshare slice.
        figshare_label: Class of the matched figshare slice.
        transform: The symmetry (one of ``TRANSFORMS``) that lines the scan up with it.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    similarity: float
    figshare_id: int
    figshare_label: str
    transform: str


def transform_square(array: np.ndarray, index: int) -> np.ndarray:
    """Apply one of the 8 symmetries of the square to the last two axes of an array.

    Args:
        array: Array whose last two axes are (rows, columns) of a square image.
        index: Position of the symmetry in ``TRANSFORMS``.

    Returns:
        The transformed array (a view where NumPy allows).

    Raises:
        ValueError: If ``index`` is not in ``range(8)``.
    """
    if index not in range(len(TRANSFORMS)):
        raise ValueError(f"Transform index {index} is not one of 0..{len(TRANSFORMS) - 1}.")
    rows, columns = array.ndim - 2, array.ndim - 1
    moves = (
        lambda a: a,
        lambda a: np.flip(a, columns),
        lambda a: np.flip(a, rows),
        lambda a: np.flip(a, (rows, columns)),
        lambda a: np.swapaxes(a, rows, columns),
        lambda a: np.rot90(a, 1, axes=(rows, columns)),
        lambda a: np.rot90(a, -1, axes=(rows, columns)),
        lambda a: np.swapaxes(np.flip(a, (rows, columns)), rows, columns),
    )
    return moves[index](array)


def transform_signatures(signatures: np.ndarray, size: int) -> np.ndarray:
    """Return every signature under the 8 symmetries of the square.

    Args:
        signatures: Flattened square thumbnails, shape (n, size * size).
        size: Side of the thumbnails.

    Returns:
        float32 array of shape (n, 8, size * size), transforms in ``TRANSFORMS`` order.
    """
    squares = np.asarray(signatures, dtype=np.float32).reshape(-1, size, size)
    stacked = [transform_square(squares, index) for index in range(len(TRANSFORMS))]
    return np.stack(stacked, axis=1).reshape(len(squares), len(TRANSFORMS), size * size)


def map_points_to_scan(
    x: np.ndarray | float, y: np.ndarray | float, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Map points of the transformed scan back to the scan's own coordinates.

    A symmetry of the square is affine, so it is fixed by where the four corners go:
    transforming a 2x2 grid of corner coordinates with ``transform_square`` tells, for
    each corner of the transformed image, which corner of the scan it came from.

    Args:
        x: Horizontal fractions (0 left, 1 right) in the transformed image.
        y: Vertical fractions (0 top, 1 bottom) in the transformed image.
        index: Position of the symmetry in ``TRANSFORMS`` that was applied to the scan.

    Returns:
        The ``(x, y)`` fractions of the same points in the scan.
    """
    source_x = transform_square(np.array([[0.0, 1.0], [0.0, 1.0]]), index)
    source_y = transform_square(np.array([[0.0, 0.0], [1.0, 1.0]]), index)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    weights = np.stack([np.stack([(1 - x) * (1 - y), x * (1 - y)]), np.stack([(1 - x) * y, x * y])])
    mapped_x = np.einsum("ij,ij...->...", source_x, weights)
    mapped_y = np.einsum("ij,ij...->...", source_y, weights)
    return mapped_x, mapped_y


def box_corners(centre_size: np.ndarray) -> np.ndarray:
    """Turn ``x_center, y_center, width, height`` boxes into clipped corners.

    Args:
        centre_size: Boxes as fractions, shape (..., 4).

    Returns:
        ``x0, y0, x1, y1`` fractions clipped to [0, 1], same shape.
    """
    boxes = np.asarray(centre_size, dtype=np.float64)
    centre, half = boxes[..., :2], boxes[..., 2:] / 2
    return np.clip(np.concatenate([centre - half, centre + half], axis=-1), 0.0, 1.0)


def box_in_scan(corners: np.ndarray, index: int) -> tuple[float, float, float, float]:
    """Map a figshare box to the scan that matched it through transform ``index``.

    Args:
        corners: The figshare box ``x0, y0, x1, y1`` (fractions).
        index: Position in ``TRANSFORMS`` of the symmetry applied to the scan.

    Returns:
        The box ``x0, y0, x1, y1`` in the scan's own coordinates.
    """
    xs, ys = map_points_to_scan(np.array(corners[0::2]), np.array(corners[1::2]), index)
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def check_threshold(threshold: float) -> float:
    """Return the threshold if it is a usable correlation, else raise.

    Args:
        threshold: Smallest similarity that counts as a match.

    Returns:
        The threshold as a float.

    Raises:
        ValueError: If it is not in (0, 1].
    """
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(
            f"Similarity threshold {threshold} is not in (0, 1]; "
            f"the default is {DEFAULT_THRESHOLD}."
        )
    return float(threshold)


def match_signatures(
    signatures: np.ndarray, reference: FigshareReference, chunk_size: int = CHUNK_SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find each scan's most similar figshare slice over the 8 symmetries.

    Args:
        signatures: Scan signatures, shape (n, reference.signature_size ** 2).
        reference: The figshare reference.
        chunk_size: Scans per matrix product.

    Returns:
        Three arrays of length n: the best similarity, the index of the slice in the
        reference, and the index of the symmetry in ``TRANSFORMS``.

    Raises:
        ValueError: If the signatures do not have the reference's length.
    """
    size, count = reference.signature_size, len(reference)
    signatures = np.asarray(signatures, dtype=np.float32)
    if signatures.ndim != 2 or signatures.shape[1] != size * size:
        raise ValueError(
            f"Signatures of shape {signatures.shape} cannot be compared with the reference's "
            f"{size}x{size}: pass an array of shape (scans, {size * size}), computed with "
            f"size={size}."
        )
    reference_matrix = np.ascontiguousarray(reference.signatures.T, dtype=np.float32)
    best = np.zeros(len(signatures), dtype=np.float32)
    flat = np.zeros(len(signatures), dtype=np.int64)
    for start in range(0, len(signatures), chunk_size):
        chunk = transform_signatures(signatures[start : start + chunk_size], size)
        similarity = (chunk.reshape(-1, size * size) @ reference_matrix).reshape(len(chunk), -1)
        flat[start : start + len(chunk)] = similarity.argmax(axis=1)
        best[start : start + len(chunk)] = similarity.max(axis=1)
    return best, flat % count, flat // count


def tumor_box(
    reference: FigshareReference, slice_index: int, transform_index: int, similarity: float
) -> TumorBox:
    """Build the ``TumorBox`` of a scan from its match.

    Args:
        reference: The figshare reference.
        slice_index: Index of the matched slice in the reference.
        transform_index: Index in ``TRANSFORMS`` of the symmetry that lined them up.
        similarity: The match's similarity.

    Returns:
        The box in the scan's coordinates, with the match's details.
    """
    x0, y0, x1, y1 = box_in_scan(box_corners(reference.boxes[slice_index]), transform_index)
    return TumorBox(
        x0=x0,
        y0=y0,
        x1=x1,
        y1=y1,
        similarity=float(similarity),
        figshare_id=int(reference.ids[slice_index]),
        figshare_label=str(reference.labels[slice_index]),
        transform=TRANSFORMS[transform_index],
    )


def find_box(
    scan: str | Path | Image.Image,
    reference: FigshareReference | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> TumorBox | None:
    """Return a scan's tumor box from its figshare original, or None when it has none.

    Args:
        scan: An image file or a PIL image (any size, mode, mirroring or rotation).
        reference: The figshare reference; None loads the packaged one (pass it in when
            calling this for many scans).
        threshold: Smallest similarity that counts as a match.

    Returns:
        The box and its match, or None when no figshare slice reaches ``threshold``.

    Raises:
        ValueError: If the file cannot be decoded or the threshold is not in (0, 1].
        FileNotFoundError: If the packaged reference is missing.
    """
    threshold = check_threshold(threshold)
    reference = load_reference() if reference is None else reference
    size = reference.signature_size
    if isinstance(scan, Image.Image):
        signature = normalised_thumbnail(scan, size)
    else:
        signature = read_signature(scan, size)
    similarity, slices, transforms = match_signatures(signature[None], reference)
    if similarity[0] < threshold:
        return None
    return tumor_box(reference, int(slices[0]), int(transforms[0]), float(similarity[0]))


@dataclass
class FolderBoxes:
    """The tumor boxes found for the images of a folder tree.

    Attributes:
        root: The folder that was searched.
        table: One row per image that has a box, with the columns of ``CSV_COLUMNS``
            (``file`` relative to ``root``, POSIX).
        scanned: Number of readable images per class label (``""`` for no class folder).
        skipped: ``"path: reason"`` for each image that could not be read.
        seconds: Time taken to read and match.
    """

    root: Path
    table: pd.DataFrame
    scanned: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def matched(self) -> dict[str, int]:
        """Return the number of images with a box per class label.

        Returns:
            A count for every label in ``scanned`` (0 when none matched).
        """
        counts = self.table["label"].value_counts()
        return {label: int(counts.get(label, 0)) for label in self.scanned}

    def summary(self) -> str:
        """Describe the result in a few lines: per-class match rates, skipped files, time.

        Returns:
            Text ready to print.
        """
        lines = []
        for label, found in self.matched().items():
            total = self.scanned[label]
            lines.append(
                f"{label or '(no class folder)'}: {found} of {total} ({found / total:.1%})"
            )
        lines.append(
            f"{len(self.table)} of {sum(self.scanned.values())} images have a box; "
            f"{len(self.skipped)} unreadable skipped; {self.seconds:.1f} s"
        )
        return "\n".join(lines)

    def save_csv(self, path: str | Path) -> Path:
        """Write the table as CSV (corners and similarity to 4 decimals).

        Args:
            path: The CSV file; its folder is created if needed.

        Returns:
            The path written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(path, index=False, float_format="%.4f")
        return path


def folder_label(relative: str | Path, root: str | Path) -> str:
    """Return the class of an image from the nearest class folder above it.

    Args:
        relative: The image's path relative to ``root``.
        root: The folder searched (its own name counts when no inner folder is a class).

    Returns:
        The canonical class name (``config.canonical_class``), or ``""`` when no folder
        on the way is a class folder.
    """
    for name in [*reversed(Path(relative).parts[:-1]), Path(root).resolve().name]:
        label = config.canonical_class(name)
        if label is not None:
            return label
    return ""


def list_folder_images(root: str | Path) -> list[str]:
    """List the image files anywhere under a folder, skipping hidden files and folders.

    Args:
        root: The folder to search.

    Returns:
        Sorted POSIX paths relative to ``root``.

    Raises:
        FileNotFoundError: If ``root`` does not exist.
        ValueError: If ``root`` is not a folder.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"Folder {root} does not exist; pass a folder of class folders.")
    if not root.is_dir():
        raise ValueError(f"{root} is a file; pass a folder of class folders (DIR/<class>/*).")
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        hidden = any(part.startswith(".") for part in relative.parts)
        if not hidden and path.suffix.lower() in config.IMAGE_EXTENSIONS and path.is_file():
            found.append(relative.as_posix())
    return sorted(found)


def read_signatures(
    paths: list[Path], size: int, progress: bool | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read the signature of every file, noting the files that cannot be read.

    Args:
        paths: Image files.
        size: Side of the signature thumbnail.
        progress: Draw a progress bar; None means ``config.show_progress()``.

    Returns:
        The signatures (zeros for unreadable files), a boolean array telling which files
        were read, and one ``"path: reason"`` note per unreadable file.
    """
    show = config.show_progress() if progress is None else progress
    signatures = np.zeros((len(paths), size * size), dtype=np.float32)
    readable = np.zeros(len(paths), dtype=bool)
    notes = []
    for index, path in enumerate(tqdm(paths, desc="Reading scans", disable=not show)):
        try:
            signatures[index] = read_signature(path, size)
            readable[index] = True
        except ValueError as error:
            notes.append(f"{path}: {error.__cause__ or error}")
    return signatures, readable, notes


def find_folder_boxes(
    root: str | Path,
    reference: FigshareReference | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    progress: bool | None = None,
) -> FolderBoxes:
    """Find the tumor box of every image under a folder of class folders.

    Args:
        root: Any tree of class folders: a Kaggle root (``Training/<class>/*``,
            ``Testing/<class>/*``), ``DIR/<class>/*`` or a single class folder.
        reference: The figshare reference; None loads the packaged one.
        threshold: Smallest similarity that counts as a match.
        progress: Draw a progress bar; None means ``config.show_progress()``.

    Returns:
        The boxes found (one table row per matched image), per-class counts and the
        unreadable files, which are skipped rather than raising.

    Raises:
        FileNotFoundError: If ``root`` or the packaged reference does not exist.
        ValueError: If ``root`` is a file or the threshold is not in (0, 1].
    """
    started = time.perf_counter()
    threshold = check_threshold(threshold)
    root = Path(root).expanduser()
    files = list_folder_images(root)
    reference = load_reference() if reference is None else reference
    signatures, readable, skipped = read_signatures(
        [root / name for name in files], reference.signature_size, progress
    )
    similarity, slices, transforms = match_signatures(signatures, reference)
    labels = [folder_label(name, root) for name in files]
    rows = []
    for index in np.flatnonzero(readable & (similarity >= threshold)):
        box = tumor_box(reference, int(slices[index]), int(transforms[index]), similarity[index])
        rows.append({"file": files[index], "label": labels[index], **asdict(box)})
    scanned = pd.Series(np.array(labels, dtype=object)[readable]).value_counts()
    return FolderBoxes(
        root=root,
        table=pd.DataFrame(rows, columns=list(CSV_COLUMNS)),
        scanned={label: int(scanned[label]) for label in sorted(scanned.index)},
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )
