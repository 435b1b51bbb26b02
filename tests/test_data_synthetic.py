"""Synthetic memory probes and the attention-on-truth score."""

import numpy as np
import pytest
import torch

from larnn.data import PROBES, attention_on_truth, make_probe
from larnn.data.synthetic import NOISE_STD, RECALL_KEYS, recall_answer
from larnn.errors import ConfigError, DataError

# The probes whose events sit in the middle, with 15 noise steps after them; "recall" instead
# ends with its query and is checked by its own test.
MEMORY_PROBES = ("cue_shape", "which_first")


@pytest.mark.parametrize("name", sorted(PROBES))
def test_deterministic_by_seed(name):
    a, b = make_probe(name, 50, seed=4), make_probe(name, 50, seed=4)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.relevant_steps, b.relevant_steps)
    assert not np.array_equal(a.X, make_probe(name, 50, seed=5).X)


@pytest.mark.parametrize("name", sorted(PROBES))
@pytest.mark.parametrize("length", [50, 64, 100])
def test_shapes_and_balance(name, length):
    ds = make_probe(name, 401, seed=0, length=length)
    assert ds.X.shape == (401, length, len(ds.channel_names)) and ds.X.dtype == np.float32
    assert ds.relevant_steps.shape == (401, length)
    np.testing.assert_array_equal(ds.groups, np.arange(401))
    counts = np.bincount(ds.y, minlength=ds.n_classes)
    assert counts.max() - counts.min() <= 1
    assert ds.dataset_id == f"synthetic/{name}"


@pytest.mark.parametrize("name", MEMORY_PROBES)
def test_relevant_steps_are_the_events(name):
    """Events have amplitude 1 on noise of std 0.1: |x| > 0.6 exactly at the relevant steps."""
    ds = make_probe(name, 500, seed=1)
    assert NOISE_STD <= 0.1
    np.testing.assert_array_equal(np.abs(ds.X).max(axis=-1) > 0.6, ds.relevant_steps)
    assert (ds.relevant_steps[:, -15:] == 0).all()  # events far from the end


def test_cue_shape_events_encode_the_class():
    ds = make_probe("cue_shape", 200, seed=2)
    for x, y, rel in zip(ds.X, ds.y, ds.relevant_steps, strict=True):
        steps = np.flatnonzero(rel)
        assert len(steps) == 4 and np.all(np.diff(steps) == 1) and 16 <= steps[0] <= 40
        channel = np.abs(x[steps]).sum(axis=0).argmax()
        signs = np.sign(x[steps, channel]).astype(int).tolist()
        assert signs == [[1] * 4, [-1] * 4, [1, 1, -1, -1], [-1, -1, 1, 1]][y]


def test_which_first_events_encode_the_class():
    ds = make_probe("which_first", 200, seed=2)
    for x, y, rel in zip(ds.X, ds.y, ds.relevant_steps, strict=True):
        steps_a, steps_b = np.flatnonzero(x[:, 0] > 0.6), np.flatnonzero(x[:, 1] > 0.6)
        assert np.all(np.diff(steps_a) == 1) and np.all(np.diff(steps_b) == 1)
        assert len(steps_a) == len(steps_b) == 3 and 16 <= min(steps_a[0], steps_b[0])
        assert sorted({*steps_a, *steps_b}) == np.flatnonzero(rel).tolist()
        lag = abs(int(steps_a[0]) - int(steps_b[0]))
        assert (steps_b[0] < steps_a[0]) == (y >= 2)
        assert (12 <= lag <= 20) if y % 2 else (2 <= lag <= 6)


def test_recall_answer_reads_the_class_and_the_deciding_step():
    ds = make_probe("recall", 300, seed=4)
    for x, y, rel in zip(ds.X, ds.y, ds.relevant_steps, strict=True):
        answer = recall_answer(x)
        assert answer.value == y
        assert [answer.stored_step] == np.flatnonzero(rel).tolist()
        assert x[-1, answer.key] > 0.5 and x[answer.stored_step, answer.key] > 0.5


