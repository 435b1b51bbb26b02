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

Inputs are normalised tensors x (N, T, C) and a `SequenceClassifier` in eval mode; where
series differ in length, `lengths` (N,) says where each right-padded series ends: it is read
at its last real step, and only its real steps are ranked, hidden or counted.
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
from larnn.model import InferenceKnobs, LARNNConfig

RANKINGS = ("attention", "integrated_gradients", "saliency", "random")
IG_STEPS = 32  # Integrated Gradients' steps along the path from the baseline


def _ends(x: Tensor, lengths: Tensor | None) -> Tensor:
    """(N,) the real length of each series: `lengths`, or T for all."""
    if lengths is None:
        return torch.full((len(x),), x.shape[1], dtype=torch.long)
    return torch.as_tensor(lengths, dtype=torch.long)


@torch.no_grad()
def class_probabilities(
    model: SequenceClassifier,
    x: Tensor,
    knobs: InferenceKnobs | None = None,
    lengths: Tensor | None = None,
) -> Tensor:
    """(N, classes) softmax at each series' last real step."""
    return torch.softmax(model(x, lengths, knobs=knobs).logits, dim=-1)


@torch.no_grad()
def attention_ranking(
    model: SequenceClassifier, x: Tensor, lengths: Tensor | None = None
) -> np.ndarray:
    """(N, T) attention each past step gets at each series' last real step, summed over heads
    and layers; 0 for steps outside that step's window."""
    record = model(x, return_attention=True).attention  # causal: padding changes no real step
    N, T = x.shape[:2]
    last = _ends(x, lengths) - 1  # (N,) each series' last real step
    rows = torch.arange(N)
    times = record.slot_time[last]  # (N, K) steps held at that step, -1 if empty
    weights = sum(w[rows, last].sum(1) for w in record.weights)  # (N, K)
    scores = np.zeros((N, T))
    for i in range(N):
        filled = times[i] >= 0
        scores[i, times[i, filled].numpy()] += weights[i, filled].numpy()
    return scores


def attribution(
    model: SequenceClassifier,
    x: Tensor,
    method: str,
    target: Tensor | None = None,
    lengths: Tensor | None = None,
    knobs: InferenceKnobs | None = None,
) -> Tensor:
    """(N, T, C) attribution of the logit of class `target` (default: the predicted one) to
    each input value: Captum's IntegratedGradients (zero baseline: the training mean after
    normalisation; 32 steps) or Saliency (|gradient|). Padded steps get 0 (the model never
    reads them); `knobs` apply to a LARNN."""
    from captum.attr import IntegratedGradients, Saliency

    def logits(inputs: Tensor, ends: Tensor) -> Tensor:
        return model(inputs, ends, knobs=knobs).logits

    ends = _ends(x, lengths)
    if target is None:
        target = class_probabilities(model, x, knobs, ends).argmax(-1)
    x = x.detach().clone().requires_grad_()
    if method == "integrated_gradients":  # Captum repeats `ends` along the path's inputs
        result = IntegratedGradients(logits).attribute(
            x, target=target, n_steps=IG_STEPS, additional_forward_args=(ends,)
        )
    elif method == "saliency":
        result = Saliency(logits).attribute(
            x, target=target, abs=True, additional_forward_args=(ends,)
        )
    else:
        raise ConfigError(f"unknown attribution method {method!r}")
    return result.detach()


def gradient_ranking(
    model: SequenceClassifier, x: Tensor, method: str, lengths: Tensor | None = None
) -> np.ndarray:
    """(N, T) |attribution| of each step, summed over channels, for the predicted class."""
    return attribution(model, x, method, lengths=lengths).abs().sum(-1).numpy()


def rank_steps(
    model: SequenceClassifier,
    x: Tensor,
    ranking: str,
    seed: int = 0,
    lengths: Tensor | None = None,
) -> np.ndarray:
    """(N, T) scores per step for one of RANKINGS; higher = hidden first."""
    if ranking == "attention":
        if model.architecture != "larnn":
            raise ConfigError("the LSTM baseline has no attention to rank steps by")
        return attention_ranking(model, x, lengths)
    if ranking == "random":
        return np.random.default_rng(seed).random(x.shape[:2])
    if ranking not in RANKINGS:
        raise ConfigError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
    return gradient_ranking(model, x, ranking, lengths)


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
    model: SequenceClassifier,
    x: Tensor,
    hidden: Sequence[Sequence[int]],
    batch_size: int = 512,
    lengths: Tensor | None = None,
) -> Tensor:
    """(N, classes) at the last real step for sequences x (N, T, C), sequence i with the
    steps hidden[i] hidden, in batches."""
    ends = _ends(x, lengths)
    results = []
    for start in range(0, len(x), batch_size):
        rows = slice(start, start + batch_size)
        steps = [tuple(sorted(int(s) for s in h)) for h in hidden[rows]]
        chunk = x[rows]
        if model.architecture == "larnn":
            knobs = InferenceKnobs(hidden_steps=steps)
            results.append(class_probabilities(model, chunk, knobs, ends[rows]))
        else:
            occluded = chunk.clone()
            for i, row in enumerate(steps):
                occluded[i, list(row)] = 0.0  # the training mean, after normalisation
            results.append(class_probabilities(model, occluded, lengths=ends[rows]))
    return torch.cat(results)


def probabilities_without(
    model: SequenceClassifier,
    x: Tensor,
    hidden: Sequence[Sequence[int]],
    targets: Sequence[int],
    batch_size: int = 512,
    lengths: Tensor | None = None,
) -> np.ndarray:
    """(N,) probability of class targets[i] for x[i] with the steps hidden[i] hidden."""
    probabilities = class_probabilities_without(model, x, hidden, batch_size, lengths)
    return probabilities[torch.arange(len(x)), torch.as_tensor(list(targets))].numpy()


