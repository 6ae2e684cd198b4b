"""Command line: ``python -m course_utils …`` calls the same functions as the notebooks.

Examples::

    python -m course_utils data synth runs/phantoms --per-class 100 --image-size 224 --seed 1
    python -m course_utils data audit ../shared/datasets/brain-tumor-mri-224 --out audit.json
    python -m course_utils data split DATA_DIR --out artifacts/splits
    python -m course_utils train cnn --data DATA_DIR --out artifacts
    python -m course_utils evaluate --model artifacts/cnn.keras --data DATA_DIR --split both
    python -m course_utils evaluate --model artifacts/cnn.keras --test-dir NEW_SCANS/
    python -m course_utils predict --model artifacts/cnn.keras scan1.png scan2.jpg --json
    python -m course_utils card artifacts/cnn.keras --out cnn_card.md
    python -m course_utils demo --out runs/demo
    python -m course_utils quiz --notebook 02 --difficulty medium --n 5 --seed 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from course_utils import config, course, demo

#: ``evaluate --split`` choices and the split tables each one means.
TEST_SETS = {"test": ("test",), "leakfree": ("test_leakfree",), "both": ("test", "test_leakfree")}


def _data_synth(args: argparse.Namespace) -> int:
    """``data synth``: write a phantom dataset."""
    from course_utils.data.phantoms import synthesize_dataset

    manifest = synthesize_dataset(
        args.out,
        per_class=args.per_class,
        test_per_class=args.test_per_class,
        image_size=args.image_size,
        seed=args.seed,
        plant_issues=not args.no_plant,
    )
    print(json.dumps(manifest["counts"], indent=2))
    print(f"Wrote phantoms to {args.out}")
    return 0


def _data_audit(args: argparse.Namespace) -> int:
    """``data audit``: audit a dataset and write the JSON report."""
    from course_utils.data.audit import audit_dataset

    report = audit_dataset(args.data_dir, near_threshold=args.near_threshold)
    if args.out:
        report.save(args.out)
        print(f"Wrote {args.out}")
    print(json.dumps(report.summary(), indent=2))
    return 0


def _data_split(args: argparse.Namespace) -> int:
    """``data split``: audit a dataset and save duplicate-aware splits."""
    from course_utils.data.sources import resolve_dataset
    from course_utils.data.splits import audit_and_split

    source = resolve_dataset(args.data_dir).to_dict()
    audit_and_split(source, args.out, args.seed, args.val_fraction, args.test_fraction)
    return 0


def _training_splits(args: argparse.Namespace) -> tuple[dict, dict]:
    """Reuse ``OUT/splits`` when it was made from the same data and seed, else make it."""
    from course_utils.data.sources import resolve_dataset
    from course_utils.data.splits import audit_and_split, load_splits

    split_dir = course.splits_dir(args.out)
    source = resolve_dataset(args.data, args.source, phantom_params={"seed": args.seed}).to_dict()
    if (split_dir / "dataset.json").is_file():
        splits, dataset = load_splits(split_dir)
        same_root = dataset["root"] == str(Path(source["root"]).resolve())
        if same_root and dataset.get("seed") == args.seed:
            print(f"Using the splits in {split_dir}")
            return splits, dataset
    audit_and_split(source, split_dir, args.seed)
    return load_splits(split_dir)


def _train(args: argparse.Namespace) -> int:
    """``train``: train one model with the notebooks' code; print held-out accuracy."""
    from course_utils import train

    settings = train.training_settings(
        args.model,
        args.fast,
        image_size=args.image_size,
        num_epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
    )
    if args.model == "xception" and args.weights is not None:
        settings["weights"] = None if args.weights.lower() == "none" else args.weights
    splits, dataset = _training_splits(args)
    strategy = train.configure_devices()
    print(f"Devices: {train.describe_devices(strategy)}; settings: {settings}", flush=True)
    common = {
        "out_dir": args.out,
        "seed": args.seed,
        "fast": args.fast,
        "dataset": dataset,
        "strategy": strategy,
        "image_size": settings["image_size"],
        "batch_size": settings["batch_size"],
        "learning_rate": settings["learning_rate"],
    }
    class_names = tuple(dataset["class_names"])
    if args.model == "xception":
        model, card = train.train_transfer(
            splits["train"],
            splits["val"],
            class_names,
            num_epochs_phase1=settings["num_epochs"],
            num_epochs_phase2=settings["num_epochs"],
            weights=settings["weights"],
            **common,
        )
    else:
        model, card = train.train_cnn(
            splits["train"], splits["val"], class_names, num_epochs=settings["num_epochs"], **common
        )
    print(
        f"Saved {Path(args.out) / (card['name'] + '.keras')} after "
        f"{card['training_seconds']:.0f} s of training"
    )
    for name in ("val", "test", "test_leakfree"):
        accuracy = train.split_accuracy(model, splits[name], class_names, settings["image_size"])
        print(f"{name:>13}: accuracy {accuracy:.4f} on {len(splits[name])} images")
    return 0


