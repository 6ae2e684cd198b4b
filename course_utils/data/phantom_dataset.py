"""Write a phantom dataset: files in the Kaggle layout, masks, planted problems, manifest.

:func:`synthesize_dataset` renders phantoms (``course_utils.data.phantoms``) into a
folder in the Kaggle layout (``Training/<class>/*.jpg``, ``Testing/<class>/*.jpg``)
plus lesion masks and a ``phantom_manifest.json`` (with each image's plane), and
plants known problems for the data-audit lesson (a share of the images gets an
adjacent slice or a re-encoded copy, so a naive split leaks as on real data);
:func:`ensure_phantom_dataset` caches such a folder; :func:`planted_vs_found` checks
an audit against what was planted. Every image has its own random generator derived
from ``(seed, class, split, index)``, so the same parameters always give
byte-identical files and the number of images of one class never changes another
class's images.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from course_utils import config
from course_utils.config import CLASS_NAMES, TEST_SPLIT, TRAIN_SPLIT
from course_utils.data.phantoms import (
    GENERATOR_VERSION,
    check_class_name,
    check_image_size,
    render_phantom,
)

if TYPE_CHECKING:
    from course_utils.data.audit import AuditReport

#: Name of the manifest written at the root of every phantom dataset.
MANIFEST_NAME = "phantom_manifest.json"

#: JPEG quality of the phantom images (the planted near-duplicates use a lower one).
JPEG_QUALITY = 92
NEAR_DUPLICATE_QUALITY = 75
NEAR_DUPLICATE_SCALE = 0.8
#: Share of the Training images that get a re-encoded copy (at least 2 are planted).
NEAR_DUPLICATE_SHARE = 0.05
#: Share of the Training images that get an adjacent slice (same head and lesion).
ADJACENT_SLICE_SHARE = 0.1
#: How far (in ``render_phantom``'s ``slice_offset``) an adjacent slice lies.
ADJACENT_SLICE_OFFSET = 1.0

_CLASS_ABBREVIATIONS = {
    "glioma": "gl",
    "meningioma": "me",
    "notumor": "no",
    "pituitary": "pi",
}
_SPLIT_ABBREVIATIONS = {TRAIN_SPLIT: "tr", TEST_SPLIT: "te"}
_SPLIT_INDEX = {TRAIN_SPLIT: 0, TEST_SPLIT: 1}
_PLANTING_STREAM = 7_340_033  # seed-sequence word of the generator that plants issues
# The bytes name the module by its old name on purpose: same parameters, same bytes.
_TEXT_FILE_CONTENT = (
    b"This is not a JPEG image: it was planted by course_utils.synthetic so that the "
    b"data-audit lesson has a corrupt file to find.\n"
)


# --------------------------------------------------------------------------- datasets


def _check_count(name: str, value: object) -> None:
    """Raise ValueError unless ``value`` is an int of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid: use a whole number of at least 1.")


#: The course's fast-mode phantom set (notebook 01 in fast mode, and any lesson that runs
#: alone on phantoms): enough images for the fast CNN to learn the classes, small enough to
#: draw in seconds. Every lesson on phantoms gets the same set from these defaults.
FAST_PER_CLASS = 300
FAST_IMAGE_SIZE = 128


