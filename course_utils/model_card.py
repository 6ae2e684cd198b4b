"""A Markdown model card for people, written from the files a training run leaves.

The JSON card next to every model (``cards.write_card``) is for programs. This
module turns it, the model's metrics (``metrics_<model>.json``), the data audit and
the splits' ``dataset.json`` into one Markdown page a person can read: what the model
is, what it is for (teaching only), what data it saw, how well it did with
uncertainty, and what it cannot do. Every number comes from those files.

Two functions::

    text = render_model_card(card, metrics, audit, splits)  # pure: dicts in, Markdown out
    path = write_markdown_card(ARTIFACTS / "cnn.keras")     # reads the files, writes cnn_card.md

Nothing happens at import, and nothing here loads TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from course_utils import cards, course, localisation, report, verdicts
from course_utils.metrics import HEALTHY_CLASS

#: What each ``dataset.source`` of a card means.
SOURCE_TEXT = {
    "phantoms": "synthetic MRI phantoms made by `course_utils.data.phantoms` (not real scans)",
    "kaggle": "the Kaggle Brain Tumor MRI Dataset (masoudnickparvar/brain-tumor-mri-dataset), "
    "downloaded with kagglehub",
    "local": "a local folder in the Kaggle layout (`Training/<class>/<image>`, "
    "`Testing/<class>/<image>`)",
}
EVALUATE_FIX = "run notebook 04 or `python -m course_utils evaluate --model PATH`"


# --- formatting ----------------------------------------------------------------------


def _missing(value: object) -> bool:
    """Tell whether a number is absent (None, as saved JSON writes NaN) or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _pct(value: float | None, digits: int = 1) -> str:
    """Format a share as a percentage, ``n/a`` when undefined."""
    return "n/a" if _missing(value) else f"{value:.{digits}%}"


def _num(value: float | None, digits: int = 3) -> str:
    """Format a number with fixed decimals, ``n/a`` when undefined."""
    return "n/a" if _missing(value) else f"{value:.{digits}f}"


def _nan_for_none(value: object) -> object:
    """Turn the None values of saved metrics back into NaN, recursively."""
    if isinstance(value, Mapping):
        return {key: _nan_for_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nan_for_none(item) for item in value]
    return math.nan if value is None else value


def _na_cell(cell: object) -> object:
    """Write NaN inside a formatted table cell as ``n/a``."""
    return cell.replace("nan%", "n/a").replace("nan", "n/a") if isinstance(cell, str) else cell


def _plural(count: int, noun: str) -> str:
    """Write ``1 group`` or ``3 groups``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _duration(seconds: float) -> str:
    """Say how long something took: ``6.7 s``, ``9.6 min`` or ``2.3 h``."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _display_name(card: Mapping) -> str:
    """The model's display name (``CNN``, ``Xception`` or the card's name)."""
    return course.display_name(str(card.get("name", "model")))


# --- 1. title and warning ------------------------------------------------------------


def _max_epochs(card: Mapping) -> object:
    """The most epochs any phase of the card allowed (``?`` when none is recorded)."""
    epochs = [phase.get("max_epochs") for phase in card.get("phases", [])]
    epochs = [e for e in epochs if isinstance(e, int)]
    return max(epochs) if epochs else "?"


def _warning_section(card: Mapping) -> list[str]:
    """A loud block for a demo model: phantoms or fast mode prove only that the code runs."""
    reasons = []
    if (card.get("dataset") or {}).get("source") == "phantoms":
        reasons.append("on **synthetic phantoms** (not real MRI scans)")
    if card.get("fast_mode"):
        reasons.append(
            f"in **fast mode** ({card['image_size']} px images, at most "
            f"{_max_epochs(card)} epochs per phase)"
        )
    if not reasons:
        return _random_weights_note(card)
    return [
        "> **WARNING: demo model. These numbers only prove that the code runs.**",
        f"> It was trained {' and '.join(reasons)}. Its accuracy, intervals and saliency maps",
        "> say nothing about brain tumors; train it on the real data with full settings "
        "(`FAST_MODE = False`) before reading anything into them.",
        "",
    ]