def _split_tables(args: argparse.Namespace, card: dict) -> tuple[dict, dict]:
    """Load the model's splits (``--splits``, else next to the model), made if missing."""
    from course_utils.data.sources import resolve_dataset
    from course_utils.data.splits import audit_and_split, load_splits

    split_dir = args.splits or course.splits_dir(Path(args.model).parent)
    if not (split_dir / "dataset.json").is_file():
        if args.data is None:
            raise FileNotFoundError(
                f"No splits in {split_dir}. Pass --data DIR (it is audited and split with the "
                "model's seed), --splits DIR (notebook 01's ARTIFACTS_DIR/splits), or "
                "--test-dir DIR."
            )
        print(f"No splits in {split_dir}: auditing and splitting {args.data} (seed {card['seed']})")
        audit_and_split(resolve_dataset(args.data).to_dict(), split_dir, card["seed"])
    loaded, dataset = load_splits(split_dir)
    root = Path(args.data).expanduser().resolve() if args.data else Path(dataset["root"])
    if str(root) != dataset["root"]:
        print(f"Reading the split's files from {root} (they were listed under {dataset['root']})")
        for table in loaded.values():
            table["abs_path"] = [str(root / path) for path in table["path"]]
    missing = [p for t in loaded.values() for p in t["abs_path"] if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} files of the splits in {split_dir} are missing, e.g. {missing[0]}; "
            "pass --data with the folder the splits were made from."
        )
    return loaded, dataset


def _evaluation_inputs(args: argparse.Namespace, card: dict) -> tuple[dict, object, dict]:
    """Return ``(test tables, validation table or None, notes for the metrics file)``."""
    from course_utils import evaluate

    if args.test_dir is not None:
        table, skipped = evaluate.scan_test_folder(args.test_dir, card["class_names"])
        for line in skipped:
            print(f"note: skipped unreadable file {line}")
        print(f"{len(table)} images in {args.test_dir} ({len(skipped)} skipped)")
        beside_model = course.splits_dir(Path(args.model).parent) / "dataset.json"
        has_splits = args.splits is not None or args.data is not None or beside_model.is_file()
        loaded = _split_tables(args, card)[0] if has_splits else {}
        notes = {"test_dir": str(args.test_dir), "skipped_files": skipped}
        return {"folder": table}, loaded.get("val"), notes
    loaded, _ = _split_tables(args, card)
    matches = evaluate.splits_match_card(card, loaded["train"])
    if matches is False:
        print(
            "WARNING: these splits are not the ones the model was trained on (the training "
            "file list differs from its card): the test images may include training images."
        )
    tests = {name: loaded[name] for name in TEST_SETS[args.split]}
    return tests, loaded["val"], {"splits_match_training": matches}