def _dataset_params(
    per_class: int = FAST_PER_CLASS,
    test_per_class: int | None = None,
    image_size: int = FAST_IMAGE_SIZE,
    seed: int = config.DEFAULT_SEED,
    class_names: tuple[str, ...] = CLASS_NAMES,
    plant_issues: bool = True,
) -> dict:
    """Check the generation parameters and return them as a JSON-ready dictionary."""
    _check_count("per_class", per_class)
    if test_per_class is None:
        test_per_class = max(4, int(per_class) // 4)
    _check_count("test_per_class", test_per_class)
    check_image_size(image_size)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed={seed!r} is invalid: use a whole number of at least 0.")
    if isinstance(class_names, str) or not class_names:
        raise ValueError(f"class_names={class_names!r} is invalid: give a tuple of class names.")
    for class_name in class_names:
        check_class_name(class_name)
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names={class_names!r} repeats a class: list each class once.")
    return {
        "per_class": int(per_class),
        "test_per_class": int(test_per_class),
        "image_size": int(image_size),
        "seed": int(seed),
        "class_names": list(class_names),
        "plant_issues": bool(plant_issues),
        "generator_version": GENERATOR_VERSION,
    }


def _stem(class_name: str, split: str, index: int) -> str:
    """Return the file stem of a rendered phantom, e.g. ``ph_gl_tr_0007``."""
    abbreviation = _CLASS_ABBREVIATIONS[class_name]
    return f"ph_{abbreviation}_{_SPLIT_ABBREVIATIONS[split]}_{index:04d}"


def _image_rng(seed: int, class_name: str, split: str, index: int) -> np.random.Generator:
    """Return the random generator of one image, independent of every other image's."""
    words = [seed, CLASS_NAMES.index(class_name), _SPLIT_INDEX[split], index]
    return np.random.default_rng(np.random.SeedSequence(words))


def _mask_path(image_path: str) -> str:
    """Return the mask's relative path for an image's relative path (posix style)."""
    split, class_name, file_name = image_path.split("/")
    return f"masks/{split}/{class_name}/{Path(file_name).stem}.png"


def mask_path_for(root: str | Path, image_path: str) -> Path:
    """Return where the ground-truth lesion mask of a phantom image is stored.

    Args:
        root: The phantom dataset's root.
        image_path: The image's path relative to ``root``, e.g. ``Training/glioma/x.jpg``.

    Returns:
        The mask's path (a 0/255 PNG; it may not exist, e.g. for a corrupt file).

    Raises:
        ValueError: If ``image_path`` is not of the form ``split/class/file``.
    """
    if len(Path(image_path).parts) != 3:
        raise ValueError(f"Expected a path like Training/glioma/x.jpg, got {image_path!r}.")
    return Path(root) / _mask_path(Path(image_path).as_posix())


def _save_image(root: Path, relative: str, pixels: np.ndarray, quality: int = JPEG_QUALITY):
    """Write grayscale pixels as a JPEG at ``root/relative``."""
    Image.fromarray(pixels).convert("L").save(root / relative, format="JPEG", quality=quality)


def _save_mask(root: Path, image_relative: str, mask: np.ndarray) -> None:
    """Write a lesion mask (0/255 PNG) next to the image it belongs to."""
    Image.fromarray(mask.astype(np.uint8) * 255).save(root / _mask_path(image_relative))


def _make_folders(root: Path, class_names: list[str]) -> None:
    """Create the split, class and mask folders of a dataset."""
    for split in (TRAIN_SPLIT, TEST_SPLIT):
        for class_name in class_names:
            (root / split / class_name).mkdir(parents=True, exist_ok=True)
            (root / "masks" / split / class_name).mkdir(parents=True, exist_ok=True)


def _render_all(root: Path, params: dict, progress: bool) -> dict[str, str]:
    """Render and write every phantom image and its mask; return each file's plane."""
    sizes = {TRAIN_SPLIT: params["per_class"], TEST_SPLIT: params["test_per_class"]}
    total = sum(sizes.values()) * len(params["class_names"])
    planes = {}
    with tqdm(total=total, desc="phantoms", unit="img", disable=not progress) as bar:
        for split, count in sizes.items():
            for class_name in params["class_names"]:
                for index in range(count):
                    rng = _image_rng(params["seed"], class_name, split, index)
                    phantom = render_phantom(class_name, params["image_size"], rng)
                    relative = f"{split}/{class_name}/{_stem(class_name, split, index)}.jpg"
                    _save_image(root, relative, phantom.image)
                    _save_mask(root, relative, phantom.lesion_mask)
                    planes[relative] = phantom.plane
                    bar.update(1)
    return planes


# ------------------------------------------------------------------- planted problems


class _Planter:
    """Plant known data-quality problems into a freshly rendered dataset."""

    def __init__(self, root: Path, params: dict, planes: dict[str, str]) -> None:
        self.root = root
        self.params = params
        self.planes = planes
        self.class_names: list[str] = params["class_names"]
        words = [params["seed"], _PLANTING_STREAM]
        self.rng = np.random.default_rng(np.random.SeedSequence(words))
        pool = [
            (class_name, index)
            for class_name in self.class_names
            for index in range(params["per_class"])
        ]
        self.originals = [pool[position] for position in self.rng.permutation(len(pool))]
        self.picked = 0

    def _next_index(self) -> tuple[str, int]:
        """Return (class, index) of the next Training image to copy."""
        class_name, index = self.originals[self.picked % len(self.originals)]
        self.picked += 1
        return class_name, index

    def _next_original(self) -> tuple[str, str]:
        """Return (class, relative path) of the next Training image to copy."""
        class_name, index = self._next_index()
        return class_name, f"{TRAIN_SPLIT}/{class_name}/{_stem(class_name, TRAIN_SPLIT, index)}.jpg"

    def _free_path(self, split: str, class_name: str, stem: str) -> str:
        """Return a relative ``.jpg`` path for ``stem`` that no file uses yet."""
        candidate, number = f"{split}/{class_name}/{stem}.jpg", 1
        while (self.root / candidate).exists():
            number += 1
            candidate = f"{split}/{class_name}/{stem}{number}.jpg"
        return candidate

    def _copy(self, original: str, split: str, class_name: str, suffix: str, near: bool) -> str:
        """Copy an image (exactly, or re-encoded when ``near``) with its mask; return the path."""
        copy = self._free_path(split, class_name, Path(original).stem + suffix)
        if near:
            (self.root / copy).write_bytes(_near_copy_bytes(self.root / original))
        else:
            shutil.copyfile(self.root / original, self.root / copy)
        shutil.copyfile(self.root / _mask_path(original), self.root / _mask_path(copy))
        self.planes[copy] = self.planes[original]
        return copy

    def adjacent_slices(self, count: int) -> list[dict]:
        """Plant adjacent slices (same head and lesion, shifted a little) inside Training."""
        planted = []
        for _ in range(count):
            class_name, index = self._next_index()
            stem = _stem(class_name, TRAIN_SPLIT, index)
            original = f"{TRAIN_SPLIT}/{class_name}/{stem}.jpg"
            offset = ADJACENT_SLICE_OFFSET * (1.0 if self.rng.random() < 0.5 else -1.0)
            rng = _image_rng(self.params["seed"], class_name, TRAIN_SPLIT, index)
            phantom = render_phantom(
                class_name, self.params["image_size"], rng, slice_offset=offset
            )
            copy = self._free_path(TRAIN_SPLIT, class_name, f"{stem}_adj")
            _save_image(self.root, copy, phantom.image)
            _save_mask(self.root, copy, phantom.lesion_mask)
            self.planes[copy] = phantom.plane
            planted.append({"copy": copy, "original": original, "slice_offset": offset})
        return planted

    def duplicates(self, count: int, near: bool) -> list[dict]:
        """Plant copies inside Training, in the original's class."""
        planted = []
        for _ in range(count):
            class_name, original = self._next_original()
            suffix = "_near" if near else "_dup"
            copy = self._copy(original, TRAIN_SPLIT, class_name, suffix, near)
            planted.append({"copy": copy, "original": original})
        return planted

    def leaks(self, kinds: tuple[str, ...]) -> list[dict]:
        """Plant Testing images that are copies of Training images."""
        planted = []
        for kind in kinds:
            class_name, original = self._next_original()
            copy = self._copy(original, TEST_SPLIT, class_name, "_leak", kind == "near")
            planted.append({"test": copy, "train": original, "kind": kind})
        return planted

    def label_conflicts(self) -> list[dict]:
        """Plant an exact copy of a Training image in another class's folder (if any)."""
        if len(self.class_names) < 2:
            return []
        class_name, original = self._next_original()
        others = [name for name in self.class_names if name != class_name]
        target = others[int(self.rng.integers(len(others)))]
        copy = self._copy(original, TRAIN_SPLIT, target, "_conflict", False)
        return [{"copy": copy, "original": original}]

    def corrupt(self) -> list[dict]:
        """Plant an empty, a truncated and a text file, all named ``.jpg``, in Training."""
        _, source = self._next_original()
        planted = []
        for kind in ("empty", "truncated", "text"):
            class_name = self.class_names[int(self.rng.integers(len(self.class_names)))]
            abbreviation = _CLASS_ABBREVIATIONS[class_name]
            path = self._free_path(TRAIN_SPLIT, class_name, f"ph_{abbreviation}_tr_{kind}_corrupt")
            if kind == "empty":
                content = b""
            elif kind == "truncated":
                valid = (self.root / source).read_bytes()
                content = valid[: int(len(valid) * 0.4)]
            else:
                content = _TEXT_FILE_CONTENT
            (self.root / path).write_bytes(content)
            planted.append({"path": path, "kind": kind})
        planted[1]["source"] = source  # the valid image the truncated file was cut from
        return planted


def _near_copy_bytes(source: Path) -> bytes:
    """Return the image rescaled to about 0.8x and back, re-encoded as a lower-quality JPEG."""
    with Image.open(source) as original:
        pixels = original.convert("L")
    width, height = pixels.size
    small_size = (round(width * NEAR_DUPLICATE_SCALE), round(height * NEAR_DUPLICATE_SCALE))
    resampled = pixels.resize(small_size, Image.BILINEAR).resize((width, height), Image.BILINEAR)
    buffer = io.BytesIO()
    resampled.save(buffer, format="JPEG", quality=NEAR_DUPLICATE_QUALITY)
    return buffer.getvalue()


def _planted_count(params: dict, share: float, floor: int) -> int:
    """Return how many copies a share of the Training images makes (at least ``floor``)."""
    training = params["per_class"] * len(params["class_names"])
    return max(floor, round(share * training))


def _plant_issues(root: Path, params: dict, planes: dict[str, str]) -> dict:
    """Plant the known problems (or none) and return their exact record."""
    planted: dict = {
        "exact_duplicates": [],
        "near_duplicates": [],
        "adjacent_slices": [],
        "leaks": [],
        "label_conflict": [],
        "corrupt": [],
    }
    if not params["plant_issues"]:
        return planted
    planter = _Planter(root, params, planes)
    planted["exact_duplicates"] = planter.duplicates(2, near=False)
    near_count = _planted_count(params, NEAR_DUPLICATE_SHARE, 2)
    planted["near_duplicates"] = planter.duplicates(near_count, near=True)
    adjacent_count = _planted_count(params, ADJACENT_SLICE_SHARE, 1)
    planted["adjacent_slices"] = planter.adjacent_slices(adjacent_count)
    planted["leaks"] = planter.leaks(("exact", "near", "exact"))
    planted["label_conflict"] = planter.label_conflicts()
    planted["corrupt"] = planter.corrupt()
    return planted


# ---------------------------------------------------------------------- public helpers


def _count_files(root: Path, class_names: list[str]) -> dict[str, dict[str, int]]:
    """Count the files in every split/class folder."""
    return {
        split: {
            class_name: sum(1 for path in (root / split / class_name).iterdir() if path.is_file())
            for class_name in class_names
        }
        for split in (TRAIN_SPLIT, TEST_SPLIT)
    }


def _read_manifest(root: Path) -> dict | None:
    """Return a dataset's manifest, or None when it is missing or unreadable."""
    try:
        return json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _check_target(target: Path) -> None:
    """Refuse to overwrite a folder that is not a phantom dataset."""
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} is a file: give a folder path for the phantom dataset.")
    if target.is_dir() and any(target.iterdir()) and _read_manifest(target) is None:
        raise FileExistsError(
            f"{target} is not empty and holds no {MANIFEST_NAME}: refusing to replace it; "
            "pass a new or empty folder."
        )