def erasure_curve(
    model: SequenceClassifier,
    x: Tensor,
    scores: np.ndarray,
    ns: Sequence[int],
    ranking: str,
    lengths: Tensor | None = None,
) -> ErasureCurve:
    """The erasure test over sequences x (N, T, C) for step scores (N, T) of one ranking;
    each series' candidates are those of its own length."""
    N = len(x)
    ends = _ends(x, lengths)
    probabilities = class_probabilities(model, x, lengths=ends)
    predicted = probabilities.argmax(-1).numpy()  # (N,)
    p = probabilities[torch.arange(N), predicted].numpy()  # (N,)
    ns = tuple(int(n) for n in ns)
    hidden, rows = [], []
    for i in range(N):
        candidates = candidate_steps(model, int(ends[i]))
        order = candidates[np.argsort(-scores[i, candidates], kind="stable")]
        for n in ns:
            hidden += [order[:n], order[n:]]  # without the top n; with only the top n
            rows += [i, i]
    kept = probabilities_without(model, x[rows], hidden, predicted[rows], lengths=ends[rows])
    kept = kept.reshape(N, len(ns), 2)
    drop = p[:, None, None] - kept  # (N, len(ns), 2)
    return ErasureCurve(ranking, ns, drop[..., 0].mean(0), drop[..., 1].mean(0))


def erasure_curves(
    model: SequenceClassifier,
    x: Tensor,
    ns: Sequence[int],
    rankings: Sequence[str] = RANKINGS,
    seed: int = 0,
    lengths: Tensor | None = None,
) -> list[ErasureCurve]:
    """One ErasureCurve per ranking (attention only for a LARNN)."""
    usable = [r for r in rankings if r != "attention" or model.architecture == "larnn"]
    return [
        erasure_curve(model, x, rank_steps(model, x, ranking, seed, lengths), ns, ranking, lengths)
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
def accuracy(
    model: SequenceClassifier,
    x: Tensor,
    y: np.ndarray,
    knobs: InferenceKnobs | None = None,
    lengths: Tensor | None = None,
    batch_size: int = 512,
) -> float:
    """Share of sequences x (N, T, C) whose predicted class is their label y (N,)."""
    ends = _ends(x, lengths).split(batch_size)
    predicted = torch.cat(
        [
            model(chunk, ends[i], knobs=knobs).logits.argmax(-1)
            for i, chunk in enumerate(x.split(batch_size))
        ]
    ).numpy()
    return float((predicted == np.asarray(y)).mean())


def head_mask(config: LARNNConfig, knobs: InferenceKnobs) -> np.ndarray:
    """(L, NH) the knobs' head mask, 1 where a head is on (every head when unset)."""
    L, NH = config.num_layers, config.heads
    if knobs.head_mask is None:
        return np.ones((L, NH))
    return np.broadcast_to(np.asarray(knobs.head_mask, dtype=float), (L, NH)).copy()


def slot_entropy(weights: Tensor, slots: int) -> Tensor:
    """-sum w ln w of attention weights over their dimension `slots`, in nats (0 ln 0 = 0):
    one pass of clamp, log and multiply, where torch.special.entr has no vector kernel."""
    return weights.clamp_min(1e-30).log_().mul_(weights).sum(slots).neg_()


@torch.no_grad()
def head_importance(
    model: SequenceClassifier,
    x: Tensor,
    y: np.ndarray,
    knobs: InferenceKnobs | None = None,
    lengths: Tensor | None = None,
    batch_size: int = 512,
) -> pd.DataFrame:
    """Per layer and head: accuracy with that head switched off too (beside those the knobs
    switch off), the drop from the accuracy with the knobs alone, and the head's mean
    normalised attention entropy, entropy / ln(filled slots): 0 = one slot, 1 = uniform (over
    real query steps with at least two filled slots; as `larnn.split_attention`'s)."""
    if model.architecture != "larnn":
        raise ConfigError("the LSTM baseline has no attention heads")
    config = model.encoder.config
    L, NH = config.num_layers, config.heads
    knobs = knobs or InferenceKnobs()
    ends = _ends(x, lengths)
    base = accuracy(model, x, y, knobs, ends, batch_size)
    entropy_sum, counted = torch.zeros(L, NH, dtype=torch.float64), 0
    for chunk, chunk_ends in zip(x.split(batch_size), ends.split(batch_size), strict=True):
        record = model(chunk, knobs=knobs, return_attention=True).attention
        filled = (record.slot_time >= 0).sum(-1)  # (T,)
        real = torch.arange(chunk.shape[1])[None, :] < chunk_ends[:, None]  # (B, T)
        steps = real & (filled >= 2)[None, :]  # (B, T) the query steps counted
        counted += int(steps.sum())
        log_filled = torch.log(filled.clamp(min=2).float())[None, :, None]  # (1, T, 1)
        for layer in range(L):
            normalised = slot_entropy(record.weights[layer], -1) / log_filled  # (B, T, NH)
            entropy_sum[layer] += (normalised * steps[..., None]).sum((0, 1))  # (NH,)
    entropy = entropy_sum / max(counted, 1)  # (L, NH)
    on = head_mask(config, knobs)
    rows = []
    for layer in range(L):
        for head in range(NH):
            mask = on.copy()
            mask[layer, head] = 0.0
            off = accuracy(model, x, y, replace(knobs, head_mask=mask.tolist()), ends, batch_size)
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "accuracy_without": off,
                    "accuracy_drop": base - off,
                    "entropy": float(entropy[layer, head]),
                }
            )
    return pd.DataFrame(rows)
