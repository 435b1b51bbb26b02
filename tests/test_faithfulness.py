"""The erasure test, step rankings and head importance (larnn.faithfulness)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from larnn import faithfulness as fa
from larnn.baseline import LSTMConfig
from larnn.checkpoint import load_checkpoint, shipped_checkpoints
from larnn.classifier import ClassifierConfig, SequenceClassifier
from larnn.data import Normalizer
from larnn.errors import ConfigError
from larnn.model import InferenceKnobs, LARNNConfig
from larnn.tasks import load_task

pytest.importorskip("captum", reason="gradient attribution needs captum (a dependency)")


def tiny(architecture: str, seed: int = 0) -> SequenceClassifier:
    torch.manual_seed(seed)
    if architecture == "larnn":
        encoder = LARNNConfig(
            input_size=3, hidden_size=8, heads=2, window=4, num_layers=2, batch_first=True
        )
    else:
        encoder = LSTMConfig(input_size=3, hidden_size=8)
    return SequenceClassifier(ClassifierConfig.build(encoder, 3)).eval()


def test_attention_ranking_sums_the_last_steps_weights_per_step():
    model = tiny("larnn")
    x = torch.randn(2, 9, 3)
    scores = fa.attention_ranking(model, x)
    with torch.no_grad():
        record = model(x, return_attention=True).attention
    for b in range(2):
        for step in range(9):
            want = sum(
                float(w[b, -1, :, k].sum())
                for w in record.weights
                for k in range(4)
                if int(record.slot_time[-1, k]) == step
            )
            assert scores[b, step] == pytest.approx(want, abs=1e-6)
    assert scores[:, :4].sum() == 0 and scores[:, 8].sum() == 0  # outside the last window


def test_saliency_ranking_is_the_absolute_gradient_of_the_predicted_logit():
    model = tiny("lstm")
    x = torch.randn(3, 7, 3)
    scores = fa.rank_steps(model, x, "saliency")
    for b in range(3):
        xb = x[b : b + 1].clone().requires_grad_()
        logits = model(xb).logits
        logits[0, logits.argmax()].backward()
        np.testing.assert_allclose(scores[b], xb.grad.abs().sum(-1)[0].numpy(), rtol=1e-5)


def test_hiding_is_the_knob_for_a_larnn_and_occlusion_for_the_lstm():
    x = torch.randn(1, 8, 3)
    larnn = tiny("larnn")
    knob = fa.class_probabilities(larnn, x, InferenceKnobs(hidden_steps=[5, 6]))[0, 1]
    plain = fa.class_probabilities(larnn, x)[0, 0]
    got = fa.probabilities_without(larnn, x[[0, 0]], [[6, 5], []], [1, 0], batch_size=1)
    np.testing.assert_allclose(got, [float(knob), float(plain)], rtol=1e-5)
    lstm = tiny("lstm")
    occluded = x.clone()
    occluded[:, [2, 3]] = 0
    want = fa.class_probabilities(lstm, occluded)[0, 2]
    got = fa.probabilities_without(lstm, x[[0, 0]], [[3, 2], [2, 3]], [2, 2])
    np.testing.assert_allclose(got, [float(want)] * 2, rtol=1e-5)


@pytest.mark.parametrize("architecture", ["larnn", "lstm"])
def test_erasure_curve_ends(architecture):
    """Hiding nothing changes nothing; keeping every candidate changes nothing."""
    model = tiny(architecture)
    x = torch.randn(3, 8, 3)
    T = x.shape[1]
    everything = len(fa.candidate_steps(model, T))
    curves = fa.erasure_curves(model, x, [0, 1, everything], seed=1)
    expected = {"integrated_gradients", "saliency", "random"}
    if architecture == "larnn":
        expected.add("attention")
    assert {c.ranking for c in curves} == expected
    for curve in curves:
        assert curve.comprehensiveness[0] == pytest.approx(0, abs=1e-6)
        assert curve.sufficiency[-1] == pytest.approx(0, abs=1e-6)
    frame = fa.curves_frame(curves)
    assert len(frame) == 3 * len(curves)


def test_bad_rankings_are_named():
    with pytest.raises(ConfigError, match="no attention"):
        fa.rank_steps(tiny("lstm"), torch.randn(1, 5, 3), "attention")
    with pytest.raises(ConfigError, match="ranking must be one of"):
        fa.rank_steps(tiny("larnn"), torch.randn(1, 5, 3), "shap")
    with pytest.raises(ConfigError, match="no attention heads"):
        fa.head_importance(tiny("lstm"), torch.randn(1, 5, 3), np.zeros(1))


def test_head_importance_switches_one_head_off_at_a_time():
    model = tiny("larnn")
    x, y = torch.randn(20, 10, 3), np.arange(20) % 3
    table = fa.head_importance(model, x, y)
    assert len(table) == 4  # 2 layers x 2 heads
    base = fa.accuracy(model, x, y)
    row = table[(table["layer"] == 1) & (table["head"] == 0)].iloc[0]
    masked = fa.accuracy(model, x, y, InferenceKnobs(head_mask=[[1, 1], [0, 1]]))
    assert row.accuracy_without == masked and row.accuracy_drop == pytest.approx(base - masked)
    assert ((table.entropy > 0) & (table.entropy <= 1 + 1e-6)).all()  # normalised


def test_integrated_gradients_are_complete():
    """Completeness: the attributions sum to logit(x) - logit(baseline 0), within 2%."""
    for architecture in ("larnn", "lstm"):
        model = tiny(architecture, seed=3)
        x = torch.randn(2, 6, 3)
        target = torch.tensor([0, 2])
        attributions = fa.attribution(model, x, "integrated_gradients", target)
        with torch.no_grad():
            gap = model(x).logits - model(torch.zeros_like(x)).logits  # (2, classes)
        want = gap[torch.arange(2), target]
        torch.testing.assert_close(
            attributions.sum((1, 2)), want, atol=0.02 * float(want.abs().max()), rtol=0
        )


def recall_pair():
    shipped = shipped_checkpoints()
    if "probe_recall_larnn" not in shipped:
        pytest.skip("the recall probe's checkpoints are not shipped here")
    checkpoint = load_checkpoint(shipped["probe_recall_larnn"])
    task = load_task(checkpoint.metadata.dataset_id, checkpoint.metadata.split)
    normalizer = Normalizer.from_dict(checkpoint.metadata.normalizer)
    return checkpoint.model.eval(), task.test, normalizer


def test_hiding_the_truth_takes_the_recall_larnn_to_chance_and_random_steps_do_not():
    model, test, normalizer = recall_pair()
    n = 300
    x = torch.from_numpy(normalizer.apply(test.X[:n])).float()
    truth = [tuple(np.flatnonzero(row)) for row in test.relevant_steps[:n]]
    rng = np.random.default_rng(0)
    candidates = fa.candidate_steps(model, x.shape[1])
    random = [(int(rng.choice([s for s in candidates if s not in row])),) for row in truth]
    y = test.y[:n]
    hidden_truth = fa.class_probabilities_without(model, x, truth).argmax(-1).numpy()
    hidden_random = fa.class_probabilities_without(model, x, random).argmax(-1).numpy()
    assert (hidden_truth == y).mean() < 0.4  # chance is 0.25
    assert (hidden_random == y).mean() > 0.95


def test_the_recall_larnns_attended_step_decides_its_prediction():
    """On the shipped recall pair: hiding the one most attended past step takes most of the
    predicted probability away; hiding one random step does not."""
    model, test, normalizer = recall_pair()
    x = torch.from_numpy(normalizer.apply(test.X[:8])).float()
    curves = {c.ranking: c for c in fa.erasure_curves(model, x, [1], ["attention", "random"])}
    assert curves["attention"].comprehensiveness[0] > 0.5
    assert curves["random"].comprehensiveness[0] < 0.1


def ragged(n: int = 5, T: int = 10, seed: int = 4):
    """(n, T, 3) series right-padded with large values the model must never read, lengths."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, T, 3, generator=generator)
    lengths = torch.tensor([T, 7, 3, 9, 6][:n])
    for i, length in enumerate(lengths):
        x[i, length:] = 50.0
    return x, lengths