def test_recall_answer_names_a_wrong_shape():
    with pytest.raises(DataError, match=rf"\(T, {RECALL_KEYS + 5}\)"):
        recall_answer(np.zeros((10, 3), dtype=np.float32))


def _nearest_centroid_accuracy(features, y, n_classes):
    half = len(y) // 2
    centroids = np.stack([features[:half][y[:half] == k].mean(axis=0) for k in range(n_classes)])
    dist = ((features[half:, None, :] - centroids[None]) ** 2).sum(axis=-1)  # (n, classes)
    return (dist.argmin(axis=1) == y[half:]).mean()


@pytest.mark.parametrize("name", MEMORY_PROBES)
def test_last_steps_do_not_reveal_the_label(name):
    ds = make_probe(name, 4000, seed=3)
    last = ds.X[:, -8:, :]
    features = np.concatenate([last.reshape(len(ds), -1), last.mean(1), last.std(1)], axis=1)
    chance = 1 / ds.n_classes
    assert abs(_nearest_centroid_accuracy(features, ds.y, ds.n_classes) - chance) < 0.05
    # the same classifier on the events does read the label: the test has power
    rows = np.arange(len(ds))[:, None]
    if name == "cue_shape":
        steps = ds.relevant_steps.argmax(axis=1)[:, None] + np.arange(4)  # (N, 4)
        events = ds.X[rows, steps].sum(axis=-1)  # pulse shape, whatever the channel
    else:
        onset = (ds.X[:, :, :2] > 0.6).argmax(axis=1)  # (N, 2) first step of each burst
        events = (onset[:, 1] - onset[:, 0])[:, None]  # t_b - t_a
    assert _nearest_centroid_accuracy(events.astype(float), ds.y, ds.n_classes) > 0.95


def test_bad_arguments():
    with pytest.raises(ConfigError, match="Unknown probe 'nope'"):
        make_probe("nope", 10, 0)
    with pytest.raises(ConfigError, match="length >= 32"):
        make_probe("cue_shape", 10, 0, length=31)
    with pytest.raises(ConfigError, match="length >= 50"):
        make_probe("which_first", 10, 0, length=20)
    with pytest.raises(ConfigError, match="n must be"):
        make_probe("cue_shape", 0, 0)


# --- attention_on_truth ----------------------------------------------------------------


def reference_score(weights, slot_time, relevant):
    """The documented formula, written as plain loops."""
    B, T, NH, K = weights.shape
    mass = chance = 0.0
    for b in range(B):
        truth_steps = [t for t in range(T) if relevant[b, t]]
        if not truth_steps:
            continue
        for t in range(truth_steps[0] + 1, T):
            filled = [k for k in range(K) if slot_time[t, k] >= 0]
            if not filled:
                continue
            on_truth = [k for k in filled if relevant[b, slot_time[t, k]]]
            for h in range(NH):
                mass += sum(weights[b, t, h, k] for k in on_truth)
                chance += len(on_truth) / len(filled)
    return mass / chance if chance else float("nan")


def queue_slots(T, K):
    """slot k at step t holds step t-1-k (the K previous steps); -1 before the start."""
    t = np.arange(T)[:, None]
    held = t - 1 - np.arange(K)[None, :]  # (T, K)
    return np.where(held >= 0, held, -1)


def test_matches_the_plain_loop():
    rng = np.random.default_rng(0)
    B, T, NH, K = 5, 20, 3, 6
    slot_time = queue_slots(T, K)
    weights = rng.random((B, T, NH, K))
    weights /= weights.sum(-1, keepdims=True)
    relevant = rng.random((B, T)) < 0.15
    relevant[0] = False  # a sequence without truth is skipped
    expected = reference_score(weights, slot_time, relevant)
    assert attention_on_truth(weights, slot_time, relevant) == pytest.approx(expected)
    as_tensor = torch.tensor(weights, requires_grad=True)
    assert attention_on_truth(as_tensor, slot_time, relevant) == pytest.approx(expected)


