"""The `larnn` command: train, evaluate, summarize, refit-epochs, data download (and tune)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from larnn.errors import LarnnError


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LarnnError(f"--set expects key=value (e.g. model.hidden_size=32), got {pair!r}")
        overrides[key] = _parse_value(value)
    return overrides


def _config_from_args(args: argparse.Namespace, flag_names: tuple[str, ...]):
    """The TrainConfig from --config (else defaults), then the given flags, then --set."""
    return _config_and_given(args, flag_names)[0]


def _config_and_given(args: argparse.Namespace, flag_names: tuple[str, ...]):
    """The TrainConfig (see `_config_from_args`) and the names of the settings the user gave
    (every field of a --config file, the flags, the --set keys)."""
    from larnn.train import TrainConfig, with_overrides

    flags = {name: getattr(args, name) for name in flag_names}
    overrides = {name: value for name, value in flags.items() if value is not None}
    overrides.update(_parse_overrides(args.set))
    given = set(overrides)
    if args.config:
        config = TrainConfig.from_json(Path(args.config).read_text())
        given |= {name for name, value in config.to_dict().items() if not isinstance(value, dict)}
        given |= {
            f"{name}.{key}"
            for name, value in config.to_dict().items()
            if isinstance(value, dict)
            for key in value
        }
    else:
        config = TrainConfig()
    return with_overrides(config, overrides), given


def cmd_train(args: argparse.Namespace) -> None:
    from larnn.tasks import is_file_dataset
    from larnn.train import train

    config, given = _config_and_given(
        args, ("architecture", "dataset", "test", "epochs", "seed", "device")
    )
    protocol = args.protocol or ("default" if is_file_dataset(config.dataset) else "single")
    if protocol == "default":
        _train_by_protocol(config, given, args)
        return
    print(config.to_json())
    result = train(config, Path(args.out), data_dir=args.data_dir, resume=args.resume)
    print(
        f"\ncheckpoint: {result.checkpoint}  ({result.epochs_run} epochs, "
        f"{result.training_seconds:.0f} s of training)"
    )
    if not config.refit:  # a refit trained on its validation part: no score there
        print(f"validation: accuracy {result.val.accuracy:.4f}  macro-F1 {result.val.macro_f1:.4f}")
    print(f"test:       accuracy {result.test.accuracy:.4f}  macro-F1 {result.test.macro_f1:.4f}")
    _print_judgement(result.checkpoint)


def _train_by_protocol(config, given: set[str], args: argparse.Namespace) -> None:
    """`larnn train` on a labelled file: larnn.protocol (settings from the data, epochs chosen
    over folds, a refit), MiniRocket beside it where aeon is installed."""
    from larnn.protocol import DataShape, fit_reference, plan, run_protocol
    from larnn.tasks import load_task

    if args.resume:
        raise LarnnError("--resume applies to --protocol single; rerun the default protocol whole")
    task = load_task(config.dataset, config.split_definition(), args.data_dir)
    planned = plan(config, DataShape.of(task.train.concatenate(task.val)), given)
    print("settings, and how each was chosen:")
    for name, reason in sorted(planned.choices.items()):
        print(f"  {name}: {reason}")
    reference = fit_reference(planned, args.data_dir)
    result = run_protocol(
        planned, Path(args.out), budget_s=args.budget, reference=reference, data_dir=args.data_dir
    )
    print(
        f"\ncheckpoint: {result.checkpoint}  (refit for {result.epochs} epochs, chosen over "
        f"{len(result.fold_curves)} folds; {result.seconds:.0f} s in all)"
    )
    print(f"test:       accuracy {result.test.accuracy:.4f}  macro-F1 {result.test.macro_f1:.4f}")
    _print_judgement(result.checkpoint)


def _print_judgement(checkpoint: Path) -> None:
    """The majority-class rate, the reference's score and whether the model learned."""
    from larnn.checkpoint import load_checkpoint
    from larnn.rocket import REFERENCE
    from larnn.verdict import LEARNING, MAJORITY

    metrics = load_checkpoint(checkpoint).metadata.metrics
    majority = metrics[MAJORITY]["accuracy"]
    print(f"majority:   accuracy {majority:.4f}  (always the most frequent class)")
    if REFERENCE in metrics:
        reference = metrics[REFERENCE]
        print(
            f"reference:  accuracy {reference['accuracy']:.4f}  ({reference['method']}, same parts)"
        )
    if LEARNING in metrics:
        learning = metrics[LEARNING]
        print(("" if learning["learned"] else "WARNING: the model ") + learning["reason"])


