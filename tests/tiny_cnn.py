"""An untrained small CNN saved with a complete model card, for the app and analysis tests."""

from __future__ import annotations

from pathlib import Path

from course_utils import cards, models
from course_utils.config import CLASS_NAMES


def save_tiny_cnn(folder: Path) -> Path:
    """Save an untrained 64-px CNN as ``folder/cnn.keras`` with its ``cnn.json`` card.

    Args:
        folder: Where to save it.

    Returns:
        The ``.keras`` path.
    """
    path = folder / "cnn.keras"
    models.build_cnn(64, filters=(8, 16), last_block_convs=1).save(path)
    card = dict.fromkeys(cards.REQUIRED_CARD_KEYS)
    card.update(name="cnn", class_names=list(CLASS_NAMES), image_size=64, seed=1)
    cards.write_card(path, card)
    return path