def _publish(staging: Path, target: Path, params: dict) -> None:
    """Move a finished dataset into place, replacing an older phantom dataset there."""
    retired = None
    if target.exists():
        retired = target.with_name(f".{target.name}.retired-{uuid.uuid4().hex[:8]}")
        target.rename(retired)
    try:
        staging.rename(target)
    except OSError:  # another process published the same folder in the meantime
        existing = _read_manifest(target)
        if existing is None or existing.get("params") != params:
            raise
        shutil.rmtree(staging, ignore_errors=True)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def synthesize_dataset(
    out_dir: str | Path,
    per_class: int = FAST_PER_CLASS,
    test_per_class: int | None = None,
    image_size: int = FAST_IMAGE_SIZE,
    seed: int = config.DEFAULT_SEED,
    class_names: tuple[str, ...] = CLASS_NAMES,
    plant_issues: bool = True,
    progress: bool | None = None,
) -> dict:
    """Write a phantom dataset in the Kaggle layout and return its manifest.

    The folder gets ``Training/<class>/<stem>.jpg``, ``Testing/<class>/<stem>.jpg``,
    lesion masks ``masks/<split>/<class>/<stem>.png`` and ``phantom_manifest.json``.
    Everything is written to a hidden sibling folder first and renamed at the end,
    so a half-written dataset is never found at ``out_dir``.

    Args:
        out_dir: Folder to create; an older phantom dataset there is replaced.
        per_class: Training images rendered per class.
        test_per_class: Testing images per class; None means ``max(4, per_class // 4)``.
        image_size: Side of the square images in pixels (at least 64).
        seed: Seed from which every image is derived (same seed, same bytes).
        class_names: Classes to render, a subset of ``config.CLASS_NAMES``.
        plant_issues: Add known problems for the data-audit lesson, recorded in
            ``manifest["planted"]`` (lists under ``exact_duplicates`` (2),
            ``near_duplicates`` (re-encoded copies of ``NEAR_DUPLICATE_SHARE`` of the
            Training images, at least 2), ``adjacent_slices`` (the same head and
            lesion drawn a little shifted, ``ADJACENT_SLICE_SHARE``, at least 1),
            ``leaks`` (3), ``label_conflict`` and ``corrupt``; all empty when False).
            The copies are a share, as on real data, so a naive random split leaks.
        progress: Draw a progress bar; None follows ``config.show_progress()``.

    Returns:
        The manifest: ``params`` (with ``generator_version``), file ``counts`` per
        split and class (planted files included), the ``planted`` problems and the
        ``planes`` (``"axial"``, ``"coronal"`` or ``"sagittal"`` of every image file),
        with paths relative to ``out_dir`` in posix style.

    Raises:
        ValueError: If a count, the image size, the seed or a class name is invalid.
        FileExistsError: If ``out_dir`` is a file or a non-empty non-phantom folder.
    """
    params = _dataset_params(per_class, test_per_class, image_size, seed, class_names, plant_issues)
    target = Path(out_dir).expanduser()
    _check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.staging-{uuid.uuid4().hex[:8]}")
    try:
        _make_folders(staging, params["class_names"])
        show = config.show_progress() if progress is None else progress
        planes = _render_all(staging, params, show)
        planted = _plant_issues(staging, params, planes)
        manifest = {
            "params": params,
            "counts": _count_files(staging, params["class_names"]),
            "planted": planted,
            "planes": dict(sorted(planes.items())),
        }
        text = json.dumps(manifest, indent=2) + "\n"
        (staging / MANIFEST_NAME).write_text(text, encoding="utf-8")
        _publish(staging, target, params)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def phantom_params_hash(params: dict) -> str:
    """Return a short, stable hash of checked generation parameters.

    Args:
        params: Parameters as stored in a manifest's ``"params"``.

    Returns:
        The first 12 hex digits of the SHA-256 of the sorted JSON parameters.
    """
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def ensure_phantom_dataset(root: str | Path | None = None, **params: object) -> Path:
    """Return a phantom dataset folder for these parameters, generating it if needed.

    The folder is reused as is when its manifest records the same parameters (and
    generator version); otherwise it is (re)generated with :func:`synthesize_dataset`.

    Args:
        root: Dataset folder; None means ``config.cache_dir()/"phantoms"/<hash>``,
            where ``<hash>`` is a short hash of the parameters.
        **params: Keyword arguments of :func:`synthesize_dataset` (not ``out_dir``).

    Returns:
        The dataset folder.

    Raises:
        ValueError: If a parameter value is invalid.
        TypeError: If a parameter name is unknown.
        FileExistsError: If ``root`` is a file or a non-empty non-phantom folder.
    """
    progress = params.pop("progress", None)
    checked = _dataset_params(**params)
    if root is None:
        root = config.cache_dir() / "phantoms" / phantom_params_hash(checked)
    folder = Path(root).expanduser()
    manifest = _read_manifest(folder)
    if manifest is None or manifest.get("params") != checked:
        synthesize_dataset(folder, progress=progress, **params)
    return folder


