"""Training: config, devices, the fit loop, cached-feature phase 1, phases, saved models."""

from __future__ import annotations

import dataclasses
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

from course_utils import (  # noqa: E402
    cards,
    course,
    devices,
    features,
    fitting,
    models,
    predict,
    train,
)
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


def _fast_xception_config() -> train.TrainConfig:
    """One epoch per phase of the fast Xception recipe at ``IMAGE_SIZE``, seed 0."""
    return train.TrainConfig.for_model(
        "xception",
        fast=True,
        image_size=IMAGE_SIZE,
        num_epochs=1,
        num_epochs_phase2=1,
        batch_size=12,
        seed=0,
    )


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
    config = train.TrainConfig.for_model(
        "cnn",
        fast=True,
        image_size=IMAGE_SIZE,
        num_epochs=2,
        batch_size=6,
        learning_rate=3e-3,
        seed=0,
    )
    splits = {"train": train_split, "val": val_split}
    dataset = {"source": "test phantoms", "root": root}
    model, card = train.train_cnn(config, splits, CLASS_NAMES, out_dir, dataset)
    return model, card, out_dir


def test_configure_devices_on_cpu() -> None:
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this test describes a machine without GPU")
    strategy = devices.configure_devices()
    assert isinstance(strategy, type(tf.distribute.get_strategy()))
    assert not isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == 1
    assert keras.mixed_precision.dtype_policy().name == "float32"
    description = devices.describe_devices(strategy)
    assert "CPU only" in description and "float32" in description
    try:
        devices.configure_devices(mixed_precision=True)
        assert keras.mixed_precision.dtype_policy().name == "mixed_float16"
        devices.configure_devices(mixed_precision="auto")
        assert keras.mixed_precision.dtype_policy().name == "float32"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    with pytest.raises(ValueError, match="mixed_precision"):
        devices.configure_devices(mixed_precision="yes")


