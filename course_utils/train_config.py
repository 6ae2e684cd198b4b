"""The settings of one training run: each model's defaults, what fast mode changes, checks.

``TrainConfig.for_model("cnn", fast=True)`` is the recipe of ``make demo``; the notebooks'
parameter cells and the CLI's ``train`` build their configs the same way. ``course_utils.train``
runs them (and re-exports ``TrainConfig``).
"""

from __future__ import annotations

import dataclasses

from course_utils.config import DEFAULT_SEED
from course_utils.data.pipeline import AUGMENTATIONS

#: Default settings of each model: the notebooks' parameter cells and the CLI use these.
#: The CNN's defaults come from the recipe ablation (``course_utils.ablation``, lesson 03):
#: a 20-epoch cosine that always runs to its end (patience = epochs), label smoothing 0.1,
#: left-right flips as the only augmentation, no dropout, 8-image batches, batch norm's
#: stored statistics averaged over about 800 images (momentum 0.99) and a first convolution
#: with stride 2 beat the first defaults (its baseline, ``ablation.FIRST_CNN_DEFAULTS``) in
#: less time; on a CPU where bfloat16 trains faster (AMX) it trains in ``mixed_bfloat16``
#: (the saved model is float32 all the same). A model without a default patience runs
#: every epoch it is given: ``for_model`` sets ``patience = num_epochs``.
_MODEL_DEFAULTS: dict[str, dict] = {
    "xception": {
        "image_size": 299,
        "num_epochs": 10,
        "batch_size": 32,
        "learning_rate": 1e-3,
        "weights": "imagenet",
        "patience": 5,
        "optimizer": "adamax",
    },
    "cnn": {
        "image_size": 128,
        "num_epochs": 20,
        "batch_size": 8,
        "learning_rate": 2e-3,
        "optimizer": "adam",
        "filters": (16, 32, 64, 128, 256),
        "last_block_convs": 2,
        "dropout": 0.0,
        "label_smoothing": 0.1,
        "augmentation": "flip",
        "batch_norm_momentum": 0.99,
        "first_block_stride": 2,
        "cpu_bfloat16": True,
    },
}
#: What fast mode changes: small images, few epochs, no ImageNet download. Xception runs at
#: its smallest input (71 px) from random weights on 320 of the training images: it shows
#: the two phases; from random weights it cannot learn in any budget a demo has.
#: The fast CNN is a four-block version at 96 px without dropout or label smoothing, trained
#: on 16-image batches with left-right flips only: on the phantoms it learns in under a
#: thousand steps, where the first full recipe (five blocks, dropout 0.3, 32-image batches,
#: rotations, zooms, brightness and contrast) needs thousands. On the phantoms of generator
#: version 2 (lesions about two thirds of the real size) dropout 0.3 held it at chance for
#: five of its twelve epochs; on today's phantoms it learns with or without dropout, and
#: `make bench` (row ``fast_cnn``) measures both side by side. It keeps batch-norm momentum
#: 0.9 (0.99 lags for hundreds of steps, longer than a demo) and a pooled first block.
_FAST_CHANGES: dict[str, dict] = {
    "xception": {
        "image_size": 71,
        "num_epochs": 2,
        "num_epochs_phase2": 1,
        "weights": None,
        "max_train_images": 320,
    },
    "cnn": {
        "image_size": 96,
        "num_epochs": 12,
        "batch_size": 16,
        "filters": (16, 32, 64, 128),
        "dropout": 0.0,
        "augmentation": "flip",
        "patience": 10,
        "label_smoothing": 0.0,
        "batch_norm_momentum": 0.9,
        "first_block_stride": 1,
        "cpu_bfloat16": False,
    },
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run.

    Attributes:
        model_name: ``"xception"`` or ``"cnn"``; also the stem of the files written.
        image_size: Side of the square input images.
        num_epochs: Largest number of epochs (of phase 1 for Xception).
        batch_size: Images per batch.
        learning_rate: Starting learning rate (Xception's phase 2 uses a tenth of it;
            the CNN's follows a cosine down to 0 over ``num_epochs``).
        patience: Epochs without a better validation loss before stopping.
        optimizer: Optimizer name (``"adamax"`` for Xception, ``"adam"`` for the CNN).
        weights: Xception's base: ``"imagenet"``, None (random) or a weights file.
        num_epochs_phase2: Largest number of fine-tuning epochs (Xception); None means
            ``num_epochs``, 0 skips phase 2.
        seed: Seed of the weights, shuffles, augmentation and dropout.
        fast: Fast mode (tests, ``make demo``): one log line per epoch.
        filters: The CNN's channels per block; None means ``models.build_cnn``'s.
        last_block_convs: The CNN's convolutions in its last (smallest) block; None means
            ``models.build_cnn``'s.
        augmentation: ``"standard"`` (flips, rotations, zooms, brightness, contrast),
            ``"flip"`` (left-right flips only) or ``"none"``.
        dropout: The CNN's dropout rate around its dense layer; None means
            ``models.build_cnn``'s.
        max_train_images: Train on a seeded, class-stratified sample of at most this many
            training images; None uses them all.
        label_smoothing: Share of each one-hot target spread evenly over all classes
            (0 = hard targets); the loss then stops rewarding ever more confident outputs.
        ema_momentum: When above 0, validate and keep an exponential moving average of
            the weights (``models.compile_model``); 0.99 averages about the last 100 steps.
        weight_decay: When above 0, each step shrinks the CNN's kernels by
            ``learning_rate * weight_decay`` of themselves (``models.compile_model``).
        batch_norm_momentum: How slowly the CNN's batch norms' stored statistics follow
            the batches; None means ``models.build_cnn``'s.
        first_block_stride: 2 makes the CNN's first convolution step two pixels and
            drops that block's pool (``models.build_cnn``); None means the builder's (1).
        cpu_bfloat16: Without a GPU, train in ``mixed_bfloat16`` where that is faster
            (``devices.bfloat16_trains_faster``: AMX); the model is saved in float32
            either way.
    """

    model_name: str
    image_size: int
    num_epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    optimizer: str
    weights: str | None = None
    num_epochs_phase2: int | None = None
    seed: int = DEFAULT_SEED
    fast: bool = False
    filters: tuple[int, ...] | None = None
    last_block_convs: int | None = None
    augmentation: str = "standard"
    dropout: float | None = None
    max_train_images: int | None = None
    label_smoothing: float = 0.0
    ema_momentum: float = 0.0
    weight_decay: float = 0.0
    batch_norm_momentum: float | None = None
    first_block_stride: int | None = None
    cpu_bfloat16: bool = False

    def __post_init__(self) -> None:
        """Reject settings no run can use, naming the fix."""
        if self.model_name not in _MODEL_DEFAULTS:
            raise ValueError(
                f"Unknown model {self.model_name!r}; use one of {list(_MODEL_DEFAULTS)}."
            )
        if min(self.image_size, self.num_epochs, self.batch_size, self.patience) < 1:
            raise ValueError(
                f"image_size ({self.image_size}), num_epochs ({self.num_epochs}), batch_size "
                f"({self.batch_size}) and patience ({self.patience}) must all be >= 1."
            )
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(
                f"augmentation={self.augmentation!r}; use one of {list(AUGMENTATIONS)}."
            )
        if self.max_train_images is not None and self.max_train_images < 1:
            raise ValueError(f"max_train_images={self.max_train_images}: use >= 1, or None.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"label_smoothing={self.label_smoothing!r}: use a share in [0, 1), e.g. 0.1."
            )
        if not 0.0 <= self.ema_momentum < 1.0:
            raise ValueError(
                f"ema_momentum={self.ema_momentum!r}: use a value in [0, 1), e.g. 0.99 (0 = off)."
            )
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay!r}: use >= 0, e.g. 0.05 (0 = off).")
        if self.last_block_convs is not None and self.last_block_convs < 1:
            raise ValueError(f"last_block_convs={self.last_block_convs!r}: use >= 1, or None.")
        if self.batch_norm_momentum is not None and not 0.0 <= self.batch_norm_momentum < 1.0:
            raise ValueError(
                f"batch_norm_momentum={self.batch_norm_momentum!r}: use a value in [0, 1), "
                "e.g. 0.99, or None."
            )
        if self.first_block_stride not in (None, 1, 2):
            raise ValueError(
                f"first_block_stride={self.first_block_stride!r}: use 1 or 2, or None."
            )
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout!r}: use a rate in [0, 1), or None.")
        if self.learning_rate <= 0 or (self.num_epochs_phase2 or 0) < 0:
            raise ValueError(
                f"learning_rate ({self.learning_rate}) must be > 0 and num_epochs_phase2 "
                f"({self.num_epochs_phase2}) >= 0."
            )

    @classmethod
    def for_model(cls, model_name: str, fast: bool = False, **overrides: object) -> TrainConfig:
        """Return a model's default settings, changed by fast mode and by ``overrides``.

        Args:
            model_name: ``"xception"`` or ``"cnn"``.
            fast: Small images, few epochs, no ImageNet download (tests, ``make demo``).
            **overrides: Fields that win over both; None values are ignored (unset CLI
                flags), so to ask for random weights use ``dataclasses.replace``. Where
                neither sets ``patience`` (the full CNN), it is ``num_epochs``: the run
                does not stop early.

        Returns:
            The config.

        Raises:
            ValueError: If the model or a field name is unknown.
        """
        if model_name not in _MODEL_DEFAULTS:
            raise ValueError(f"Unknown model {model_name!r}; use one of {list(_MODEL_DEFAULTS)}.")
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(
                f"Unknown TrainConfig field(s) {unknown}; use some of {sorted(fields)}."
            )
        settings = dict(_MODEL_DEFAULTS[model_name])
        if fast:
            settings.update(_FAST_CHANGES[model_name])
        settings.update({key: value for key, value in overrides.items() if value is not None})
        settings.setdefault("patience", settings["num_epochs"])  # the CNN's cosine runs out
        return cls(model_name=model_name, fast=fast, **settings)

    @property
    def model_options(self) -> dict:
        """Builder arguments this config sets (the CNN's filters, depth, stride, dropout, ...)."""
        options = {
            "filters": self.filters,
            "last_block_convs": self.last_block_convs,
            "dropout": self.dropout,
            "batch_norm_momentum": self.batch_norm_momentum,
            "first_block_stride": self.first_block_stride,
        }
        return {key: value for key, value in options.items() if value is not None}

    @property
    def phase2_epochs(self) -> int:
        """Largest number of fine-tuning epochs (``num_epochs`` unless set)."""
        return self.num_epochs if self.num_epochs_phase2 is None else self.num_epochs_phase2

    @property
    def verbose(self) -> int | str:
        """Keras verbosity: one line per epoch in fast mode."""
        return 2 if self.fast else "auto"