def _random_weights_note(card: Mapping) -> list[str]:
    """A note for a transfer-learning model trained without its pretrained weights."""
    if card.get("weights") != "random":
        return []
    return [
        "> **Note: trained from random weights, without ImageNet pretraining.** This is not "
        "the course's transfer-learning model: its frozen blocks hold random features, so its "
        "numbers show what pretraining is worth, not what Xception can do on this task.",
        "",
    ]


def _title_section(card: Mapping) -> list[str]:
    """The title and a one-line summary."""
    classes = list(card["class_names"])
    source = (card.get("dataset") or {}).get("source", "unknown")
    train_images = card["split_sizes"].get("train", "?")
    return [
        f"# Model card: {_display_name(card)} (`{card.get('model_file', '?')}`)",
        "",
        f"A {len(classes)}-class brain-MRI slice classifier ({', '.join(classes)}) trained on "
        f"{train_images} images ({source} data) in the brain-tumor MRI course: "
        "**for teaching only, not for medical use.**",
        "",
    ]


# --- 2. model details ----------------------------------------------------------------


def phases_table(phases: list[Mapping]) -> str:
    """The training phases as a Markdown table.

    Args:
        phases: The card's ``phases`` records.

    Returns:
        One row per phase: epochs run / max, best epoch, learning rate, best validation
        accuracy and loss, trainable parameters, seconds, and ``kept`` when any phase
        records it (a fine-tuning phase that did not beat the one before is undone).
    """
    rows = []
    for phase in phases:
        val = phase.get("best_val_metrics", {})
        row = {
            "phase": phase.get("phase", "?"),
            "epochs run / max": f"{phase.get('epochs_run', '?')} / {phase.get('max_epochs', '?')}",
            "best epoch": phase.get("best_epoch", "?"),
            "learning rate": f"{phase['learning_rate']:g}" if "learning_rate" in phase else "?",
            "val accuracy": _pct(val.get("accuracy")),
            "val loss": _num(val.get("loss")),
            "trainable params": f"{phase.get('trainable_params', 0):,}",
            "seconds": _num(phase.get("seconds"), 1),
        }
        if any("kept" in p for p in phases):
            row["kept"] = "yes" if phase.get("kept", True) else "no (weights of the phase before)"
        rows.append(row)
    return report.markdown_table(pd.DataFrame(rows).set_index("phase"))


def details_section(card: Mapping) -> list[str]:
    """Section 2: what the model is and how it was trained.

    Args:
        card: The JSON model card.

    Returns:
        Markdown lines.
    """
    size, versions = card["image_size"], card.get("library_versions") or {}
    order = ", ".join(f"{i} = {name}" for i, name in enumerate(card["class_names"]))
    best, policy = card.get("best_val_metrics") or {}, card.get("training_precision")
    lines = [
        "## Model details",
        "",
        f"- **Name:** `{card.get('name', '?')}` (file `{card.get('model_file', '?')}`)",
        f"- **Architecture:** {card['architecture']}",
    ]
    lines += [f"- **Weights:** {card['weights']}"] if "weights" in card else []
    lines += [f"- **Optimizer:** {card['optimizer']}"] if "optimizer" in card else []
    if "parameters" in card:
        lines.append(f"- **Parameters:** {card['parameters']:,}")
    lines += [
        f"- **Input:** {size}x{size} {card['colour_mode'].upper()}, {card['input_value_range']} "
        f"(preprocessing `{card['preprocessing']}`)",
        f"- **Class order (output index):** {order}",
        f"- **Training time:** {_duration(float(card['training_seconds']))}"
        + (f" in `{policy}` (saved in float32)" if policy not in (None, "float32") else "")
        + f"; best validation accuracy {_pct(best.get('accuracy'))}, loss {_num(best.get('loss'))}",
        f"- **Seed:** {card['seed']}",
        "- **Library versions:** " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- **Created:** {card.get('created', 'unknown')}",
        "",
        phases_table(card["phases"]),
        "",
    ]
    return lines


# --- 3. intended use -----------------------------------------------------------------


