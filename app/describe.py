"""What the page says in words about a result: summary metrics and figure titles (pure).

Nothing here imports Streamlit: the page hands each value to a widget as is, and tests call
these directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.faithfulness import steps_text
from app.values import DataView, Fit, KnobChoice, ModelRun
from larnn.inference import truth_score

ROLES_SHOWN = ("LARNN", "LSTM")  # the summary has a column for each, run or not


def heads_text(choice: KnobChoice) -> str:
    """'all heads', 'heads 0, 2, 3' or 'no head': the heads switched on."""
    if choice.knobs.head_mask is None:
        return "all heads"
    if not choice.heads_on:
        return "no head"
    return "heads " + ", ".join(str(h) for h in choice.heads_on)


def heads_on_text(choice: KnobChoice) -> str:
    """'all 4 heads on', 'heads 0, 3 of 4 on' or 'no head on (all 4 off)'."""
    heads = choice.trained.heads
    if choice.knobs.head_mask is None:
        return f"all {heads} heads on"
    if not choice.heads_on:
        return f"no head on (all {heads} off)"
    return f"{heads_text(choice)} of {heads} on"


NO_HEAD_ON = (
    "Not applicable: every head is switched off, so the LARNN attends to nothing (its memory "
    "adds nothing to each step). Switch a head on in the sidebar to score its attention."
)


def knobs_text(choice: KnobChoice) -> str:
    """ "k' = 14, tanh, heads 0, 1, 3 of 4 on": every knob, changed or not; ", steps 40-45
    hidden" when steps are hidden."""
    hidden = choice.knobs.hidden_steps
    hidden_text = f", steps {steps_text(hidden)} hidden" if hidden else ""
    return f"k' = {choice.window}, {choice.kv_activation}, {heads_on_text(choice)}{hidden_text}"


def context_line(
    data: DataView,
    index: int,
    runs: dict[str, ModelRun],
    choice: KnobChoice | None,
    lstm_occluded: bool = False,
) -> str:
    """What a figure of one sequence shows: 'LARNN m1 (k' = 14, tanh, all 4 heads on) ·
    LSTM m2 · UCI HAR (smartphone activity), test split, sequence #12'. With steps hidden from
    the LARNN, the LSTM is marked as reading every step, or, in the memory-edit figure
    (`lstm_occluded`), as reading its input occluded at them."""
    hidden = choice is not None and bool(choice.knobs.hidden_steps)
    parts = []
    for role, run in runs.items():
        knobs = f" ({knobs_text(choice)})" if role == "LARNN" and choice is not None else ""
        if role == "LSTM" and hidden:
            knobs = " (input occluded at them)" if lstm_occluded else " (every step as given)"
        parts.append(f"{role} {run.model.name}{knobs}")
    return " · ".join([*parts, data.sequence_name(index)])


def sweep_context(
    data: DataView, larnn_name: str, lstm_name: str | None, choice: KnobChoice, sample_size: int
) -> str:
    """What the sweep shows: the models, the knobs other than k', the sample."""
    parts = [f"LARNN {larnn_name} ({choice.kv_activation}, {heads_on_text(choice)})"]
    if lstm_name is not None:
        parts.append(f"LSTM {lstm_name}")
    return " · ".join([*parts, f"{data.name}, a fixed sample of {sample_size} sequences"])


def split_context(
    data: DataView,
    larnn_name: str,
    choice: KnobChoice,
    sequences: str,
    lstm_name: str | None = None,
) -> str:
    """What a figure over the split shows: "LARNN m1 (k' = 3, none, all 8 heads on) [· LSTM m2]
    · UCI HAR (smartphone activity), test split · all 2,947 sequences"."""
    lstm = f" · LSTM {lstm_name}" if lstm_name else ""
    return f"LARNN {larnn_name} ({knobs_text(choice)}){lstm} · {data.name} · {sequences}"


def heatmap_title(choice: KnobChoice) -> str:
    return (
        f"Layer {choice.layer} attention, mean over {heads_text(choice)}, window k' = "
        f"{choice.window}: each column is one query step t"
    )


def head_titles(run: ModelRun, choice: KnobChoice, relevant_steps: np.ndarray | None) -> list[str]:
    """'head 2 · truth 1.8×' for each head of the layer shown; '(off)' for those switched off.

    relevant_steps: (T,) bool ground truth of the sequence, None when unknown.
    """
    heads = run.inference.layer_attention(choice.layer).shape[1]  # (T, NH, K)
    titles = []
    for h in range(heads):
        title = f"head {h}"
        if h not in choice.heads_on:
            title += " (off)"
        elif relevant_steps is not None:
            score = truth_score(run.inference, choice.layer, relevant_steps, [h])
            if not np.isnan(score):
                title += f" · truth {score:.1f}×"
        titles.append(title)
    return titles


def most_attended(step: pd.DataFrame, t: int, top: int = 5) -> str:
    """'**Step t = 9 attends most to** j = 8 (lag 1, 0.40), ...' from `step_attention` rows."""
    rows = step.sort_values("weight", ascending=False).head(top)
    return f"**Step t = {t} attends most to** " + ", ".join(
        f"j = {int(r.j)} (lag {int(r.lag)}, {r.weight:.2f})" for r in rows.itertuples()
    )


