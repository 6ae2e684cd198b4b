"""Devices: the dtype policy and distribution strategy of this machine, set once per run."""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras
import tensorflow as tf

#: CPU flags of native bfloat16 arithmetic (Intel/AMD AVX-512 BF16, Intel AMX).
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: CPU flags under which the CNN trains faster in bfloat16 than in float32 (Intel AMX tiles).
#: Measured side by side (``benchmarks/run.py --rows cnn_bfloat16``): 1.2x with ``amx_bf16``,
#: 0.8x (slower) with ``avx512_bf16`` alone; the instructor guide has the figures.
FAST_BFLOAT16_CPU_FLAGS = ("amx_bf16",)
#: CPU flags that change the CNN's training speed most; the benchmarks record them.
SPEED_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """Read the CPU's feature flags (``avx2``, ``avx512_bf16``, ``amx_bf16``, ...).

    Args:
        cpuinfo: Linux's CPU description; elsewhere (no such file) there are none.

    Returns:
        Every word of its ``flags`` lines (an empty set when the file cannot be read).
    """
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        return set()
    flag_lines = [line.partition(":")[2] for line in lines if line.startswith("flags")]
    return {flag for line in flag_lines for flag in line.split()}


def speed_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str]:
    """List which of ``SPEED_CPU_FLAGS`` the CPU has, in that order.

    Args:
        cpuinfo: Linux's CPU description.

    Returns:
        The flags found, e.g. ``["avx2", "avx512f", "avx512_bf16"]`` on a CPU without AMX.
    """
    flags = cpu_flags(cpuinfo)
    return [flag for flag in SPEED_CPU_FLAGS if flag in flags]


def cpu_supports_bfloat16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Tell whether the CPU computes in bfloat16 natively (it lists a ``BFLOAT16_CPU_FLAGS``).

    Args:
        cpuinfo: Linux's CPU description; elsewhere (no such file) the answer is False.

    Returns:
        True when a ``flags`` line names one of ``BFLOAT16_CPU_FLAGS``.
    """
    return not cpu_flags(cpuinfo).isdisjoint(BFLOAT16_CPU_FLAGS)


def bfloat16_trains_faster(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Tell whether training in bfloat16 is faster on this CPU (``FAST_BFLOAT16_CPU_FLAGS``).

    Native bfloat16 arithmetic is not enough: a CPU with ``avx512_bf16`` but no AMX trained
    the CNN slower in ``mixed_bfloat16`` than in float32 (``BFLOAT16_CPU_FLAGS`` still
    tells the benchmark where the comparison can be measured).

    Args:
        cpuinfo: Linux's CPU description (none elsewhere, so False there).

    Returns:
        Whether AMX's ``amx_bf16`` (``FAST_BFLOAT16_CPU_FLAGS``) is among its flags.
    """
    return not cpu_flags(cpuinfo).isdisjoint(FAST_BFLOAT16_CPU_FLAGS)


def configure_devices(
    mixed_precision: bool | str = "auto", cpu_bfloat16: bool = False
) -> tf.distribute.Strategy:
    """Choose the dtype policy and distribution strategy for this machine.

    Mixed precision (``mixed_float16``) roughly doubles speed on modern GPUs but slows a
    CPU down, so ``"auto"`` turns it on only when a GPU is visible. On a CPU where bfloat16
    trains faster (``bfloat16_trains_faster``: AMX), ``cpu_bfloat16=True`` asks for
    ``mixed_bfloat16`` instead: same float32 weights, half-width activations, faster
    convolutions. Several GPUs get a ``MirroredStrategy``; one GPU or a CPU get
    TensorFlow's default strategy. Build and compile models inside ``strategy.scope()``;
    ``describe_devices`` says what was chosen.

    Args:
        mixed_precision: ``"auto"``, True (force ``mixed_float16``) or False (float32).
        cpu_bfloat16: Without a GPU, use ``mixed_bfloat16`` where it trains faster
            (ignored with a GPU, or when ``mixed_precision`` is False).

    Returns:
        The strategy chosen.

    Raises:
        ValueError: If ``mixed_precision`` is not ``"auto"``, True or False.
    """
    if mixed_precision not in ("auto", True, False):
        raise ValueError(f"mixed_precision must be 'auto', True or False, got {mixed_precision!r}.")
    gpus = tf.config.list_physical_devices("GPU")
    use_mixed = bool(gpus) if mixed_precision == "auto" else bool(mixed_precision)
    policy = "mixed_float16" if use_mixed else "float32"
    if not gpus and mixed_precision is not False and cpu_bfloat16 and bfloat16_trains_faster():
        policy = "mixed_bfloat16"
    keras.mixed_precision.set_dtype_policy(policy)
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
