"""Devices: the dtype policy and distribution strategy of this machine, set once per run."""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf


def configure_devices(mixed_precision: bool | str = "auto") -> tf.distribute.Strategy:
    """Choose the dtype policy and distribution strategy for this machine.

    Mixed precision (``mixed_float16``) roughly doubles speed on modern GPUs but slows a
    CPU down, so ``"auto"`` turns it on only when a GPU is visible. Several GPUs get a
    ``MirroredStrategy``; one GPU or a CPU get TensorFlow's default strategy. Build and
    compile models inside ``strategy.scope()``; ``describe_devices`` says what was chosen.

    Args:
        mixed_precision: ``"auto"``, True (force ``mixed_float16``) or False (float32).

    Returns:
        The strategy chosen.

    Raises:
        ValueError: If ``mixed_precision`` is not ``"auto"``, True or False.
    """
    if mixed_precision not in ("auto", True, False):
        raise ValueError(f"mixed_precision must be 'auto', True or False, got {mixed_precision!r}.")
    gpus = tf.config.list_physical_devices("GPU")
    use_mixed = bool(gpus) if mixed_precision == "auto" else bool(mixed_precision)
    keras.mixed_precision.set_dtype_policy("mixed_float16" if use_mixed else "float32")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def describe_devices(strategy: tf.distribute.Strategy | None = None) -> str:
    """Describe the devices, strategy and dtype policy in one line.

    Args:
        strategy: What ``configure_devices`` returned; None means the current strategy.

    Returns:
        E.g. ``"CPU only (no GPU visible); _DefaultDistributionStrategy with 1 replica;
        dtype policy float32"``.
    """
    strategy = strategy or tf.distribute.get_strategy()
    gpus = tf.config.list_physical_devices("GPU")
    devices = f"{len(gpus)} GPU(s)" if gpus else "CPU only (no GPU visible)"
    replicas = strategy.num_replicas_in_sync
    policy = keras.mixed_precision.dtype_policy().name
    return (
        f"{devices}; {type(strategy).__name__} with {replicas} replica"
        f"{'s' if replicas > 1 else ''}; dtype policy {policy}"
    )


def strategy_scope(strategy: tf.distribute.Strategy | None) -> contextlib.AbstractContextManager:
    """Return ``strategy.scope()``, or a no-op context without a strategy.

    Args:
        strategy: What ``configure_devices`` returned, or None.

    Returns:
        A context manager to build and compile models in.
    """
    return strategy.scope() if strategy is not None else contextlib.nullcontext()
