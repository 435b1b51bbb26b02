"""The default protocol's validation folds alone, for a design choice made without test files:
each fold of a set's train file trains the planned configuration (with `--set` overrides) for
every epoch, and the mean validation curve's best value and the mean of its second half are
printed as one JSON line. No refit, no test file read.

    python scripts/fold_curves.py OSULeaf --seed 0                            # the plan as is
    python scripts/fold_curves.py OSULeaf --seed 0 --set stem.residual=false  # one setting off
    python scripts/fold_curves.py ACSF1 --epochs 200 --set stem.pool=1        # JSON values

NAME is a set aeon's wheel ships (`pip install -e ".[aeon]"`) or a labelled file's path.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from byod_table import shipped

from larnn.protocol import DataShape, plan
from larnn.refit_epochs import choose_refit_epochs
from larnn.tasks import load_task
from larnn.train import TrainConfig, train, with_overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="a set aeon ships (e.g. ArrowHead) or a file's path")
    parser.add_argument("--architecture", default="larnn", choices=["larnn", "lstm"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="instead of the planned count")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="overrides")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    base = TrainConfig(
        dataset=str(Path(args.name) if Path(args.name).suffix else shipped(args.name)),
        seed=args.seed,
        device="cpu",
        architecture=args.architecture,
    )
    base = with_overrides(base, overrides)  # then planned around them, as `larnn train --set`
    task = load_task(base.dataset, base.split_definition())
    config = plan(base, DataShape.of(task.train.concatenate(task.val)), set(overrides))
    if args.epochs:
        config = dataclasses.replace(config, epochs=args.epochs)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        runs = [Path(scratch) / f"fold_{fold}" for fold in range(config.folds)]
        for fold, run in enumerate(runs):
            fold_config = dataclasses.replace(config, fold=fold, patience=config.epochs)
            train(fold_config, run, progress=False)
        mean = choose_refit_epochs(runs).mean_val_accuracy  # (E,) over the folds
    print(
        json.dumps(
            {
                "name": args.name,
                "architecture": args.architecture,
                "seed": args.seed,
                "set": overrides,
                "epochs": config.epochs,
                "stem": config.stem,
                "best": round(max(mean), 4),
                "best_epoch": mean.index(max(mean)) + 1,
                "second_half": round(statistics.mean(mean[len(mean) // 2 :]), 4),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
