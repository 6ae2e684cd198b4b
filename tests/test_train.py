"""Training: devices, the fit loop, cached-feature phase 1, whole trainings, model cards."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from course_utils import models, train  # noqa: E402
from course_utils.config import CLASS_NAMES  # noqa: E402
from course_utils.data.pipeline import dataset_from_split  # noqa: E402

IMAGE_SIZE = 72
#: Where each class's bright blob sits (row, column), so the task is learnable.
BLOB_CENTRES = {"glioma": (20, 20), "meningioma": (20, 52), "notumor": None, "pituitary": (52, 36)}


def _phantom(label: str, rng: np.random.Generator) -> Image.Image:
    image = rng.normal(50, 12, (IMAGE_SIZE, IMAGE_SIZE))
    centre = BLOB_CENTRES[label]
    if centre is not None:
        rows, cols = np.ogrid[:IMAGE_SIZE, :IMAGE_SIZE]
        jitter = rng.integers(-3, 4, 2)
        inside = (rows - centre[0] - jitter[0]) ** 2 + (cols - centre[1] - jitter[1]) ** 2 < 64
        image[inside] = rng.normal(220, 10, inside.sum())
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def tiny_splits(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """4 classes x 12 grayscale PNGs (9 train, 3 val each), a bright blob per class."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    rows = []
    for label in CLASS_NAMES:
        (root / label).mkdir()
        for index in range(12):
            path = root / label / f"{label}_{index:02d}.png"
            _phantom(label, rng).save(path)
            split = "train" if index < 9 else "val"
            rows.append(
                {
                    "path": f"{label}/{path.name}",
                    "abs_path": str(path),
                    "label": label,
                    "split": split,
                }
            )
    table = pd.DataFrame(rows)
    return (
        table[table["split"] == "train"].reset_index(drop=True),
        table[table["split"] == "val"].reset_index(drop=True),
    )


