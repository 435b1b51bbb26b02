"""How long the app's memory tests take: one erasure test, and head importance over a split.

    python benchmarks/faithfulness_speed.py [--checkpoint DIR] [--repeats 3]

Targets (issue 13): the erasure curves of one sequence (every ranking: attention, Integrated
Gradients, Saliency, random; n = 1, 2, 4, 8; comprehensiveness and sufficiency) < 0.5 s, and
the head-importance table over a 1,000-sequence split < 30 s, on a 2-core CPU. Prints the
best of `--repeats` for each, with the thread count and load average.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from larnn import faithfulness as fa
from larnn.checkpoint import load_checkpoint
from larnn.data import Normalizer
from larnn.tasks import load_task


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/probe_recall_larnn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--split-size", type=int, default=1000)
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.checkpoint)
    task = load_task(checkpoint.metadata.dataset_id, checkpoint.metadata.split)
    normalizer = Normalizer.from_dict(checkpoint.metadata.normalizer)
    test = task.test
    x = torch.from_numpy(normalizer.apply(test.X[: args.split_size])).float()
    y = test.y[: args.split_size]
    model = checkpoint.model.eval()
    print(
        f"{args.checkpoint}: {checkpoint.metadata.dataset_id}, T={x.shape[1]}, "
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}"
    )
    one = best_of(args.repeats, lambda: fa.erasure_curves(model, x[:1], [1, 2, 4, 8]))
    print(f"erasure curves, one sequence: {one:.3f} s (target < 0.5 s)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the app runs (app/main.py: TORCH_THREADS)
    one = best_of(args.repeats, lambda: fa.erasure_curves(model, x[:1], [1, 2, 4, 8]))
    torch.set_num_threads(threads)
    print(f"erasure curves, one sequence, one thread as in the app: {one:.3f} s (target < 0.5 s)")
    table = best_of(args.repeats, lambda: fa.head_importance(model, x, y))
    print(f"head importance, {len(y)} sequences: {table:.2f} s (target < 30 s)")


if __name__ == "__main__":
    main()