def _intended_use_section() -> list[str]:
    """Section 3: education only; what is out of scope."""
    return [
        "## Intended use",
        "",
        "- **Education only:** teaching deep learning on medical images, and interview "
        "practice, in the brain-tumor MRI course.",
        "- **Not a medical device.** Not for diagnosis, triage, screening or any clinical "
        "decision, and not for advice to patients. Its outputs are not a diagnosis.",
        "- **Out of scope:** tumor types other than the classes above; other modalities or "
        "MRI sequences; 3D volumes; paediatric or other populations the data does not "
        "represent; any image that is not a 2D axial, coronal or sagittal brain MRI slice "
        "like the Kaggle ones. The model still outputs a class for such images: a confident "
        "answer there means nothing.",
        "",
    ]


# --- 4. data -------------------------------------------------------------------------


def _split_sizes_table(card: Mapping, splits: Mapping | None, metrics: Mapping | None) -> str:
    """The images in each split, from ``dataset.json``, else the card and the metrics."""
    counts = dict(card["split_sizes"])
    for name, result in ((metrics or {}).get("splits") or {}).items():
        counts.setdefault(name, result.get("images"))
    counts.update((splits or {}).get("counts") or {})
    frame = pd.DataFrame([counts], index=pd.Index(["images"], name="split"))
    return report.markdown_table(frame)


def _audit_lines(audit: Mapping) -> list[str]:
    """What the data audit found, and how the splits handle it."""
    s = audit["summary"]
    test_files, leaked = s.get("test_files", 0), s.get("test_files_leaked", 0)
    lines = [
        f"- **Audit** ({audit.get('root', 'data root')}): {s['files']} files, "
        f"{s['readable']} readable, {s['unreadable']} unreadable (left out).",
        f"- **Exact duplicates:** {s['exact_duplicate_copies']} extra byte-identical copies in "
        f"{_plural(s['exact_duplicate_groups'], 'group')}; **near duplicates:** "
        f"{_plural(s['near_duplicate_groups'], 'group')} (the same slice re-encoded, rescaled or "
        "re-windowed).",
        f"- **Label conflicts:** {_plural(s['label_conflict_groups'], 'group')} of one picture "
        "with two labels (left out of every split).",
        "- Duplicates were grouped and each group kept in one split, so no duplicate crosses "
        "train, validation and test; one file of each byte-identical set is kept.",
    ]
    if test_files:
        lines.append(
            f"- The `Testing` folder of the Kaggle layout ({test_files} images) is kept whole as "
            "the full test "
            f"split, but {leaked} of its images have a duplicate in `Training`: they measure "
            f"memory. The leak-free test subset ({s['leak_free_test_files']} images) drops them."
        )
    else:
        lines.append("- No `Testing` folder: the test split was carved out of `Training` by group.")
    return lines


def data_section(
    card: Mapping, audit: Mapping | None, splits: Mapping | None, metrics: Mapping | None
) -> list[str]:
    """Section 4: source, root, split sizes and the audit.

    Args:
        card: The JSON model card.
        audit: The audit report, or None.
        splits: The splits' ``dataset.json``, or None.
        metrics: The metrics, or None (test split sizes when there is no ``dataset.json``).

    Returns:
        Markdown lines.
    """
    dataset = card.get("dataset") or {}
    source = dataset.get("source", "unknown")
    digest = (dataset.get("train_files_sha256") or "")[:12] or "unknown"
    lines = [
        "## Data",
        "",
        f"- **Source:** `{source}`: {SOURCE_TEXT.get(source, 'not recorded')}",
        f"- **Root:** `{dataset.get('root', 'unknown')}`",
        f"- **Training file list:** sha256 `{digest}…` (identifies the exact training images)",
    ]
    if splits and splits.get("root") and splits["root"] != dataset.get("root"):
        lines.append(f"- Note: the saved splits list files under `{splits['root']}`.")
    if audit is not None:
        if audit.get("root") and audit["root"] != dataset.get("root"):
            lines.append(f"- Note: the audit below is of `{audit['root']}`, not the model's root.")
        lines += _audit_lines(audit)
    else:
        lines.append("- No audit report next to the model (run notebook 01 with this folder).")
    return lines + ["", _split_sizes_table(card, splits, metrics), ""]