@pytest.fixture(scope="module")
def cnn_run(
    tiny_splits: tuple[pd.DataFrame, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> tuple[keras.Model, dict, Path]:
    """One short CNN training, shared by the tests that inspect its results."""
    out_dir = tmp_path_factory.mktemp("cnn_run")
    train_split, val_split = tiny_splits
    root = str(Path(train_split["abs_path"][0]).parents[1])
    model, card = train.train_cnn(
        train_split,
        val_split,
        CLASS_NAMES,
        out_dir,
        image_size=IMAGE_SIZE,
        num_epochs=2,
        batch_size=6,
        learning_rate=3e-3,
        seed=0,
        fast=True,
        dataset={"source": "test phantoms", "root": root},
    )
    return model, card, out_dir


def test_configure_devices_on_cpu() -> None:
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this test describes a machine without GPU")
    strategy = train.configure_devices()
    assert isinstance(strategy, type(tf.distribute.get_strategy()))
    assert not isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == 1
    assert keras.mixed_precision.dtype_policy().name == "float32"
    description = train.describe_devices(strategy)
    assert "CPU only" in description and "float32" in description
    try:
        train.configure_devices(mixed_precision=True)
        assert keras.mixed_precision.dtype_policy().name == "mixed_float16"
        train.configure_devices(mixed_precision="auto")
        assert keras.mixed_precision.dtype_policy().name == "float32"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    with pytest.raises(ValueError, match="mixed_precision"):
        train.configure_devices(mixed_precision="yes")


def test_cnn_training_learns_and_writes_its_files(cnn_run: tuple) -> None:
    model, card, out_dir = cnn_run
    history = json.loads((out_dir / "cnn_history.json").read_text())["history"]
    assert len(history["loss"]) == 2
    assert history["loss"][1] < history["loss"][0], history["loss"]
    for name in ("cnn.keras", "cnn.json", "cnn_history.csv", "cnn_history.json"):
        assert (out_dir / name).is_file(), name
    csv = pd.read_csv(out_dir / "cnn_history.csv")
    assert list(csv["epoch"]) == [0, 1] and {"loss", "val_loss", "val_accuracy"} <= set(csv)
    assert card["phases"][0]["epochs_run"] == 2
    assert set(card["best_val_metrics"]) >= {"loss", "accuracy", "precision", "recall"}


def test_fit_model_writes_checkpoint_and_history(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    labels = np.eye(4, dtype="float32")[rng.integers(0, 4, 16)]
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    model = models.compile_model(models.build_cnn(32, filters=(8, 16)))
    result = train.fit_model(
        model, data, data, tmp_path / "out", "tiny", num_epochs=2, seed=0, verbose=0
    )
    assert result["epochs_run"] == 2 and 1 <= result["best_epoch"] <= 2
    assert result["seconds"] > 0
    assert Path(result["model_path"]) == tmp_path / "out" / "tiny.keras"
    reloaded = keras.saving.load_model(result["model_path"])
    assert reloaded.count_params() == model.count_params()
    assert len(pd.read_csv(tmp_path / "out" / "tiny_history.csv")) == 2
    saved = json.loads((tmp_path / "out" / "tiny_history.json").read_text())
    assert saved["history"]["val_loss"] == result["history"]["val_loss"]
    assert saved["best_val_metrics"]["loss"] == min(result["history"]["val_loss"])
    with pytest.raises(ValueError, match="num_epochs"):
        train.fit_model(model, data, data, tmp_path, "bad", num_epochs=0, seed=0)


def test_head_on_cached_features_equals_full_model(
    tiny_splits: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train_split, val_split = tiny_splits
    keras.utils.set_random_seed(0)
    model = models.build_xception_classifier(IMAGE_SIZE, weights=None)
    models.set_trainable_for_phase(model, 1)

    def data(split: pd.DataFrame) -> tf.data.Dataset:
        return dataset_from_split(split, CLASS_NAMES, image_size=IMAGE_SIZE, batch_size=12)

    cache = tmp_path / "features" / "train.npz"
    features, labels = train.extract_features(
        model, data(train_split), cache_path=cache, dtype=np.float32
    )
    val_features, val_labels = train.extract_features(model, data(val_split), dtype=np.float32)
    assert features.shape == (36, 3, 3, 2048) and features.dtype == np.float32
    compact, _ = train.extract_features(model, data(train_split))
    assert compact.dtype == np.float16, "the default halves the memory of cached features"
    np.testing.assert_allclose(compact, features, rtol=2e-3, atol=1e-6)
    expected = np.eye(4)[[CLASS_NAMES.index(label) for label in train_split["label"]]]
    np.testing.assert_array_equal(labels, expected)

    cached_features, _ = train.extract_features(object(), data(train_split), cache_path=cache)
    np.testing.assert_array_equal(cached_features, features)  # read back, base not run

    head = models.build_head(features.shape[1:])
    result = train.train_head_on_features(
        head,
        features,
        labels,
        val_features,
        val_labels,
        num_epochs=2,
        batch_size=12,
        out_dir=tmp_path,
        name="head",
        seed=0,
    )
    assert result["epochs_run"] == 2 and (tmp_path / "head_history.csv").is_file()
    models.get_head(model).set_weights(head.get_weights())
    images = next(iter(data(train_split)))[0]
    from_full_model = model.predict_on_batch(images)
    from_cached_features = head.predict_on_batch(features[: len(images)])
    np.testing.assert_allclose(from_full_model, from_cached_features, rtol=1e-4, atol=1e-6)


def test_feature_cache_key_tracks_files_size_and_weights(tmp_path: Path) -> None:
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"one")
    key = train.feature_cache_key(["a.png", "b.png"], 224, weights)
    assert key == train.feature_cache_key(["a.png", "b.png"], 224, weights)
    assert key != train.feature_cache_key(["b.png", "a.png"], 224, weights)
    assert key != train.feature_cache_key(["a.png", "b.png"], 299, weights)
    assert key != train.feature_cache_key(["a.png", "b.png"], 224, "imagenet")
    weights.write_bytes(b"two")
    assert key != train.feature_cache_key(["a.png", "b.png"], 224, weights)
    random = train.feature_cache_key(["a.png"], 224, None, seed=1)
    assert random != train.feature_cache_key(["a.png"], 224, None, seed=2)


def test_train_transfer_two_phases(
    tiny_splits: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train_split, val_split = tiny_splits
    model, card = train.train_transfer(
        train_split,
        val_split,
        CLASS_NAMES,
        tmp_path,
        image_size=IMAGE_SIZE,
        num_epochs_phase1=1,
        num_epochs_phase2=1,
        batch_size=12,
        weights=None,
        seed=0,
        fast=True,
        feature_cache_dir=tmp_path / "features",
    )
    for name in (
        "xception.keras",
        "xception.json",
        "xception_phase1_history.json",
        "xception_history.csv",
    ):
        assert (tmp_path / name).is_file(), name
    assert len(list((tmp_path / "features").glob("xception_features_*.npz"))) == 2
    phase1, phase2 = card["phases"]
    assert phase1["trainable_params"] == models.get_head(model).count_params()
    assert phase1["trainable_params"] < phase2["trainable_params"]
    assert phase2["learning_rate"] == pytest.approx(1e-4)
    batch_norms = [
        layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert not any(layer.trainable for layer in batch_norms)
    assert card["preprocessing"] == "xception" and card["weights"] == "random"
    loaded, loaded_card = train.load_model_with_card(tmp_path / "xception.keras")
    images = np.random.default_rng(0).uniform(0, 255, (2, IMAGE_SIZE, IMAGE_SIZE, 3))
    np.testing.assert_allclose(
        loaded.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6
    )
    assert loaded.get_layer(models.FEATURE_LAYER) is not None and loaded_card == card


def test_card_round_trip(cnn_run: tuple, tiny_splits: tuple) -> None:
    model, card, out_dir = cnn_run
    loaded, loaded_card = train.load_model_with_card(out_dir / "cnn.keras")
    assert loaded_card == card
    assert set(train.REQUIRED_CARD_KEYS) <= set(card)
    images = np.random.default_rng(2).uniform(0, 255, (3, IMAGE_SIZE, IMAGE_SIZE, 3))
    np.testing.assert_allclose(
        loaded.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6
    )
    assert card["class_names"] == list(CLASS_NAMES)
    assert card["image_size"] == IMAGE_SIZE and card["colour_mode"] == "rgb"
    assert card["input_value_range"] == "[0,255] raw pixels; preprocessing inside the model"
    assert card["preprocessing"] == "unit" and card["seed"] == 0
    assert card["split_sizes"] == {"train": 36, "val": 12}
    assert set(card["library_versions"]) == {"tensorflow", "keras", "numpy", "python"}
    assert card["library_versions"]["keras"] == keras.__version__
    files = "\n".join(sorted(tiny_splits[0]["path"]))
    assert card["dataset"]["train_files_sha256"] == hashlib.sha256(files.encode()).hexdigest()
    assert card["dataset"]["source"] == "test phantoms"
    assert card["training_seconds"] > 0


def test_load_model_with_card_errors(cnn_run: tuple, tmp_path: Path) -> None:
    _, card, out_dir = cnn_run
    with pytest.raises(FileNotFoundError, match=r"missing\.keras.*notebook 02"):
        train.load_model_with_card(tmp_path / "missing.keras")
    shutil.copy(out_dir / "cnn.keras", tmp_path / "cnn.keras")
    with pytest.raises(FileNotFoundError, match=r"cnn\.json"):
        train.load_model_with_card(tmp_path / "cnn.keras")
    broken = {key: value for key, value in card.items() if key != "class_names"}
    (tmp_path / "cnn.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="class_names"):
        train.load_model_with_card(tmp_path / "cnn.keras")
    with pytest.raises(ValueError, match="class_names"):
        train.write_model_card(tmp_path / "cnn.keras", broken)
    wrong_size = {**card, "image_size": IMAGE_SIZE + 1}
    train.write_model_card(tmp_path / "cnn.keras", wrong_size)
    with pytest.raises(ValueError, match="does not match its card"):
        train.load_model_with_card(tmp_path / "cnn.keras")


def test_training_settings_defaults_and_overrides() -> None:
    from course_utils import train as train_module

    full = train_module.training_settings("xception")
    assert full["weights"] == "imagenet" and full["image_size"] == 299
    fast = train_module.training_settings("xception", fast=True)
    assert fast["weights"] is None and fast["image_size"] < full["image_size"]
    custom = train_module.training_settings("cnn", fast=True, num_epochs=7, image_size=None)
    assert custom["num_epochs"] == 7
    assert custom["image_size"] == train_module.FAST_OVERRIDES["cnn"]["image_size"]
    with pytest.raises(ValueError, match="Unknown model 'resnet'"):
        train_module.training_settings("resnet")


def test_plateau_callback_only_without_a_schedule(tmp_path: Path) -> None:
    """ReduceLROnPlateau cannot change a scheduled learning rate, so fit_model drops it."""
    scheduled = models.compile_model(
        models.build_cnn(32, filters=(4, 8)), "adam", 1e-3, decay_steps=5
    )
    constant = models.compile_model(models.build_cnn(32, filters=(4, 8)), "adam", 1e-3)
    assert train._has_schedule(scheduled) and not train._has_schedule(constant)
    paths = {"model_path": tmp_path / "m.keras", "history_csv": tmp_path / "h.csv"}
    kinds = [type(c).__name__ for c in train._callbacks(paths, 4, False, plateau=False)]
    assert "ReduceLROnPlateau" not in kinds and "EarlyStopping" in kinds


def test_two_epochs_on_phantoms_lower_the_loss(phantom_audit, tmp_path: Path) -> None:
    """The course's own data: two epochs of the CNN on MRI phantoms lower the training loss."""
    from course_utils.config import CLASS_NAMES
    from course_utils.data.splits import make_splits

    parts = make_splits(phantom_audit.table, val_fraction=0.25, seed=0)
    for part in parts.values():
        part["abs_path"] = [str(phantom_audit.root / p) for p in part["path"]]
    train.train_cnn(
        parts["train"],
        parts["val"],
        CLASS_NAMES,
        tmp_path,
        image_size=64,
        num_epochs=2,
        batch_size=8,
        learning_rate=1e-3,
        seed=0,
        fast=True,
    )
    history = json.loads((tmp_path / "cnn_history.json").read_text())["history"]
    assert len(history["loss"]) == 2
    assert history["loss"][1] < history["loss"][0] - 0.05, history["loss"]


def test_array_batches_shuffle_without_losing_rows() -> None:
    features = np.arange(10, dtype=np.float16)[:, None]
    labels = np.eye(2, dtype=np.float32)[np.arange(10) % 2]
    batches = train.ArrayBatches(features, labels, batch_size=4, seed=1)
    assert len(batches) == 3
    first = np.concatenate([batches[i][0] for i in range(len(batches))]).ravel()
    assert sorted(first) == list(range(10)) and batches[0][0].dtype == np.float32
    batches.on_epoch_end()
    second = np.concatenate([batches[i][0] for i in range(len(batches))]).ravel()
    assert sorted(second) == list(range(10)) and not np.array_equal(first, second)
    fixed = train.ArrayBatches(features, labels, batch_size=4, seed=None)
    assert np.concatenate([fixed[i][0] for i in range(3)]).ravel().tolist() == list(range(10))
