"""The CNN recipe's ablation: its steps, the results file ``make bench`` writes, a summary.

Each step of ``RECIPE_STEPS`` adds one technique to the step before. The benchmark row
``cnn_recipe`` trains every step with several seeds on the real data and appends one
record per run to ``course_utils/cnn_ablation.json`` (package data, so a Colab install has
it too); lesson 03 reads it with ``load_runs`` and ``summarise``, ``step_lines`` words it
and ``viz_metrics.plot_ablation`` draws it. Nothing here trains.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

#: Where the benchmark writes its runs: next to this module, installed with the package.
RESULTS_FILE = Path(__file__).with_name("cnn_ablation.json")
#: The goal of the recipe (issue 14): mean over seeds, and every seed.
GOAL_MEAN_ACCURACY = 0.975
GOAL_SEED_ACCURACY = 0.97
GOAL_TRAINING_SECONDS = 600.0
#: The defaults from the seventh to the ninth session (8-image batches); rows build on it.
BATCH_8_STEP = "+ 8-image batches"
#: The defaults until 2026-12-07 (16-image batches); the rows after it build on it.
BATCH_16_STEP = "+ 16-image batches"
#: The 16-image recipe with 1.5 times the channels in every block (lesson 03 counts its cost).
WIDER_STEP = "+ 1.5× wider convolutions"
#: The 16-image recipe with one more convolution in its last block (lesson 03 counts its cost).
DEEPER_STEP = "+ a third convolution at 8 px"
#: The flips-only recipe in float32 (a step that turns bfloat16 off).
FLOAT32_STEP = "flips only, float32"
#: The 8-image recipe in float32 (the other step that turns bfloat16 off).
DEFAULT_FLOAT32_STEP = "8-image batches, float32"
#: The 8-image recipe at half its batch (4 images), the last of the batch rows.
BATCH_4_STEP = "+ 4-image batches"
#: The 8-image recipe with batch norm's stored statistics averaged over ten times more steps.
BATCH_NORM_STEP = "+ batch-norm momentum 0.99"
#: The batch-norm recipe with the third convolution at 8 px that the 16-image rows tried.
DEEPER_BATCH_NORM_STEP = "+ a third convolution at 8 px, 8-image batches"
#: The batch-norm recipe with a quarter more channels in every block.
WIDER_BATCH_NORM_STEP = "+ 1.25× wider convolutions, 8-image batches"
#: The batch-norm recipe with half as many channels again in its last two blocks only.
WIDER_LATE_STEP = "+ 1.5× wider last two blocks, 8-image batches"
#: The batch-norm recipe whose first convolution steps two pixels instead of pooling.
STRIDE_STEP = "+ a first convolution with stride 2"
#: The stride-2 recipe with 1.5 times the channels in every block, paid for by the stride.
STRIDE_WIDER_STEP = "+ 1.5× wider convolutions, stride 2"
#: The step whose settings are ``TrainConfig``'s defaults for the CNN today (since the ninth
#: session, 2026-12-07): 8-image batches, batch-norm momentum 0.99, stride-2 first block.
DEFAULT_STEP = STRIDE_STEP
#: The CNN's first defaults, which the baseline trains: ``TrainConfig``'s defaults since
#: then are ``DEFAULT_STEP`` (``train_config._MODEL_DEFAULTS``). Every field a step may
#: change is pinned here, so a later change of those defaults leaves the steps as measured.
FIRST_CNN_DEFAULTS: Mapping[str, object] = {
    "image_size": 128,
    "learning_rate": 2e-3,
    "optimizer": "adam",
    "num_epochs": 30,
    "batch_size": 32,
    "dropout": 0.3,
    "patience": 10,
    "label_smoothing": 0.0,
    "augmentation": "standard",
    "cpu_bfloat16": False,
    "filters": (16, 32, 64, 128, 256),
    "last_block_convs": 2,
    "ema_momentum": 0.0,
    "weight_decay": 0.0,
    "batch_norm_momentum": 0.9,
    "first_block_stride": 1,
}


@dataclasses.dataclass(frozen=True)
class RecipeStep:
    """One step of the ablation: what it adds and how a run sets it.

    Attributes:
        name: Short label for tables and plots.
        adds: One sentence: what the step changes and why it may help.
        overrides: ``TrainConfig`` fields the step sets (with those of the step it builds on).
        test_time_flip: Average each test image's and its mirror's probabilities.
        train_on_val: Train on the train and validation splits together (the run then
            has no held-back validation, so it should not stop early).
        builds_on: Name of the step this one starts from; empty means the step before.
    """

    name: str
    adds: str
    overrides: Mapping[str, object] = dataclasses.field(default_factory=dict)
    test_time_flip: bool = False
    train_on_val: bool = False
    builds_on: str = ""


def _steps() -> tuple[RecipeStep, ...]:
    """Build the cumulative steps from the increments each one adds."""
    increments = [
        (
            "baseline",
            "the first defaults: 128 px, 30 epochs (patience 10), cosine learning rate, "
            "standard augmentation, float32",
            dict(FIRST_CNN_DEFAULTS),
        ),
        (
            "+ bfloat16",
            "half-width activations on a CPU with native bfloat16",
            {"cpu_bfloat16": True},
        ),
        ("+ label smoothing", "targets of 0.925/0.025 instead of 1/0", {"label_smoothing": 0.1}),
        ("+ test-time flip", "average the image's and its mirror's prediction", {"flip": True}),
        (
            "+ 20-epoch cosine, run to the end",
            "a shorter schedule that always reaches a learning rate of 0 (no early stop)",
            {"num_epochs": 20, "patience": 20},
        ),
        (
            "+ moving average of the weights",
            "validate and keep an exponential moving average of the weights (momentum 0.99)",
            {"ema_momentum": 0.99},
        ),
        (
            "+ 160 px images",
            "more pixels per tumour, at about 1.6 times the compute per image",
            {"image_size": 160},
        ),
        (
            "20-epoch cosine on train + val",
            "the 20-epoch recipe (no EMA, 128 px) trained on the validation images too",
            {"builds_on": "+ 20-epoch cosine, run to the end", "train_on_val": True},
        ),
        (
            "20-epoch cosine, flips only",
            "the 20-epoch recipe (no EMA, 128 px) augmented by left-right flips alone",
            {"builds_on": "+ 20-epoch cosine, run to the end", "augmentation": "flip"},
        ),
        (
            "flips only, on train + val",
            "the flips-only recipe trained on the validation images too",
            {"train_on_val": True},
        ),
        (
            FLOAT32_STEP,
            "the flips-only recipe without bfloat16, as a CPU without native bfloat16 trains it",
            {"builds_on": "20-epoch cosine, flips only", "cpu_bfloat16": False},
        ),
        (
            "flips only, no dropout",
            "the flips-only recipe without dropout (rate 0 instead of 0.3 around the dense layer)",
            {"builds_on": "20-epoch cosine, flips only", "dropout": 0.0},
        ),
        (
            BATCH_16_STEP,
            "twice the steps per epoch at the same learning rate: noisier gradients, the same "
            "compute",
            {"batch_size": 16},
        ),
        (
            "+ 24-epoch cosine",
            "the 16-image recipe with a fifth more epochs on the same cosine: does it still "
            "under-fit?",
            {"num_epochs": 24, "patience": 24},
        ),
        (
            "+ learning rate 1e-3",
            "the 16-image recipe starting its cosine at half the learning rate: smaller steps "
            "for the noisier 16-image gradients",
            {"builds_on": BATCH_16_STEP, "learning_rate": 1e-3},
        ),
        (
            WIDER_STEP,
            "the 16-image recipe with half as many channels again in every block (24 to 384): "
            "more capacity, about twice the compute",
            {"builds_on": BATCH_16_STEP, "filters": (24, 48, 96, 192, 384)},
        ),
        (
            DEEPER_STEP,
            "the 16-image recipe with a third convolution in the last block (8 px, 256 "
            "channels): more depth where it is cheap, about a third more multiply-adds",
            {"builds_on": BATCH_16_STEP, "last_block_convs": 3},
        ),
        (
            "+ weight decay 0.05",
            "the 16-image recipe shrinking every kernel by learning rate × 0.05 of itself each "
            "step (decoupled, as in AdamW): smaller weights, the same compute",
            {"builds_on": BATCH_16_STEP, "weight_decay": 0.05},
        ),
        (
            BATCH_8_STEP,
            "the 16-image recipe at half the batch again (16 to 8), at the same learning "
            "rate: twice the steps, noisier gradients, the same compute",
            {"builds_on": BATCH_16_STEP, "batch_size": 8},
        ),
        (
            "+ 12-epoch cosine",
            "the 8-image recipe on a shorter cosine (20 to 12 epochs): three fifths of the "
            "compute, still more steps than the 16-image recipe's 20 epochs",
            {"num_epochs": 12, "patience": 12},
        ),
        (
            DEFAULT_FLOAT32_STEP,
            "the 8-image recipe in float32, without bfloat16: the same compute at full "
            "precision, for CPUs whose bfloat16 is no faster",
            {"builds_on": BATCH_8_STEP, "cpu_bfloat16": False},
        ),
        (
            BATCH_4_STEP,
            "the 8-image recipe at half the batch again (8 to 4), at the same learning rate: "
            "twice the steps, noisier gradients and batch-norm statistics, the same compute",
            {"builds_on": BATCH_8_STEP, "batch_size": 4},
        ),
        (
            BATCH_NORM_STEP,
            "the 8-image recipe with batch norm's stored statistics following the batches ten "
            "times more slowly (momentum 0.9 to 0.99): predictions use an average over about "
            "800 training images instead of 80, the same compute",
            {"builds_on": BATCH_8_STEP, "batch_norm_momentum": 0.99},
        ),
        (
            DEEPER_BATCH_NORM_STEP,
            "the batch-norm-0.99 recipe with a third convolution in the last block (8 px, 256 "
            "channels), as the 16-image row tried: about a third more multiply-adds, at 8 px "
            "where they are cheapest",
            {"last_block_convs": 3},
        ),
        (
            WIDER_BATCH_NORM_STEP,
            "the batch-norm-0.99 recipe (two convolutions at 8 px) with a quarter more channels "
            "in every block (20 to 320): a smaller step than the 16-image rows' wider network "
            "(1.5 times), meant to fit the time budget",
            {"builds_on": BATCH_NORM_STEP, "filters": (20, 40, 80, 160, 320)},
        ),
        (
            WIDER_LATE_STEP,
            "the batch-norm-0.99 recipe with half as many channels again in its last two "
            "blocks only (192 and 384 at 16 and 8 px): most of the wider network's weights, "
            "where its images are small",
            {"builds_on": BATCH_NORM_STEP, "filters": (16, 32, 64, 192, 384)},
        ),
        (
            STRIDE_STEP,
            "the batch-norm-0.99 recipe with its first convolution stepping two pixels at a "
            "time instead of a 2×2 max pool after it: the same 64 px maps, a quarter of the "
            "first block's outputs to compute, about 1.3 times the images per second",
            {"builds_on": BATCH_NORM_STEP, "first_block_stride": 2},
        ),
        (
            STRIDE_WIDER_STEP,
            "the stride-2 recipe with half as many channels again in every block (24 to 384), "
            "as the 16-image rows' wider network: the time the stride saves, spent on width",
            {"filters": (24, 48, 96, 192, 384)},
        ),
    ]
    steps: list[RecipeStep] = []
    for name, adds, change in increments:
        base_name = change.pop("builds_on", "")
        named = {step.name: step for step in steps}
        if base_name and base_name not in named:
            raise ValueError(f"Step {name!r} builds on {base_name!r}, which no earlier step is.")
        base = named.get(base_name) or (steps[-1] if steps else RecipeStep("", ""))
        flags = [
            bool(change.pop(key)) if key in change else bool(getattr(base, field))
            for key, field in (
                ("flip", "test_time_flip"),
                ("train_on_val", "train_on_val"),
            )
        ]
        overrides = {**base.overrides, **change}
        steps.append(RecipeStep(name, adds, overrides, *flags, builds_on=base_name))
    return tuple(steps)


#: The ablation, in order; each step keeps everything of the steps before it.
RECIPE_STEPS: tuple[RecipeStep, ...] = _steps()


def load_runs(path: str | Path) -> list[dict]:
    """Read the runs of a results file; an absent file has none.

    Args:
        path: The JSON file the benchmark writes (``RESULTS_FILE``).

    Returns:
        Its ``runs`` list (empty when the file does not exist).

    Raises:
        ValueError: If the file is not a results file (no ``runs`` list).
    """
    path = Path(path)
    if not path.is_file():
        return []
    content = json.loads(path.read_text())
    if not isinstance(content, dict) or not isinstance(content.get("runs"), list):
        raise ValueError(
            f"{path} is not an ablation results file (no 'runs' list); delete it and "
            "rerun `python benchmarks/run.py --rows cnn_recipe`."
        )
    return content["runs"]


def append_run(path: str | Path, record: Mapping, facts: Mapping | None = None) -> Path:
    """Add one run to a results file, replacing an earlier run of the same step and seed.

    Args:
        path: The results file.
        record: One run: at least ``step``, ``seed``, ``accuracy``, ``seconds``.
        facts: What the file records once: machine, command, dataset.

    Returns:
        The path written.
    """
    path = Path(path)
    content = json.loads(path.read_text()) if path.is_file() else {}
    content.update(facts or {})
    key = (record["step"], record["seed"])
    runs = [run for run in content.get("runs", []) if (run["step"], run["seed"]) != key]
    content["runs"] = [*runs, dict(record)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path


def summarise(runs: Sequence[Mapping], steps: Sequence[RecipeStep] = RECIPE_STEPS) -> pd.DataFrame:
    """One row per measured step: seeds, accuracy mean, sd and worst seed, seconds.

    Args:
        runs: What ``load_runs`` returned.
        steps: The step order of the table.

    Returns:
        Columns ``step, adds, seeds, mean_accuracy, sd_accuracy, min_accuracy, median_seconds,
        max_seconds, timed_on, meets_goal`` (sd is NaN for a single seed: no spread measured;
        ``timed_on`` is the date and CPU flags all of a step's runs share, else empty);
        steps without runs are left out.
    """
    columns = ["step", "seed", "accuracy", "seconds"]
    table = pd.DataFrame(
        [{**{key: run.get(key) for key in columns}, "timed_on": _timed_on(run)} for run in runs],
        columns=[*columns, "timed_on"],
    )
    order = [step.name for step in steps]
    table = table[table["step"].isin(order)]
    grouped = table.groupby("step").agg(
        seeds=("seed", "nunique"),
        mean_accuracy=("accuracy", "mean"),
        sd_accuracy=("accuracy", lambda values: values.std(ddof=1)),
        min_accuracy=("accuracy", "min"),
        median_seconds=("seconds", "median"),
        max_seconds=("seconds", "max"),
        timed_on=("timed_on", lambda values: values.iloc[0] if values.nunique() == 1 else ""),
    )
    grouped = grouped.reindex([name for name in order if name in grouped.index])
    grouped.insert(0, "adds", [step.adds for step in steps if step.name in grouped.index])
    grouped["meets_goal"] = (
        (grouped["seeds"] >= 3)
        & (grouped["mean_accuracy"] >= GOAL_MEAN_ACCURACY)
        & (grouped["min_accuracy"] >= GOAL_SEED_ACCURACY)
        & (grouped["max_seconds"] <= GOAL_TRAINING_SECONDS)
    )
    return grouped.reset_index()


def _timed_on(run: Mapping) -> str:
    """The day and CPU speed flags a run recorded (empty for runs from before they were)."""
    day, flags = run.get("recorded_on"), run.get("cpu_flags")
    return f"{day} ({', '.join(flags) or 'no speed flags'})" if day and flags is not None else ""


def sd_text(sd: float) -> str:
    """Format a standard deviation as a percentage, or a dash when one seed gave none."""
    return "—" if pd.isna(sd) else f"{sd:.2%}"


def _change_words(change: float, spread: float, seeds: int) -> str:
    """Say whether an accuracy change stands out from the seed-to-seed spread."""
    if seeds < 2:
        return "one seed only, so no spread to judge it against"
    if abs(change) <= spread:
        return f"within the seed-to-seed spread (sd {spread:.2%}): not a measured change"
    direction = "gain" if change > 0 else "loss"
    return f"a {direction} larger than the seed-to-seed spread (sd {spread:.2%})"


def _seconds_words(row: tuple, before: tuple) -> str:
    """Compare two rows' seconds only when both were timed on one day on one kind of CPU."""
    if row.timed_on and row.timed_on == before.timed_on:
        return f"{row.median_seconds - before.median_seconds:+.0f} s, timed on {row.timed_on}"
    return f"not timed alongside {before.step}, so not compared"


def step_lines(summary: pd.DataFrame) -> list[str]:
    """Word each step's change from the step it builds on, then whether any step meets the goal.

    Args:
        summary: What ``summarise`` returned.

    Returns:
        One sentence per step and a closing verdict (one line saying nothing was measured
        when the table is empty).
    """
    if summary.empty:
        return ["No ablation run is recorded: run `python benchmarks/run.py --rows cnn_recipe`."]
    rows = list(summary.itertuples())
    first = rows[0]
    lines = [
        f"{first.step}: {first.mean_accuracy:.2%} ± {sd_text(first.sd_accuracy)} over "
        f"{first.seeds} seed(s), {first.median_seconds:.0f} s of training."
    ]
    bases = {step.name: step.builds_on for step in RECIPE_STEPS}
    for previous, row in itertools.pairwise(rows):
        before = next((r for r in rows if r.step == bases.get(row.step)), previous)
        change = row.mean_accuracy - before.mean_accuracy
        spread = max(before.sd_accuracy, row.sd_accuracy)
        base = "" if before is previous else f" on {before.step}"
        lines.append(
            f"{row.step}: {row.mean_accuracy:.2%} ({change * 100:+.2f} points{base}, "
            f"{_change_words(change, spread, min(before.seeds, row.seeds))}); "
            f"{row.median_seconds:.0f} s of training ({_seconds_words(row, before)})."
        )
    lines.append(_goal_line(summary))
    return lines


def _goal_line(summary: pd.DataFrame) -> str:
    """Name the step that meets the goal, or say that none does and how far the best is."""
    goal = (
        f"the goal ({GOAL_MEAN_ACCURACY:.1%} mean over 3 seeds, every seed "
        f"≥ {GOAL_SEED_ACCURACY:.0%}, ≤ {GOAL_TRAINING_SECONDS:.0f} s of training)"
    )
    met = summary[summary["meets_goal"]]
    if len(met):
        return f"{met.iloc[0]['step']} meets {goal}."
    accurate = summary[
        (summary["seeds"] >= 3)
        & (summary["mean_accuracy"] >= GOAL_MEAN_ACCURACY)
        & (summary["min_accuracy"] >= GOAL_SEED_ACCURACY)
    ]
    if len(accurate):
        row = accurate.iloc[0]
        return (
            f"{row['step']} reaches the accuracy of {goal}: {row['mean_accuracy']:.2%} over "
            f"{row['seeds']} seeds, worst seed {row['min_accuracy']:.2%}; but its slowest seed "
            f"took {row['max_seconds']:.0f} s on the machine that measured it, over the "
            f"budget there (the instructor guide compares sessions' machines)."
        )
    best = summary.loc[summary["mean_accuracy"].idxmax()]
    return (
        f"No step meets {goal}; the best, {best['step']}, averages "
        f"{best['mean_accuracy']:.2%} (worst seed {best['min_accuracy']:.2%}) "
        f"in {best['max_seconds']:.0f} s at most."
    )


def flip_sentence(plain: float, flipped: float, num_images: int, learned: bool) -> str:
    """Compare one view with the image-and-mirror average, only for a model that learned.

    Args:
        plain: Accuracy on the images alone.
        flipped: Accuracy averaging each image's and its mirror's probabilities.
        num_images: How many images both were measured on.
        learned: Whether the model beat the constant guess (``verdicts``); when not,
            the sentence says the comparison means nothing.

    Returns:
        One sentence with both accuracies and the difference in images.
    """
    both = f"{plain:.1%} on one view, {flipped:.1%} with the mirror averaged in"
    if not learned:
        return f"{both}: the model has not learned, so the difference means nothing."
    changed = round((flipped - plain) * num_images)
    if changed == 0:
        return f"{both}: the same number of the {num_images} images right."
    more = "more" if changed > 0 else "fewer"
    return (
        f"{both}: {abs(changed)} {more} of the {num_images} images right, one validation "
        "split and one seed; the benchmark below measures it over seeds on held-out scans."
    )


def markdown_table(summary: pd.DataFrame) -> str:
    """Render the summary as the Markdown table the instructor guide carries.

    Args:
        summary: What ``summarise`` returned.

    Returns:
        A table with one row per step: what it adds, seeds, accuracy (mean ± sd, worst
        seed) and training seconds (median, and the slowest seed's).
    """
    header = "| step | adds | seeds | held-out accuracy (mean ± sd) | worst seed | training s |"
    lines = [header, "|---|---|---:|---:|---:|---:|"]
    for row in summary.itertuples():
        lines.append(
            f"| {row.step} | {row.adds} | {row.seeds} | {row.mean_accuracy:.2%} ± "
            f"{sd_text(row.sd_accuracy)} | {row.min_accuracy:.2%} | "
            f"{row.median_seconds:.0f}, {row.max_seconds:.0f} |"
        )
    return "\n".join(lines)
