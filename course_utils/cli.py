"""Command line: ``python -m course_utils …`` calls the same functions as the notebooks.

Examples::

    python -m course_utils data synth runs/phantoms --per-class 100 --image-size 224 --seed 1
    python -m course_utils data audit ../shared/datasets/brain-tumor-mri-224 --out audit.json
    python -m course_utils data split DATA_DIR --out artifacts/splits
    python -m course_utils data boxes ../shared/datasets/brain-tumor-mri-224 --out boxes.csv
    python -m course_utils train cnn --data DATA_DIR --out artifacts
    python -m course_utils evaluate --model artifacts/cnn.keras --data DATA_DIR --split both
    python -m course_utils evaluate --model artifacts/cnn.keras --test-dir NEW_SCANS/
    python -m course_utils evaluate --model artifacts/cnn.keras --split test --localisation
    python -m course_utils predict --model artifacts/cnn.keras scan1.png scan2.jpg --json
    python -m course_utils card artifacts/cnn.keras --out cnn_card.md
    python -m course_utils demo --out runs/demo
    python -m course_utils times runs/demo            # docs/run_times.json -> docs/run_times.md
    python -m course_utils quiz --notebook 02 --difficulty medium --n 5 --seed 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from course_utils import config, course, demo, run_times

#: ``evaluate --split`` choices and the split tables each one means.
TEST_SETS = {"test": ("test",), "leakfree": ("test_leakfree",), "both": ("test", "test_leakfree")}


def _data_synth(args: argparse.Namespace) -> int:
    """``data synth``: write a phantom dataset."""
    from course_utils.data.phantom_dataset import synthesize_dataset

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


def _data_boxes(args: argparse.Namespace) -> int:
    """``data boxes``: write the figshare tumor box of every matching image of a folder."""
    from course_utils.data.boxes import find_folder_boxes
    from course_utils.data.figshare import load_reference

    result = find_folder_boxes(args.data_dir, load_reference(args.reference), args.threshold)
    for note in result.skipped:
        print(f"note: skipped unreadable file {note}")
    print(f"{result.summary()}\nWrote {result.save_csv(args.out)}")
    return 0


def _training_splits(args: argparse.Namespace) -> tuple[dict, dict]:
    """Reuse ``OUT/splits`` when it was made from the same data and seed, else make it."""
    from course_utils.data.sources import resolve_dataset
    from course_utils.data.splits import load_or_make_splits

    source = resolve_dataset(args.data, args.source, phantom_params={"seed": args.seed}).to_dict()
    return load_or_make_splits(course.splits_dir(args.out), source, args.seed)


def _train(args: argparse.Namespace) -> int:
    """``train``: train one model with the notebooks' code; print held-out accuracy."""
    import dataclasses

    from course_utils import quiet

    quiet.quiet_tensorflow()
    from course_utils import devices, train

    config = train.TrainConfig.for_model(
        args.model,
        args.fast,
        image_size=args.image_size,
        num_epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        label_smoothing=args.label_smoothing,
        ema_momentum=args.ema_momentum,
        patience=args.patience,
        augmentation=args.augmentation,
        cpu_bfloat16=args.bfloat16,
    )
    if args.model == "xception" and args.weights is not None:
        weights = None if args.weights.lower() == "none" else args.weights
        config = dataclasses.replace(config, weights=weights)
    splits, dataset = _training_splits(args)
    strategy = devices.configure_devices(cpu_bfloat16=config.cpu_bfloat16)
    print(f"Devices: {devices.describe_devices(strategy)}; settings: {config}", flush=True)
    class_names = tuple(dataset["class_names"])
    trainer = train.train_transfer if args.model == "xception" else train.train_cnn
    model, card = trainer(config, splits, class_names, args.out, dataset, strategy=strategy)
    print(
        f"Saved {Path(args.out) / (card['name'] + '.keras')} after "
        f"{card['training_seconds']:.0f} s of training"
    )
    for name in ("val", "test", "test_leakfree"):
        one_view, with_mirror = (
            train.split_accuracy(
                model, splits[name], class_names, config.image_size, test_time_flip=flip
            )
            for flip in (False, True)
        )
        print(
            f"{name:>13}: accuracy {one_view:.4f} on {len(splits[name])} images "
            f"({with_mirror:.4f} averaging each image with its mirror)"
        )
    return 0


