"""app.figures and the figures by topic (timeline_figures, heatmap_figures, chart_figures):
built from a tiny model's inference, validated against Plotly in full."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from test_stem import classifier

from app import chart_figures, figures, heatmap_figures, timeline_figures
from larnn.data import Normalizer
from larnn.inference import attention_grid, head_weights, infer_sequence, step_attention
from larnn.stem import StemConfig


def test_heatmap_z_is_the_attention_and_hover_holds_the_inputs(inference):
    result, relevant = inference
    grid = attention_grid(result, 0, [0, 1], "lag")
    X = np.random.default_rng(0).normal(size=(grid.z.shape[1], 3)).astype(np.float32)
    fig = heatmap_figures.attention_heatmap(
        grid, "title", truth_steps=np.flatnonzero(relevant), X=X, channel_names="xyz"
    )
    heatmap = fig.data[0]
    np.testing.assert_allclose(np.asarray(heatmap.z, dtype=float), grid.z, rtol=1e-6)
    assert list(heatmap.y) == list(range(1, 8))  # lag 1 .. k'
    custom = np.asarray(heatmap.customdata)
    r, t = 2, 15  # lag 3 at step 15 looks at j = 12
    assert custom[r, t, 0] == 12 and custom[r, t, 1] == 3
    np.testing.assert_allclose(custom[r, t, 2:], X[12])
    for word in ("t = ", "j = ", "lag = ", "weight = ", "x at j"):
        assert word in heatmap.hovertemplate
    truth = fig.data[1]  # lines at j = a - 1/2 and j = b + 1/2 around the truth run a..b
    ((a, b),) = figures.runs(relevant)
    x, y = np.array(truth.x, dtype=float), np.array(truth.y, dtype=float)
    assert set(np.unique((x - y)[~np.isnan(x)])) == {a - 0.5, b + 0.5}


def test_a_large_heatmap_leaves_the_inputs_out_of_its_hover(inference, monkeypatch):
    """A 256-step stretch on the time axis carried its inputs at j in every cell (4.7 MB of
    spec for 9 channels); above HOVER_INPUTS_MAX_CELLS the hover keeps t, j, lag, weight."""
    result, _ = inference
    grid = attention_grid(result, 0, None, "time")
    X = np.zeros((grid.z.shape[1], 3), np.float32)
    monkeypatch.setattr(heatmap_figures, "HOVER_INPUTS_MAX_CELLS", grid.z.size - 1)
    heatmap = heatmap_figures.attention_heatmap(grid, "t", X=X, channel_names="xyz").data[0]
    assert np.asarray(heatmap.customdata).shape == (*grid.z.shape, 2)
    assert "x at j" not in heatmap.hovertemplate and "lag = " in heatmap.hovertemplate


def test_head_grid_shares_one_colour_scale(inference):
    result, _ = inference
    grids = [attention_grid(result, 0, [h], "time") for h in range(2)]
    fig = heatmap_figures.head_grid_figure(grids, ["head 0", "head 1 (off)"])
    heatmaps = [d for d in fig.data if d.type == "heatmap"]
    assert len(heatmaps) == 2 and {h.coloraxis for h in heatmaps} == {"coloraxis"}
    np.testing.assert_allclose(np.asarray(heatmaps[1].z, dtype=float), grids[1].z, rtol=1e-6)
    top = max(np.nanpercentile(g.z, 99) for g in grids)  # the first steps' ~1 weights saturate
    assert fig.layout.coloraxis.cmax == pytest.approx(top)


def test_a_head_switched_off_does_not_set_the_colour_scale(inference):
    """Issue 11.2: an all-zero grid (a head switched off) once made the shared scale 0-1."""
    result, _ = inference
    live = attention_grid(result, 0, [0], "lag")
    off = replace(live, z=np.where(np.isnan(live.z), np.nan, 0.0))
    fig = heatmap_figures.head_grid_figure([live, off], ["head 0", "head 1 (off)"])
    assert fig.layout.coloraxis.cmax == pytest.approx(np.nanpercentile(live.z, 99))
    assert heatmap_figures.head_grid_figure([off, off], ["a", "b"]).layout.coloraxis.cmax == 1.0


def test_timeline_rows_truth_and_running_predictions(inference):
    result, relevant = inference
    T = len(relevant)
    X = np.zeros((T, 3))
    fig = timeline_figures.timeline_figure(
        X,
        20,
        channel_names=["x", "y", "z"],
        channel_units=["a.u."] * 3,
        step_attention=_all_steps(result),
        window=7,
        relevant_steps=relevant,
        running={"LARNN": result.step_probabilities, "LSTM": result.step_probabilities},
        class_names=["up", "down", "up_down", "down_up"],
        true_class=2,
    )
    step = step_attention(result, 0, 20)
    bars = [d for d in fig.data if d.type == "bar"]
    assert len(bars) == 2  # off and on the ground truth
    assert sorted([*bars[0].x, *bars[1].x]) == sorted(step["j"])
    assert all(relevant[j] for j in bars[1].x) and not any(relevant[j] for j in bars[0].x)
    lines = [d for d in fig.data if d.type == "scatter" and d.legend == "legend2"]
    assert len(lines) == 8 and sum(d.showlegend for d in lines) == 4
    assert any("(true class)" in d.name for d in lines)
    shapes = fig.layout.shapes
    assert any(s.type == "line" and s.x0 == 20 for s in shapes)  # the time-step marker
    truth_runs = figures.runs(relevant)
    truth_rects = [s for s in shapes if s.fillcolor == figures.TRUTH_COLOR]
    assert len(truth_rects) == 2 * len(truth_runs)  # shaded on the signal and the bars


def _all_steps(result, heads=None) -> timeline_figures.StepAttention:
    return timeline_figures.StepAttention(head_weights(result, 0, heads), result.slot_time)


def _plain(fig: go.Figure) -> dict:
    """The figure as the browser gets it, typed arrays decoded into lists."""

    def decoded(node):
        if isinstance(node, dict) and "bdata" in node and "dtype" in node:
            array = np.frombuffer(base64.b64decode(node["bdata"]), dtype=node["dtype"])
            shape = [int(n) for n in str(node.get("shape", len(array))).split(",")]
            return array.reshape(shape).tolist()
        if isinstance(node, dict):
            return {key: decoded(value) for key, value in node.items()}
        if isinstance(node, list):
            return [decoded(value) for value in node]
        return node

    return decoded(json.loads(fig.to_json()))


def _apply(animate: list, fig: dict) -> dict:
    """What Plotly.animate does with a slider step's args, on a figure dict (the reference):
    each trace's and each shape's keys merged into the figure's."""
    frame, options = animate
    assert options == timeline_figures.STEP_AT_ONCE
    assert frame["traces"] == list(range(len(fig["data"])))  # the others would be taken away
    for index, update in zip(frame["traces"], frame["data"], strict=True):
        fig["data"][index].update(update)
    assert set(frame["layout"]) == {"shapes"}
    for shape, update in zip(fig["layout"]["shapes"], frame["layout"]["shapes"], strict=False):
        shape.update(update)
    return fig


