"""Subject split and Normalizer."""

import json

import numpy as np
import pytest

from larnn.data import Normalizer, SequenceDataset, subject_split
from larnn.errors import ConfigError, DataError


def grouped_dataset(n_groups: int = 10, per_group: int = 7, seed: int = 0) -> SequenceDataset:
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    return SequenceDataset(
        X=rng.normal(2.0, 3.0, size=(n, 16, 4)).astype(np.float32),
        y=rng.integers(0, 3, size=n).astype(np.int64),
        groups=np.repeat(np.arange(100, 100 + n_groups), per_group).astype(np.int64),
        channel_names=("a", "b", "c", "d"),
        class_names=("x", "y", "z"),
        dataset_id="test",
    )


@pytest.mark.parametrize("val_fraction, n_val", [(0.2, 2), (0.5, 5), (0.01, 1), (0.99, 9)])
def test_whole_groups_on_one_side(val_fraction, n_val):
    ds = grouped_dataset()
    split = subject_split(ds, val_fraction=val_fraction, seed=3)
    train_groups, val_groups = set(split.train.groups), set(split.val.groups)
    assert not train_groups & val_groups
    assert train_groups | val_groups == set(ds.groups)
    assert len(val_groups) == n_val and split.val_groups == tuple(sorted(val_groups))
    assert len(split.train) + len(split.val) == len(ds)
    assert all(isinstance(g, int) for g in split.val_groups)
    json.dumps(split.val_groups)


def test_split_is_deterministic_and_depends_on_seed():
    ds = grouped_dataset()
    a, b = subject_split(ds, seed=7), subject_split(ds, seed=7)
    assert a.val_groups == b.val_groups
    np.testing.assert_array_equal(a.train.X, b.train.X)
    assert len({subject_split(ds, seed=s).val_groups for s in range(10)}) > 1


def test_split_rejects_bad_input():
    with pytest.raises(ConfigError, match="val_fraction"):
        subject_split(grouped_dataset(), val_fraction=1.0)
    with pytest.raises(DataError, match="at least 2 groups"):
        subject_split(grouped_dataset(n_groups=1))


def test_normalizer_uses_training_part_only():
    split = subject_split(grouped_dataset(), seed=0)
    split.val.X[:] += 100.0  # would shift the stats if validation leaked in
    norm = Normalizer.fit(split.train.X)
    flat = split.train.X.reshape(-1, 4).astype(np.float64)
    np.testing.assert_allclose(norm.mean, flat.mean(axis=0))
    np.testing.assert_allclose(norm.std, flat.std(axis=0))
    z = norm.apply(split.train.X)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.reshape(-1, 4).mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.reshape(-1, 4).std(axis=0), 1.0, atol=1e-5)


def test_normalizer_floor_and_round_trip():
    X = np.ones((3, 5, 2), dtype=np.float32)
    norm = Normalizer.fit(X)
    assert norm.std == (1e-8, 1e-8)
    assert np.isfinite(norm.apply(X)).all()
    again = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert again == norm


def test_normalizer_errors():
    norm = Normalizer(mean=(0.0, 1.0), std=(1.0, 2.0))
    with pytest.raises(DataError, match="fitted on 2 channels, got 3"):
        norm.apply(np.zeros((1, 4, 3), dtype=np.float32))
    with pytest.raises(DataError, match="key 'std'"):
        Normalizer.from_dict({"mean": [0.0]})
    with pytest.raises(DataError, match="one mean and one std per channel"):
        Normalizer.from_dict({"mean": [0.0], "std": [1.0, 2.0]})
    with pytest.raises(DataError, match="stds positive"):
        Normalizer(mean=(0.0,), std=(0.0,))


def test_concatenate_pads_to_the_longer_series_and_keeps_lengths():
    def part(n, T, y0):
        return SequenceDataset(
            X=np.ones((n, T, 2), dtype=np.float32),
            y=np.full(n, y0, dtype=np.int64),
            groups=np.arange(n, dtype=np.int64),
            channel_names=("a", "b"),
            class_names=("p", "q"),
            dataset_id="d",
        )

    joined = part(2, 5, 0).concatenate(part(3, 7, 1))
    assert joined.X.shape == (5, 7, 2) and joined.y.tolist() == [0, 0, 1, 1, 1]
    assert joined.series_lengths.tolist() == [5, 5, 7, 7, 7]
    assert np.all(joined.X[:2, 5:] == 0)
    assert part(2, 4, 0).concatenate(part(1, 4, 1)).lengths is None
    other = part(1, 4, 0)
    other = SequenceDataset(**{**other.__dict__, "channel_names": ("a", "c")})
    with pytest.raises(DataError, match="channels or classes differ"):
        part(1, 4, 0).concatenate(other)
