"""Does a LARNN lean on its memory? Accuracy as trained, at every window k', with every head off.

    python scripts/memory_use.py checkpoints/uci_har_larnn [more checkpoints] [--split val]

For each checkpoint, on the split of its own task (as recorded in its metadata): the accuracy
at each inference window k' = 1 .. the queue size (the trained k' marked) and with every head
switched off. A LARNN whose accuracy at k' = 1 equals its trained accuracy barely uses its
memory. Choose between checkpoints on the validation split; read the test split once.
"""

from __future__ import annotations

import argparse

import torch

from larnn import faithfulness as fa
from larnn.checkpoint import load_checkpoint
from larnn.data import Normalizer
from larnn.model import InferenceKnobs
from larnn.tasks import load_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    for folder in args.checkpoints:
        checkpoint = load_checkpoint(folder)
        metadata, model = checkpoint.metadata, checkpoint.model
        part = load_task(metadata.dataset_id, metadata.split).part(args.split)
        if len(part.y) == 0:
            print(f"{folder}: no {args.split} part (a refit trains on it)")
            continue
        x = torch.from_numpy(Normalizer.from_dict(metadata.normalizer).apply(part.X)).float()
        config = model.encoder.config
        print(f"{folder}: {metadata.dataset_id}, {args.split} split, {len(part.y)} sequences")
        for window in range(1, config.queue_size + 1):
            mark = "  (trained)" if window == config.window else ""
            accuracy = fa.accuracy(model, x, part.y, InferenceKnobs(window=window))
            print(f"  k' = {window:2d}: {accuracy:.4f}{mark}")
        off = fa.accuracy(model, x, part.y, InferenceKnobs(head_mask=[0.0] * config.heads))
        print(f"  every head off: {off:.4f}")


if __name__ == "__main__":
    main()
