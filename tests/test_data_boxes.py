"""Tumor boxes from the figshare reference: the packaged file, the matching, the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from course_utils import cli
from course_utils.data import boxes, figshare
from course_utils.data.scan import normalised_thumbnail

REPO_ROOT = Path(__file__).resolve().parents[1]
FIGSHARE = Path(
    os.environ.get("BTMRI_FIGSHARE_DATA", REPO_ROOT.parent / "shared/datasets/figshare-tumor-boxes")
)
SIDE = 256
#: Synthetic slices: id -> (label, tumor rectangle in pixels: column0, row0, column1, row1).
SLICES = {
    11: ("glioma", (40, 60, 100, 90)),
    12: ("meningioma", (150, 30, 200, 120)),
    13: ("pituitary", (110, 170, 140, 230)),
    14: ("glioma", (20, 180, 90, 250)),
    15: ("glioma", (160, 160, 230, 200)),  # looks like 14 (see synthetic_slice)
}
#: PIL's symmetries of the square (None: unchanged).
PIL_MOVES = [
    None,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
]


def smooth_field(seed: int) -> np.ndarray:
    """A random smooth 256x256 field scaled to 0..1."""
    noise = gaussian_filter(np.random.default_rng(seed).normal(size=(SIDE, SIDE)), sigma=14)
    return (noise - noise.min()) / (noise.max() - noise.min())


def synthetic_slice(slice_id: int) -> np.ndarray:
    """A uint8 slice: a smooth field with its tumor rectangle at exactly 255.

    Slice 15 is slice 14 (rectangle included) with a faint extra pattern: a neighbouring
    slice that looks alike, listed with a box of its own.
    """
    if slice_id == 15:
        return np.clip(synthetic_slice(14) + 50 * smooth_field(99) - 25, 0, 254).astype(np.uint8)
    pixels = (smooth_field(slice_id) * 200).astype(np.uint8)
    c0, r0, c1, r1 = SLICES[slice_id][1]
    pixels[r0:r1, c0:c1] = 255
    return pixels


def bright_box(image: Image.Image) -> tuple[float, float, float, float]:
    """Corners (fractions) of the pixels at exactly 255: the planted tumor rectangle."""
    rows, columns = np.nonzero(np.asarray(image) == 255)
    width, height = image.size
    return (
        columns.min() / width,
        rows.min() / height,
        (columns.max() + 1) / width,
        (rows.max() + 1) / height,
    )


def reencode(image: Image.Image, size: int = 224, quality: int = 80) -> Image.Image:
    """Resize and JPEG re-encode an image, as the Kaggle set did."""
    buffer = io.BytesIO()
    image.resize((size, size), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


@pytest.fixture(scope="module")
def synthetic_figshare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A figshare-like folder of synthetic slices and their boxes.csv."""
    root = tmp_path_factory.mktemp("figshare")
    rows = []
    for slice_id, (label, (c0, r0, c1, r1)) in SLICES.items():
        (root / "images" / label).mkdir(parents=True, exist_ok=True)
        name = f"images/{label}/{slice_id}.jpg"
        Image.fromarray(synthetic_slice(slice_id)).save(root / name, quality=95)
        centre = ((c0 + c1) / 2 / SIDE, (r0 + r1) / 2 / SIDE)
        rows.append([name, label, *centre, (c1 - c0) / SIDE, (r1 - r0) / SIDE])
    pd.DataFrame(rows, columns=list(figshare.BOX_CSV_COLUMNS)).to_csv(
        root / "boxes.csv", index=False
    )
    return root


