"""How well each rule for the refit's epoch count does on validation alone: for every model
run of `scripts/byod_table.py` (OUT/<set>/seed_<s>/<model>/fold_<j>), each fold in turn is held
out, the count is chosen on the other folds (larnn.refit_epochs), and the held-out fold's
validation accuracy at that count is its score. Prints the mean score per rule, and per run.

    python scripts/epoch_rules.py runs/byod
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from larnn.refit_epochs import choose_refit_epochs

RULES = {
    "best mean": lambda runs: choose_refit_epochs(runs).epochs,
    "latest within a standard error": lambda runs: (
        choose_refit_epochs(runs, latest_within_error=True).epochs
    ),
    "last epoch": lambda runs: len(history(runs[0])),
}


def history(run: Path) -> list[float]:
    return [row["val_accuracy"] for row in json.loads((run / "history.json").read_text())]


def held_out_scores(folds: list[Path]) -> dict[str, float]:
    """Each rule's mean over the folds of the held-out fold's accuracy at the chosen count."""
    scores = {}
    for name, rule in RULES.items():
        per_fold = []
        for j, held_out in enumerate(folds):
            epochs = rule(folds[:j] + folds[j + 1 :])
            per_fold.append(history(held_out)[epochs - 1])
        scores[name] = statistics.mean(per_fold)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="scripts/byod_table.py's --out folder")
    args = parser.parse_args()
    table = {}
    for model in sorted(args.out.glob("*/seed_*/*")):
        folds = sorted(model.glob("fold_*"))
        if len(folds) >= 3 and all((f / "checkpoint").is_dir() for f in folds):
            table[str(model.relative_to(args.out))] = held_out_scores(folds)
    for name in RULES:
        mean = statistics.mean(scores[name] for scores in table.values())
        print(f"{name}: {mean:.4f} over {len(table)} runs")
    for run, scores in table.items():
        print(run, " ".join(f"{value:.3f}" for value in scores.values()))


if __name__ == "__main__":
    main()