# --- 5. metrics ----------------------------------------------------------------------


def per_class_table(result: Mapping, healthy: str = HEALTHY_CLASS) -> str:
    """Precision, recall, F1, support and the missed-as-healthy share of each class.

    Args:
        result: One split's ``evaluate_predictions`` result.
        healthy: The class that means "no tumor".

    Returns:
        A Markdown table.
    """
    missed = result["missed_tumors"].get("per_class", {})
    rows = {
        name: {
            "precision": _num(values["precision"]),
            "recall": _num(values["recall"]),
            "F1": _num(values["f1"]),
            "support": values["support"],
            f"called {healthy}": "-" if name == healthy else _pct(missed.get(name)),
        }
        for name, values in result["per_class"].items()
    }
    return report.markdown_table(pd.DataFrame.from_dict(rows, orient="index").rename_axis("class"))


def split_metrics_lines(name: str, result: Mapping, temperature: Mapping) -> list[str]:
    """One test split's numbers, with their uncertainty.

    Args:
        name: The split's name (``test``, ``test_leakfree``, ``folder``).
        result: Its ``evaluate_predictions`` result (None values already NaN).
        temperature: The metrics' ``temperature`` record.

    Returns:
        Markdown lines.
    """
    boot, missed, cal = result["bootstrap"], result["missed_tumors"], result["calibration"]
    (acc_low, acc_high), (f1_low, f1_high) = boot["accuracy"], boot["macro_f1"]
    level = f"{boot.get('confidence', 0.95):.0%}"
    fitted = f"fitted on {temperature.get('val_images', '?')} validation images"
    fitted = fitted if temperature.get("fitted_on") else "not fitted: no validation split"
    scaled = f"(T = {_num(cal.get('temperature'), 2)}, {fitted})"
    if verdicts.temperature_at_bound(temperature):
        scaled = (
            f"(T = {_num(temperature.get('value'), 2)} hit the bound: the model's probabilities "
            "could not be calibrated)"
        )
    title = report.SPLIT_TITLES.get(name, name).capitalize()
    return [
        f"### {title} split ({result['images']} images)",
        "",
        f"- **Accuracy:** {_pct(result['accuracy'])} ({level} bootstrap CI {_pct(acc_low)} to "
        f"{_pct(acc_high)}, {boot.get('n_resamples', '?')} resamples)",
        f"- **Macro-F1:** {_num(result['macro_f1'])} ({level} CI {_num(f1_low)} to "
        f"{_num(f1_high)})",
        f"- **Missed tumors:** {missed['missed']}/{missed['tumor_images']} tumor images "
        f"({_pct(missed['rate'])}) predicted as {HEALTHY_CLASS}; false alarms: "
        f"{_pct(missed.get('false_alarm_rate'))} of healthy images called a tumor",
        f"- **Macro AUC (one-vs-rest):** {_num(result['macro_auc'])}",
        f"- **Calibration (ECE, {cal.get('bins', '?')} bins):** {_num(cal['ece'])} before, "
        f"{_num(cal['ece_after_temperature'])} after temperature scaling {scaled}",
        "",
        per_class_table(result),
        "",
    ]


def _provenance_lines(card: Mapping, metrics: Mapping) -> list[str]:
    """Warnings about where the metrics come from (other splits, other training run)."""
    lines = []
    if metrics.get("splits_match_training") is False:
        lines.append(
            "- **WARNING:** the test splits were not made with this model's training split "
            "(`splits_match_training` is false): the test images may include training images."
        )
    ours = (card.get("dataset") or {}).get("train_files_sha256")
    theirs = (metrics.get("dataset") or {}).get("train_files_sha256")
    if ours and theirs and ours != theirs:
        lines.append(
            "- **WARNING:** these metrics were computed for another training run (its training "
            f"file list differs from this card's); {EVALUATE_FIX} again."
        )
    if metrics.get("test_dir"):
        skipped = len(metrics.get("skipped_files") or [])
        lines.append(f"- Scored on the folder `{metrics['test_dir']}` ({skipped} files skipped).")
    return lines + ([""] if lines else [])