def test_cnn_training_learns_and_writes_its_files(cnn_run: tuple) -> None:
    model, card, out_dir = cnn_run
    assert card["label_smoothing"] == 0.0  # the card records the loss's smoothing
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
    result = fitting.fit_model(
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
        fitting.fit_model(model, data, data, tmp_path, "bad", num_epochs=0, seed=0)


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
    train_features, labels = features.extract_features(
        model, data(train_split), cache_path=cache, dtype=np.float32
    )
    val_features, val_labels = features.extract_features(model, data(val_split), dtype=np.float32)
    assert train_features.shape == (36, 3, 3, 2048) and train_features.dtype == np.float32
    compact, _ = features.extract_features(model, data(train_split))
    assert compact.dtype == np.float16, "the default halves the memory of cached features"
    np.testing.assert_allclose(compact, train_features, rtol=2e-3, atol=1e-6)
    expected = np.eye(4)[[CLASS_NAMES.index(label) for label in train_split["label"]]]
    np.testing.assert_array_equal(labels, expected)

    cached_features, _ = features.extract_features(object(), data(train_split), cache_path=cache)
    np.testing.assert_array_equal(cached_features, train_features)  # read back, base not run

    head = models.build_head(train_features.shape[1:])
    result = fitting.train_head_on_features(
        head,
        train_features,
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
    from_cached_features = head.predict_on_batch(train_features[: len(images)])
    np.testing.assert_allclose(from_full_model, from_cached_features, rtol=1e-4, atol=1e-6)


def test_feature_cache_key_tracks_files_size_and_weights(tmp_path: Path) -> None:
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"one")
    key = features.feature_cache_key(["a.png", "b.png"], 224, weights)
    assert key == features.feature_cache_key(["a.png", "b.png"], 224, weights)
    assert key != features.feature_cache_key(["b.png", "a.png"], 224, weights)
    assert key != features.feature_cache_key(["a.png", "b.png"], 299, weights)
    assert key != features.feature_cache_key(["a.png", "b.png"], 224, "imagenet")
    weights.write_bytes(b"two")
    assert key != features.feature_cache_key(["a.png", "b.png"], 224, weights)
    random = features.feature_cache_key(["a.png"], 224, None, seed=1)
    assert random != features.feature_cache_key(["a.png"], 224, None, seed=2)


def test_train_transfer_two_phases(
    tiny_splits: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train_split, val_split = tiny_splits
    config = _fast_xception_config()
    splits = {"train": train_split, "val": val_split}
    model, card = train.train_transfer(
        config, splits, CLASS_NAMES, tmp_path, feature_cache_dir=tmp_path / "features"
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
    loaded, loaded_card = predict.load_model_with_card(tmp_path / "xception.keras")
    images = np.random.default_rng(0).uniform(0, 255, (2, IMAGE_SIZE, IMAGE_SIZE, 3))
    np.testing.assert_allclose(
        loaded.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6
    )
    assert loaded.get_layer(models.FEATURE_LAYER) is not None and loaded_card == card


def test_card_round_trip(cnn_run: tuple, tiny_splits: tuple) -> None:
    model, card, out_dir = cnn_run
    loaded, loaded_card = predict.load_model_with_card(out_dir / "cnn.keras")
    assert loaded_card == card
    assert set(cards.REQUIRED_CARD_KEYS) <= set(card)
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
        predict.load_model_with_card(tmp_path / "missing.keras")
    shutil.copy(out_dir / "cnn.keras", tmp_path / "cnn.keras")
    with pytest.raises(FileNotFoundError, match=r"cnn\.json"):
        predict.load_model_with_card(tmp_path / "cnn.keras")
    broken = {key: value for key, value in card.items() if key != "class_names"}
    (tmp_path / "cnn.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="class_names"):
        predict.load_model_with_card(tmp_path / "cnn.keras")
    with pytest.raises(ValueError, match="class_names"):
        cards.write_card(tmp_path / "cnn.keras", broken)
    wrong_size = {**card, "image_size": IMAGE_SIZE + 1}
    cards.write_card(tmp_path / "cnn.keras", wrong_size)
    with pytest.raises(ValueError, match="does not match its card"):
        predict.load_model_with_card(tmp_path / "cnn.keras")


def test_train_config_defaults_and_overrides() -> None:
    full = train.TrainConfig.for_model("xception")
    assert full.weights == "imagenet" and full.image_size == 299
    assert (full.num_epochs, full.batch_size, full.learning_rate) == (10, 32, 1e-3)
    assert full.phase2_epochs == 10 and full.optimizer == "adamax" and full.patience == 5
    fast = train.TrainConfig.for_model("xception", fast=True)
    assert fast.weights is None and fast.image_size == 71 and fast.num_epochs == 2
    assert fast.phase2_epochs == 1
    assert fast.fast and fast.verbose == 2 and full.verbose == "auto"
    cnn = train.TrainConfig.for_model("cnn")
    assert (cnn.image_size, cnn.num_epochs, cnn.batch_size, cnn.learning_rate) == (
        128,
        20,
        8,
        2e-3,
    )
    assert cnn.optimizer == "adam" and cnn.patience == cnn.num_epochs and cnn.seed == 42
    assert cnn.filters == (16, 32, 64, 128, 256) and cnn.augmentation == "flip"
    assert cnn.label_smoothing == 0.1
    fast_cnn = train.TrainConfig.for_model("cnn", fast=True)
    assert (fast_cnn.image_size, fast_cnn.batch_size, fast_cnn.filters) == (
        96,
        16,
        (16, 32, 64, 128),
    )
    assert fast_cnn.augmentation == "flip" and fast_cnn.dropout == 0.0 and cnn.dropout == 0.0
    assert fast_cnn.label_smoothing == 0.0 and fast_cnn.patience == 10  # the demo's recipe
    assert (cnn.batch_norm_momentum, cnn.first_block_stride) == (0.99, 2)  # the ninth session's
    assert (fast_cnn.batch_norm_momentum, fast_cnn.first_block_stride) == (0.9, 1)  # as measured
    # The full CNN's cosine always runs out: patience follows num_epochs unless it is set.
    longer = train.TrainConfig.for_model("cnn", num_epochs=30, patience=None)
    assert (longer.num_epochs, longer.patience) == (30, 30)
    assert train.TrainConfig.for_model("cnn", num_epochs=30, patience=4).patience == 4
    assert train.TrainConfig.for_model("xception", num_epochs=30).patience == 5
    with pytest.raises(ValueError, match="dropout=1.5"):
        train.TrainConfig.for_model("cnn", dropout=1.5)
    with pytest.raises(ValueError, match="augmentation='sideways'"):
        train.TrainConfig.for_model("cnn", augmentation="sideways")
    custom = train.TrainConfig.for_model("cnn", fast=True, num_epochs=7, image_size=None)
    assert custom.num_epochs == 7
    assert custom.image_size == train.TrainConfig.for_model("cnn", fast=True).image_size == 96
    with pytest.raises(ValueError, match="Unknown model 'resnet'"):
        train.TrainConfig.for_model("resnet")
    with pytest.raises(ValueError, match="epochs_total"):
        train.TrainConfig.for_model("cnn", epochs_total=3)
    with pytest.raises(ValueError, match="num_epochs"):
        train.TrainConfig.for_model("cnn", num_epochs=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cnn.num_epochs = 5  # type: ignore[misc]


def test_phases_are_separate_calls_on_one_built_model(
    tiny_splits: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """Notebook 02's path: build once, phase 1, phase 2 on that same object, then save."""
    config = _fast_xception_config()
    splits = {"train": tiny_splits[0], "val": tiny_splits[1]}
    run = train.TrainingRun(config, splits, CLASS_NAMES, tmp_path)
    model = run.build_model()
    split_features = run.extract_features(model)
    assert split_features.train_features.shape == (36, 3, 3, 2048)
    assert not split_features.from_cache and split_features.seconds >= 0
    head_before = [w.copy() for w in models.get_head(model).get_weights()]
    phase1 = run.train_head(model, split_features)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(head_before, models.get_head(model).get_weights(), strict=True)
    ), "phase 1 trains the head of the model it was given"
    assert phase1["feature_cache_hit"] is False and phase1["epochs_run"] == 1
    phase2 = run.fine_tune(model, phase1)
    assert phase2["learning_rate"] == pytest.approx(config.learning_rate / 10)
    card = run.save(model, [phase1, phase2])
    assert card["phases"] == [phase1, phase2]
    assert card["training_seconds"] == pytest.approx(
        phase1["seconds"] + phase1["feature_extraction_seconds"] + phase2["seconds"], abs=0.11
    )
    with pytest.raises(ValueError, match="'val' split"):
        train.TrainingRun(config, {"train": tiny_splits[0]}, CLASS_NAMES, tmp_path)
    with pytest.raises(ValueError, match="train_cnn trains the CNN"):
        train.train_cnn(config, splits, CLASS_NAMES, tmp_path)


def test_saved_weights_load_into_the_model_rebuilt_from_its_card(cnn_run: tuple) -> None:
    """The cross-version path: card ``build`` entry + ``.weights.h5``, no ``.keras`` needed."""
    model, card, out_dir = cnn_run
    weights_file = course.weights_path(out_dir / "cnn.keras")
    assert weights_file.is_file() and card["weights_file"] == weights_file.name
    assert card["build"]["builder"] == "cnn" and card["build"]["image_size"] == IMAGE_SIZE
    assert card["build"]["num_classes"] == len(CLASS_NAMES)
    rebuilt = models.build_from_card(card)
    rebuilt.load_weights(weights_file)
    images = np.random.default_rng(3).uniform(0, 255, (3, IMAGE_SIZE, IMAGE_SIZE, 3))
    np.testing.assert_array_equal(rebuilt.predict_on_batch(images), model.predict_on_batch(images))
    with pytest.raises(ValueError, match="'build' entry"):
        models.build_from_card({"name": "cnn"})


def test_plateau_callback_only_without_a_schedule(tmp_path: Path) -> None:
    """ReduceLROnPlateau cannot change a scheduled learning rate, so fit_model drops it."""
    scheduled = models.compile_model(
        models.build_cnn(32, filters=(4, 8)), "adam", 1e-3, decay_steps=5
    )
    constant = models.compile_model(models.build_cnn(32, filters=(4, 8)), "adam", 1e-3)
    assert fitting._has_schedule(scheduled) and not fitting._has_schedule(constant)
    paths = {"model_path": tmp_path / "m.keras", "history_csv": tmp_path / "h.csv"}
    kinds = [type(c).__name__ for c in fitting._callbacks(paths, 4, False, plateau=False)]
    assert "ReduceLROnPlateau" not in kinds and "EarlyStopping" in kinds


def test_the_cnn_learns_the_phantoms(phantom_audit, tmp_path: Path) -> None:
    """The course's own data: the course's CNN fits the MRI phantoms' training split.

    Made so that it cannot be flaky yet fails when training is broken (no gradient, a frozen
    model, a wrong loss or optimiser): fixed seed, fixed batch order, no augmentation or
    shuffling, eight epochs, and the best epoch's training loss must be well under the first
    epoch's. It replaced "epoch 2 below epoch 1 after augmented training", which augmentation
    noise broke on a loaded machine. Measured in both environments: about 3.3 falling to 1.4.
    """
    from course_utils.config import CLASS_NAMES
    from course_utils.data.splits import make_splits

    parts = make_splits(phantom_audit.table, val_fraction=0.25, seed=0)
    for part in parts.values():
        part["abs_path"] = [str(phantom_audit.root / p) for p in part["path"]]
    train_data, val_data = (
        dataset_from_split(parts[split], CLASS_NAMES, image_size=64, batch_size=8, training=False)
        for split in ("train", "val")
    )
    model = models.compile_model(models.build_cnn(64, len(CLASS_NAMES)), "adam", 1e-3)
    result = fitting.fit_model(
        model, train_data, val_data, tmp_path, "cnn", num_epochs=8, seed=0, patience=8,
        verbose=0, checkpoint=False,
    )  # fmt: skip
    losses = result["history"]["loss"]
    assert len(losses) == 8, losses
    assert min(losses[1:]) < 0.75 * losses[0], losses


def test_array_batches_shuffle_without_losing_rows() -> None:
    values = np.arange(10, dtype=np.float16)[:, None]
    labels = np.eye(2, dtype=np.float32)[np.arange(10) % 2]
    batches = features.ArrayBatches(values, labels, batch_size=4, seed=1)
    assert len(batches) == 3
    first = np.concatenate([batches[i][0] for i in range(len(batches))]).ravel()
    assert sorted(first) == list(range(10)) and batches[0][0].dtype == np.float32
    batches.on_epoch_end()
    second = np.concatenate([batches[i][0] for i in range(len(batches))]).ravel()
    assert sorted(second) == list(range(10)) and not np.array_equal(first, second)
    fixed = features.ArrayBatches(values, labels, batch_size=4, seed=None)
    assert np.concatenate([fixed[i][0] for i in range(3)]).ravel().tolist() == list(range(10))


def test_the_card_records_the_fast_cnn_as_built() -> None:
    """Dropout and filters of the config reach the builder, the card's build entry and text."""
    fast = train.TrainConfig.for_model("cnn", fast=True)
    full = train.TrainConfig.for_model("cnn")
    assert train._cnn_architecture(fast).startswith("CNN from scratch: 4 blocks")
    assert "16-128 filters" in train._cnn_architecture(fast)
    assert "Dropout" not in train._cnn_architecture(fast)
    assert "5 blocks" in train._cnn_architecture(full)
    assert "Dropout" not in train._cnn_architecture(full)  # the defaults drop it too
    first = train.TrainConfig.for_model("cnn", dropout=0.3)  # the first recipe's rate
    assert "GlobalAvgPool-Dropout(0.3)-Dense(128, relu)-Dropout(0.3)" in train._cnn_architecture(
        first
    )
    splits = {"train": pd.DataFrame({"label": ["a"]}), "val": pd.DataFrame({"label": ["a"]})}
    run = train.TrainingRun(fast, splits, ("a", "b"), "unused")
    assert run.model_options == {
        "filters": (16, 32, 64, 128),
        "last_block_convs": 2,
        "dropout": 0.0,
        "batch_norm_momentum": 0.9,
        "first_block_stride": 1,
    }
    model = run.build_model()
    rates = {layer.name: layer.rate for layer in model.layers if "dropout" in layer.name}
    assert rates == {"dropout": 0.0, "dense_dropout": 0.0}
    slower = train.TrainingRun(
        dataclasses.replace(fast, batch_norm_momentum=0.99), splits, ("a", "b"), "unused"
    ).build_model()
    momenta = {layer.momentum for layer in slower.layers if layer.name.endswith("_bn")}
    assert momenta == {0.99} and model.get_layer("conv1_bn").momentum == 0.9
    with pytest.raises(ValueError, match="batch_norm_momentum=1.0"):
        train.TrainConfig.for_model("cnn", batch_norm_momentum=1.0)
    assert [layer.name for layer in model.layers if layer.name.startswith("conv4")][:2] == [
        "conv4",
        "conv4_bn",
    ] and model.get_layer("conv4b").filters == 128
    deeper = train.TrainConfig.for_model("cnn", last_block_convs=3)
    assert "3 convs in the last" in train._cnn_architecture(deeper)
    with pytest.raises(ValueError, match="last_block_convs=0"):
        train.TrainConfig.for_model("cnn", last_block_convs=0)
    spec = models.build_spec("cnn", fast.image_size, 2, **run.model_options)
    assert spec["dropout"] == 0.0 and spec["filters"] == [16, 32, 64, 128]
    assert spec["batch_norm_momentum"] == 0.9 and spec["first_block_stride"] == 1
    strided = dataclasses.replace(fast, first_block_stride=2)
    assert "the first with stride 2 and no pool" in train._cnn_architecture(strided)
    assert "stride" not in train._cnn_architecture(fast)
    strided_model = train.TrainingRun(strided, splits, ("a", "b"), "unused").build_model()
    assert strided_model.get_layer("conv1").strides == (2, 2)
    assert "conv1_pool" not in [layer.name for layer in strided_model.layers]
    with pytest.raises(ValueError, match="first_block_stride=4"):
        train.TrainConfig.for_model("cnn", first_block_stride=4)


def test_max_train_images_samples_the_training_split_by_class() -> None:
    """Fast Xception trains on a seeded sample that keeps each class's share."""
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    splits = {
        "train": pd.DataFrame({"label": labels, "path": [f"{i}.jpg" for i in range(100)]}),
        "val": pd.DataFrame({"label": ["a", "b"], "path": ["v0.jpg", "v1.jpg"]}),
    }
    config = train.TrainConfig.for_model("cnn", max_train_images=20)
    run = train.TrainingRun(config, splits, ("a", "b", "c"), "unused")
    sample = run.table("train")
    assert len(sample) == 20
    assert sample["label"].value_counts().to_dict() == {"a": 12, "b": 6, "c": 2}
    assert sample["path"].tolist() == run.table("train")["path"].tolist()  # seeded
    assert run.table("val") is splits["val"]
    everything = train.TrainingRun(train.TrainConfig.for_model("cnn"), splits, ("a", "b", "c"), "x")
    assert everything.table("train") is splits["train"]
    assert train.TrainConfig.for_model("xception", fast=True).max_train_images == 320
    with pytest.raises(ValueError, match="max_train_images=0"):
        train.TrainConfig.for_model("cnn", max_train_images=0)


def test_cpu_bfloat16_detection_reads_the_flags(tmp_path: Path) -> None:
    with_bf16 = tmp_path / "cpuinfo_bf16"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    without = tmp_path / "cpuinfo_plain"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\nbugs\t: avx512_bf16\n")
    assert devices.cpu_supports_bfloat16(with_bf16) is True
    assert devices.cpu_supports_bfloat16(without) is False  # only a "flags" line counts
    assert devices.cpu_supports_bfloat16(tmp_path / "missing") is False
    assert devices.cpu_flags(without) == {"fpu", "sse2", "avx2", "avx512f"}
    assert devices.cpu_flags(tmp_path / "missing") == set()
    assert devices.speed_flags(with_bf16) == ["avx2", "avx512f", "avx512_bf16", "amx_tile"]


def test_bfloat16_trains_faster_only_with_amx(tmp_path: Path) -> None:
    avx512_only = tmp_path / "cpuinfo_avx512_bf16"
    avx512_only.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    amx = tmp_path / "cpuinfo_amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert devices.cpu_supports_bfloat16(avx512_only) is True  # native, so the bench measures it
    assert devices.bfloat16_trains_faster(avx512_only) is False  # measured slower: 0.8x
    assert devices.bfloat16_trains_faster(amx) is True
    assert devices.bfloat16_trains_faster(tmp_path / "missing") is False


@pytest.mark.parametrize(("supported", "expected"), [(True, "mixed_bfloat16"), (False, "float32")])
def test_cpu_bfloat16_policy_only_where_it_trains_faster(
    monkeypatch: pytest.MonkeyPatch, supported: bool, expected: str
) -> None:
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this test describes a machine without GPU")
    monkeypatch.setattr(devices, "bfloat16_trains_faster", lambda: supported)
    try:
        devices.configure_devices(cpu_bfloat16=True)
        assert keras.mixed_precision.dtype_policy().name == expected
        devices.configure_devices(mixed_precision=False, cpu_bfloat16=True)
        assert keras.mixed_precision.dtype_policy().name == "float32"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_model_trained_under_mixed_precision_is_saved_in_float32(
    tmp_path: Path, policy: str
) -> None:
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = models.build_cnn(32, 4, filters=(4, 8), dense_units=8)
        path = fitting.save_for_inference(model, tmp_path / "cnn.keras")  # as training does
        assert keras.mixed_precision.dtype_policy().name == policy  # left as it was
        assert fitting.training_precision(fitting.as_saved(model)) == "float32"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert fitting.training_precision(model) == policy
    loaded = keras.models.load_model(path)
    assert {layer.dtype_policy.name for layer in loaded.layers} == {"float32"}
    assert fitting.training_precision(loaded) == "float32"
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=0.02
    )
    for mine, theirs in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_the_full_cnn_asks_for_bfloat16_and_the_demo_does_not() -> None:
    assert train.TrainConfig.for_model("cnn").cpu_bfloat16
    assert not train.TrainConfig.for_model("cnn", fast=True).cpu_bfloat16
    assert not train.TrainConfig.for_model("xception").cpu_bfloat16
    assert not train.TrainConfig.for_model("cnn", cpu_bfloat16=False).cpu_bfloat16


def test_label_smoothing_reaches_the_loss_and_is_checked() -> None:
    model = models.build_cnn(32, 4, filters=(4, 8), dense_units=8)
    models.compile_model(model, "adam", 1e-3, label_smoothing=0.1)
    hard = np.array([[1.0, 0.0, 0.0, 0.0]])
    predicted = np.array([[0.7, 0.1, 0.1, 0.1]])
    soft = hard * 0.9 + 0.1 / 4
    expected = -np.sum(soft * np.log(predicted))
    assert float(model.loss(hard, predicted)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="label_smoothing=1.0"):
        train.TrainConfig.for_model("cnn", label_smoothing=1.0)


def test_ema_weights_are_validated_kept_and_checked(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (48, 32, 32, 3)).astype("float32")
    labels = np.eye(4, dtype="float32")[rng.integers(0, 4, 48)]
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    keras.utils.set_random_seed(0)
    model = models.build_cnn(32, 4, filters=(4, 8), dense_units=8, dropout=0.0)
    models.compile_model(model, "adam", 1e-2, ema_momentum=0.9)
    assert model.optimizer.use_ema and model.optimizer.ema_momentum == 0.9
    result = fitting.fit_model(model, data, data, tmp_path, "ema", 3, seed=0, patience=3)
    optimizer = model.optimizer
    for weights, average in zip(
        optimizer._trainable_variables, optimizer._model_variables_moving_average, strict=True
    ):
        np.testing.assert_allclose(weights.numpy(), average.numpy(), rtol=1e-6)
    # The history's validation losses were measured on the averaged weights, and the
    # model ends with the best of them (early stopping saw the average too).
    best = min(result["history"]["val_loss"])
    assert model.evaluate(data, verbose=0)[0] == pytest.approx(best, rel=1e-4)
    # On a GPU, mixed_float16 wraps the optimizer in a loss scaler: the average is still seen.
    scaled = models.build_cnn(32, 4, filters=(4, 8), dense_units=8)
    scaled.compile(
        optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(use_ema=True)),
        loss="categorical_crossentropy",
    )
    assert fitting._uses_ema(scaled) and not fitting._uses_ema(_compiled_without_ema())
    with pytest.raises(ValueError, match="ema_momentum=1.0"):
        models.compile_model(model, "adam", ema_momentum=1.0)
    with pytest.raises(ValueError, match="optimizer name"):
        models.compile_model(model, keras.optimizers.Adam(), ema_momentum=0.9)
    with pytest.raises(ValueError, match="ema_momentum=-0.1"):
        train.TrainConfig.for_model("cnn", ema_momentum=-0.1)


def test_weight_decay_shrinks_kernels_only() -> None:
    """A step with zero gradient moves kernels by -lr * decay * kernel, nothing else."""
    model = models.build_cnn(32, 4, filters=(4, 8), dense_units=8, dropout=0.0)
    models.compile_model(model, "sgd", 0.1, weight_decay=0.5)
    optimizer = model.optimizer
    assert optimizer.weight_decay == 0.5
    variables = model.trainable_variables
    before = [variable.numpy().copy() for variable in variables]
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in variables])
    for variable, old in zip(variables, before, strict=True):
        decayed = variable.path.endswith("kernel")
        expected = old * (1 - 0.1 * 0.5) if decayed else old
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, err_msg=variable.path)
    assert any(v.path.endswith("gamma") for v in variables)  # batch norm's were kept
    with pytest.raises(ValueError, match="weight_decay=-1"):
        models.compile_model(model, "adam", weight_decay=-1)
    with pytest.raises(ValueError, match="optimizer name"):
        models.compile_model(model, keras.optimizers.Adam(), weight_decay=0.1)
    with pytest.raises(ValueError, match="weight_decay=-0.1"):
        train.TrainConfig.for_model("cnn", weight_decay=-0.1)


