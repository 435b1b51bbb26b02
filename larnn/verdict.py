"""Did a model learn? A model at chance makes every attention view meaningless, so a run whose
validation accuracy never beats the majority class, or whose training loss stays at chance,
is reported as "did not learn", never as plainly done.

Recorded in a checkpoint's `metadata.metrics["learning"]` as {"learned": bool, "reason": str},
beside `metrics["majority"]`: the test accuracy of always answering the training part's most
frequent class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CHANCE_LOSS_SHARE = 0.9  # a final training loss above this share of ln(classes) is at chance
LEARNING = "learning"  # metrics key of the verdict
MAJORITY = "majority"  # metrics key of the majority-class rate


@dataclass(frozen=True)
class Verdict:
    learned: bool
    reason: str  # a sentence a person reads

    def to_dict(self) -> dict[str, bool | str]:
        return {"learned": self.learned, "reason": self.reason}


def majority_rate(train_y: np.ndarray, y: np.ndarray) -> float:
    """Accuracy on labels `y` of always answering the most frequent class of `train_y`."""
    majority = np.bincount(train_y).argmax()
    return float(np.mean(y == majority)) if len(y) else 0.0


def judge(
    val_curves: Sequence[Sequence[float]],
    val_majority: Sequence[float],
    final_losses: Sequence[float],
    classes: int,
) -> Verdict:
    """The verdict over one or more runs of one configuration (a run per validation fold).

    val_curves: (R, E) validation accuracy per run and epoch; val_majority: (R,) the majority
    class's rate on each run's validation part; final_losses: (R,) each run's last training
    loss. Learned: the mean curve beats the mean majority rate at some epoch, and the mean
    final training loss is below CHANCE_LOSS_SHARE of ln(classes) (the loss of a uniform
    guess).
    """
    epochs = min(len(curve) for curve in val_curves)
    mean_curve = [
        math.fsum(curve[e] for curve in val_curves) / len(val_curves) for e in range(epochs)
    ]
    best = max(mean_curve)
    majority = math.fsum(val_majority) / len(val_majority)
    loss = math.fsum(final_losses) / len(final_losses)
    chance = math.log(classes)
    runs = f" (mean of {len(val_curves)} folds)" if len(val_curves) > 1 else ""
    if loss > CHANCE_LOSS_SHARE * chance:
        return Verdict(
            False,
            f"did not learn: its training loss stayed at chance ({loss:.3f}{runs}, against "
            f"ln {classes} = {chance:.3f} for a uniform guess)",
        )
    if best <= majority:
        return Verdict(
            False,
            f"did not learn: its best validation accuracy{runs}, {best:.1%}, never beat always "
            f"answering the most frequent class ({majority:.1%})",
        )
    return Verdict(
        True,
        f"learned: best validation accuracy{runs} {best:.1%} against {majority:.1%} for the "
        f"most frequent class; training loss {loss:.3f} against {chance:.3f} at chance",
    )
