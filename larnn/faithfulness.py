"""Does the memory matter? Tests of whether what the LARNN attends to decides its prediction.

Attention weights alone are a weak explanation (Jain & Wallace 2019; Serrano & Smith 2019;
Wiegreffe & Pinter 2019). These functions measure instead:

- the erasure test (ERASER's comprehensiveness and sufficiency, DeYoung et al. 2020): hide the
  top-n past steps of a ranking from the model and watch the probability of the class it
  predicted fall (or keep only those n and watch how much it keeps). Rankings: attention at
  the last step, gradient attribution (Captum's Integrated Gradients or Saliency over time x
  channel) and random. A LARNN hides a step from attention (`InferenceKnobs.hidden_steps`,
  every layer); the LSTM baseline, which has no attention, has the step's input occluded
  (set to 0, the training mean after normalisation).
- head importance: the accuracy lost when one head alone is switched off, beside that head's
  mean attention entropy.

Inputs are normalised tensors x (N, T, C) and a `SequenceClassifier` in eval mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from larnn.classifier import SequenceClassifier
from larnn.errors import ConfigError
from larnn.model import InferenceKnobs

RANKINGS = ("attention", "integrated_gradients", "saliency", "random")
IG_STEPS = 32  # Integrated Gradients' steps along the path from the baseline


@torch.no_grad()
def class_probabilities(
    model: SequenceClassifier, x: Tensor, knobs: InferenceKnobs | None = None
) -> Tensor:
    """(N, classes) softmax at the last step."""
    return torch.softmax(model(x, knobs=knobs).logits, dim=-1)


@torch.no_grad()
def attention_ranking(model: SequenceClassifier, x: Tensor) -> np.ndarray:
    """(N, T) attention each past step gets at the last step, summed over heads and layers;
    0 for steps outside the last step's window."""
    record = model(x, return_attention=True).attention
    N, T = x.shape[:2]
    times = record.slot_time[-1]  # (K,) steps held at the last step, -1 if empty
    filled = times >= 0
    scores = np.zeros((N, T))
    for weights in record.weights:  # (N, T, NH, K)
        last = weights[:, -1].sum(1)  # (N, K)
        scores[:, times[filled].numpy()] += last[:, filled].numpy()
    return scores


def attribution(
    model: SequenceClassifier, x: Tensor, method: str, target: Tensor | None = None
) -> Tensor:
    """(N, T, C) attribution of the logit of class `target` (default: the predicted one) to
    each input value: Captum's IntegratedGradients (zero baseline: the training mean after
    normalisation; 32 steps) or Saliency (|gradient|)."""
    from captum.attr import IntegratedGradients, Saliency

    def logits(inputs: Tensor) -> Tensor:
        return model(inputs).logits

    if target is None:
        target = class_probabilities(model, x).argmax(-1)
    x = x.detach().clone().requires_grad_()
    if method == "integrated_gradients":
        result = IntegratedGradients(logits).attribute(x, target=target, n_steps=IG_STEPS)
    elif method == "saliency":
        result = Saliency(logits).attribute(x, target=target, abs=True)
    else:
        raise ConfigError(f"unknown attribution method {method!r}")
    return result.detach()


def gradient_ranking(model: SequenceClassifier, x: Tensor, method: str) -> np.ndarray:
    """(N, T) |attribution| of each step, summed over channels, for the predicted class."""
    return attribution(model, x, method).abs().sum(-1).numpy()


def rank_steps(model: SequenceClassifier, x: Tensor, ranking: str, seed: int = 0) -> np.ndarray:
    """(N, T) scores per step for one of RANKINGS; higher = hidden first."""
    if ranking == "attention":
        if model.architecture != "larnn":
            raise ConfigError("the LSTM baseline has no attention to rank steps by")
        return attention_ranking(model, x)
    if ranking == "random":
        return np.random.default_rng(seed).random(x.shape[:2])
    if ranking not in RANKINGS:
        raise ConfigError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
    return gradient_ranking(model, x, ranking)


def candidate_steps(model: SequenceClassifier, T: int) -> np.ndarray:
    """The steps an erasure may hide: the last step's window for a LARNN (hiding an older
    step from attention changes nothing), every step but the last for the LSTM."""
    if model.architecture == "larnn":
        window = model.encoder.config.window
        return np.arange(max(0, T - 1 - window), T - 1)
    return np.arange(T - 1)


@dataclass(frozen=True)
class ErasureCurve:
    """Mean drop of the predicted class's probability when n steps are hidden, per n."""

    ranking: str
    ns: tuple[int, ...]
    comprehensiveness: np.ndarray  # (len(ns),): p - p(without the top n)
    sufficiency: np.ndarray  # (len(ns),): p - p(with only the top n of the candidates)