@pytest.fixture(scope="module")
def reference_path(synthetic_figshare: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic reference, built and saved as the script does."""
    path = tmp_path_factory.mktemp("reference") / "reference.npz"
    return figshare.save_reference(figshare.build_reference(synthetic_figshare), path)


@pytest.fixture(scope="module")
def reference(reference_path: Path) -> figshare.FigshareReference:
    return figshare.load_reference(reference_path)


def test_saved_reference_round_trips(synthetic_figshare: Path, reference_path: Path) -> None:
    built = figshare.build_reference(synthetic_figshare)
    loaded = figshare.load_reference(reference_path)
    assert loaded.ids.tolist() == list(SLICES)
    assert loaded.labels.tolist() == [label for label, _ in SLICES.values()]
    np.testing.assert_allclose(loaded.signatures, built.signatures, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(loaded.signatures, axis=1), 1.0, atol=1e-5)
    assert "10.6084/m9.figshare.1512427" in loaded.attribution
    again = figshare.save_reference(built, reference_path.with_name("again.npz"))
    assert again.read_bytes() == reference_path.read_bytes()  # byte-identical rebuilds


@pytest.mark.parametrize("move", PIL_MOVES, ids=lambda m: "none" if m is None else m.name)
def test_each_symmetry_is_found_with_its_box(
    reference: figshare.FigshareReference, move: Image.Transpose | None
) -> None:
    original = Image.fromarray(synthetic_slice(12))
    moved = original if move is None else original.transpose(move)
    box = boxes.find_box(moved, reference)
    assert box is not None and box.figshare_id == 12 and box.figshare_label == "meningioma"
    assert box.similarity > 0.99
    np.testing.assert_allclose((box.x0, box.y0, box.x1, box.y1), bright_box(moved), atol=1e-3)


def test_the_eight_symmetries_are_told_apart(reference: figshare.FigshareReference) -> None:
    original = Image.fromarray(synthetic_slice(13))
    names = {
        boxes.find_box(original if m is None else original.transpose(m), reference).transform
        for m in PIL_MOVES
    }
    assert names == set(boxes.TRANSFORMS)
    mirrored = boxes.find_box(original.transpose(Image.Transpose.FLIP_LEFT_RIGHT), reference)
    assert mirrored.transform == "mirror"


def test_mirrored_reencoded_resized_copy_gets_the_mirrored_box(
    reference: figshare.FigshareReference, tmp_path: Path
) -> None:
    original = Image.fromarray(synthetic_slice(11)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    path = tmp_path / "copy.jpg"
    reencode(original.convert("RGB"), size=224, quality=70).save(path)
    box = boxes.find_box(path, reference)
    assert box is not None and box.figshare_id == 11 and box.transform == "mirror"
    c0, r0, c1, r1 = SLICES[11][1]
    expected = (1 - c1 / SIDE, r0 / SIDE, 1 - c0 / SIDE, r1 / SIDE)
    np.testing.assert_allclose((box.x0, box.y0, box.x1, box.y1), expected, atol=1e-3)


def test_below_threshold_is_none(reference: figshare.FigshareReference) -> None:
    unrelated = Image.fromarray((smooth_field(1234) * 255).astype(np.uint8))
    assert boxes.find_box(unrelated, reference) is None
    blurred = gaussian_filter(synthetic_slice(13).astype(float), 6) + 90 * smooth_field(77)
    similar = Image.fromarray(np.clip(blurred, 0, 255).astype(np.uint8))
    assert boxes.find_box(similar, reference) is None
    loose = boxes.find_box(similar, reference, threshold=0.7)
    assert loose is not None and loose.figshare_id == 13 and loose.similarity < 0.98


def test_best_of_several_candidates_wins(reference: figshare.FigshareReference) -> None:
    query = reencode(Image.fromarray(synthetic_slice(15)), size=200)
    signature = normalised_thumbnail(query, reference.signature_size)
    first = reference.signatures[reference.ids.tolist().index(14)]
    assert float(signature @ first) >= 0.98  # slice 14, listed first, would pass too
    box = boxes.find_box(query, reference)
    assert box is not None and box.figshare_id == 15
    c0, r0, c1, r1 = SLICES[15][1]
    np.testing.assert_allclose((box.x0, box.x1), (c0 / SIDE, c1 / SIDE), atol=1e-3)


@pytest.fixture()
def scan_folder(tmp_path: Path) -> Path:
    """A Kaggle-like folder: two matching scans, an unrelated one, two broken files."""
    root = tmp_path / "scans"
    glioma, notumor = root / "Training" / "glioma_tumor", root / "Testing" / "notumor"
    glioma.mkdir(parents=True)
    notumor.mkdir(parents=True)
    reencode(Image.fromarray(synthetic_slice(11))).save(glioma / "same.jpg")
    mirrored = Image.fromarray(synthetic_slice(14)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    reencode(mirrored, size=300).save(glioma / "mirrored.png")
    Image.fromarray((smooth_field(555) * 255).astype(np.uint8)).save(notumor / "other.jpg")
    (glioma / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (notumor / "empty.jpg").write_bytes(b"")
    (notumor / "notes.txt").write_text("not an image")
    return root


def test_folder_boxes_skip_broken_files(
    scan_folder: Path, reference: figshare.FigshareReference
) -> None:
    result = boxes.find_folder_boxes(scan_folder, reference, progress=False)
    assert sorted(Path(note.split(":")[0]).name for note in result.skipped) == [
        "broken.jpg",
        "empty.jpg",
    ]
    assert result.table["file"].tolist() == [
        "Training/glioma_tumor/mirrored.png",
        "Training/glioma_tumor/same.jpg",
    ]
    assert result.table["label"].tolist() == ["glioma", "glioma"]
    assert result.table["figshare_id"].tolist() == [14, 11]
    assert result.scanned == {"glioma": 2, "notumor": 1}
    assert result.matched() == {"glioma": 2, "notumor": 0}


def test_cli_writes_the_csv(scan_folder: Path, reference_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "boxes.csv"
    argv = [
        "data",
        "boxes",
        str(scan_folder),
        "--out",
        str(out),
        "--reference",
        str(reference_path),
    ]
    assert cli.main(argv) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:7]) == ["file", "label", "x0", "y0", "x1", "y1", "similarity"]
    assert list(table.columns) == list(boxes.CSV_COLUMNS)
    row = table.set_index("file").loc["Training/glioma_tumor/mirrored.png"]
    c0, r0, c1, r1 = SLICES[14][1]
    expected = (1 - c1 / SIDE, r0 / SIDE, 1 - c0 / SIDE, r1 / SIDE)
    np.testing.assert_allclose(row[["x0", "y0", "x1", "y1"]].astype(float), expected, atol=1e-3)
    assert row["transform"] == "mirror" and row["similarity"] >= 0.98


def test_bad_inputs_raise_clear_errors(reference_path: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="build_figshare_reference"):
        figshare.load_reference(tmp_path / "absent.npz")
    old = tmp_path / "old.npz"
    np.savez(old, format_version=np.array(0))
    with pytest.raises(ValueError, match="format version 0"):
        figshare.load_reference(old)
    with pytest.raises(ValueError, match="threshold"):
        boxes.find_box(Image.new("L", (8, 8)), figshare.load_reference(reference_path), 1.5)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        boxes.find_folder_boxes(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="boxes.csv"):
        figshare.build_reference(tmp_path)
    with pytest.raises(ValueError, match="shape"):
        boxes.match_signatures(np.zeros((2, 10)), figshare.load_reference(reference_path))
    assert cli.main(["data", "boxes", str(tmp_path / "nowhere"), "--out", "x.csv"]) == 2


def test_empty_folder_gives_an_empty_table(reference: figshare.FigshareReference, tmp_path: Path):
    (tmp_path / "glioma").mkdir()
    result = boxes.find_folder_boxes(tmp_path, reference, progress=False)
    assert result.table.empty and list(result.table.columns) == list(boxes.CSV_COLUMNS)
    assert result.scanned == {} and result.summary().startswith("0 of 0 images")


def test_packaged_reference_is_small_and_complete() -> None:
    path = figshare.default_reference_path()
    assert path.stat().st_size <= 2 * 2**20
    reference = figshare.load_reference()
    assert len(reference) == 3064 and len(set(reference.ids.tolist())) == 3064
    assert sorted(set(reference.labels.tolist())) == ["glioma", "meningioma", "pituitary"]
    assert reference.signatures.shape == (3064, figshare.SIGNATURE_SIZE**2)
    corners = boxes.box_corners(reference.boxes)
    assert (corners[:, 2] > corners[:, 0]).all() and (corners[:, 3] > corners[:, 1]).all()
    assert "CC BY 4.0" in reference.attribution and reference.licence == "CC BY 4.0"


@pytest.fixture(scope="module")
def figshare_dir() -> Path:
    if not (FIGSHARE / "boxes.csv").is_file():
        pytest.skip(f"figshare tumor boxes not found at {FIGSHARE}")
    return FIGSHARE


@pytest.mark.slow
def test_packaged_reference_matches_the_script(figshare_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "rebuilt.npz"
    script = REPO_ROOT / "scripts" / "build_figshare_reference.py"
    command = [sys.executable, str(script), "--figshare", str(figshare_dir), "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    with np.load(out) as rebuilt, np.load(figshare.default_reference_path()) as packaged:
        assert sorted(rebuilt.files) == sorted(packaged.files)
        for name in rebuilt.files:
            if name == "signatures":  # a JPEG decoder of another version may round differently
                difference = rebuilt[name].astype(int) - packaged[name].astype(int)
                assert np.abs(difference).max() <= 1, name
            else:
                np.testing.assert_array_equal(rebuilt[name], packaged[name], err_msg=name)


def test_real_figshare_slices_are_found_mirrored(figshare_dir: Path, tmp_path: Path) -> None:
    table = figshare.read_box_table(figshare_dir).groupby("label").nth(5)
    reference = figshare.load_reference()
    for name, x_center, y_center, width, height in table[
        ["file", "x_center", "y_center", "width", "height"]
    ].itertuples(index=False):
        copy = Image.open(figshare_dir / name).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = tmp_path / Path(name).name
        reencode(copy.convert("RGB"), size=224, quality=75).save(path)
        box = boxes.find_box(path, reference)
        assert box is not None and box.figshare_id == int(Path(name).stem)
        assert box.transform == "mirror"
        expected = (
            max(0.0, 1 - x_center - width / 2),
            max(0.0, y_center - height / 2),
            min(1.0, 1 - x_center + width / 2),
            min(1.0, y_center + height / 2),
        )
        np.testing.assert_allclose((box.x0, box.y0, box.x1, box.y1), expected, atol=1e-5)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_training_copy_match_rates(real_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "boxes.csv"  # its speed is a benchmark row (make bench), not a test
    assert cli.main(["data", "boxes", str(real_data_dir), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    totals = {
        label: len(list((real_data_dir / "Training" / label).glob("*.jpg")))
        for label in ("glioma", "meningioma", "notumor", "pituitary")
    }
    found = table["label"].value_counts()
    rates = {label: found.get(label, 0) / total for label, total in totals.items()}
    assert rates["glioma"] >= 0.99 and rates["pituitary"] >= 0.98, rates
    assert rates["meningioma"] >= 0.89 and rates["notumor"] == 0, rates
    assert (table["label"] == table["figshare_label"]).mean() >= 0.995
    assert (table["x0"] < table["x1"]).all() and (table["y0"] < table["y1"]).all()
    assert table[["x0", "y0", "x1", "y1"]].to_numpy().min() >= 0
    assert table[["x0", "y0", "x1", "y1"]].to_numpy().max() <= 1
