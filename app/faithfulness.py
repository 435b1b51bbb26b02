"""Does the memory matter? The page's memory edits and faithfulness numbers (pure, issue 13).

Nothing here imports Streamlit: which steps a set of widget values and heatmap clicks hide,
the LSTM baseline's input with the same steps occluded, where attention piles onto the
oldest slot, what changes when steps are hidden, and the tables and JSON record the
Export section hands out. The figures are in `app.faithfulness_figures`, the widgets in
`app.sections.faithfulness`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from larnn.data import Normalizer, attention_on_truth
from larnn.faithfulness import ErasureCurve, curves_frame
from larnn.inference import SequenceInference, head_weights

ERASURE_NS = (1, 2, 4, 8)  # how many steps the erasure test hides (the benchmark's n)
# The longest sequence the per-sequence attribution and erasure test run on. Both run each
# model many times over the whole sequence (Integrated Gradients: 32 forward and backward
# passes), which a long upload would turn into minutes per knob change.
ANALYSIS_MAX_STEPS = 2_000
PILED = 0.5  # a query step "piles onto the oldest slot" when that slot gets at least this


# --- which steps are hidden -----------------------------------------------------------------------


def hidden_steps(hide_range: tuple[int, int] | None, clicked: Iterable[int]) -> tuple[int, ...]:
    """The steps hidden, ascending: those of the range (inclusive; None: no range) and the
    clicked ones. A click on a step of the range shows it again (symmetric difference)."""
    ranged = set() if hide_range is None else set(range(hide_range[0], hide_range[1] + 1))
    return tuple(sorted(ranged ^ {int(s) for s in clicked}))


def toggled(clicked: frozenset[int], steps: Iterable[int]) -> frozenset[int]:
    """The clicked steps after clicking `steps`: each one clicked is added, or removed again."""
    return frozenset(clicked ^ {int(s) for s in steps})


def clicked_steps(points: Sequence[dict]) -> list[int]:
    """The past step j of each clicked heatmap cell, from the points app.live_chart reports
    (a cell's customdata is [j, lag, ...]); cells with j < 0, or without customdata, are
    ignored."""
    steps = []
    for point in points:
        custom = point.get("customdata")
        if custom and int(custom[0]) >= 0:
            steps.append(int(custom[0]))
    return steps


def steps_text(steps: Sequence[int]) -> str:
    """'40-45, 57' for steps (40, 41, 42, 43, 44, 45, 57); 'none' when empty."""
    ordered = np.unique(np.asarray(steps, dtype=int))
    if not len(ordered):
        return "none"
    stretches = np.split(ordered, np.flatnonzero(np.diff(ordered) != 1) + 1)
    return ", ".join(str(s[0]) if len(s) == 1 else f"{s[0]}-{s[-1]}" for s in stretches)


def occluded(raw: np.ndarray, steps: Sequence[int], normalizer: Normalizer) -> np.ndarray:
    """A raw (T, C) sequence with the input at `steps` set to the training mean: 0 after
    normalisation, as `larnn.faithfulness` occludes steps for the LSTM baseline."""
    result = np.array(raw, dtype=np.float32, copy=True)
    if len(steps):
        result[list(steps)] = np.asarray(normalizer.mean, dtype=np.float32)
    return result


# --- where attention piles onto the oldest slot ---------------------------------------------------


@dataclass(frozen=True)
class OldestSlot:
    """The share of attention on the oldest filled slot, per query step t.

    share: (T,) weight on the oldest filled slot (mean over the heads on); NaN where fewer
    than two slots are filled (one slot takes all attention by definition). uniform: (T,)
    what uniform attention would give it (1 / filled slots), NaN likewise.
    """

    share: np.ndarray
    uniform: np.ndarray
    first: int = 0  # the query step of share[0]

    @property
    def mean(self) -> float:
        return float(np.nanmean(self.share)) if np.isfinite(self.share).any() else float("nan")

    @property
    def mean_uniform(self) -> float:
        return float(np.nanmean(self.uniform)) if np.isfinite(self.uniform).any() else float("nan")

    @property
    def piled(self) -> tuple[int, ...]:
        """The query steps t whose oldest slot gets at least PILED of the attention."""
        piled = np.flatnonzero(np.nan_to_num(self.share) >= PILED)
        return tuple((self.first + piled).tolist())


def oldest_slot_share(
    inference: SequenceInference,
    layer: int,
    heads: Sequence[int] | None = None,
    span: tuple[int, int] | None = None,
) -> OldestSlot:
    """`OldestSlot` of one layer, attention averaged over `heads` (all when None), over the
    query steps of `span` (first, stop; all when None). A slot counts as filled when it holds
    a step (slot_time >= 0) and that step is not hidden (a hidden step's slot gets no
    attention, like an empty one)."""
    first, stop = span if span is not None else (0, len(inference.slot_time))
    weights = head_weights(inference, layer, heads, (first, stop))  # (S, K)
    filled = inference.slot_time[first:stop] >= 0  # (S, K)
    attended = inference.layer_attention(layer)[first:stop].sum(1) > 0  # (S, K) not hidden
    seen = filled & attended
    counted = seen.sum(1) >= 2  # (T,)
    oldest = np.argmax(seen, axis=1)  # (T,) first filled slot: slots are oldest first
    share = np.where(counted, weights[np.arange(len(weights)), oldest], np.nan)
    uniform = np.where(counted, 1.0 / np.maximum(seen.sum(1), 1), np.nan)
    return OldestSlot(share, uniform, first)


def oldest_slot_text(oldest: OldestSlot, layer: int) -> str:
    """What the page says about the oldest slot, in one sentence."""
    if not np.isfinite(oldest.share).any():
        return "No query step has two or more slots to choose from."
    where = (
        f"it gets at least {PILED:.0%} at t = {steps_text(oldest.piled)}"
        if oldest.piled
        else f"no query step gives it {PILED:.0%} or more"
    )
    return (
        f"**Oldest slot (layer {layer}):** {oldest.mean:.0%} of the attention falls on the "
        f"oldest filled slot on average (uniform attention would give {oldest.mean_uniform:.0%}); "
        f"{where}."
    )


@dataclass(frozen=True)
class Retrieval:
    """Where the last step t looks, scored against the ground-truth steps in its window."""

    t: int
    steps: tuple[int, ...]  # the ground-truth steps in the last step's window
    share: float  # attention on their slots (mean over the heads on)
    score: float  # `attention_on_truth` at the last step only: share / uniform share


def last_step_retrieval(
    inference: SequenceInference,
    layer: int,
    relevant_steps: np.ndarray,
    heads: Sequence[int] | None = None,
) -> Retrieval | None:
    """How much of the last step's attention falls on the ground-truth steps (T,) bool;
    None when none of them is in its window."""
    t = len(inference.slot_time) - 1
    times = inference.slot_time[t]  # (K,)
    relevant = np.asarray(relevant_steps, dtype=bool)
    truth = (times >= 0) & relevant[np.clip(times, 0, None)]  # (K,)
    if not truth.any():
        return None
    chosen = list(range(inference.layer_attention(layer).shape[1])) if heads is None else heads
    share = float(head_weights(inference, layer, chosen)[t, truth].sum())
    query = np.zeros((1, t + 1), dtype=bool)
    query[0, t] = True
    weights = inference.layer_attention(layer)[None][:, :, list(chosen)]  # (1, T, NH', K)
    score = attention_on_truth(weights, inference.slot_time, relevant[None], query_steps=query)
    return Retrieval(t, tuple(times[truth].tolist()), share, score)


def retrieval_text(retrieval: Retrieval) -> str:
    """What the page says about the last step's retrieval, in one sentence."""
    return (
        f"**Retrieval at the last step (t = {retrieval.t}):** {retrieval.share:.0%} of its "
        f"attention falls on the ground-truth step(s) j = {steps_text(retrieval.steps)}, "
        f"{retrieval.score:.1f}x what uniform attention would give."
    )


# --- what hiding steps changes --------------------------------------------------------------------


@dataclass(frozen=True)
class EditedRun:
    """One model on the sequence shown, as is and with the hidden steps hidden (LARNN) or
    occluded (LSTM baseline)."""

    role: str
    before: SequenceInference
    after: SequenceInference
    class_names: tuple[str, ...]
    how: str  # "hidden from attention" or "input occluded"


def edits_table(runs: Sequence[EditedRun]) -> pd.DataFrame:
    """One row per model: what it predicts with every step and with the steps hidden."""
    rows = []
    for run in runs:
        k = run.before.predicted
        rows.append(
            {
                "model": run.role,
                "steps": run.how,
                "predicts": run.class_names[k],
                "p": float(run.before.probabilities[k]),
                "predicts with steps hidden": run.class_names[run.after.predicted],
                "p of the same class": float(run.after.probabilities[k]),
                "drop": float(run.before.probabilities[k] - run.after.probabilities[k]),
            }
        )
    return pd.DataFrame(rows)


# --- faithfulness numbers -------------------------------------------------------------------------


def erasure_table(curves: dict[str, Sequence[ErasureCurve]], scope: str) -> pd.DataFrame:
    """Long table of erasure curves per model: model, ranking, n, comprehensiveness,
    sufficiency, and `scope` (what they were measured on) as a column."""
    parts = [curves_frame(c).assign(model=role) for role, c in curves.items() if c]
    if not parts:
        return pd.DataFrame(
            columns=["scope", "model", "ranking", "n", "comprehensiveness", "sufficiency"]
        )
    frame = pd.concat(parts, ignore_index=True).assign(scope=scope)
    return frame[["scope", "model", "ranking", "n", "comprehensiveness", "sufficiency"]]


def mean_curves(chunks: Sequence[tuple[int, Sequence[ErasureCurve]]]) -> list[ErasureCurve]:
    """Erasure curves of a whole sample from those of its chunks: (chunk size, curves)
    pairs, averaged with the chunk sizes as weights (each curve is a mean over its chunk)."""
    if not chunks:
        return []
    total = sum(size for size, _ in chunks)
    merged = []
    for i, first in enumerate(chunks[0][1]):
        comp = sum(size * curves[i].comprehensiveness for size, curves in chunks) / total
        suff = sum(size * curves[i].sufficiency for size, curves in chunks) / total
        merged.append(ErasureCurve(first.ranking, first.ns, comp, suff))
    return merged


@dataclass
class FaithfulnessNumbers:
    """What the faithfulness sections measured on the page, for the exports."""

    hidden_steps: tuple[int, ...] = ()
    edits: pd.DataFrame | None = None  # `edits_table`
    erasure: pd.DataFrame | None = None  # `erasure_table` of the sequence shown
    split_erasure: pd.DataFrame | None = None  # `erasure_table` of a split sample
    head_importance: pd.DataFrame | None = None  # `larnn.faithfulness.head_importance`
    notes: dict[str, str] = field(default_factory=dict)  # what each number was measured on

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables measured, by file-name part: edits, erasure, split_erasure, heads."""
        named = {
            "edits": self.edits,
            "erasure": self.erasure,
            "split_erasure": self.split_erasure,
            "heads": self.head_importance,
        }
        return {name: frame for name, frame in named.items() if frame is not None}


def faithfulness_document(numbers: FaithfulnessNumbers) -> dict:
    """The JSON-ready part of the export document that the faithfulness sections add."""
    return {
        "hidden_steps": list(numbers.hidden_steps),
        **{name: frame.to_dict(orient="records") for name, frame in numbers.tables().items()},
        "memory_notes": dict(numbers.notes),
    }
