"""The CNN recipe's ablation: steps, the results file, the summary and its sentences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_utils import ablation


def _run(step: str, seed: int, accuracy: float, seconds: float = 500.0) -> dict:
    return {"step": step, "seed": seed, "accuracy": accuracy, "seconds": seconds}


def _flags(step: ablation.RecipeStep) -> tuple[bool, bool]:
    return step.test_time_flip, step.train_on_val


def _bfloat16(step: ablation.RecipeStep) -> bool:
    return bool(step.overrides.get("cpu_bfloat16"))


def test_steps_are_cumulative() -> None:
    steps = ablation.RECIPE_STEPS
    by_name = {step.name: step for step in steps}
    assert steps[0].name == "baseline" and steps[0].overrides == ablation.FIRST_CNN_DEFAULTS
    assert not _bfloat16(steps[0]) and not steps[0].test_time_flip
    for previous, after in zip(steps, steps[1:], strict=False):
        before = by_name[after.builds_on] if after.builds_on else previous
        assert before.overrides.keys() <= after.overrides.keys()
        changed = {
            key for key, value in after.overrides.items() if before.overrides.get(key) != value
        }
        assert changed or _flags(after) != _flags(before)  # every step changes something
        if after.name in (ablation.FLOAT32_STEP, ablation.DEFAULT_FLOAT32_STEP):
            assert changed == {"cpu_bfloat16"} and not _bfloat16(after)  # that flag alone
        else:
            assert _bfloat16(after) >= _bfloat16(before)
        assert after.test_time_flip >= before.test_time_flip
        assert after.train_on_val >= before.train_on_val
    assert len({step.name for step in steps}) == len(steps)


def test_the_default_step_trains_the_defaults_and_the_baseline_the_first_ones() -> None:
    from course_utils.train_config import TrainConfig

    by_name = {step.name: step for step in ablation.RECIPE_STEPS}
    default = by_name[ablation.DEFAULT_STEP]
    defaults = TrainConfig.for_model("cnn")
    assert TrainConfig.for_model("cnn", **default.overrides) == defaults
    assert defaults.cpu_bfloat16 and not default.train_on_val
    float32 = by_name[ablation.FLOAT32_STEP]
    base = by_name[float32.builds_on]
    assert _bfloat16(base) and float32.overrides == {**base.overrides, "cpu_bfloat16": False}
    assert (defaults.batch_size, defaults.dropout) == (8, 0.0)
    batch_16 = by_name[ablation.BATCH_16_STEP]
    batch_8 = by_name[ablation.BATCH_8_STEP]
    assert batch_8.builds_on == ablation.BATCH_16_STEP
    assert batch_8.overrides == {**batch_16.overrides, "batch_size": 8}
    default_float32 = by_name[ablation.DEFAULT_FLOAT32_STEP]
    assert default_float32.builds_on == ablation.BATCH_8_STEP
    assert default_float32.overrides == {**batch_8.overrides, "cpu_bfloat16": False}
    batch_4 = by_name[ablation.BATCH_4_STEP]
    assert batch_4.builds_on == ablation.BATCH_8_STEP
    assert batch_4.overrides == {**batch_8.overrides, "batch_size": 4}
    batch_norm = by_name[ablation.BATCH_NORM_STEP]
    assert batch_norm.builds_on == ablation.BATCH_8_STEP
    assert batch_norm.overrides == {**batch_8.overrides, "batch_norm_momentum": 0.99}
    assert batch_8.overrides["batch_norm_momentum"] == 0.9
    deeper = by_name[ablation.DEEPER_BATCH_NORM_STEP]
    assert deeper.overrides == {**batch_norm.overrides, "last_block_convs": 3}
    wider = by_name[ablation.WIDER_BATCH_NORM_STEP]
    assert wider.builds_on == ablation.BATCH_NORM_STEP
    assert wider.overrides == {**batch_norm.overrides, "filters": (20, 40, 80, 160, 320)}
    late = by_name[ablation.WIDER_LATE_STEP]
    assert late.builds_on == ablation.BATCH_NORM_STEP
    assert late.overrides == {**batch_norm.overrides, "filters": (16, 32, 64, 192, 384)}
    assert default.name == ablation.STRIDE_STEP and default.builds_on == ablation.BATCH_NORM_STEP
    assert default.overrides == {**batch_norm.overrides, "first_block_stride": 2}
    assert (defaults.batch_norm_momentum, defaults.first_block_stride) == (0.99, 2)
    assert batch_8.overrides["first_block_stride"] == 1
    stride_wider = by_name[ablation.STRIDE_WIDER_STEP]
    assert stride_wider.overrides == {**default.overrides, "filters": (24, 48, 96, 192, 384)}
    for name in (ablation.WIDER_STEP, ablation.DEEPER_STEP):
        assert by_name[name].builds_on == ablation.BATCH_16_STEP
        assert by_name[name].overrides["batch_size"] == 16
    baseline = TrainConfig.for_model("cnn", **by_name["baseline"].overrides)
    assert (baseline.num_epochs, baseline.patience, baseline.augmentation) == (30, 10, "standard")
    assert (baseline.batch_size, baseline.dropout) == (32, 0.3)
    assert baseline.label_smoothing == 0.0 and baseline != TrainConfig.for_model("cnn")


def test_a_step_can_build_on_an_earlier_one() -> None:
    branch = next(step for step in ablation.RECIPE_STEPS if step.builds_on)
    base = next(step for step in ablation.RECIPE_STEPS if step.name == branch.builds_on)
    assert branch.train_on_val and not base.train_on_val
    assert branch.overrides == base.overrides  # none of the steps between them
    assert branch.test_time_flip == base.test_time_flip  # its flags come from its base too
    runs = [_run(base.name, seed, acc) for seed, acc in [(1, 0.950), (2, 0.952), (3, 0.948)]]
    just_before = ablation.RECIPE_STEPS[ablation.RECIPE_STEPS.index(branch) - 1]
    assert just_before is not base  # so the line below must look past the row before
    runs += [_run(just_before.name, seed, 0.90) for seed in (1, 2, 3)]
    runs += [_run(branch.name, seed, acc) for seed, acc in [(1, 0.960), (2, 0.962), (3, 0.961)]]
    line = ablation.step_lines(ablation.summarise(runs))[-2]
    assert line.startswith(f"{branch.name}: 96.10% (+1.10 points on {base.name}, a gain")


def test_append_run_replaces_the_same_step_and_seed(tmp_path: Path) -> None:
    path = tmp_path / "measured" / "runs.json"
    assert ablation.load_runs(path) == []
    ablation.append_run(path, _run("baseline", 1, 0.90), {"command": "bench"})
    ablation.append_run(path, _run("baseline", 2, 0.92))
    ablation.append_run(path, _run("baseline", 1, 0.95))
    runs = ablation.load_runs(path)
    assert [(run["seed"], run["accuracy"]) for run in runs] == [(2, 0.92), (1, 0.95)]
    assert json.loads(path.read_text())["command"] == "bench"


def test_load_runs_rejects_another_file(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="other.json is not an ablation results file"):
        ablation.load_runs(path)


def test_summary_means_spreads_and_goal() -> None:
    names = [step.name for step in ablation.RECIPE_STEPS]
    runs = [
        _run(names[1], 1, 0.980, 550),
        _run(names[1], 2, 0.976, 560),
        _run(names[1], 3, 0.971, 590),
        _run(names[0], 1, 0.950, 700),
        _run(names[0], 2, 0.960, 700),
        _run("an old step", 1, 0.5),
    ]
    summary = ablation.summarise(runs)
    assert list(summary["step"]) == names[:2]  # the steps' order; unknown steps left out
    first, second = summary.iloc[0], summary.iloc[1]
    assert first["seeds"] == 2 and first["mean_accuracy"] == pytest.approx(0.955)
    assert first["sd_accuracy"] == pytest.approx(0.00707, abs=1e-5)
    assert not first["meets_goal"]  # two seeds, 95.5 %, 700 s
    assert second["min_accuracy"] == pytest.approx(0.971)
    assert second["max_seconds"] == 590 and second["meets_goal"]
    assert second["median_seconds"] == 560  # the median of 550, 560, 590 s, not their mean
    assert second["adds"] == ablation.RECIPE_STEPS[1].adds
    slow = ablation.summarise([{**run, "seconds": 601} for run in runs[:3]])
    assert not slow["meets_goal"].iloc[0]
    verdict = ablation.step_lines(slow)[-1]
    assert verdict.startswith(f"{names[1]} reaches the accuracy of the goal")
    assert "97.57% over 3 seeds, worst seed 97.10%" in verdict and "took 601 s" in verdict


def test_step_lines_judge_changes_against_the_spread() -> None:
    names = [step.name for step in ablation.RECIPE_STEPS]
    runs = [_run(names[0], seed, acc) for seed, acc in [(1, 0.950), (2, 0.952), (3, 0.948)]]
    runs += [_run(names[1], seed, acc) for seed, acc in [(1, 0.951), (2, 0.953), (3, 0.950)]]
    runs += [_run(names[2], seed, acc) for seed, acc in [(1, 0.960), (2, 0.962), (3, 0.961)]]
    lines = ablation.step_lines(ablation.summarise(runs))
    assert lines[0].startswith(f"{names[0]}: 95.00% ± 0.20% over 3 seed(s)")
    assert "not a measured change" in lines[1]
    assert "a gain larger than the seed-to-seed spread" in lines[2]
    assert lines[-1].startswith("No step meets the goal") and names[2] in lines[-1]
    assert ablation.step_lines(ablation.summarise([]))[0].startswith("No ablation run")
    one_seed = ablation.step_lines(ablation.summarise([runs[0], runs[3]]))
    assert "one seed only" in one_seed[1]


def test_step_lines_compare_seconds_only_when_timed_together() -> None:
    names = [step.name for step in ablation.RECIPE_STEPS]
    day = {"recorded_on": "2026-12-07", "cpu_flags": ["avx2", "amx_bf16"]}
    runs = [{**_run(names[0], seed, 0.95, 500), **day} for seed in (1, 2)]
    runs += [{**_run(names[1], seed, 0.95, 430), **day} for seed in (1, 2)]
    runs += [{**_run(names[2], 1, 0.95, 300), **day, "recorded_on": "2026-12-08"}]
    runs += [{**_run(names[2], 2, 0.95, 300), **day}]  # one row, two days: no shared day
    summary = ablation.summarise(runs)
    assert list(summary["timed_on"]) == ["2026-12-07 (avx2, amx_bf16)"] * 2 + [""]
    lines = ablation.step_lines(summary)
    assert "430 s of training (-70 s, timed on 2026-12-07 (avx2, amx_bf16))" in lines[1]
    assert f"(not timed alongside {names[1]}, so not compared)" in lines[2]
    untimed = ablation.step_lines(
        ablation.summarise([_run(names[0], 1, 0.9), _run(names[1], 1, 0.9)])
    )
    assert "not compared" in untimed[1]  # runs from before the date and flags were recorded


def test_flip_sentence_checks_learning_first() -> None:
    assert "means nothing" in ablation.flip_sentence(0.30, 0.32, 100, learned=False)
    assert "2 more of the 100 images right" in ablation.flip_sentence(0.90, 0.92, 100, True)
    assert "1 fewer" in ablation.flip_sentence(0.90, 0.89, 100, True)
    assert "the same number" in ablation.flip_sentence(0.9, 0.9, 100, True)


def test_markdown_table_has_one_row_per_step() -> None:
    names = [step.name for step in ablation.RECIPE_STEPS]
    runs = [_run(names[0], 1, 0.95, 700), _run(names[0], 2, 0.96, 720)]
    table = ablation.markdown_table(ablation.summarise(runs)).splitlines()
    assert len(table) == 3 and table[0].startswith("| step | adds | seeds")
    assert table[2] == (
        f"| {names[0]} | {ablation.RECIPE_STEPS[0].adds} | 2 | 95.50% ± 0.71% | 95.00% | 710, 720 |"
    )


def test_the_guide_carries_the_measured_table() -> None:
    runs = ablation.load_runs(ablation.RESULTS_FILE)
    if not runs:
        pytest.skip(f"{ablation.RESULTS_FILE} not measured yet")
    guide = (Path(__file__).resolve().parents[1] / "docs/instructor_guide.md").read_text()
    table = ablation.markdown_table(ablation.summarise(runs))
    assert table in guide, (
        "docs/instructor_guide.md's recipe table differs from course_utils/cnn_ablation.json: "
        "paste `ablation.markdown_table(ablation.summarise(ablation.load_runs("
        "ablation.RESULTS_FILE)))` into the guide's lesson-03 section"
    )