def _evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: score a saved model on its test splits or a folder; print a table."""
    from course_utils import evaluate, train

    started = time.perf_counter()
    model, card = train.load_model_with_card(args.model)
    tests, val, notes = _evaluation_inputs(args, card)
    metrics, _ = evaluate.evaluate_model(
        model, card, tests, val, args.bootstrap, seed=args.seed, batch_size=args.batch_size
    )
    metrics.update(notes)
    out = args.out or evaluate.metrics_path(Path(args.model).parent, card["name"])
    evaluate.save_metrics(metrics, out)
    print(evaluate.comparison_table({card["name"]: metrics}).to_string())
    for sentence in evaluate.leakage_sentences({card["name"]: metrics}):
        print(sentence)
    temperature = metrics["temperature"]
    fitted = "fitted on val" if temperature["fitted_on"] else "not fitted: no validation split"
    print(
        f"Temperature {temperature['value']:.2f} ({fitted}); wrote {out} in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0


def predict_image(
    model: object, card: dict, path: Path, args: argparse.Namespace, explainer: object
) -> dict:
    """Predict, map and explain one image file; a bad image gives an ``error`` entry.

    Args:
        model: The loaded classifier.
        card: Its model card.
        path: The image file.
        args: ``predict``'s arguments (``saliency``, ``overlay_out``).
        explainer: An ``llm`` explainer.

    Returns:
        A JSON-ready dict: ``image``, ``ok`` and either ``error`` or ``predicted_class``,
        ``probabilities``, ``method``, ``statistics``, ``overlay`` (path or None),
        ``explanation`` (text), ``explanation_source``, ``explanation_error``, ``seconds``.
    """
    from course_utils import app, llm

    entry: dict = {"image": str(path), "ok": False}
    try:
        image = app.load_image_bytes(Path(path).read_bytes(), int(card["image_size"]))
    except (OSError, ValueError) as error:
        return {**entry, "error": str(error)}
    result = app.analyse(model, card, image, args.saliency, explainer)
    overlay_path = None
    if args.overlay_out:
        args.overlay_out.mkdir(parents=True, exist_ok=True)
        overlay_path = args.overlay_out / f"{Path(path).stem}_{args.saliency}.png"
        overlay_path.write_bytes(llm.to_png_bytes(result["overlay"]))
    explanation = result["explanation"]
    statistics = {k: _plain(v) for k, v in result["statistics"].items()}
    return {
        **entry,
        "ok": True,
        "predicted_class": result["predicted_class"],
        "confidence": round(result["confidence"], 6),
        "probabilities": {k: round(v, 6) for k, v in result["probabilities"].items()},
        "method": args.saliency,
        "statistics": statistics,
        "overlay": str(overlay_path) if overlay_path else None,
        "explanation": explanation.text,
        "explanation_source": explanation.source,
        "explanation_error": explanation.error,
        "seconds": round(result["seconds"], 3),
    }


def _plain(value: object) -> object:
    """Make NumPy scalars JSON-ready."""
    return value.item() if hasattr(value, "item") else value


def _card(args: argparse.Namespace) -> int:
    """``card``: write a Markdown model card from the model's JSON card and metrics."""
    from course_utils import model_card

    path = model_card.write_markdown_card(args.model, args.out)
    print(f"Wrote {path}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    """``predict``: classify image files, one JSON object (or text block) per image.

    Exit status: 0 when at least one image was analysed, 1 when none was (every image
    bad); a missing model or card is a usage error (2, from ``main``).
    """
    from course_utils import llm, train

    model, card = train.load_model_with_card(args.model)
    explainer = llm.make_explainer(args.explain, model_id=args.gemini_model or llm.DEFAULT_MODEL)
    results = []
    for path in args.images:
        entry = predict_image(model, card, path, args, explainer)
        results.append(entry)
        if args.json:
            print(json.dumps(entry), flush=True)
        elif entry["ok"]:
            overlay = f"; overlay {entry['overlay']}" if entry["overlay"] else ""
            print(f"{path}: {entry['predicted_class']} ({entry['confidence']:.1%}){overlay}")
            print(entry["explanation"] + "\n")
        else:
            print(f"{path}: error: {entry['error']}")
    return 0 if any(entry["ok"] for entry in results) else 1


def _demo(args: argparse.Namespace) -> int:
    """``demo``: run the notebooks in fast mode."""
    results = demo.run_demo(args.out, args.notebooks or None, args.notebooks_dir)
    print(f"Summary: {Path(args.out) / 'summary.md'}")
    return 0 if results and all(r["ok"] for r in results) else 1


def _quiz(args: argparse.Namespace) -> int:
    """``quiz``: print a drill of the question bank, or ask it one question at a time.

    Exit status: 0 after a drill, 1 when no question matches the filters.
    """
    from course_utils import quiz

    questions = quiz.load_questions(args.bank)
    chosen = quiz.filter_questions(questions, args.notebook, args.difficulty, args.group)
    if not chosen:
        print(
            "No questions match these filters; drop or change --notebook, --difficulty or --group.",
            file=sys.stderr,
        )
        return 1
    if args.n is not None or args.seed is not None:
        chosen = quiz.pick_questions(chosen, args.n, args.seed)
    interactive = args.interactive
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if not interactive:
        print(quiz.format_drill(chosen, show_answers=not args.no_answers))
        return 0
    progress = quiz.QuizProgress.load(args.progress) if args.progress else quiz.QuizProgress()
    known, asked = quiz.interactive_drill(chosen, progress)
    print(f"\nScore: {known} of {asked} known" + (f" ({known / asked:.0%})." if asked else "."))
    if args.progress:
        progress.save(args.progress)
        print(f"Progress saved to {args.progress} ({len(progress.known)} questions known in all).")
    return 0


def _add_quiz_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``quiz`` sub-command.

    Args:
        commands: ``build_parser``'s sub-command parsers.
    """
    from course_utils import quiz

    parser = commands.add_parser(
        "quiz",
        help="drill the course's interview and self-check questions",
        description="Print a drill (each question followed by its answer and the notebook "
        "section to reread), or, with --interactive (the default in a terminal), ask one "
        "question at a time: Enter reveals the answer, then say whether you knew it. "
        "Without --n or --seed every matching question is printed, in lesson order.",
    )
    parser.add_argument("--notebook", default=None, help="lesson: 02, 2 or 02_transfer")
    parser.add_argument("--difficulty", choices=quiz.DIFFICULTIES, default=None)
    parser.add_argument("--group", choices=quiz.GROUPS, default=None)
    parser.add_argument("--n", type=int, default=None, help="draw N questions at random")
    parser.add_argument("--seed", type=int, default=None, help="seed of the draw and its order")
    parser.add_argument(
        "--no-answers",
        action="store_true",
        help="print the questions only, no answers (ignored with --interactive)",
    )
    parser.add_argument(
        "--interactive",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one question at a time (default: when stdin is a terminal)",
    )
    parser.add_argument(
        "--progress", type=Path, default=None, help="JSON file of known questions (interactive)"
    )
    parser.add_argument("--bank", type=Path, default=None, help="question bank YAML file")
    parser.set_defaults(handler=_quiz)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``python -m course_utils``.

    Returns:
        The parser; each sub-command sets ``handler``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m course_utils",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="make, audit and split datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    synth = data_commands.add_parser("synth", help="write a synthetic phantom dataset")
    synth.add_argument("out", type=Path)
    synth.add_argument("--per-class", type=int, default=100)
    synth.add_argument("--test-per-class", type=int, default=None)
    synth.add_argument("--image-size", type=int, default=config.DEFAULT_IMAGE_SIZE)
    synth.add_argument("--seed", type=int, default=config.DEFAULT_SEED)
    synth.add_argument("--no-plant", action="store_true", help="plant no duplicates/corrupt files")
    synth.set_defaults(handler=_data_synth)

    audit = data_commands.add_parser("audit", help="audit a dataset in the Kaggle layout")
    audit.add_argument("data_dir", type=Path)
    audit.add_argument("--out", type=Path, default=None, help="JSON report to write")
    audit.add_argument("--near-threshold", type=float, default=0.99)
    audit.set_defaults(handler=_data_audit)

    split = data_commands.add_parser("split", help="audit, then save duplicate-aware splits")
    split.add_argument("data_dir", type=Path)
    split.add_argument("--out", type=Path, required=True)
    split.add_argument("--val-fraction", type=float, default=0.15)
    split.add_argument("--test-fraction", type=float, default=0.15)
    split.add_argument("--seed", type=int, default=config.DEFAULT_SEED)
    split.set_defaults(handler=_data_split)

    trainer = commands.add_parser("train", help="train a model as notebooks 02/03 do")
    trainer.add_argument("model", choices=("xception", "cnn"))
    trainer.add_argument("--data", type=Path, default=None, help="dataset folder (Kaggle layout)")
    trainer.add_argument(
        "--source",
        choices=("kaggle", "phantoms"),
        default="kaggle",
        help="where to get the data when --data is not given",
    )
    trainer.add_argument("--out", type=Path, default=Path("artifacts"))
    trainer.add_argument("--epochs", type=int, default=None, help="epochs (per phase for xception)")
    trainer.add_argument("--image-size", type=int, default=None)
    trainer.add_argument("--batch-size", type=int, default=None)
    trainer.add_argument("--learning-rate", type=float, default=None)
    trainer.add_argument("--weights", default=None, help="xception: imagenet, none or a file")
    trainer.add_argument("--fast", action="store_true", help="small images, few epochs")
    trainer.add_argument("--seed", type=int, default=config.DEFAULT_SEED)
    trainer.set_defaults(handler=_train)

    scorer = commands.add_parser("evaluate", help="evaluate a trained model as notebook 04 does")
    scorer.add_argument("--model", type=Path, required=True, help="ARTIFACTS/<model>.keras")
    scorer.add_argument("--data", type=Path, default=None, help="dataset folder of the splits")
    scorer.add_argument(
        "--splits", type=Path, default=None, help="split folder (default: splits/ by the model)"
    )
    scorer.add_argument("--split", choices=tuple(TEST_SETS), default="both")
    scorer.add_argument(
        "--test-dir", type=Path, default=None, help="score a DIR/<class>/<image> folder instead"
    )
    scorer.add_argument("--out", type=Path, default=None, help="metrics JSON to write")
    scorer.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    scorer.add_argument("--batch-size", type=int, default=64)
    scorer.add_argument("--seed", type=int, default=config.DEFAULT_SEED)
    scorer.set_defaults(handler=_evaluate)

    predictor = commands.add_parser(
        "predict",
        help="classify scans, map and explain each (exit 0 if at least one image worked)",
    )
    predictor.add_argument("--model", type=Path, required=True, help="ARTIFACTS/<model>.keras")
    predictor.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    predictor.add_argument(
        "--saliency",
        choices=("gradcam", "gradcam++", "saliency", "smoothgrad", "scorecam"),
        default="gradcam",
    )
    predictor.add_argument("--overlay-out", type=Path, default=None, help="write overlays here")
    predictor.add_argument("--explain", choices=("offline", "gemini"), default="offline")
    predictor.add_argument("--gemini-model", default=None, help="Gemini model id")
    predictor.add_argument("--json", action="store_true", help="one JSON object per line")
    predictor.set_defaults(handler=_predict)

    carder = commands.add_parser(
        "card", help="write a Markdown model card (card, metrics, audit) next to a model"
    )
    carder.add_argument("model", type=Path, help="ARTIFACTS/<model>.keras")
    carder.add_argument(
        "--out", type=Path, default=None, help="Markdown file (default: <model>_card.md beside it)"
    )
    carder.set_defaults(handler=_card)

    demo_parser = commands.add_parser("demo", help="run the notebooks headless in fast mode")
    demo_parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo_parser.add_argument(
        "--notebooks", nargs="*", choices=course.NOTEBOOKS + course.PRACTICE_NOTEBOOKS
    )
    demo_parser.add_argument("--notebooks-dir", type=Path, default=None)
    demo_parser.set_defaults(handler=_demo)
    _add_quiz_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        The exit status: 0 on success, 2 for bad input (with a one-line message).
    """
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
