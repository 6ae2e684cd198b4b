"""Train / validation / test splits that keep duplicates on one side.

A validation or test image that has a copy in training measures memory, not skill.
So the splits are made over *duplicate groups* from the audit: every member of a
group lands in the same split. The Kaggle ``Testing`` folder is kept whole as the
"full" test split (that is what published results use) and a leak-free subset
of it is saved beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from course_utils import config, course

SPLIT_FILES = ("train", "val", "test", "test_leakfree")
SPLIT_COLUMNS = ["path", "label", "group", "source_split"]
_REMAKE_SPLITS = "re-run notebook 01, or `python -m course_utils data split DATA_DIR --out DIR`"


def carve_split(
    table: pd.DataFrame, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cut a stratified, group-aware part off a table of files.

    Args:
        table: Rows with ``label`` and ``group`` columns.
        fraction: Share of rows to carve off, in (0, 0.5].
        seed: Seed of the shuffle, so the same seed gives the same split.

    Returns:
        ``(rest, carved)``: two tables whose groups do not overlap.

    Raises:
        ValueError: If the fraction is out of range or a class has too few groups.
    """
    if not 0 < fraction <= 0.5:
        raise ValueError(f"Split fraction must be in (0, 0.5], got {fraction}.")
    folds = max(2, round(1 / fraction))
    smallest = table.groupby("label")["group"].nunique().min()
    if smallest < folds:
        raise ValueError(
            f"A class has only {smallest} distinct images, too few to carve a {fraction:.0%} "
            f"split; use more images per class or a larger fraction."
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    rest_rows, carved_rows = next(splitter.split(table, table["label"], table["group"]))
    return table.iloc[rest_rows], table.iloc[carved_rows]


def make_splits(
    table: pd.DataFrame,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = config.DEFAULT_SEED,
    drop_exact_copies: bool = True,
) -> dict[str, pd.DataFrame]:
    """Make the course's splits from an audited file table.

    Args:
        table: ``AuditReport.table`` (needs ``path``, ``split``, ``label``,
            ``readable``, ``sha256`` and ``group``).
        val_fraction: Share of the training files kept for validation.
        test_fraction: Share carved for testing when the data has no ``Testing`` folder.
        seed: Seed of every shuffle.
        drop_exact_copies: Keep one file of each byte-identical set within a split.

    Returns:
        ``{"train", "val", "test", "test_leakfree"}`` tables with ``SPLIT_COLUMNS``.
        Files of label-conflict groups (one picture, two labels) are left out.

    Raises:
        ValueError: If the table lacks audit columns or a class is too small to split.
    """
    missing = {"path", "split", "label", "readable", "sha256", "group"} - set(table.columns)
    if missing:
        raise ValueError(f"make_splits needs an audited table; missing columns {sorted(missing)}.")
    files = table[table["readable"].astype(bool)]
    conflicted = files.groupby("group")["label"].transform("nunique") > 1
    files = files[~conflicted]
    if drop_exact_copies:
        files = files.drop_duplicates(["split", "sha256"])
    files = files.assign(source_split=files["split"])
    training = files[files["split"] == config.TRAIN_SPLIT]
    testing = files[files["split"] == config.TEST_SPLIT]
    if testing.empty:
        training, testing = carve_split(training, test_fraction, seed)
    train, val = carve_split(training, val_fraction, seed)
    leaky_groups = set(train["group"]) | set(val["group"])
    splits = {
        "train": train,
        "val": val,
        "test": testing,
        "test_leakfree": testing[~testing["group"].isin(leaky_groups)],
    }
    return {name: _tidy(part) for name, part in splits.items()}


def random_split_leakage(
    table: pd.DataFrame, test_fraction: float = 0.15, seed: int = config.DEFAULT_SEED
) -> dict[str, int | float]:
    """Measure what a naive split would leak: stratified by class, blind to duplicates.

    Splits the readable Training files at random (``train_test_split`` stratified by
    label, every copy kept, as most tutorials do) and counts the test files whose
    duplicate group also has a file in the training part.

    Args:
        table: ``AuditReport.table`` (needs ``split``, ``label``, ``readable``,
            ``sha256`` and ``group``).
        test_fraction: Share of the files the naive split sends to test, in (0, 1).
        seed: Seed of the naive split.

    Returns:
        ``{"test_images", "leaked", "exact_leaked", "share", "seed"}``: ``leaked``
        counts exact and near duplicates, ``exact_leaked`` byte-identical copies only.

    Raises:
        ValueError: If the fraction is out of range or the table lacks audit columns.
    """
    from sklearn.model_selection import train_test_split

    missing = {"split", "label", "readable", "sha256", "group"} - set(table.columns)
    if missing:
        raise ValueError(f"random_split_leakage needs an audited table; missing {sorted(missing)}.")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    files = table[table["readable"].astype(bool) & (table["split"] == config.TRAIN_SPLIT)]
    train, test = train_test_split(
        files, test_size=test_fraction, stratify=files["label"], random_state=seed
    )
    leaked = test["group"].isin(set(train["group"]))
    exact = test["sha256"].isin(set(train["sha256"]))
    return {
        "test_images": len(test),
        "leaked": int(leaked.sum()),
        "exact_leaked": int(exact.sum()),
        "share": float(leaked.mean()) if len(test) else 0.0,
        "seed": seed,
    }


def _tidy(part: pd.DataFrame) -> pd.DataFrame:
    """Keep the split columns, sorted by label and path."""
    return part[SPLIT_COLUMNS].sort_values(["label", "path"], ignore_index=True)


def split_counts(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Count files per class (rows) and split (columns), with a total row.

    Args:
        splits: The output of ``make_splits`` or ``load_splits``.

    Returns:
        An integer table.
    """
    counts = pd.DataFrame({name: part["label"].value_counts() for name, part in splits.items()})
    counts = counts.fillna(0).astype(int).sort_index()
    counts.loc["total"] = counts.sum()
    return counts


def save_splits(splits: dict[str, pd.DataFrame], out_dir: str | Path, dataset: dict) -> Path:
    """Write each split as CSV and a ``dataset.json`` that says where the files are.

    Args:
        splits: The output of ``make_splits``.
        out_dir: Folder to write (created if missing), normally ``ARTIFACTS_DIR/splits``.
        dataset: Facts about the data to keep with the splits; must hold ``root``
            (the folder the relative paths start from) and ``source``.

    Returns:
        The folder written.

    Raises:
        ValueError: If ``dataset`` lacks ``root`` or ``source``.
    """
    if not {"root", "source"} <= set(dataset):
        raise ValueError("save_splits needs dataset['root'] and dataset['source'].")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, part in splits.items():
        part.to_csv(out_dir / f"{name}.csv", index=False)
    meta = {
        **dataset,
        "root": str(Path(dataset["root"]).resolve()),
        "counts": {name: len(part) for name, part in splits.items()},
    }
    course.write_json(meta, course.dataset_path(out_dir))
    return out_dir


def load_splits(split_dir: str | Path) -> tuple[dict[str, pd.DataFrame], dict]:
    """Read splits written by ``save_splits``.

    Args:
        split_dir: The folder with ``train.csv`` … and ``dataset.json``.

    Returns:
        ``(splits, dataset)``; each split gains an ``abs_path`` column.

    Raises:
        FileNotFoundError: If the folder or one of its files is missing (run notebook 01,
            or ``python -m course_utils data split``, first).
    """
    split_dir = Path(split_dir)
    meta_path = course.dataset_path(split_dir)
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"No splits in {split_dir} ({meta_path.name} missing). Run notebook 01 with the same "
            "ARTIFACTS_DIR first, or `python -m course_utils data split DATA_DIR --out "
            f"{split_dir}`."
        )
    dataset = course.read_json(meta_path, "splits description", _REMAKE_SPLITS)
    root = Path(dataset["root"])
    splits = {}
    for name in SPLIT_FILES:
        path = split_dir / f"{name}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"Split file {path} is missing; re-run notebook 01.")
        part = pd.read_csv(path, dtype={"path": str, "label": str})
        part["abs_path"] = [str(root / p) for p in part["path"]]
        splits[name] = part
    return splits, dataset


def audit_and_split(
    source: dict,
    out_dir: str | Path,
    seed: int = config.DEFAULT_SEED,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> Path:
    """Audit a dataset and save duplicate-aware splits: notebook 01's steps in one call.

    Args:
        source: ``DatasetSource.to_dict()`` (``root``, ``source``, ``description``).
        out_dir: Folder for the split CSVs and ``dataset.json``.
        seed: Seed of the splits.
        val_fraction: Share of training kept for validation.
        test_fraction: Share carved for testing when there is no ``Testing`` folder.

    Returns:
        The folder written.
    """
    from course_utils.data.audit import audit_dataset

    report = audit_dataset(source["root"])
    parts = make_splits(report.table, val_fraction, test_fraction, seed)
    folder = save_splits(
        parts, out_dir, {**source, "class_names": list(config.CLASS_NAMES), "seed": seed}
    )
    print(split_counts(parts).to_string())
    print(f"Wrote splits to {folder}")
    return folder


def load_or_make_splits(
    split_dir: str | Path,
    source: dict | None = None,
    seed: int | None = None,
    data_root: str | Path | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Load the saved splits when they fit, else audit the data and make them.

    The one reuse rule: saved splits are reused when their ``dataset.json`` names the
    same data root as ``source`` and the same ``seed``; a ``source`` or ``seed`` of
    None matches any saved splits. Otherwise ``source`` is audited and split with
    ``seed`` (``audit_and_split``) and the new splits are loaded.

    Args:
        split_dir: The splits folder (``course.splits_dir(ARTIFACTS_DIR)``).
        source: ``DatasetSource.to_dict()`` of the data the splits must come from, or
            None to take whatever splits are saved.
        seed: The seed the splits must have been made with (and new ones get), or None
            for any saved seed (new ones then get ``config.DEFAULT_SEED``).
        data_root: Read the files from this folder instead of the saved root (the data
            was copied or moved); every file must then exist there.
        val_fraction: Share of training kept for validation (new splits only).
        test_fraction: Share carved for testing without a ``Testing`` folder (new splits).

    Returns:
        ``(splits, dataset)`` as ``load_splits`` returns them.

    Raises:
        FileNotFoundError: If no splits fit and ``source`` is None, or a file of the
            splits is missing under ``data_root``.
    """
    split_dir = Path(split_dir)
    saved = _saved_dataset(split_dir)
    if saved is not None and _splits_fit(saved, source, seed):
        print(f"Using the splits in {split_dir}")
    elif source is None:
        raise FileNotFoundError(
            f"No splits in {split_dir} ({course.dataset_path(split_dir).name} missing). Run "
            "notebook 01 with the same ARTIFACTS_DIR first, or `python -m course_utils data "
            f"split DATA_DIR --out {split_dir}`."
        )
    else:
        chosen_seed = config.DEFAULT_SEED if seed is None else seed
        print(f"Auditing and splitting {source['root']} (seed {chosen_seed}) into {split_dir}")
        audit_and_split(source, split_dir, chosen_seed, val_fraction, test_fraction)
    loaded, dataset = load_splits(split_dir)
    if data_root is not None:
        loaded = reroot_splits(loaded, dataset, data_root)
    return loaded, dataset


def _saved_dataset(split_dir: Path) -> dict | None:
    """Return the saved ``dataset.json`` of a splits folder, or None when there is none."""
    path = course.dataset_path(split_dir)
    return course.read_json(path, "splits description", _REMAKE_SPLITS, required=False)


def _splits_fit(saved: dict, source: dict | None, seed: int | None) -> bool:
    """Whether saved splits were made from ``source``'s root with ``seed`` (None: any)."""
    same_root = source is None or saved.get("root") == str(Path(source["root"]).resolve())
    return same_root and (seed is None or saved.get("seed") == seed)


def reroot_splits(
    splits: dict[str, pd.DataFrame], dataset: dict, data_root: str | Path
) -> dict[str, pd.DataFrame]:
    """Point the splits' ``abs_path`` at another copy of the data and check every file.

    Args:
        splits: Tables from ``load_splits`` (``path`` relative to the data root).
        dataset: Their ``dataset.json`` facts (``root``: where they were listed).
        data_root: The folder the files are read from now.

    Returns:
        The same tables with ``abs_path`` under ``data_root``.

    Raises:
        FileNotFoundError: If a file of the splits is not under ``data_root``.
    """
    root = Path(data_root).expanduser().resolve()
    if str(root) != dataset["root"]:
        print(f"Reading the split's files from {root} (they were listed under {dataset['root']})")
    for table in splits.values():
        table["abs_path"] = [str(root / path) for path in table["path"]]
    missing = [p for t in splits.values() for p in t["abs_path"] if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} files of the splits are missing under {root}, e.g. {missing[0]}; "
            "pass the folder the splits were made from."
        )
    return splits


def ensure_splits(
    split_dir: str | Path,
    data_dir: str | Path | None = None,
    data_source: str = "phantoms",
    seed: int = config.DEFAULT_SEED,
) -> Path:
    """Return notebook 01's splits, or make them when a lesson runs on its own.

    Saved splits are used whatever data they came from (the lessons follow notebook
    01); the data is found only when there are none (``load_or_make_splits``).

    Args:
        split_dir: Where the splits are (``course.splits_dir(ARTIFACTS_DIR)``).
        data_dir: The notebook's ``DATA_DIR``, used only when there are no splits yet.
        data_source: The notebook's ``DATA_SOURCE``, likewise.
        seed: Seed of new splits.

    Returns:
        ``split_dir``, holding ``dataset.json`` and the split CSVs.

    Raises:
        FileNotFoundError: If ``data_dir`` is given but does not exist.
        ValueError: If the data is not in the Kaggle layout or the source is unknown.
    """
    from course_utils.data.sources import resolve_dataset

    split_dir = Path(split_dir)
    if _saved_dataset(split_dir) is not None:
        print(f"Using the splits of notebook 01 in {split_dir}")
        return split_dir
    print(f"No splits in {split_dir}: auditing and splitting the data as notebook 01 does.")
    source = resolve_dataset(data_dir, data_source)
    print("Data source:", source.description)
    load_or_make_splits(split_dir, source.to_dict(), seed)
    return split_dir


def encode_labels(labels: pd.Series | list[str], class_names: tuple[str, ...]) -> np.ndarray:
    """Turn class names into integer indices in the order of ``class_names``.

    Args:
        labels: Class names.
        class_names: The class order (from the model card or config).

    Returns:
        An int32 array.

    Raises:
        ValueError: If a label is not in ``class_names``.
    """
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise ValueError(f"Labels {unknown} are not among the classes {list(class_names)}.")
    return np.array([index[label] for label in labels], dtype=np.int32)