@torch.no_grad()
def class_probabilities_without(
    model: SequenceClassifier, x: Tensor, hidden: Sequence[Sequence[int]], batch_size: int = 512
) -> Tensor:
    """(N, classes) at the last step for sequences x (N, T, C), sequence i with the steps
    hidden[i] hidden, in batches."""
    results = []
    for start in range(0, len(x), batch_size):
        rows = slice(start, start + batch_size)
        steps = [tuple(sorted(int(s) for s in h)) for h in hidden[rows]]
        chunk = x[rows]
        if model.architecture == "larnn":
            results.append(class_probabilities(model, chunk, InferenceKnobs(hidden_steps=steps)))
        else:
            occluded = chunk.clone()
            for i, row in enumerate(steps):
                occluded[i, list(row)] = 0.0  # the training mean, after normalisation
            results.append(class_probabilities(model, occluded))
    return torch.cat(results)


def probabilities_without(
    model: SequenceClassifier,
    x: Tensor,
    hidden: Sequence[Sequence[int]],
    targets: Sequence[int],
    batch_size: int = 512,
) -> np.ndarray:
    """(N,) probability of class targets[i] for x[i] with the steps hidden[i] hidden."""
    probabilities = class_probabilities_without(model, x, hidden, batch_size)
    return probabilities[torch.arange(len(x)), torch.as_tensor(list(targets))].numpy()


def erasure_curve(
    model: SequenceClassifier, x: Tensor, scores: np.ndarray, ns: Sequence[int], ranking: str
) -> ErasureCurve:
    """The erasure test over sequences x (N, T, C) for step scores (N, T) of one ranking."""
    N, T = x.shape[:2]
    candidates = candidate_steps(model, T)
    probabilities = class_probabilities(model, x)
    predicted = probabilities.argmax(-1).numpy()  # (N,)
    p = probabilities[torch.arange(N), predicted].numpy()  # (N,)
    ns = tuple(int(n) for n in ns)
    hidden, rows = [], []
    for i in range(N):
        order = candidates[np.argsort(-scores[i, candidates], kind="stable")]
        for n in ns:
            hidden += [order[:n], order[n:]]  # without the top n; with only the top n
            rows += [i, i]
    kept = probabilities_without(model, x[rows], hidden, predicted[rows])
    kept = kept.reshape(N, len(ns), 2)
    drop = p[:, None, None] - kept  # (N, len(ns), 2)
    return ErasureCurve(ranking, ns, drop[..., 0].mean(0), drop[..., 1].mean(0))


def erasure_curves(
    model: SequenceClassifier,
    x: Tensor,
    ns: Sequence[int],
    rankings: Sequence[str] = RANKINGS,
    seed: int = 0,
) -> list[ErasureCurve]:
    """One ErasureCurve per ranking (attention only for a LARNN)."""
    usable = [r for r in rankings if r != "attention" or model.architecture == "larnn"]
    return [
        erasure_curve(model, x, rank_steps(model, x, ranking, seed), ns, ranking)
        for ranking in usable
    ]


def curves_frame(curves: Sequence[ErasureCurve]) -> pd.DataFrame:
    """Long table: ranking, n, comprehensiveness, sufficiency."""
    rows = [
        {"ranking": c.ranking, "n": n, "comprehensiveness": comp, "sufficiency": suff}
        for c in curves
        for n, comp, suff in zip(c.ns, c.comprehensiveness, c.sufficiency, strict=True)
    ]
    return pd.DataFrame(rows)


@torch.no_grad()
def accuracy(model: SequenceClassifier, x: Tensor, y: np.ndarray, knobs=None) -> float:
    predicted = model(x, knobs=knobs).logits.argmax(-1).numpy()
    return float((predicted == np.asarray(y)).mean())


@torch.no_grad()
def head_importance(
    model: SequenceClassifier, x: Tensor, y: np.ndarray, knobs: InferenceKnobs | None = None
) -> pd.DataFrame:
    """Per layer and head: accuracy with that head alone switched off, the drop from the
    accuracy with every head on, and the head's mean attention entropy in bits (over query
    steps with at least two filled slots)."""
    if model.architecture != "larnn":
        raise ConfigError("the LSTM baseline has no attention heads")
    config = model.encoder.config
    L, NH = config.num_layers, config.heads
    knobs = knobs or InferenceKnobs()
    base = accuracy(model, x, y, knobs)
    record = model(x, knobs=knobs, return_attention=True).attention
    several = (record.slot_time >= 0).sum(-1) >= 2  # (T,)
    rows = []
    for layer in range(L):
        weights = record.weights[layer][:, several]  # (N, T', NH, K)
        plogp = torch.where(weights > 0, weights * torch.log2(weights), torch.zeros(()))
        entropy = -plogp.sum(-1).mean((0, 1))  # (NH,)
        for head in range(NH):
            mask = np.ones((L, NH))
            mask[layer, head] = 0.0
            off = accuracy(model, x, y, replace(knobs, head_mask=mask.tolist()))
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "accuracy_without": off,
                    "accuracy_drop": base - off,
                    "entropy_bits": float(entropy[head]),
                }
            )
    return pd.DataFrame(rows)