@pytest.mark.parametrize("start", [0, 9])
def test_timeline_slider_moves_t_in_the_browser_as_a_rebuild_would(inference, start):
    """Each slider position, applied as Plotly.animate applies it, gives the figure that the
    server would build for that t: the lines, the window, the bars and the row titles; its
    label names t and where t looks most."""
    result, relevant = inference
    T = len(relevant)
    X = np.zeros((T, 3))
    shown = slice(start, T)
    common = {
        "channel_names": "xyz",
        "channel_units": "uvw",
        "start": start,
        "window": 5,
        "relevant_steps": relevant[shown],
        "running": {"LARNN": result.step_probabilities[shown]},
        "class_names": "pqrs",
    }
    everything = _all_steps(result, [1])
    steps = timeline_figures.StepAttention(everything.weights[shown], everything.slot_time[shown])
    first = timeline_figures.timeline_figure(X[shown], T - 1, step_attention=steps, **common)
    slider = first.layout.sliders[0]
    assert slider.active == T - 1 - start and len(slider.steps) == T - start
    for t in (start, start + 1, T // 2, T - 1):
        moved = _apply(slider.steps[t - start].args, _plain(first))
        rebuilt = _plain(
            timeline_figures.timeline_figure(X[shown], t, step_attention=steps, **common)
        )
        label = slider.steps[t - start].label
        assert label.startswith(f"{t} · ")
        for key in ("shapes", "annotations"):
            assert moved["layout"][key] == rebuilt["layout"][key], (t, key)
        # One weight axis for every t, so that a peaked step reads higher than a diffuse one.
        assert moved["layout"]["yaxis2"]["range"] == pytest.approx(
            rebuilt["layout"]["yaxis2"]["range"]
        )
        assert rebuilt["layout"]["yaxis2"]["range"] == pytest.approx(
            [0, 1.1 * steps.weights[steps.slot_time >= 0].max()]
        )
        bars = [i for i, d in enumerate(rebuilt["data"]) if d["type"] == "bar"]
        for i in bars:
            for key in ("x", "y", "customdata"):
                assert np.allclose(
                    np.asarray(moved["data"][i][key], dtype=float),
                    np.asarray(rebuilt["data"][i][key], dtype=float),
                )
        reference = step_attention(result, 0, t, [1])  # the server-side table for step t
        drawn = np.concatenate([moved["data"][i]["x"] for i in bars])
        assert sorted(drawn) == sorted(reference["j"])
        reference = reference.sort_values("weight", ascending=False, kind="stable")[:3]
        top = ", ".join(f"j = {row.j} ({row.weight:.2f})" for row in reference.itertuples())
        assert label == f"{t} · " + (f"looks most at {top}" if top else "nothing in its window yet")


def test_fast_built_figures_pass_plotly_validation(inference):
    """The heatmaps and timeline skip validation when built; here they get it in full."""
    result, relevant = inference
    truth = np.flatnonzero(relevant)
    X = np.ones((len(relevant), 3))
    built = [
        heatmap_figures.attention_heatmap(
            attention_grid(result, 0, None, axis),
            "a",
            truth_steps=truth,
            X=X,
            channel_names="xyz",
        )
        for axis in ("lag", "time")
    ]
    built.append(
        heatmap_figures.head_grid_figure(
            [attention_grid(result, 0, [h]) for h in range(2)], "ab", truth_steps=truth
        )
    )
    built.append(
        timeline_figures.timeline_figure(
            X,
            0,
            channel_names="xyz",
            channel_units="uvw",
            step_attention=_all_steps(result),
            window=3,
            relevant_steps=relevant,
            running={"LARNN": result.step_probabilities},
            class_names="pqrs",
            true_class=1,
        )
    )
    built.append(timeline_figures.timeline_figure(X, 5, channel_names="xyz", channel_units="uvw"))
    built.append(chart_figures.probabilities_figure({"LARNN": np.ones(2) / 2}, "ab", true_class=1))
    sweep = pd.DataFrame({"window": [1, 2], "accuracy": [0.5, 0.6]})
    built.append(
        chart_figures.window_sweep_figure(
            sweep, baseline_accuracy=0.4, trained_window=2, current_window=1, sample_size=10
        )
    )
    for fig in built:
        validated = go.Figure(fig.to_dict())  # raises on any invalid property
        assert len(validated.data) == len(fig.data)


def test_subtitles_break_between_parts():
    assert figures.wrap_parts("aaaa · bbbb · cc", 11) == ["aaaa · bbbb", "cc"]
    assert figures.wrap_parts("a-long-part · b", 4) == ["a-long-part", "b"]
    fig = figures.titled(go.Figure(layout={"margin": {"t": 10}}), "aaaa · bbbb · cc", "T", 11)
    assert fig.layout.title.subtitle.text == "aaaa · bbbb<br>cc" and fig.layout.title.text == "T"
    assert fig.layout.margin.t == 10 + figures.TITLE_HEIGHT + figures.SUBTITLE_LINE


def test_runs_finds_each_stretch():
    assert figures.runs(np.array([0, 1, 1, 0, 1], dtype=bool)) == [(1, 2), (4, 4)]
    assert figures.runs(np.zeros(3, dtype=bool)) == []


def test_probabilities_sweep_and_html():
    fig = chart_figures.probabilities_figure(
        {"LARNN": np.array([0.7, 0.3]), "LSTM": np.array([0.4, 0.6])}, ["a", "b"], true_class=0
    )
    assert [list(d.x) for d in fig.data] == [[0.7, 0.3], [0.4, 0.6]]
    assert "(true)" in fig.data[0].y[0]
    sweep = pd.DataFrame({"window": [1, 2, 4], "accuracy": [0.3, 0.5, 0.6]})
    fig = chart_figures.window_sweep_figure(
        sweep, baseline_accuracy=0.55, trained_window=4, current_window=2, sample_size=9
    )
    assert list(fig.data[0].y) == [0.3, 0.5, 0.6]
    html = figures.figure_html(fig, offline=False)
    assert "<html>" in html and "cdn.plot.ly" in html


def test_the_html_page_title_is_plain_words():
    """Issue 29: the probabilities export's <title> held a literal &lt;br&gt; (the subtitle's
    line break, escaped)."""
    fig = chart_figures.probabilities_figure({"LARNN": np.array([0.7, 0.3])}, ["a", "b"])
    parts = [f"part {i} of a long subtitle" for i in range(12)]
    figures.titled(fig, " · ".join(parts), title="Class <b>probabilities</b>", line_chars=60)
    assert "<br>" in fig.layout.title.subtitle.text  # wrapped into lines on the figure
    html = figures.figure_html(fig, offline=False)
    title = html[html.index("<title>") + 7 : html.index("</title>")]
    assert "&lt;" not in title and "<" not in title, title
    assert title == "Class probabilities · " + " · ".join(parts)


def test_sweep_window_labels_do_not_overlap():
    """Issue 11.4: 'current k' = 14' and 'trained k = 16' printed on top of each other."""
    sweep = pd.DataFrame({"window": [1, 2, 4, 8, 14, 16, 24, 32, 48], "accuracy": [0.5] * 9})
    for current, trained in [(14, 16), (16, 14), (47, 48), (1, 2)]:
        fig = chart_figures.window_sweep_figure(
            sweep,
            baseline_accuracy=None,
            trained_window=trained,
            current_window=current,
            sample_size=9,
        )
        notes = {n.text.split(" = ")[0]: n for n in fig.layout.annotations}
        now, then = notes["current k'"], notes["trained k"]
        assert (now.yshift or 0) != (then.yshift or 0)  # one row each
        for note in (now, then):  # each reads towards the middle, so it stays on the page
            assert note.xanchor == ("right" if note.x > 24.5 else "left")


@pytest.mark.parametrize("patch", [1, 3])
def test_the_window_band_spans_the_samples_the_slots_hold(patch):
    """The timeline's shaded window of t runs from the first sample of the oldest slot t reads
    to the last sample before t's own patch, for a patched model as for a plain one."""
    stem = StemConfig(width=8, kernels=[3], patch=patch) if patch > 1 else None
    model = classifier("larnn", stem).eval()
    x = np.random.default_rng(0).normal(size=(20, model.config.channels))
    C = x.shape[1]
    result = infer_sequence(model, x, Normalizer((0.0,) * C, (1.0,) * C))
    window = model.encoder.config.window
    for t in (5, 13, 19):
        fig = timeline_figures.timeline_figure(
            x, t, channel_names="abcde"[:C], channel_units=(), window=window, patch=patch
        )
        (band,) = [s for s in fig.layout.shapes if s.fillcolor == timeline_figures.WINDOW_FILL]
        held = result.slot_time[t][result.slot_time[t] >= 0]  # first samples of the slots
        assert band.x0 == held.min() - 0.5 and band.x1 == held.max() + patch - 0.5
    assert ("slots back" in heatmap_figures._axis_title("lag", patch)) == (patch > 1)