def _split_tables(args: argparse.Namespace, card: dict) -> tuple[dict, dict]:
    """Load the model's splits (``--splits``, else next to the model), made if missing."""
    from course_utils.data.sources import resolve_dataset
    from course_utils.data.splits import load_or_make_splits

    split_dir = args.splits or course.splits_dir(Path(args.model).parent)
    saved = course.dataset_path(split_dir).is_file()
    if not saved and args.data is None:
        raise FileNotFoundError(
            f"No splits in {split_dir}. Pass --data DIR (it is audited and split with the "
            "model's seed), --splits DIR (notebook 01's ARTIFACTS_DIR/splits), or "
            "--test-dir DIR."
        )
    source = None if saved else resolve_dataset(args.data).to_dict()
    seed = None if saved else card["seed"]
    loaded, dataset = load_or_make_splits(split_dir, source, seed, data_root=args.data)
    if args.data is None:  # read from where they were listed: check the files are still there
        loaded = _files_where_listed(loaded, dataset)
    return loaded, dataset


def _files_where_listed(loaded: dict, dataset: dict) -> dict:
    """Check the splits' files exist where they were listed; name ``--data`` if not."""
    from course_utils.data.splits import reroot_splits

    try:
        return reroot_splits(loaded, dataset, dataset["root"])
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error} Pass --data with that folder.") from error


def _evaluation_inputs(args: argparse.Namespace, card: dict) -> tuple[dict, object, dict]:
    """Return ``(test tables, validation table or None, notes for the metrics file)``."""
    from course_utils import cards
    from course_utils.data.folders import scan_test_folder

    if args.test_dir is not None:
        table, skipped = scan_test_folder(args.test_dir, card["class_names"])
        for line in skipped:
            print(f"note: skipped unreadable file {line}")
        print(f"{len(table)} images in {args.test_dir} ({len(skipped)} skipped)")
        beside_model = course.dataset_path(course.splits_dir(Path(args.model).parent))
        has_splits = args.splits is not None or args.data is not None or beside_model.is_file()
        loaded = _split_tables(args, card)[0] if has_splits else {}
        notes = {"test_dir": str(args.test_dir), "skipped_files": skipped}
        return {"folder": table}, loaded.get("val"), notes
    loaded, _ = _split_tables(args, card)
    matches = cards.splits_match_card(card, loaded["train"])
    if matches is False:
        print(
            "WARNING: these splits are not the ones the model was trained on (the training "
            "file list differs from its card): the test images may include training images."
        )
    tests = {name: loaded[name] for name in TEST_SETS[args.split]}
    return tests, loaded["val"], {"splits_match_training": matches}


def _evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: score a saved model on its test splits or a folder; print a table."""
    from course_utils import quiet

    quiet.quiet_tensorflow()
    from course_utils import evaluate, predict, report

    started = time.perf_counter()
    model, card = predict.load_model_with_card(args.model)
    tests, val, notes = _evaluation_inputs(args, card)
    result = evaluate.evaluate_model(
        model, card, tests, val, args.bootstrap, seed=args.seed, batch_size=args.batch_size
    )
    result.metrics.update(notes)
    if args.localisation:
        result.metrics["localisation"] = _localisation(args, model, card, tests)
    out = result.save(args.out or course.metrics_path(Path(args.model).parent, card["name"]))
    print(report.comparison_table({card["name"]: result}).to_string())
    for sentence in report.leakage_sentences({card["name"]: result}):
        print(sentence)
    focus = "test_leakfree" if "test_leakfree" in tests else next(iter(tests))
    print(report.temperature_sentence(result, focus))
    print(f"Wrote {out} in {time.perf_counter() - started:.1f} s")
    return 0


def _localisation(args: argparse.Namespace, model: object, card: dict, tests: dict) -> dict:
    """``evaluate --localisation``: score the maps on the first test table's tumor scans."""
    from course_utils import localisation, localisation_run

    split, table = next(iter(tests.items()))
    if args.test_dir is not None or args.data is not None:
        root = Path(args.test_dir if args.test_dir is not None else args.data)
    else:
        root = Path(_split_tables(args, card)[1]["root"])
    regions = localisation_run.lesion_regions(
        table, root, card["image_size"], args.boxes, args.localisation_per_class, args.seed
    )
    limits = {"scorecam": args.scorecam_images} if args.scorecam_images is not None else {}
    print(f"Localisation: {len(regions[0])} tumor scans of {split} with a {regions[3]}")
    result = localisation_run.measure_localisation(
        model, card, regions, args.methods, limits, args.bootstrap, args.seed, split
    )
    print("\n".join(localisation.markdown_rows(result.summary)))
    return result.record


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
    from course_utils import quiet

    quiet.quiet_tensorflow()
    from course_utils import analysis, llm, predict

    model, card = predict.load_model_with_card(args.model)
    explainer = llm.make_explainer(args.explain, model_id=args.gemini_model or llm.DEFAULT_MODEL)
    results = []
    for path in args.images:
        entry = analysis.analyse_file(model, card, path, args.saliency, explainer, args.overlay_out)
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
    print(f"Summary: {demo.summary_path(args.out)}")
    return 0 if results and all(r["ok"] for r in results) else 1


