"""The README's UCI HAR table: LARNN and LSTM runs beside aeon's MiniRocket, from one script.

    pip install -e ".[aeon]"
    python scripts/uci_har_table.py --runs 'runs/uci_har_larnn_s*' 'runs/uci_har_lstm_s*' \
        [--ensemble 'runs/uci_har_larnn_s*'] [--minirocket-seeds 0 1 2] [--data-dir DIR]

Each --runs pattern is one row (several globs joined by commas make one row): the run
folders' checkpoints (trained by `larnn train` or `larnn tune`, selected on validation, the
test split scored once) summarised as mean +- sample std of test accuracy and macro-F1 over
the seeds, with their validation accuracy. Each --ensemble pattern is a separate row: the
runs' test probabilities averaged, scored once (never mixed with the single-model rows).
MiniRocket (aeon, default settings: 10,000 kernels, ridge classifier; no tuning) is fitted
on the official training subjects (all of them: it selects nothing on validation) and scored
on the test subjects, once per seed. The confusion matrix of each row's best-validation run follows:
sitting against standing is where the errors are.
"""

from __future__ import annotations

import argparse
import glob
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from larnn.checkpoint import load_checkpoint
from larnn.data import SequenceDataset, load_uci_har
from larnn.data.splits import Normalizer
from larnn.data.uci_har import CLASS_NAMES
from larnn.inference import predict_probabilities
from larnn.metrics import classification_report


def cell(values: list[float]) -> str:
    percent = [100 * v for v in values]
    if len(percent) == 1:
        return f"{percent[0]:.2f}"
    return f"{statistics.mean(percent):.2f} +- {statistics.stdev(percent):.2f}"


def confusion_text(confusion: list[list[int]]) -> str:
    short = [name[:12] for name in CLASS_NAMES]
    lines = ["true \\ predicted " + " ".join(f"{n:>12}" for n in short)]
    for name, row in zip(short, confusion, strict=True):
        lines.append(f"{name:>16} " + " ".join(f"{v:>12}" for v in row))
    return "\n".join(lines)


def run_folders(pattern: str) -> list[str]:
    """Finished run folders (holding a checkpoint/) matched by comma-separated globs."""
    matched = (f for part in pattern.split(",") for f in glob.glob(part.strip()))
    return sorted({f for f in matched if (Path(f) / "checkpoint").is_dir()})


def run_rows(patterns: list[str]) -> list[tuple[str, list[str]]]:
    rows = []
    for pattern in patterns:
        folders = run_folders(pattern)
        metas = [load_checkpoint(Path(f) / "checkpoint").metadata for f in folders]
        if not metas:
            print(f"(no finished runs match {pattern!r})")
            continue
        test = [m.metrics["test"]["accuracy"] for m in metas]
        f1 = [m.metrics["test"]["macro_f1"] for m in metas]
        # A refit run trains on the validation part and records no validation score.
        val = [m.metrics["val"]["accuracy"] if "val" in m.metrics else None for m in metas]
        known = [v for v in val if v is not None]
        rows.append(
            (pattern, [cell(test), cell(f1), cell(known) if known else "-", str(len(metas))])
        )
        best = max(range(len(metas)), key=lambda i: val[i] or 0.0)
        print(f"\n{pattern}: best on validation (or first) = {folders[best]}")
        print(confusion_text(metas[best].metrics["test"]["confusion"]))
    return rows


def ensemble_row(pattern: str, test: SequenceDataset) -> tuple[str, list[str]] | None:
    """The runs' class probabilities on the test subjects, averaged, then scored once."""
    folders = run_folders(pattern)
    if not folders:
        print(f"(no finished runs match {pattern!r})")
        return None
    probabilities = []
    for folder in folders:
        checkpoint = load_checkpoint(Path(folder) / "checkpoint")
        normalizer = Normalizer.from_dict(checkpoint.metadata.normalizer)
        with torch.no_grad():
            probabilities.append(predict_probabilities(checkpoint.model, test.X, normalizer))
    mean = np.mean(probabilities, axis=0)  # (N, classes)
    report = classification_report(test.y, mean.argmax(axis=1), CLASS_NAMES)
    print(f"\nensemble of {len(folders)} ({pattern}): test accuracy {report.accuracy:.4f}")
    print(confusion_text(report.confusion))
    name = f"ensemble of {pattern} (mean probability)"
    return name, [cell([report.accuracy]), cell([report.macro_f1]), "-", str(len(folders))]


def minirocket_row(
    seeds: list[int], train: SequenceDataset, test: SequenceDataset
) -> tuple[str, list[str]]:
    from aeon.classification.convolution_based import MiniRocketClassifier

    accuracies, f1s = [], []
    for seed in seeds:
        started = time.perf_counter()
        classifier = MiniRocketClassifier(random_state=seed)
        classifier.fit(train.X.transpose(0, 2, 1), train.y)  # aeon takes (N, C, T)
        predicted = classifier.predict(test.X.transpose(0, 2, 1))
        report = classification_report(test.y, np.asarray(predicted), CLASS_NAMES)
        accuracies.append(report.accuracy)
        f1s.append(report.macro_f1)
        print(
            f"\nMiniRocket seed {seed}: test accuracy {report.accuracy:.4f} "
            f"({time.perf_counter() - started:.0f} s)"
        )
        print(confusion_text(report.confusion))
    return "MiniRocket (aeon, defaults)", [cell(accuracies), cell(f1s), "-", str(len(seeds))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        nargs="*",
        default=[],
        help="per row: a glob of run folders, or globs joined by ','",
    )
    parser.add_argument("--ensemble", nargs="*", default=[], help="per row: runs averaged")
    parser.add_argument("--minirocket-seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    rows = run_rows(args.runs)
    if args.ensemble or args.minirocket_seeds:
        train, test = load_uci_har(args.data_dir)  # read once for every row that scores anew
    rows += [row for row in (ensemble_row(p, test) for p in args.ensemble) if row]
    if args.minirocket_seeds:
        rows.append(minirocket_row(args.minirocket_seeds, train, test))
    print("\n| model | test accuracy % | test macro-F1 % | validation accuracy % | seeds |")
    print("|---|---|---|---|---|")
    for name, cells in rows:
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