@pytest.mark.parametrize("architecture", ["larnn", "lstm"])
def test_erasure_over_a_ragged_split_is_the_mean_of_each_series_alone(architecture):
    model = tiny(architecture, seed=5)
    x, lengths = ragged()
    rankings = ["attention", "integrated_gradients", "saliency"]
    got = fa.erasure_curves(model, x, [1, 2, 4], rankings, lengths=lengths)
    alone = [
        fa.erasure_curves(model, x[i : i + 1, :n], [1, 2, 4], rankings)
        for i, n in enumerate(lengths)
    ]
    for r, curve in enumerate(got):
        comp = np.mean([curves[r].comprehensiveness for curves in alone], axis=0)
        suff = np.mean([curves[r].sufficiency for curves in alone], axis=0)
        np.testing.assert_allclose(curve.comprehensiveness, comp, atol=1e-5)
        np.testing.assert_allclose(curve.sufficiency, suff, atol=1e-5)


def test_attention_ranking_reads_each_series_at_its_last_real_step():
    model = tiny("larnn")
    x, lengths = ragged()
    scores = fa.attention_ranking(model, x, lengths)
    for i, n in enumerate(lengths):
        alone = fa.attention_ranking(model, x[i : i + 1, :n])[0]
        np.testing.assert_allclose(scores[i, :n], alone, atol=1e-6)
        assert not scores[i, n:].any()


def test_head_importance_of_a_ragged_split_and_heads_the_knobs_switch_off():
    model = tiny("larnn")
    x, lengths = ragged()
    y = np.array([0, 1, 2, 0, 1])
    knobs = InferenceKnobs(head_mask=[[1, 0], [1, 1]])
    table = fa.head_importance(model, x, y, knobs, lengths=lengths, batch_size=2)
    alone = [
        (model(x[i : i + 1, :n], knobs=knobs).logits.argmax(-1)) for i, n in enumerate(lengths)
    ]
    base = float(np.mean([int(p) == y[i] for i, p in enumerate(alone)]))
    assert fa.accuracy(model, x, y, knobs, lengths) == base
    row = table.set_index(["layer", "head"])
    assert row.loc[(0, 1), "accuracy_drop"] == 0  # already off
    both = InferenceKnobs(head_mask=[[0, 0], [1, 1]])  # head 0 off too, beside the knobs' head 1
    assert row.loc[(0, 0), "accuracy_without"] == fa.accuracy(model, x, y, both, lengths)
    assert row.loc[(0, 1), "entropy"] == 0  # a switched-off head attends nowhere