def _compiled_without_ema() -> keras.Model:
    """A tiny CNN compiled with a plain Adam."""
    return models.compile_model(models.build_cnn(32, 4, filters=(4, 8), dense_units=8), "adam")


def _left_right_model(image_size: int) -> keras.Model:
    """Logits [2s, -2s, 1.5|s|, -10] of s = mean(left half) - mean(right half), pixels in [0, 1]."""
    inputs = keras.Input((image_size, image_size, 3))
    half = image_size // 2

    def logits(images):
        scaled = images / 255.0
        s = keras.ops.mean(scaled[:, :, :half], axis=(1, 2, 3)) - keras.ops.mean(
            scaled[:, :, half:], axis=(1, 2, 3)
        )
        return keras.ops.stack([2 * s, -2 * s, 1.5 * keras.ops.abs(s), -10 + 0 * s], axis=1)

    outputs = keras.layers.Softmax()(keras.layers.Lambda(logits)(inputs))
    return keras.Model(inputs, outputs)


def test_split_accuracy_averages_the_mirror_when_asked(tmp_path: Path) -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :16] = 255  # bright left half: one view says class 0, its mirror class 1
    paths = []
    for index in range(3):
        paths.append(tmp_path / f"scan_{index}.png")
        Image.fromarray(image).save(paths[-1])
    split = pd.DataFrame({"abs_path": [str(p) for p in paths], "label": ["notumor"] * 3})
    model = _left_right_model(32)
    # One view: class 0 (p 0.62) beats notumor (0.37); averaged with the mirror, class 0 and
    # class 1 share 0.31 each and notumor's 0.37 wins.
    assert train.split_accuracy(model, split, CLASS_NAMES, 32) == 0.0
    assert train.split_accuracy(model, split, CLASS_NAMES, 32, test_time_flip=True) == 1.0