def test_all_mass_on_truth_and_uniform():
    T, K = 12, 4
    slot_time = queue_slots(T, K)
    relevant = np.zeros((1, T), dtype=bool)
    relevant[0, 3] = True
    filled = slot_time >= 0
    uniform = np.broadcast_to(filled / filled.sum(-1, keepdims=True).clip(1), (1, 2, T, K))
    uniform = np.ascontiguousarray(uniform.transpose(0, 2, 1, 3))  # (1, T, 2, K)
    assert attention_on_truth(uniform, slot_time, relevant) == pytest.approx(1.0)
    on_truth = np.zeros((1, T, 2, K))
    for t in range(T):
        for k in range(K):
            if slot_time[t, k] == 3:
                on_truth[0, t, :, k] = 1.0
    # step 3 is in the queue at t = 4..7, each time one of 4 filled slots: score = 4
    assert attention_on_truth(on_truth, slot_time, relevant) == pytest.approx(4.0)
    assert attention_on_truth(on_truth, slot_time, relevant) == pytest.approx(
        reference_score(on_truth, slot_time, relevant)
    )


def test_query_steps_score_only_those_steps():
    """A hand-made map: the last step puts all its mass on the slot of the relevant step
    (step 9, the first slot to hold its evidence); the steps before attend elsewhere."""
    T, K = 16, 8
    slot_time = queue_slots(T, K)
    relevant = np.zeros((1, T), dtype=bool)
    relevant[0, 9] = True
    weights = np.zeros((1, T, 1, K))
    weights[0, :, 0, 0] = 1.0  # the newest slot: the previous step
    last = list(slot_time[-1]).index(9)
    weights[0, -1, 0] = 0.0
    weights[0, -1, 0, last] = 1.0
    query = np.zeros((1, T), dtype=bool)
    query[0, -1] = True
    assert attention_on_truth(weights, slot_time, relevant, query) == pytest.approx(8.0)
    # over every step after the evidence: mass 1 at t = 10 (slot 0 holds 9) and t = 15
    expected = reference_score(weights, slot_time, relevant)
    assert attention_on_truth(weights, slot_time, relevant) == pytest.approx(expected)
    assert expected == pytest.approx(2 / (6 / 8))
    with pytest.raises(DataError, match="query_steps"):
        attention_on_truth(weights, slot_time, relevant, query[:, 1:])


def test_recall_probe_pairs_keys_with_values_and_queries_one():
    data = make_probe("recall", 40, 3)
    keys, values = 8, 4
    assert data.X.shape == (40, 64, keys + values + 1)
    for b in range(40):
        x, s = data.X[b], int(np.flatnonzero(data.relevant_steps[b])[0])
        events = np.flatnonzero(x[:, :keys].max(1) > 0.5)
        assert len(events) == keys + 1 and events[-1] == 63  # 8 pairs, then the query
        assert x[-1, -1] > 0.5 and s in events[:-1]
        assert x[s, :keys].argmax() == x[-1, :keys].argmax()  # the queried key
        assert x[s, keys : keys + values].argmax() == data.y[b]  # its value is the class
    assert np.bincount(data.y).tolist() == [10, 10, 10, 10]


def test_undefined_and_bad_shapes():
    slot_time = queue_slots(8, 2)
    relevant = np.zeros((1, 8), dtype=bool)
    assert np.isnan(attention_on_truth(np.ones((1, 8, 1, 2)), slot_time, relevant))
    with pytest.raises(DataError, match="slot_time"):
        attention_on_truth(np.ones((1, 8, 1, 2)), slot_time[:, :1], relevant)
    with pytest.raises(DataError, match="relevant_steps"):
        attention_on_truth(np.ones((1, 8, 1, 2)), slot_time, relevant.astype(int))
    with pytest.raises(DataError, match="-1..7"):
        attention_on_truth(np.ones((1, 8, 1, 2)), slot_time + 5, relevant)