def metrics_section(card: Mapping, metrics: Mapping | None) -> list[str]:
    """Section 5: every test split's metrics, the leak comparison and provenance notes.

    Args:
        card: The JSON model card.
        metrics: The saved metrics (``evaluate_model`` output as JSON), or None.

    Returns:
        Markdown lines; a "Not evaluated yet" line without metrics.
    """
    lines = ["## Metrics", ""]
    if metrics is None or not metrics.get("splits"):
        return lines + [f"Not evaluated yet: {EVALUATE_FIX}.", ""]
    name = str(card.get("name", metrics.get("model", "model")))
    clean = {
        **metrics,
        **{k: card[k] for k in ("fast_mode", "dataset") if k in card},
        "model": name,
        **_nan_for_none({k: metrics[k] for k in ("splits", "leakage") if k in metrics}),
    }
    table = report.comparison_table({name: clean}).map(_na_cell)
    refusal = report.not_learned_sentence(clean)
    lines += [f"> **{refusal}**", ""] if refusal else []
    lines += _provenance_lines(card, metrics) + [report.markdown_table(table), ""]
    temperature = metrics.get("temperature") or {}
    for split, result in clean["splits"].items():
        lines += split_metrics_lines(split, result, temperature)
    if "leakage" in clean and "test_leakfree" in clean["splits"]:
        lines += ["### Train-test leak", ""]
        lines += [f"- {sentence}" for sentence in report.leakage_sentences({name: clean})] + [""]
    return lines


# --- 6. limitations, 7. saliency -----------------------------------------------------


def _limitations_section(card: Mapping, metrics: Mapping | None) -> list[str]:
    """Section 6: what the data, the splits and the measurements cannot show."""
    temperature = (metrics or {}).get("temperature") or {}
    val_images = temperature.get("val_images", card["split_sizes"].get("val", "?"))
    lines = [
        "## Limitations",
        "",
        "- One public dataset, assembled from several sources (figshare, SARTAJ, Br35H), with "
        "unknown scanners, protocols and patient populations; no external validation.",
        f"- 2D slices only, {len(card['class_names'])} classes "
        f"({', '.join(card['class_names'])}); no 3D context, no other findings.",
        "- Near-duplicate slices of the same patient are common, and the data has no patient "
        "ids, so splitting by patient is impossible: grouping duplicates removes copies, not "
        "every slice of a patient seen in training, and scores stay optimistic.",
        f"- Calibration: the temperature is fitted on {val_images} validation images and the "
        "calibration error measured on the held-out test split(s) only; it may not hold on "
        "other data.",
        "- The bootstrap intervals cover test-set sampling noise only, not a change of "
        "hospital, scanner or population.",
        "- Results depend on the seed, the hardware (CPU or GPU, mixed precision) and the "
        "library versions above; a re-run gives slightly different numbers.",
    ]
    if card.get("fast_mode"):
        lines.append(
            f"- Fast mode: {card['image_size']} px inputs and at most "
            f"{_max_epochs(card)} epochs per phase, sized to run on a CPU in "
            "minutes: far from a trained model."
        )
    return lines + [""]


def _saliency_section(card: Mapping) -> list[str]:
    """Section 7: what the saliency maps and explanations of lesson 05 can and cannot say."""
    info, size = course.MODELS.get(str(card.get("name"))), int(card["image_size"])
    stride = info.gradcam_stride if info else None
    grid = f" (about {size // stride}x{size // stride} cells for this {size} px model)"
    return [
        "## Saliency caveats",
        "",
        "- Grad-CAM is coarse: it has the resolution of the last convolutional block"
        f"{grid if stride else ''}, upsampled to the image.",
        "- A map shows what moved the class score, not where the tumor is; a bright region is "
        "not a lesion outline.",
        "- Whether a method's maps depend on the learned weights is measured by the "
        "model-randomisation sanity check of lesson 05 (`measure.sanity_check`); in Adebayo "
        "et al. (2018) plain gradients and Grad-CAM passed it and Guided Backpropagation and "
        "Guided Grad-CAM failed, but only the measurement on this model says which maps to trust.",
        "- The pointing game (does the map's peak fall in the lesion?) is measured against "
        "phantom masks or, on real scans, figshare tumor boxes (next section), not outlines.",
        "- The Gemini (or offline) explanation describes the prediction and the overlay in "
        "words; it is not a diagnosis and adds no medical knowledge to the model.",
        "",
    ]