def breakable(name: str) -> str:
    """A class name as Markdown that may wrap after each underscore ('WALKING_ DOWNSTAIRS'),
    so a narrow column shows it whole rather than cut to 'WALKING_...'."""
    return name.replace("_", "\\_\u200b")  # an escaped underscore, then a zero-width space


def summary_metrics(
    data: DataView,
    index: int,
    runs: dict[str, ModelRun],
    fits: dict[str, Fit],
    choice: KnobChoice | None,
) -> list[dict]:
    """The summary row, as keyword arguments of `st.metric`: the sequence, each model's
    prediction, the LARNN's attention on truth and its knobs."""
    true_class = None if data.labels is None else int(data.labels[index])
    quiet = {"delta_color": "off", "delta_arrow": "off"}
    metrics: list[dict] = []
    if true_class is not None:
        metrics.append(
            {
                "label": "True class",
                "value": breakable(data.class_names[true_class]),
                "delta": f"sequence #{index}",
                **quiet,
            }
        )
    else:
        metrics.append({"label": "Case", "value": (data.case_names or ("?",))[index]})
    for role in ROLES_SHOWN:
        if role not in runs:
            metrics.append(
                {"label": f"{role} predicts", "value": "-", "delta": "no model", **quiet}
            )
            continue
        run = runs[role]
        k = run.inference.predicted
        detail, color = f"p = {run.inference.probabilities[k]:.2f}", "off"
        if true_class is not None and fits[role].labels_comparable:
            right = k == true_class
            detail += " · right" if right else " · wrong"
            color = "green" if right else "red"
        if not fits[role].belongs:  # the warnings above say why
            detail += " · not its kind of data"
            color = "orange"
        metrics.append(
            {
                "label": f"{role} predicts",
                "value": breakable(run.model.class_names[k]),
                "delta": detail,
                "delta_color": color,
                "delta_arrow": "off",
            }
        )
    if "LARNN" in runs and data.relevant_steps is not None and choice is not None:
        score = truth_score(
            runs["LARNN"].inference,
            choice.layer,
            data.relevant_steps[index, : len(data.sequence(index))],
            choice.heads_on,
        )
        about = (
            "Attention mass on the ground-truth steps, divided by what uniform attention over "
            "the filled window would put there; 1 = chance. Counts steps after the first "
            "ground-truth step, over the heads switched on."
        )
        if not choice.heads_on:
            value, delta, about = "n/a", "no head on", NO_HEAD_ON
        elif np.isnan(score):
            value, delta = "n/a", "no truth step in any window"
            about += " No step of this sequence has a ground-truth step in its window to score."
        else:
            value, delta = f"{score:.2f}×", f"chance = 1× · layer {choice.layer}"
        metrics.append(
            {"label": "Attention on truth", "value": value, "delta": delta, **quiet, "help": about}
        )
    if choice is not None:
        trained = choice.trained
        metrics.append(
            {
                "label": "LARNN knobs",
                "value": f"k' = {choice.window}",
                "delta": f"{choice.kv_activation} · heads on "
                f"{len(choice.heads_on)}/{trained.heads}",
                "delta_color": "orange" if choice.changed else "off",
                "delta_arrow": "off",
                "help": f"Trained with k = {trained.window}, {trained.kv_activation}, "
                "all heads on (orange: something differs). Change them in the sidebar.",
            }
        )
    return metrics


# What a classifier's head reads (ClassifierConfig.readout), in words.
READOUT_WORDS = {
    "last": "the last step's hidden state",
    "mean": "the mean of every step's hidden state",
}


def encoder_inputs(asinh_scale: float) -> str:
    """What the encoder reads at each step (ClassifierConfig.asinh_scale), in words."""
    if asinh_scale <= 0:
        return "the normalised channels"
    return (
        f"each normalised channel x and asinh(x / {asinh_scale:g}), which magnifies small "
        "movements and compresses large ones"
    )


def training_protocol(train_config: dict) -> str:
    """How the checkpoint's model was chosen, from its recorded training config ("" if none)."""
    if not train_config:
        return ""
    if train_config.get("refit"):
        return (
            f"Refit: trained on the training and validation parts together for "
            f"{train_config.get('epochs', '?')} epochs, so it has no validation score; the test "
            "part was scored once."
        )
    return "Selected on the validation part (its best epoch); the test part was scored once."


def prediction_step(readout: str) -> str:
    """The end of the line on the last step's attention: whether that step alone predicts."""
    role = (
        f"the last step. This model predicts from {READOUT_WORDS['mean']}, so the earlier steps' "
        "attention counts too"
        if readout == "mean"
        else "the last step, the one that makes the prediction"
    )
    return f": {role} (the slider moves the plot's t, not this line)."


def unlearned_warning(role: str, name: str, metrics: dict) -> str | None:
    """The warning over a model whose checkpoint says it did not learn (larnn.verdict), else
    None: its predictions and attention are those of a model at chance."""
    learning = metrics.get("learning")
    if not isinstance(learning, dict) or learning.get("learned") is not False:
        return None
    return (
        f"**The {role} ({name}) {learning.get('reason', 'did not learn')}.** Its predictions "
        "are no better than a guess, so what it attends to explains nothing; train it again "
        "(more budget, another learning rate or readout) before reading its views."
    )
