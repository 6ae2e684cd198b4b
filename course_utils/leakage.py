"""The train-test leak's effect: leaked vs non-leaked test images, exact test and interval.

A test image with a copy in training measures memory, not generalisation. The two groups
compared are disjoint: the test images **with** a copy in training (leaked) and those
**without** (the leak-free subset). Fisher's exact test asks whether being right depends
on the group; a bootstrap gives the 95 % interval of the accuracy difference. When a
group holds fewer than ``MIN_GROUP_IMAGES`` images, no number is given. No TensorFlow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from course_utils import config
from course_utils.metrics import share

#: Fewest images a group needs before its accuracy is compared.
MIN_GROUP_IMAGES = 10


def difference_interval(
    correct_leaked: np.ndarray,
    correct_clean: np.ndarray,
    n_resamples: int = 1000,
    seed: int = config.DEFAULT_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of accuracy(leaked) - accuracy(clean).

    Each group is resampled on its own (they are independent sets of images).

    Args:
        correct_leaked: Per leaked image, whether the model was right.
        correct_clean: The same for the leak-free images.
        n_resamples: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        ``(low, high)`` of the difference.
    """
    rng = np.random.default_rng(seed)
    leaked, clean = np.asarray(correct_leaked, float), np.asarray(correct_clean, float)
    draws_leaked = rng.binomial(len(leaked), leaked.mean(), n_resamples) / len(leaked)
    draws_clean = rng.binomial(len(clean), clean.mean(), n_resamples) / len(clean)
    low, high = np.percentile(draws_leaked - draws_clean, [2.5, 97.5])
    return float(low), float(high)


def compare_groups(
    correct: np.ndarray,
    leaked: np.ndarray,
    n_resamples: int = 1000,
    seed: int = config.DEFAULT_SEED,
) -> dict:
    """Compare the accuracy of the leaked and the non-leaked test images.

    Args:
        correct: Per test image, whether the model was right.
        leaked: Per test image, whether it has a copy in training.
        n_resamples: Bootstrap resamples of the difference's interval.
        seed: Seed of the bootstrap.

    Returns:
        ``{"test_images", "leaked_images", "leakfree_images", "accuracy_leaked",
        "accuracy_leakfree", "enough_images", "min_group_images", "difference",
        "difference_interval", "fisher_p_value"}``; the last three are None when a group
        has fewer than ``MIN_GROUP_IMAGES`` images (``enough_images`` False).
    """
    correct, leaked = np.asarray(correct, bool), np.asarray(leaked, bool)
    right_leaked, right_clean = correct[leaked], correct[~leaked]
    enough = min(len(right_leaked), len(right_clean)) >= MIN_GROUP_IMAGES
    summary = {
        "test_images": len(correct),
        "leaked_images": int(leaked.sum()),
        "leakfree_images": int((~leaked).sum()),
        "accuracy_leaked": share(right_leaked),
        "accuracy_leakfree": share(right_clean),
        "enough_images": bool(enough),
        "min_group_images": MIN_GROUP_IMAGES,
        "difference": None,
        "difference_interval": None,
        "fisher_p_value": None,
    }
    if enough:
        table = [
            [int(right_leaked.sum()), int((~right_leaked).sum())],
            [int(right_clean.sum()), int((~right_clean).sum())],
        ]
        summary["difference"] = summary["accuracy_leaked"] - summary["accuracy_leakfree"]
        summary["difference_interval"] = list(
            difference_interval(right_leaked, right_clean, n_resamples, seed)
        )
        summary["fisher_p_value"] = float(stats.fisher_exact(table).pvalue)
    return summary


def leakage_summary(
    test: pd.DataFrame,
    leakfree: pd.DataFrame,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    n_resamples: int = 1000,
    seed: int = config.DEFAULT_SEED,
) -> dict:
    """The leak comparison of one model on the full test split (``compare_groups``).

    Args:
        test: The full test table; ``y_true`` and ``probabilities`` are in its order.
        leakfree: The leak-free subset (test images with no copy in training).
        y_true: True class indices of the full test split.
        probabilities: Predicted probabilities of the full test split.
        n_resamples: Bootstrap resamples.
        seed: Seed of the bootstrap.

    Returns:
        ``compare_groups``' dict.
    """
    leaked = ~test["abs_path"].isin(set(leakfree["abs_path"])).to_numpy()
    correct = np.argmax(probabilities, axis=1) == np.asarray(y_true)
    return compare_groups(correct, leaked, n_resamples, seed)