def cmd_evaluate(args: argparse.Namespace) -> None:
    from larnn.evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(args.checkpoint, args.split, args.data_dir)
    print(f"{args.checkpoint} on {args.split}:")
    print(report.format())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2))


def cmd_summarize(args: argparse.Namespace) -> None:
    from larnn.summary import format_row, summarize_runs

    row = summarize_runs([Path(p) for p in args.checkpoints])
    print(f"{row['dataset']}: test split scored once per run; model selected on validation")
    print("| model | runs (seeds) | test accuracy % | test macro-F1 % | val accuracy % | min/run |")
    print("|---|---|---|---|---|---|")
    print(format_row(row))


def cmd_refit_epochs(args: argparse.Namespace) -> None:
    from larnn.refit_epochs import choose_refit_epochs

    choice = choose_refit_epochs([Path(p) for p in args.runs])
    if args.epochs_only:
        print(choice.epochs)
        return
    seeds = ", ".join(str(seed) for seed in choice.seeds)
    print(f"mean over {len(choice.runs)} runs (seeds {seeds}), validation part of each:")
    print("epoch  val accuracy  val loss")
    for epoch, (accuracy, loss) in enumerate(
        zip(choice.mean_val_accuracy, choice.mean_val_loss, strict=True), start=1
    ):
        mark = "  <- chosen" if epoch == choice.epochs else ""
        print(f"{epoch:5d}  {accuracy:12.4f}  {loss:8.4f}{mark}")
    print(f"\nrefit for {choice.epochs} epochs on training + validation, e.g.:")
    print(choice.refit_command(seed=0, out="REFIT_FOLDER"))


def cmd_tune(args: argparse.Namespace) -> None:
    from larnn.tune import format_report, open_study, retrain_best, run_study, write_plots

    out = Path(args.out)
    try:
        if args.report or args.retrain_best:
            study = open_study(out, args.storage, args.study_name)
            if args.report:
                print(format_report(study, args.top))
                for name, written in write_plots(study, out).items():
                    print(f"{name}: {written}")
            else:
                print(retrain_best(study, out, args.seeds, data_dir=args.data_dir).format())
            return
        study = run_study(
            _config_from_args(args, ("dataset", "test", "epochs", "device")),
            out,
            args.n_trials,
            storage=args.storage,
            study_name=args.study_name,
            sampler_seed=args.sampler_seed,
            data_dir=args.data_dir,
            budget_s=args.budget,
        )
        print(format_report(study, args.top))
    except KeyboardInterrupt:
        print("\ninterrupted: rerun the same command to continue", file=sys.stderr)
        raise SystemExit(130) from None


def cmd_download(args: argparse.Namespace) -> None:
    from larnn.data import download_uci_har

    path = download_uci_har(args.dest)
    print(f"UCI HAR ready in {path}")


