"""The README's "bring your own data" table: the default protocol (larnn.protocol, exactly what
`larnn train --dataset NAME_TRAIN.ts` runs with no other flag) for the LARNN and the LSTM on
every classification set aeon's wheel ships, beside MiniRocket and the majority class.

For each data set and seed: the settings are planned from the data, the epoch count is chosen
over k validation folds of the train file, each model is refit on the whole train file and its
test file is scored once. MiniRocket (aeon defaults) is fitted on the same train file and scored
on the same test file (larnn.rocket). Mean +- sample std over the seeds.

    pip install -e ".[aeon]"
    python scripts/byod_table.py --out runs/byod                      # 6 sets, seeds 0 1 2
    python scripts/byod_table.py --out runs/byod --datasets GunPoint --seeds 0
    python scripts/byod_table.py --out runs/byod --report           # the finished pairs only

Finished runs are read back from their checkpoints. Results also go to OUT/results.json; the
table is printed as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from larnn.checkpoint import load_checkpoint
from larnn.protocol import DEFAULT_BUDGET_S, DataShape, fit_reference, plan, run_protocol
from larnn.tasks import load_task
from larnn.train import TrainConfig

DATASETS = (
    "BasicMotions",
    "JapaneseVowels",
    "GunPoint",
    "ArrowHead",
    "ItalyPowerDemand",
    "ACSF1",
)


def shipped(name: str) -> Path:
    import aeon

    return Path(aeon.__file__).parent / "datasets" / "data" / name / f"{name}_TRAIN.ts"


def run_pair(name: str, seed: int, args: argparse.Namespace) -> dict:
    """The LARNN, the LSTM and MiniRocket on one set and seed: test accuracies and seconds."""
    folder = args.out / name / f"seed_{seed}"
    done = folder / "pair.json"
    if done.is_file():
        return json.loads(done.read_text())
    base = TrainConfig(dataset=str(shipped(name)), seed=seed, device="cpu")
    task = load_task(base.dataset, base.split_definition())
    shape = DataShape.of(task.train.concatenate(task.val))
    started = time.perf_counter()
    reference = fit_reference(base)
    row: dict = {"minirocket": reference["accuracy"], "minirocket_s": reference["seconds"]}
    pair_started = time.perf_counter()
    for architecture in ("larnn", "lstm"):
        config = plan(
            TrainConfig.from_dict({**base.to_dict(), "architecture": architecture}), shape
        )
        result = run_protocol(
            config, folder / architecture, budget_s=args.budget, reference=reference, progress=False
        )
        metrics = load_checkpoint(result.checkpoint).metadata.metrics
        row[architecture] = result.test.accuracy
        row[f"{architecture}_s"] = round(result.seconds, 1)
        row[f"{architecture}_epochs"] = result.epochs
        row[f"{architecture}_learned"] = result.verdict.learned
        row["majority"] = metrics["majority"]["accuracy"]
        print(
            f"{name:<17} {architecture:<6} seed {seed}: test {result.test.accuracy:.4f}  "
            f"refit {result.epochs} epochs  {result.seconds:.0f} s  {result.verdict.reason}",
            flush=True,
        )
    row["pair_s"] = round(time.perf_counter() - pair_started, 1)
    row["all_s"] = round(time.perf_counter() - started, 1)
    print(
        f"{name:<17} minirocket seed {seed}: test {reference['accuracy']:.4f}  "
        f"({reference['seconds']:.0f} s); the pair took {row['pair_s']:.0f} s",
        flush=True,
    )
    folder.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(row, indent=1))
    return row


def cell(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    spread = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {spread:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for runs and results")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="s per model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small models)")
    parser.add_argument(
        "--report", action="store_true", help="only tabulate the pairs already finished in OUT"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
        f"{args.threads} thread(s)"
    )
    if args.report:
        results = {
            name: [json.loads(p.read_text()) for p in finished]
            for name in args.datasets
            if (finished := sorted((args.out / name).glob("seed_*/pair.json")))
        }
        args.seeds = sorted({int(p.parent.name[5:]) for p in args.out.glob("*/seed_*/pair.json")})
    else:
        results = {name: [run_pair(name, s, args) for s in args.seeds] for name in args.datasets}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1))

    seeds = ", ".join(map(str, args.seeds))
    print(f"\nTest accuracy %, mean ± sample std over seeds {seeds} (n per row: its runs):\n")
    print("| data set | n | LARNN | LSTM | MiniRocket | majority | LARNN - MiniRocket | pair s |")
    print("|---|---|---|---|---|---|---|---|")
    gaps = []
    for name, rows in results.items():
        gap = 100 * statistics.fmean(r["larnn"] - r["minirocket"] for r in rows)
        gaps.append(gap)
        print(
            f"| {name} | {len(rows)} | {cell([r['larnn'] for r in rows])} "
            f"| {cell([r['lstm'] for r in rows])} "
            f"| {cell([r['minirocket'] for r in rows])} | {100 * rows[0]['majority']:.1f} "
            f"| {gap:+.1f} | {max(r['pair_s'] for r in rows):.0f} |"
        )
    print(f"\nmean LARNN - MiniRocket over the sets: {statistics.fmean(gaps):+.2f} points")


if __name__ == "__main__":
    main()
