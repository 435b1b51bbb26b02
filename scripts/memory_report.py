"""Does the memory matter? The README's numbers for the shipped recall probe pair.

    python scripts/memory_report.py [--sequences 100] [--larnn DIR] [--lstm DIR]

On the test split: accuracy of both models; the LARNN's attention on the truth (the slot of
the queried pair) at the query step and over every step after the evidence; its accuracy
with every head off and with window 1; the head-importance table; and the erasure test on
the first `--sequences` test sequences (mean drop of the predicted probability when the
top n past steps of each ranking are hidden, and when only they are kept).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from larnn import faithfulness as fa
from larnn.checkpoint import load_checkpoint
from larnn.data import Normalizer, attention_on_truth
from larnn.model import InferenceKnobs
from larnn.tasks import load_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--larnn", default="checkpoints/probe_recall_larnn")
    parser.add_argument("--lstm", default="checkpoints/probe_recall_lstm")
    parser.add_argument("--sequences", type=int, default=100)
    args = parser.parse_args()
    started = time.perf_counter()
    larnn, lstm = load_checkpoint(args.larnn), load_checkpoint(args.lstm)
    task = load_task(larnn.metadata.dataset_id, larnn.metadata.split)
    test = task.test
    x = torch.from_numpy(Normalizer.from_dict(larnn.metadata.normalizer).apply(test.X)).float()
    x_lstm = torch.from_numpy(Normalizer.from_dict(lstm.metadata.normalizer).apply(test.X))
    model, baseline = larnn.model.eval(), lstm.model.eval()
    print(f"{larnn.metadata.dataset_id}, test split: {len(test.y)} sequences")
    print(f"LARNN accuracy {fa.accuracy(model, x, test.y):.4f}")
    print(f"LSTM  accuracy {fa.accuracy(baseline, x_lstm.float(), test.y):.4f}")

    with torch.no_grad():
        record = model(x, return_attention=True).attention
    query = np.zeros_like(test.relevant_steps)
    query[:, -1] = True  # the query marker: the step that must retrieve
    for layer, weights in enumerate(record.weights):
        at_query = attention_on_truth(weights, record.slot_time.numpy(), test.relevant_steps, query)
        after = attention_on_truth(weights, record.slot_time.numpy(), test.relevant_steps)
        print(
            f"layer {layer}: attention on truth {at_query:.2f}x chance at the query step, "
            f"{after:.2f}x over every step after the evidence"
        )
    heads = model.encoder.config.heads
    for label, knobs in (
        ("every head off", InferenceKnobs(head_mask=[0.0] * heads)),
        ("window 1", InferenceKnobs(window=1)),
    ):
        print(f"LARNN accuracy with {label}: {fa.accuracy(model, x, test.y, knobs):.4f}")
    print("\nhead importance (test split)")
    print(fa.head_importance(model, x, test.y).round(4).to_string(index=False))

    n = args.sequences
    ns = [1, 2, 4, 8]
    for name, net, inputs in (("LARNN", model, x), ("LSTM", baseline, x_lstm.float())):
        curves = fa.erasure_curves(net, inputs[:n], ns)
        print(f"\nerasure test, {name}, first {n} test sequences")
        print(fa.curves_frame(curves).round(3).to_string(index=False))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
