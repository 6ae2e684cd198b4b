"""The tf.data pipeline: formats, shapes, labels, seeding, augmentation, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import config
from course_utils.data import pipeline

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(0)
    rgb = Image.fromarray((rng.random((30, 50, 3)) * 255).astype(np.uint8))
    files = {
        "gray.jpg": (rgb.convert("L"), "JPEG"),
        "rgba.png": (rgb.convert("RGBA"), "PNG"),
        "palette.png": (rgb.convert("P"), "PNG"),
        "deep.png": (Image.fromarray((rng.random((30, 50)) * 65535).astype(np.uint16)), "PNG"),
        "plain.bmp": (rgb, "BMP"),
        "cmyk.jpg": (rgb.convert("CMYK"), "JPEG"),
    }
    paths = []
    for name, (image, fmt) in files.items():
        image.save(folder / name, fmt)
        paths.append(folder / name)
    gif = folder / "anim.gif"
    rgb.save(gif, save_all=True, append_images=[rgb.transpose(Image.Transpose.FLIP_TOP_BOTTOM)])
    return [*paths, gif]


def test_decode_every_format_to_rgb(odd_images: list[Path]) -> None:
    for path in odd_images:
        image = pipeline.decode_and_resize(tf.constant(str(path)), 48)
        assert image.shape == (48, 48, 3), path.name
        assert image.dtype == tf.uint8
        assert int(tf.reduce_max(image)) > 0, path.name


def test_grayscale_becomes_three_equal_channels(odd_images: list[Path]) -> None:
    image = pipeline.decode_and_resize(tf.constant(str(odd_images[0])), 32).numpy()
    assert np.array_equal(image[..., 0], image[..., 1])
    assert np.array_equal(image[..., 1], image[..., 2])


def test_preprocessing_ranges() -> None:
    pixels = tf.constant([[0.0, 127.5, 255.0]])
    assert pipeline.preprocess_images(pixels, "none").numpy().tolist() == [[0.0, 127.5, 255.0]]
    assert pipeline.preprocess_images(pixels, "unit").numpy().tolist() == [[0.0, 0.5, 1.0]]
    assert pipeline.preprocess_images(pixels, "xception").numpy().tolist() == [[-1.0, 0.0, 1.0]]
    with pytest.raises(ValueError, match="Unknown preprocessing 'imagenet'"):
        pipeline.preprocess_images(pixels, "imagenet")


def _paths_and_labels(root: Path) -> tuple[list[str], list[str]]:
    files = sorted((root / "Training").glob("*/*.jpg"))
    from course_utils.data.scan import inspect_file

    files = [f for f in files if inspect_file(f)[0]["readable"]]
    return [str(f) for f in files], [f.parent.name for f in files]


def test_eval_dataset_shapes_labels_and_order(phantom_root: Path) -> None:
    paths, labels = _paths_and_labels(phantom_root)
    data = pipeline.make_dataset(paths, labels, config.CLASS_NAMES, image_size=64, batch_size=8)
    batches = list(data)
    images = np.concatenate([x.numpy() for x, _ in batches])
    onehot = np.concatenate([y.numpy() for _, y in batches])
    assert images.shape == (len(paths), 64, 64, 3) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 255
    assert onehot.argmax(1).tolist() == [config.CLASS_NAMES.index(label) for label in labels]
    again = np.concatenate(
        [
            x.numpy()
            for x, _ in pipeline.make_dataset(
                paths, labels, config.CLASS_NAMES, image_size=64, batch_size=8
            )
        ]
    )
    assert np.array_equal(images, again), "evaluation data must be deterministic"


def test_training_dataset_shuffles_with_seed_and_augments(phantom_root: Path) -> None:
    paths, labels = _paths_and_labels(phantom_root)

    def first_labels(seed: int) -> list[int]:
        data = pipeline.make_dataset(
            paths,
            labels,
            config.CLASS_NAMES,
            image_size=48,
            batch_size=len(paths),
            training=True,
            seed=seed,
        )
        return next(iter(data))[1].numpy().argmax(1).tolist()

    assert first_labels(1) == first_labels(1)
    assert first_labels(1) != first_labels(2)
    plain = pipeline.make_dataset(
        paths[:4], labels[:4], config.CLASS_NAMES, image_size=48, batch_size=4
    )
    augmented = pipeline.make_dataset(
        paths[:4],
        labels[:4],
        config.CLASS_NAMES,
        image_size=48,
        batch_size=4,
        training=True,
        seed=3,
    )
    x_plain = next(iter(plain))[0].numpy()
    x_aug = next(iter(augmented))[0].numpy()
    assert x_aug.shape == x_plain.shape
    assert not np.allclose(np.sort(x_plain.ravel()), np.sort(x_aug.ravel()))


def test_datasets_are_not_autotuned(phantom_root: Path) -> None:
    """fit() drops an iterator each epoch; with the autotuner on, that waited up to 28 s."""
    paths, labels = _paths_and_labels(phantom_root)
    for training in (False, True):
        data = pipeline.make_dataset(
            paths[:4],
            labels[:4],
            config.CLASS_NAMES,
            image_size=32,
            batch_size=2,
            training=training,
        )
        assert data.options().autotune.enabled is False
        assert sum(len(x) for x, _ in data) == 4, "static tuning must still yield every image"


def test_disk_cache(phantom_root: Path, tmp_path: Path) -> None:
    paths, labels = _paths_and_labels(phantom_root)
    cache = tmp_path / "cache" / "train"
    cache.parent.mkdir()
    data = pipeline.make_dataset(
        paths[:6], labels[:6], config.CLASS_NAMES, image_size=32, batch_size=3, cache=cache
    )
    assert sum(len(x) for x, _ in data) == 6
    assert list(cache.parent.iterdir()), "the disk cache should be written"


def test_make_dataset_errors() -> None:
    with pytest.raises(ValueError, match="2 paths but 1 labels"):
        pipeline.make_dataset(["a", "b"], ["glioma"], config.CLASS_NAMES)
    with pytest.raises(ValueError, match="No image paths"):
        pipeline.make_dataset([], [], config.CLASS_NAMES)
    with pytest.raises(ValueError, match="too small"):
        pipeline.make_dataset(["a"], ["glioma"], config.CLASS_NAMES, image_size=8)
    with pytest.raises(ValueError, match="not among the classes"):
        pipeline.make_dataset(["a"], ["astrocytoma"], config.CLASS_NAMES)


def test_augmenter_keeps_shape_and_range() -> None:
    augmenter = pipeline.build_augmenter(seed=0)
    batch = tf.random.uniform((4, 40, 40, 3), 0, 255, seed=1)
    out = augmenter(batch, training=True).numpy()
    assert out.shape == (4, 40, 40, 3)
    assert out.min() >= 0 and out.max() <= 255.001
    assert np.allclose(augmenter(batch, training=False).numpy(), batch.numpy())


def test_shrinking_is_antialiased_and_enlarging_is_smooth(tmp_path: Path) -> None:
    stripes = np.zeros((256, 256), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes alias badly without averaging
    Image.fromarray(stripes).save(tmp_path / "stripes.png")
    small = pipeline.decode_and_resize(tf.constant(str(tmp_path / "stripes.png")), 32).numpy()
    assert abs(small.mean() - 127.5) < 2 and small.std() < 2
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(tmp_path / "tiny.png")
    large = pipeline.decode_and_resize(tf.constant(str(tmp_path / "tiny.png")), 16).numpy()
    assert large.shape == (16, 16, 3) and len(np.unique(large)) > 4, "bilinear, not blocks"
