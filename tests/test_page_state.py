"""app.page_state: a link that restores the view, alone (round trip, each bad part) and on the
page under AppTest (a link restores the sidebar; a stale one says why and opens the defaults).
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from test_app import APP, RECALL, _no_failure, chart_specs, open_sections

from app import knobs, page_state
from app.page_state import PageState
from app.values import KnobChoice, Loaded, ModelRun
from larnn.model import LARNNConfig

FULL = PageState(
    dataset="probe:cue_shape",
    split="val",
    larnn="probe_cue_shape_larnn",
    lstm="none",
    sequence=3,
    window=2,
    heads=(1,),
    activation="tanh",
    layer=0,
    hidden=(4, 5, 6, 9),
)
TRAINED = LARNNConfig(input_size=3, hidden_size=8, heads=2, window=6, max_window=10)


# --- the parameters -------------------------------------------------------------------------------


def test_a_state_round_trips_through_its_query():
    query = page_state.to_query(FULL)
    assert query == {
        "dataset": "probe:cue_shape",
        "split": "val",
        "larnn": "probe_cue_shape_larnn",
        "lstm": "none",
        "sequence": "3",
        "window": "2",
        "heads": "1",
        "activation": "tanh",
        "layer": "0",
        "hidden": "4-6,9",
    }
    assert page_state.from_query(query) == (FULL, [])
    nothing_on = PageState(heads=(), hidden=())  # every head off, no step hidden
    assert page_state.to_query(nothing_on) == {"heads": "none", "hidden": "none"}
    assert page_state.from_query(page_state.to_query(nothing_on)) == (nothing_on, [])
    assert page_state.from_query({}) == (PageState(), [])


def test_a_link_is_the_page_address_with_the_state():
    link = page_state.link("http://host:8501/?dataset=old#top", FULL)
    assert link.startswith("http://host:8501/?dataset=probe:cue_shape&split=val&larnn=")
    assert link.endswith("&hidden=4-6,9") and "old" not in link and "#" not in link


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"colour": "red"}, "parameter 'colour' means nothing here"),
        ({"split": "holdout"}, "a split is one of test, val, train"),
        ({"activation": "gelu"}, "the activation is one of elu, relu, tanh, none"),
        ({"sequence": "-1"}, "expected a whole number of at least 0"),
        ({"sequence": "two"}, "expected a whole number of at least 0"),
        ({"window": "0"}, "expected a whole number of at least 1"),
        ({"heads": "0,x"}, "expected a whole number of at least 0"),
        ({"hidden": "9-4"}, "the range 9-4 runs backwards"),
        ({"hidden": "0-100000"}, "a link hides at most 100,000 steps"),
        ({"dataset": ""}, "it is empty"),
    ],
)
def test_a_malformed_parameter_says_why_and_is_left_to_the_default(params, words):
    state, problems = page_state.from_query({**params, "layer": "1"})
    assert state == PageState(layer=1)  # the good parameter is kept
    assert len(problems) == 1 and words in problems[0], problems


def test_query_values_given_as_lists_read_their_last():
    assert page_state.from_query({"sequence": ["1", "7"]}) == (PageState(sequence=7), [])


# --- each part against what the page offers -------------------------------------------------------


def test_a_dataset_or_model_no_longer_offered_is_replaced_by_the_default():
    assert page_state.checked_choice("uci_har", ["uci_har", "upload"], "dataset", "x") == (
        "uci_har",
        None,
    )
    value, note = page_state.checked_choice("gone", ["uci_har"], "LARNN checkpoint", "m1")
    assert value is None
    assert note == (
        "This link's LARNN checkpoint 'gone' is not offered here (offered: 'uci_har'); "
        "showing m1 instead."
    )


def test_a_sequence_beyond_the_split_falls_back_to_the_first():
    assert page_state.checked_sequence(39, 40) == (39, None)
    value, note = page_state.checked_sequence(40, 40)
    assert value is None and "sequence #40 is beyond the 40 sequences here (0 to 39)" in note


def test_knobs_beyond_the_model_are_left_as_trained():
    state = PageState(window=3, heads=(0, 1), activation="elu", layer=0)
    assert page_state.checked_knobs(state, TRAINED) == (
        {"window": 3, "heads": [0, 1], "activation": "elu", "layer": 0},
        [],
    )
    values, notes = page_state.checked_knobs(
        PageState(window=11, heads=(2,), activation="relu", layer=1), TRAINED
    )
    assert values == {"activation": "relu"}  # the one that fits
    assert len(notes) == 3
    assert "window k' = 11 is beyond this LARNN's queue of 10 past steps" in notes[0]
    assert "heads 2, but this LARNN has 2 (0 to 1)" in notes[1]
    assert "layer 1, but this LARNN has 1 layer(s)" in notes[2]


def test_hidden_steps_beyond_the_sequence_are_shown():
    assert page_state.checked_hidden((3, 30), 32) == (frozenset({3, 30}), None)
    kept, note = page_state.checked_hidden((3, 31, 40), 32)
    assert kept == frozenset({3})
    assert "hides steps 31, 40, beyond what this sequence of 32 steps can hide (0 to 30)" in note


def test_the_state_of_a_view_names_every_part(inference):
    result, _ = inference
    choice = KnobChoice(knobs.make_knobs(2, [1], 2, "tanh", [4, 5]), 0, TRAINED)
    larnn = ModelRun(Loaded(None, "folder:1", "m1", "LARNN"), result)
    state = page_state.state_of("probe:cue_shape", "val", {"LARNN": larnn}, 3, choice)
    assert state == PageState("probe:cue_shape", "val", "m1", "none", 3, 2, (1,), "tanh", 0, (4, 5))
    uploaded = ModelRun(Loaded(None, "upload:abc", "my.zip", "LARNN"), result)
    state = page_state.state_of("upload", None, {"LARNN": uploaded}, 0, None)
    assert (state.larnn, state.split, state.window) == ("upload", None, None)


# --- on the page ----------------------------------------------------------------------------------


@pytest.fixture
def app(checkpoints, monkeypatch) -> AppTest:
    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(checkpoints))
    return AppTest.from_file(str(APP), default_timeout=60)


def _widget(widgets, prefix: str):
    return next(w for w in widgets if w.key and w.key.startswith(prefix))


def test_opening_a_link_restores_the_view(app):
    app.query_params.update(page_state.to_query(FULL))
    at = app.run()
    _no_failure(at)
    assert not at.sidebar.warning, [w.value for w in at.sidebar.warning]
    assert at.sidebar.radio(key="dataset").value == "probe:cue_shape"
    assert at.sidebar.radio(key="split").value == "val"
    assert at.sidebar.selectbox(key="model_larnn_probe:cue_shape").value == FULL.larnn
    assert at.sidebar.selectbox(key="model_lstm_probe:cue_shape").value == "(none)"
    assert _widget(at.sidebar.number_input, "index_").value == 3
    assert _widget(at.sidebar.slider, "window_").value == 2
    assert _widget(at.sidebar.button_group, "heads_").value == [1]
    assert _widget(at.sidebar.selectbox, "activation_").value == "tanh"
    hidden = next(c.value for c in at.sidebar.caption if c.value.startswith("Hidden: j = "))
    assert hidden.startswith("Hidden: j = 4-6, 9.")
    subtitle = chart_specs(at)[0]["layout"]["title"]["subtitle"]["text"]
    assert "k' = 2, tanh, heads 1 of 2 on, steps 4-6, 9 hidden" in subtitle.replace("<br>", " ")
    assert "validation split, sequence #3" in subtitle

    at = open_sections(at, "export")  # the link to this view names the same state
    link = next(c.value for c in at.code if "?dataset=" in c.value)
    assert page_state.from_query(dict(p.split("=") for p in link.split("?")[1].split("&"))) == (
        FULL,
        [],
    )
    at.sidebar.slider(key=_widget(at.sidebar.slider, "window_").key).set_value(4).run()
    assert _widget(at.sidebar.slider, "window_").value == 4  # read once: the user's from now on


def test_a_stale_link_says_why_and_opens_the_defaults(app):
    app.query_params.update(
        {
            "dataset": "probe:since_removed",
            "larnn": "a_model_since_removed",
            "sequence": "4000",
            "window": "99",
            "hidden": "2,500",
            "colour": "red",
        }
    )
    at = app.run()
    _no_failure(at)
    notes = [w.value for w in at.sidebar.warning]
    assert len(notes) == 6, notes
    assert "parameter 'colour' means nothing here" in notes[0]
    assert notes[1].startswith(
        "This link's dataset 'probe:since_removed' is not offered here (offered: 'probe:recall', "
    )
    assert notes[1].endswith("); showing Synthetic probe: recall (needs memory) instead.")
    assert "LARNN checkpoint 'a_model_since_removed' is not offered here" in notes[2]
    assert "sequence #4000 is beyond the 40 sequences here" in notes[3]
    assert "window k' = 99 is beyond this LARNN's queue of 10" in notes[4]
    assert "hides steps 500" in notes[5]
    assert at.sidebar.radio(key="dataset").value == RECALL
    assert at.sidebar.selectbox(key=f"model_larnn_{RECALL}").value == "probe_recall_larnn"
    assert _widget(at.sidebar.number_input, "index_").value == 0
    assert _widget(at.sidebar.slider, "window_").value == 6  # as trained
    hidden = next(c.value for c in at.sidebar.caption if c.value.startswith("Hidden: j = "))
    assert hidden.startswith("Hidden: j = 2.")

    at.sidebar.button(key="link_dismiss").click().run()
    _no_failure(at)
    assert not at.sidebar.warning
    assert _widget(at.sidebar.slider, "window_").value == 6
