"""Finding or fetching the data: local folder, Kaggle (through kagglehub), phantoms."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_utils import config
from course_utils.data import sources


def test_explicit_folder_wins(phantom_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.DATA_DIR_ENV, raising=False)
    source = sources.resolve_dataset(phantom_root, source="kaggle")
    assert source.kind == "local" and source.root == phantom_root.resolve()


def test_environment_variable(phantom_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.DATA_DIR_ENV, str(phantom_root))
    assert sources.resolve_dataset(None, source="kaggle").kind == "local"


def test_missing_or_malformed_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sources.resolve_dataset(tmp_path / "nope")
    with pytest.raises(ValueError, match="Training"):
        sources.resolve_dataset(tmp_path)


def test_unknown_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.DATA_DIR_ENV, raising=False)
    with pytest.raises(ValueError, match="Unknown data source 'imagenet'"):
        sources.resolve_dataset(source="imagenet")


def test_kaggle_download_is_located(
    phantom_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kagglehub returns its cache folder; the dataset root may sit a level or two below."""
    import kagglehub

    download = tmp_path / "datasets" / "versions" / "1"
    (download / "brain-tumor").mkdir(parents=True)
    (download / "brain-tumor" / "Training").symlink_to(phantom_root / "Training")
    asked = []
    monkeypatch.setattr(kagglehub, "dataset_download", lambda h: asked.append(h) or str(download))
    monkeypatch.delenv(config.DATA_DIR_ENV, raising=False)
    source = sources.resolve_dataset(source="kaggle", kaggle_version=1)
    assert asked == [f"{config.KAGGLE_HANDLE}/versions/1"]
    assert source.kind == "kaggle" and source.root == download / "brain-tumor"


def test_kaggle_failure_names_the_three_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import kagglehub

    def offline(handle: str) -> str:
        raise ConnectionError("Failed to resolve 'www.kaggle.com'")

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    monkeypatch.delenv(config.DATA_DIR_ENV, raising=False)
    with pytest.raises(sources.DatasetUnavailableError) as error:
        sources.resolve_dataset(source="kaggle")
    message = str(error.value)
    for option in (
        "kagglehub.login()",
        "DATA_DIR",
        config.DATA_DIR_ENV,
        "phantoms",
        "Failed to resolve",
    ):
        assert option in message


def test_find_kaggle_root_gives_up(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    with pytest.raises(ValueError, match="No Training/ folder"):
        sources.find_kaggle_root(tmp_path)


def test_phantoms_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.DATA_DIR_ENV, raising=False)
    params = {"per_class": 4, "test_per_class": 2, "image_size": 64, "seed": 1}
    source = sources.resolve_dataset(source="phantoms", phantom_params=params)
    assert source.kind == "phantoms" and "not real scans" in source.description
    assert (source.root / "Training" / "glioma").is_dir()
    assert source.to_dict()["source"] == "phantoms"
