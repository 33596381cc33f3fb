"""Mining and hubness through the bindings, checked against numpy references."""

import numpy as np
import pytest

import engine


def normalized(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_top_mining_matches_numpy_ranking():
    x, q = normalized(800, 16, 11), normalized(40, 16, 12)
    index = engine.Index("Flat", 16, "ip")
    index.add(x)
    positives = [[i, i + 100] for i in range(40)]
    neg, scores, report = index.mine(positives, anchors=q, num_negatives=5, range_max=30, threads=1)
    assert neg.shape == (40, 5) and report["anchors"] == 40 and report["rows_written"] == 40
    sims = q.astype(np.float64) @ x.astype(np.float64).T
    for i in range(40):
        s = sims[i].copy()
        s[positives[i]] = -np.inf
        expected = np.argsort(-s, kind="stable")[:5]
        np.testing.assert_allclose(scores[i], s[expected], rtol=1e-4, atol=1e-5)
        assert not set(neg[i]) & set(positives[i])
        assert (neg[i] == expected).mean() >= 0.8  # only exact ties may reorder
    neg4, scores4, _ = index.mine(positives, anchors=q, num_negatives=5, range_max=30, threads=4)
    assert np.array_equal(neg, neg4) and np.array_equal(scores, scores4)


def test_corpus_anchors_exclusions_and_seeded_sampling():
    x = normalized(300, 8, 13)
    index = engine.Index("Flat", 8, "cosine")
    index.add(x)
    anchors = np.arange(20)
    positives = np.arange(20) + 20
    exclusions = [[a + 40] for a in anchors]
    a, sa, _ = index.mine(positives, anchor_ids=anchors, exclusions=exclusions, num_negatives=3,
                          sampling="uniform", range_max=15, seed=7)
    b, sb, _ = index.mine(positives, anchor_ids=anchors, exclusions=exclusions, num_negatives=3,
                          sampling="uniform", range_max=15, seed=7)
    c, _, _ = index.mine(positives, anchor_ids=anchors, exclusions=exclusions, num_negatives=3,
                         sampling="uniform", range_max=15, seed=8)
    assert np.array_equal(a, b) and np.array_equal(sa, sb)
    assert not np.array_equal(a, c)
    for i in anchors:
        assert i not in a[i] and i + 20 not in a[i] and i + 40 not in a[i]
        assert np.all(a[i] >= 0)


def test_shortfall_drop_leaves_padded_rows():
    index = engine.Index("Flat", 2, "ip")
    index.add(np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float32))
    neg, scores, report = index.mine([[0], [1]], anchors=np.array([[1, 0], [0, 1]], np.float32),
                                     num_negatives=2, range_max=2, min_score=0.5)
    # Anchor 0 keeps only id 1 above 0.5 -> dropped; anchor 1 (score 0.1 / 0) -> dropped too.
    assert report["shortfall"]["dropped"] == 2
    assert np.all(neg == -1) and np.all(np.isnan(scores))


@pytest.mark.parametrize("kwargs, needle", [
    (dict(positives=[[0]], anchors=np.zeros((1, 3), np.float32)), "dimension"),
    (dict(positives=[[0]], anchors=np.array([[np.nan, 0, 0, 0]], np.float32)), "non-finite"),
    (dict(positives=[[999]], anchors=np.ones((1, 4), np.float32)), "999"),
    (dict(positives=[[]], anchors=np.ones((1, 4), np.float32)), "no positives"),
    (dict(positives=[[0], [1]], anchors=np.ones((1, 4), np.float32)), "one list per anchor"),
    (dict(positives=[[0]], anchors=np.ones((1, 4), np.float32), bogus=1), "unknown option 'bogus'"),
    (dict(positives=[[0]], anchors=np.ones((1, 4), np.float32), num_negatives=0), "numnegatives"),
    (dict(positives=[[0]], anchors=np.ones((1, 4), np.float32), num_negatives=5, range_max=3), "window"),
    (dict(positives=[[0]], anchors=np.ones((1, 4), np.float32), sampling="best"), "sampling"),
    (dict(positives=[[0]], anchors=np.ones((1, 4), np.float32), range_max="ten"), "integer"),
    (dict(positives=[[0]]), "exactly one"),
])
def test_bad_mining_input_raises(kwargs, needle):
    index = engine.Index("Flat", 4)
    index.add(np.random.default_rng(1).standard_normal((20, 4)).astype(np.float32))
    with pytest.raises(engine.EngineError) as e:
        index.mine(**kwargs)
    assert needle.lower() in str(e.value).lower()
    assert len(index) == 20


def test_hubness_occurrence_matches_numpy_knn():
    x = normalized(400, 8, 14)
    index = engine.Index("Flat", 8, "ip")
    index.add(x, ids=np.arange(400) + 1000)
    occ, report = index.hubness(np.arange(400) + 1000, k=5)
    sims = x.astype(np.float64) @ x.astype(np.float64).T
    np.fill_diagonal(sims, -np.inf)
    knn = np.argsort(-sims, axis=1, kind="stable")[:, :5]
    expected = np.bincount(knn.reshape(-1), minlength=400)
    assert occ.sum() == 400 * 5 and report["k"] == 5 and report["queries"] == 400
    assert np.abs(occ - expected).sum() <= 4  # exact ties at rank k may go either way
    q = normalized(50, 8, 15)
    occ_q, rep_q = index.hubness(np.arange(400) + 1000, queries=q, k=3)
    assert occ_q.sum() == 150 and rep_q["queries"] == 50
    with pytest.raises(engine.EngineError):
        index.hubness(np.arange(400) + 1000, k=0)
    with pytest.raises(engine.EngineError):
        index.hubness([1, 1], k=2)


def test_mine_to_jsonl_file_matches_buffers(tmp_path):
    import json
    x, q = normalized(300, 8, 16), normalized(25, 8, 17)
    index = engine.Index("Flat", 8, "ip")
    index.add(x)
    positives = [[i] for i in range(25)]
    neg, scores, _ = index.mine(positives, anchors=q, num_negatives=4, range_max=20, seed=3)
    path = tmp_path / "mined.jsonl"
    report = index.mine(positives, anchors=q, num_negatives=4, range_max=20, seed=3, output=path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert report["rows_written"] == len(rows) == 25
    for i, row in enumerate(rows):
        assert row["anchor"] == i and row["positives"] == [i]
        assert row["negatives"] == list(neg[i])
        np.testing.assert_allclose(row["scores"], scores[i], rtol=1e-6)
    with pytest.raises(engine.EngineError) as e:
        index.mine(positives, anchors=q, output=tmp_path / "no-such-dir" / "x.jsonl")
    assert e.value.status == "io"
