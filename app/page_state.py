"""A link that restores the explorer's view: the page's state as query parameters (pure).

`to_query` writes a `PageState` (dataset, split, models, sequence, knobs, hidden steps) as
the parameters of a link, `from_query` reads one back, checking each parameter's form; the
`checked_*` functions then check a part against what the page offers now (datasets, models,
sequences, the LARNN's settings). A part that does not fit comes back as None with a sentence
for people saying why, and the page falls back to its default for it: a stale link (a model
since removed, a shorter split) opens the page, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from urllib.parse import urlencode

from app.catalog import SPLIT_LABELS
from app.faithfulness import steps_text
from app.values import KnobChoice, ModelRun
from larnn.model import ACTIVATIONS, LARNNConfig

NO_MODEL = "none"  # the LSTM picker's "(none)"
UPLOADED = "upload"  # a checkpoint uploaded by hand: the link names the picker's choice only
MAX_LINK_STEPS = 100_000  # hidden steps a link may name (a longer series is not uploaded)
PARAMETERS = (
    "dataset",
    "split",
    "larnn",
    "lstm",
    "sequence",
    "window",
    "heads",
    "activation",
    "layer",
    "hidden",
)


@dataclass(frozen=True)
class PageState:
    """What a link restores; None: the page's default for that part."""

    dataset: str | None = None  # a dataset id ("probe:recall", "uci_har", "file:X") or "upload"
    split: str | None = None  # "test", "val" or "train"
    larnn: str | None = None  # checkpoint name, or UPLOADED
    lstm: str | None = None  # checkpoint name, UPLOADED or NO_MODEL
    sequence: int | None = None  # index in the split (or the upload's case)
    window: int | None = None  # k'
    heads: tuple[int, ...] | None = None  # heads switched on; () for none
    activation: str | None = None  # on keys/values
    layer: int | None = None  # the layer shown
    hidden: tuple[int, ...] | None = None  # past steps hidden from attention


def state_of(
    dataset: str,
    split: str | None,
    runs: dict[str, ModelRun],
    index: int,
    choice: KnobChoice | None,
) -> PageState:
    """The state of a view: its dataset and split, the models run (an uploaded checkpoint
    as UPLOADED, no LSTM as NO_MODEL), the sequence, and every knob when a LARNN runs."""

    def model(role: str) -> str | None:
        run = runs.get(role)
        if run is None:
            return NO_MODEL if role == "LSTM" else None
        return UPLOADED if run.model.key.startswith("upload:") else run.model.name

    knobs = {}
    if choice is not None:
        knobs = {
            "window": choice.window,
            "heads": choice.heads_on,
            "activation": choice.kv_activation,
            "layer": choice.layer,
            "hidden": tuple(choice.knobs.hidden_steps or ()),
        }
    return PageState(dataset, split, model("LARNN"), model("LSTM"), index, **knobs)


def to_query(state: PageState) -> dict[str, str]:
    """The link's query parameters, in PARAMETERS order; parts left None are left out."""
    query: dict[str, str] = {}
    for name in PARAMETERS:
        value = getattr(state, name)
        if value is None:
            continue
        if name == "heads":
            value = ",".join(str(h) for h in value) if value else "none"
        elif name == "hidden":
            value = steps_text(value).replace(" ", "") if value else "none"
        query[name] = str(value)
    return query


def link(page_url: str, state: PageState) -> str:
    """The page's address (its own query and fragment dropped) with the state's parameters."""
    base = page_url.split("#")[0].split("?")[0]
    return f"{base}?{urlencode(to_query(state), safe=',:-')}"


def from_query(params: Mapping[str, str | Sequence[str]]) -> tuple[PageState, list[str]]:
    """The state a link's query parameters name, and a sentence for each one that is not of
    the right form (that part is left None: the page's default)."""
    values: dict[str, object] = {}
    problems: list[str] = []
    for name, raw in params.items():
        text = raw if isinstance(raw, str) else (raw[-1] if raw else "")
        if name not in PARAMETERS:
            problems.append(f"The link's parameter '{name}' means nothing here; it is ignored.")
            continue
        try:
            values[name] = _parse(name, text.strip())
        except ValueError as error:
            problems.append(f"The link's {name}={text!r} is not used: {error}.")
    return PageState(**{f.name: values.get(f.name) for f in fields(PageState)}), problems