# --- the whole card ------------------------------------------------------------------


def render_model_card(
    card: Mapping,
    metrics: Mapping | None = None,
    audit: Mapping | None = None,
    splits: Mapping | None = None,
) -> str:
    """Render a Markdown model card from a model's files, already loaded.

    Args:
        card: The JSON model card (``cards.load_card``).
        metrics: The saved metrics (``metrics_<name>.json``); None renders a "Not
            evaluated yet" line.
        audit: The data audit (``audit.json``), or None.
        splits: The splits' ``dataset.json``, or None.

    Returns:
        The Markdown text.
    """
    lines = [
        *_title_section(card),
        *_warning_section(card),
        *details_section(card),
        *_intended_use_section(),
        *data_section(card, audit, splits, metrics),
        *metrics_section(card, metrics),
        *_limitations_section(card, metrics),
        *_saliency_section(card),
        *localisation.card_section(metrics),
        f"_Written by `python -m course_utils card` from `{card.get('model_file', '?')}`'s JSON "
        "card and the files beside it._",
    ]
    return "\n".join(lines) + "\n"


# --- files ---------------------------------------------------------------------------


def load_model_files(model_path: str | Path) -> tuple[Path, dict]:
    """Find a model's file and read its JSON card, without loading the model.

    Args:
        model_path: ``ARTIFACTS/<model>.keras`` (its ``.json``, ``.weights.h5`` or bare
            stem work too).

    Returns:
        ``(.keras path, card)``; the ``.keras`` file itself may be absent when the
        weights file is there.

    Raises:
        FileNotFoundError: If both model files or the card are missing.
        ValueError: If the card is not valid JSON or lacks required keys.
    """
    keras_path = course.keras_path(model_path)
    if not keras_path.is_file() and not course.weights_path(model_path).is_file():
        raise FileNotFoundError(
            f"{keras_path} does not exist: {cards.TRAIN_FIX} (--out {keras_path.parent})."
        )
    return keras_path, cards.load_card(keras_path)


def _read_optional(path: Path, what: str, fix: str, key: str) -> dict | None:
    """Read a JSON file beside the model: None when absent, ValueError when it lacks ``key``."""
    data = course.read_json(path, what, fix, required=False)
    if data is not None and not isinstance(data.get(key), dict):
        raise ValueError(f"The {what} {path} has no {key!r}; {fix}.")
    return data


def write_markdown_card(model_path: str | Path, out: str | Path | None = None) -> Path:
    """Write the Markdown model card of a trained model.

    Reads ``<stem>.json`` next to the model, ``metrics_<name>.json``, ``audit.json`` and
    ``splits/dataset.json`` from the model's folder (the last three when present).

    Args:
        model_path: ``ARTIFACTS/<model>.keras``.
        out: The Markdown file; None means ``<stem>_card.md`` next to the model.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: If the model or its JSON card is missing.
        ValueError: If the card, metrics, audit or ``dataset.json`` is corrupt.
    """
    keras_path, card = load_model_files(model_path)
    folder = keras_path.parent
    metrics_file = course.metrics_path(folder, str(card.get("name", keras_path.stem)))
    fix = EVALUATE_FIX.replace("PATH", str(keras_path))
    numbers = _read_optional(metrics_file, "metrics file", fix, "splits")
    audit = _read_optional(
        course.audit_path(folder), "audit report", "re-run notebook 01", "summary"
    )
    splits_file = course.dataset_path(course.splits_dir(folder))
    splits = course.read_json(splits_file, "split description", "re-run notebook 01", False)
    path = Path(out) if out is not None else course.markdown_card_path(keras_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_model_card(card, numbers, audit, splits))
    return path