def _add_config_arguments(
    parser: argparse.ArgumentParser, config_help: str, epochs_help: str | None, set_help: str
) -> None:
    """The flags that build a TrainConfig (see `_config_from_args`), and --data-dir."""
    parser.add_argument("--config", help=config_help)
    parser.add_argument(
        "--dataset",
        help="uci_har, probe:<name>, or a labelled file: a .ts train file (NAME_TRAIN.ts, "
        "tested on the NAME_TEST.ts beside it), a long CSV (case_id, time, label, channels; "
        "optional group) or an npz (X, y, optional lengths, groups)",
    )
    parser.add_argument(
        "--test",
        help="a labelled file's separate test file (default: NAME_TEST.ts beside a .ts train "
        "file, else a held-out fifth of the train file)",
    )
    parser.add_argument("--epochs", type=int, help=epochs_help)
    parser.add_argument("--device", help="auto, cpu, cuda")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    parser.add_argument("--data-dir", type=Path, help="folder with UCI HAR ($LARNN_DATA_DIR)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="larnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a LARNN or the LSTM baseline")
    _add_config_arguments(
        train,
        config_help="TrainConfig JSON file (flags and --set override it)",
        epochs_help=None,
        set_help="override a field, e.g. lr=0.001 or model.hidden_size=32",
    )
    train.add_argument("--architecture", choices=["larnn", "lstm"])
    train.add_argument("--seed", type=int)
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run")
    train.add_argument(
        "--protocol",
        choices=["default", "single"],
        help="default (for labelled files): settings from the data, epochs chosen over "
        "validation folds, a refit on every training case; single (else): one run, the epoch "
        "with the best validation accuracy",
    )
    train.add_argument(
        "--budget",
        type=float,
        default=300.0,
        help="seconds the default protocol may spend on one model (folds and refit)",
    )
    train.set_defaults(func=cmd_train)

    evaluate = commands.add_parser("evaluate", help="score a checkpoint on a split")
    evaluate.add_argument("checkpoint", help="checkpoint folder or .zip")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"])
    evaluate.add_argument("--json", help="also write the report as JSON here")
    evaluate.add_argument(
        "--data-dir",
        type=Path,
        help="folder with UCI HAR, or with the checkpoint's data files (found by name) when "
        "they have moved since training",
    )
    evaluate.set_defaults(func=cmd_evaluate)

    summarize = commands.add_parser("summarize", help="mean +- std over several runs")
    summarize.add_argument("checkpoints", nargs="+", help="checkpoint folders, one per seed")
    summarize.set_defaults(func=cmd_summarize)

    refit_epochs = commands.add_parser(
        "refit-epochs",
        help="epochs for a refit: the best mean validation curve over runs of one config",
    )
    refit_epochs.add_argument(
        "runs", nargs="+", help="finished run folders of one configuration, one per seed"
    )
    refit_epochs.add_argument(
        "--epochs-only", action="store_true", help="print only the chosen count (for scripts)"
    )
    refit_epochs.set_defaults(func=cmd_refit_epochs)

    tune = commands.add_parser("tune", help="search LARNN hyperparameters with Optuna")
    tune.add_argument("--out", required=True, help="study folder: trial runs, SQLite study, plots")
    tune.add_argument(
        "--storage",
        help="default: OUT/study.db; 'journal' (OUT/study.journal) or 'journal:PATH' for "
        "workers on one machine; postgresql://user:password@host/db across machines",
    )
    tune.add_argument("--study-name", default="larnn")
    tune.add_argument(
        "--n-trials", type=int, default=50, help="finished trials the study should hold in total"
    )
    tune.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler")
    tune.add_argument(
        "--budget",
        type=float,
        help="wall-clock seconds for the search: no trial starts after, the running one is "
        "pruned at its next epoch (default: no limit)",
    )
    _add_config_arguments(
        tune,
        config_help="base TrainConfig JSON file (flags and --set override it)",
        epochs_help="epochs per trial",
        set_help="override a base field, e.g. patience=5; model.<field> holds it fixed in the "
        "search",
    )
    mode = tune.add_mutually_exclusive_group()
    mode.add_argument(
        "--report",
        action="store_true",
        help="print the best trials; write OUT/history.html and OUT/importance.html",
    )
    mode.add_argument(
        "--retrain-best",
        action="store_true",
        help="train the best configuration once per --seeds; mean ± std of val and test",
    )
    tune.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    tune.add_argument("--top", type=int, default=10, help="trials listed in the report")
    tune.set_defaults(func=cmd_tune)

    data = commands.add_parser("data", help="datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    download = data_commands.add_parser("download", help="download and verify a dataset")
    download.add_argument("name", choices=["uci-har"])
    download.add_argument("--dest", type=Path, help="folder (default: $LARNN_DATA_DIR or cache)")
    download.set_defaults(func=cmd_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (LarnnError, OSError) as error:
        print(f"larnn: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: rerun the same command with --resume to continue", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