def _parse(name: str, text: str) -> object:
    if name == "split":
        if text not in SPLIT_LABELS:
            raise ValueError(f"a split is one of {', '.join(SPLIT_LABELS)}")
        return text
    if name == "activation":
        if text not in ACTIVATIONS:
            raise ValueError(f"the activation is one of {', '.join(ACTIVATIONS)}")
        return text
    if name in ("sequence", "layer"):
        return _whole(text, 0)
    if name == "window":
        return _whole(text, 1)
    if name == "heads":
        return () if text == "none" else tuple(sorted({_whole(h, 0) for h in text.split(",")}))
    if name == "hidden":
        return () if text == "none" else _steps(text)
    if not text:
        raise ValueError("it is empty")
    return text


def _whole(text: str, least: int) -> int:
    if not text.isdigit() or int(text) < least:
        raise ValueError(f"expected a whole number of at least {least}")
    return int(text)


def _steps(text: str) -> tuple[int, ...]:
    """'3,7-9' -> (3, 7, 8, 9)."""
    steps: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        low, high = _whole(first, 0), _whole(last or first, 0)
        if high < low:
            raise ValueError(f"the range {part} runs backwards")
        if len(steps) + high - low + 1 > MAX_LINK_STEPS:
            raise ValueError(f"a link hides at most {MAX_LINK_STEPS:,} steps")
        steps.update(range(low, high + 1))
    return tuple(sorted(steps))


# --- each part against what the page offers now ---------------------------------------------------


def checked_choice(
    value: str, offered: Sequence[str], what: str, default: str
) -> tuple[str | None, str | None]:
    """(value, None) when the page offers it, else (None, why): for the dataset and the
    checkpoints, which may be gone since the link was made."""
    if value in offered:
        return value, None
    names = ", ".join(f"'{name}'" for name in offered)
    return None, (
        f"This link's {what} '{value}' is not offered here (offered: {names}); showing "
        f"{default} instead."
    )


def checked_sequence(index: int, count: int) -> tuple[int | None, str | None]:
    if index < count:
        return index, None
    return None, (
        f"This link's sequence #{index} is beyond the {count} sequences here (0 to "
        f"{count - 1}); showing sequence #0 instead."
    )


def checked_knobs(state: PageState, trained: LARNNConfig) -> tuple[dict[str, object], list[str]]:
    """The knob widget values the link sets that this LARNN can take (by widget name, as
    `app.knobs.trained_widget_values`), and why each other one is left as trained."""
    values: dict[str, object] = {}
    problems: list[str] = []
    if state.window is not None:
        if state.window <= trained.queue_size:
            values["window"] = state.window
        else:
            problems.append(
                f"This link's window k' = {state.window} is beyond this LARNN's queue of "
                f"{trained.queue_size} past steps; showing the trained k = {trained.window}."
            )
    if state.heads is not None:
        if all(h < trained.heads for h in state.heads):
            values["heads"] = list(state.heads)
        else:
            problems.append(
                f"This link switches on heads {', '.join(map(str, state.heads))}, but this "
                f"LARNN has {trained.heads} (0 to {trained.heads - 1}); showing every head on."
            )
    if state.activation is not None:
        values["activation"] = state.activation
    if state.layer is not None:
        if state.layer < trained.num_layers:
            values["layer"] = state.layer
        else:
            problems.append(
                f"This link shows layer {state.layer}, but this LARNN has "
                f"{trained.num_layers} layer(s); showing layer 0."
            )
    return values, problems


def checked_hidden(steps: Iterable[int], length: int) -> tuple[frozenset[int], str | None]:
    """The steps a sequence of `length` steps can hide (0 to length - 2: the last step is in
    no query step's window), and why the others are not hidden."""
    last = length - 2
    kept = frozenset(s for s in steps if s <= last)
    dropped = sorted(set(steps) - kept)
    if not dropped:
        return kept, None
    return kept, (
        f"This link hides steps {steps_text(dropped)}, beyond what this sequence of {length} "
        f"steps can hide (0 to {max(last, 0)}); they are shown."
    )