def _quiz(args: argparse.Namespace) -> int:
    """``quiz``: print a drill of the question bank, or ask it one question at a time.

    Exit status: 0 after a drill, 1 when no question matches the filters.
    """
    from course_utils import quiz, quiz_drill

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
        print(quiz_drill.format_drill(chosen, show_answers=not args.no_answers))
        return 0
    progress = quiz.QuizProgress.load(args.progress) if args.progress else quiz.QuizProgress()
    known, asked = quiz_drill.interactive_drill(chosen, progress)
    print(f"\nScore: {known} of {asked} known" + (f" ({known / asked:.0%})." if asked else "."))
    if args.progress:
        progress.save(args.progress)
        print(f"Progress saved to {args.progress} ({len(progress.known)} questions known in all).")
    return 0


def _times(args: argparse.Namespace) -> int:
    """``times``: merge runs' records into the records file; render the run-time table."""
    records = run_times.add_runs(args.records, args.run_dirs, args.label, args.mode)
    if str(args.out) == "-":
        print(run_times.render_table(records), end="")
        return 0
    path = run_times.write_table(args.out, records)
    print(f"Wrote {path} from {args.records} ({len(records)} record(s))")
    return 0


def _add_times_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``times`` sub-command.

    Args:
        commands: ``build_parser``'s sub-command parsers.
    """
    parser = commands.add_parser(
        "times",
        help="collect measured run times into docs/run_times.json; render docs/run_times.md",
        description="Merge each RUN_DIR's summary.json (written by `make demo`) into the "
        "records file (a record replaces the one with its label), then render the Markdown "
        "table every quoted run time comes from. Without RUN_DIR, only re-render.",
    )
    parser.add_argument("run_dirs", type=Path, nargs="*", metavar="RUN_DIR")
    parser.add_argument("--label", default=None, help="name the record (one RUN_DIR only)")
    parser.add_argument("--mode", choices=run_times.MODES, default=None)
    parser.add_argument("--records", type=Path, default=Path(run_times.RECORDS_FILE))
    parser.add_argument(
        "--out", type=Path, default=Path(run_times.TABLE_FILE), help="Markdown file; - prints it"
    )
    parser.set_defaults(handler=_times)


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

    boxer = data_commands.add_parser(
        "boxes", help="give each tumor scan its figshare tumor box (CSV, matched by content)"
    )
    boxer.add_argument("data_dir", type=Path, help="any tree of class folders")
    boxer.add_argument("--out", type=Path, required=True, help="CSV file to write")
    boxer.add_argument("--threshold", type=float, default=0.98, help="smallest similarity")
    boxer.add_argument("--reference", type=Path, default=None, help="figshare reference .npz")
    boxer.set_defaults(handler=_data_boxes)

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
    trainer.add_argument(
        "--patience",
        type=int,
        default=None,
        help="epochs without progress before stopping (default: the CNN runs every epoch)",
    )
    trainer.add_argument(
        "--augmentation", choices=config.AUGMENTATIONS, default=None, help="training augmentation"
    )
    trainer.add_argument("--weights", default=None, help="xception: imagenet, none or a file")
    trainer.add_argument("--fast", action="store_true", help="small images, few epochs")
    trainer.add_argument(
        "--label-smoothing", type=float, default=None, help="share of each target spread, e.g. 0.1"
    )
    trainer.add_argument(
        "--ema-momentum", type=float, default=None, help="keep a moving average of the weights"
    )
    trainer.add_argument(
        "--bfloat16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train in mixed bfloat16 where the CPU has it (default: the full CNN does)",
    )
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
    scorer.add_argument(
        "--localisation",
        action="store_true",
        help="also score the saliency maps on the tumor scans: figshare boxes, phantom masks",
    )
    scorer.add_argument("--boxes", type=Path, default=None, help="boxes CSV of `data boxes`")
    scorer.add_argument("--localisation-per-class", type=int, default=None, metavar="N")
    scorer.add_argument("--scorecam-images", type=int, default=None, metavar="N")
    scorer.add_argument(
        "--methods",
        nargs="+",
        default=["saliency", "smoothgrad", "gradcam", "gradcam++", "scorecam"],
        help="saliency methods of --localisation",
    )
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
    predictor.add_argument(
        "--gemini-model",
        default=None,
        help="Gemini model id (default: the alias gemini-flash-latest, which falls back to the "
        "best available Flash model if missing; any other id is pinned)",
    )
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
    _add_times_parser(commands)
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
