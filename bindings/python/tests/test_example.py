"""The torch-free parts of examples/train_contrastive.py: data readers and per-epoch mining."""

import argparse
import importlib.util
import os

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("train_contrastive",
                                              os.path.join(HERE, "..", "examples", "train_contrastive.py"))
tc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tc)


def write_fvecs(path, x):
    d = x.shape[1]
    rows = np.empty((len(x), d + 1), dtype=np.int32)
    rows[:, 0] = d
    rows[:, 1:] = x.astype(np.float32).view(np.int32)
    rows.tofile(path)


def test_readers_round_trip_and_reject_bad_files(tmp_path):
    x = np.random.default_rng(0).random((7, 5)).astype(np.float32)
    write_fvecs(tmp_path / "a.fvecs", x)
    np.testing.assert_array_equal(tc.read_fvecs(str(tmp_path / "a.fvecs")), x)
    np.arange(7, dtype=np.uint8).tofile(tmp_path / "u8.labels")
    np.arange(7, dtype=np.int32).tofile(tmp_path / "i32.labels")
    assert list(tc.read_labels(str(tmp_path / "u8.labels"), 7)) == list(range(7))
    assert list(tc.read_labels(str(tmp_path / "i32.labels"), 7)) == list(range(7))
    with pytest.raises(SystemExit):
        tc.read_labels(str(tmp_path / "u8.labels"), 5)
    np.array([5, 1, 2], dtype=np.int32).tofile(tmp_path / "bad.fvecs")
    with pytest.raises(SystemExit):
        tc.read_fvecs(str(tmp_path / "bad.fvecs"))


def clustered(n_per_class, classes, d, seed):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, d)) * 3
    labels = np.repeat(np.arange(classes), n_per_class)
    x = centers[labels] + rng.standard_normal((len(labels), d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32), labels


@pytest.mark.parametrize("strategy", ["mined", "mined_unlabelled", "guarded"])
def test_mine_epoch_shapes_and_label_filter(strategy):
    emb, labels = clustered(60, 4, 8, 1)
    rng = np.random.default_rng(2)
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    anchors = rng.choice(len(labels), 50, replace=False)
    positives = tc.same_class_positive(rng, labels, anchors, by_class)
    assert np.all(labels[positives] == labels[anchors]) and np.all(positives != anchors)
    args = argparse.Namespace(negatives=4, window=20, threads=1, guard_margin=0.05, guard_range_min=0, guard_dup=0.95,
                              guard_extra_depth=50, guard_fallback_margin=-1, hubness_gamma=0.5, hub_k=5, hub_sample=0)
    log = []
    neg = tc.mine_epoch(args, strategy, emb, labels, anchors, positives, rng, epoch=0, log=log)
    assert neg.shape == (50, 4) and np.all(neg >= 0) and np.all(neg < len(labels))
    if strategy != "mined":
        (entry,) = log
        assert entry["rows"] == 50 and entry["negatives"] == 200 and entry["random_fill_negatives"] == 0
        assert entry["false_negative_share"] == round(float((labels[neg] == labels[anchors][:, None]).mean()), 4)
    same = (labels[neg] == labels[anchors][:, None]).mean()
    if strategy == "mined":
        assert same == 0.0  # labels are used: no false negatives
    if strategy == "mined_unlabelled":
        assert same > 0.5  # tight clusters: the nearest non-positive items are mostly the same class


def test_nearest_same_class_is_the_nearest_item_of_the_class():
    x, labels = clustered(30, 3, 6, 4)
    pos = tc.nearest_same_class(x, labels, threads=1)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    d2[labels[:, None] != labels[None, :]] = np.inf
    np.fill_diagonal(d2, np.inf)
    assert np.all(labels[pos] == labels) and np.all(pos != np.arange(len(x)))
    np.testing.assert_allclose(d2[np.arange(len(x)), pos], d2.min(1), rtol=1e-4)


def test_guard_options_map_to_engine_keys():
    args = argparse.Namespace(window=30, guard_margin=0.2, guard_range_min=10, guard_dup=-1, guard_extra_depth=100)
    g = tc.guard_options(args, None, 100)
    assert g == {"range_min": 10, "range_max": 40, "candidate_depth": 140, "relative_margin": 0.2}


def test_guarded_short_rows_use_the_fallback_margin_before_random_fills():
    """A margin no candidate survives leaves every row short; the fallback margin (off = random items) fills them
    from minedex-mined candidates instead, keeping rows free of duplicates and of the anchor's positive."""
    emb, labels = clustered(60, 4, 8, 3)
    rng = np.random.default_rng(4)
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    anchors = rng.choice(len(labels), 40, replace=False)
    positives = tc.same_class_positive(rng, labels, anchors, by_class)
    base = dict(negatives=4, window=20, threads=1, guard_margin=50.0, guard_range_min=0, guard_dup=-1,
                guard_extra_depth=200, hubness_gamma=0.0, hub_k=10, hub_sample=0)
    log_off, log_on = [], []
    tc.mine_epoch(argparse.Namespace(**base, guard_fallback_margin=-1), "guarded", emb, labels, anchors, positives,
                  np.random.default_rng(5), epoch=1, log=log_off)
    neg = tc.mine_epoch(argparse.Namespace(**base, guard_fallback_margin=0.0), "guarded", emb, labels, anchors,
                        positives, np.random.default_rng(5), epoch=1, log=log_on)
    assert log_off[0]["random_fill_rows"] == 40 and log_off[0]["random_fill_share"] == 1.0
    assert log_on[0]["fallback_rows"] == 40 and log_on[0]["random_fill_negatives"] == 0
    for row, a, p in zip(neg, anchors, positives):
        assert len(set(row)) == 4 and a not in row and p not in row