# ------------------------------------------------------------------ planted vs found


def planted_counts(planted: dict) -> dict[str, int]:
    """Count what the generator planted, in the units the audit reports.

    Exact leaks and the label conflict are byte-identical copies too, so they count
    among the copies.

    Args:
        planted: A manifest's ``"planted"`` record (see :func:`synthesize_dataset`).

    Returns:
        ``{"corrupt files", "byte-identical copies", "test images leaking",
        "label conflicts"}`` counts.
    """
    exact_leaks = sum(leak["kind"] == "exact" for leak in planted["leaks"])
    copies = len(planted["exact_duplicates"]) + len(planted["label_conflict"]) + exact_leaks
    return {
        "corrupt files": len(planted["corrupt"]),
        "byte-identical copies": copies,
        "test images leaking": len(planted["leaks"]),
        "label conflicts": len(planted["label_conflict"]),
    }


def planted_vs_found(root: str | Path, report: AuditReport) -> pd.DataFrame:
    """Compare the problems planted in a phantom dataset with what an audit found.

    Args:
        root: The phantom dataset's root (holding ``phantom_manifest.json``).
        report: The audit of that folder.

    Returns:
        One row per kind of problem (``planted_counts``' keys) with the columns
        ``planted``, ``found`` and ``match`` (True when the two agree).

    Raises:
        FileNotFoundError: If ``root`` holds no readable phantom manifest.
    """
    manifest = _read_manifest(Path(root).expanduser())
    if manifest is None:
        raise FileNotFoundError(
            f"No readable {MANIFEST_NAME} in {root}: only a phantom dataset records what was "
            "planted (DATA_SOURCE='phantoms', or `python -m course_utils data synth`)."
        )
    planted = planted_counts(manifest["planted"])
    found = {
        "corrupt files": len(report.unreadable),
        "byte-identical copies": report.exact_copies,
        "test images leaking": len(report.leaks),
        "label conflicts": len(report.label_conflicts),
    }
    table = pd.DataFrame({"planted": pd.Series(planted), "found": pd.Series(found)})
    return table.assign(match=table["planted"] == table["found"])
