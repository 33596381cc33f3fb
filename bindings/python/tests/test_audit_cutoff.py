"""Mining audit (Index.mine(audit=...)) and the calibrated cutoff (minedex.calibrated_cutoff) through the binding:
audit counts equal a recomputation from two independent mining calls; cutoff quality equals a numpy recomputation
from its own thresholds and flags; bad inputs raise InvalidArgumentError (ValueError) or ArgumentTypeError
(TypeError)."""

import json

import numpy as np
import pytest

import minedex
from minedex.calibrated_cutoff import CalibratedCutoff


def clustered(n, d, seed, clusters=20):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1, 1, (clusters, d))
    return (centres[rng.integers(0, clusters, n)] + 0.4 * rng.standard_normal((n, d))).astype(np.float32)


@pytest.fixture(scope="module")
def corpus():
    x = clustered(3000, 16, 1)
    q = clustered(60, 16, 2)
    flat = minedex.Index("Flat", 16, "l2")
    flat.add(x)
    ivf = minedex.Index("IVF32,PQ4x4fs", 16, "l2")
    ivf.train(x)
    ivf.add(x)
    _, nearest = flat.search(q, 1)
    return x, q, flat, ivf, [[int(i)] for i in nearest[:, 0]]


OPTIONS = dict(num_negatives=5, range_min=2, range_max=40, absolute_margin=0.5, seed=7, threads=1)


def flips(a, b):
    total, rows = 0, 0
    for ra, rb in zip(a, b):
        sa, sb = set(ra[ra >= 0].tolist()), set(rb[rb >= 0].tolist())
        total += len(sa ^ sb)
        rows += sa != sb
    return total, rows


def test_exact_against_exact_flips_nothing(corpus):
    _, q, flat, _, positives = corpus
    neg, _, report = flat.mine(positives, anchors=q, audit=flat, **OPTIONS)
    audit = report["audit"]
    assert audit["anchors"] == len(q)
    assert audit["set_flips"] == 0 and audit["flip_rate"] == 0 and audit["rows_changed"] == 0
    assert audit["threshold_flips"] == 0
    assert audit["band"] < 1e-4  # Flat's GEMM scores against the exact re-score: float rounding only
    assert audit["approximate_negatives"] == audit["exact_negatives"] == int((neg >= 0).sum())


def test_approximate_audit_equals_two_independent_minings(corpus):
    _, q, flat, ivf, positives = corpus
    approx, _, report = ivf.mine(positives, anchors=q, audit=flat, search="probes=1", **OPTIONS)
    exact, _, _ = flat.mine(positives, anchors=q, **OPTIONS)
    total, rows = flips(approx, exact)
    audit = report["audit"]
    assert total > 0, "one probe of 4-bit PQ must move some decisions"
    assert audit["set_flips"] == total
    assert audit["rows_changed"] == rows
    assert audit["approximate_negatives"] == int((approx >= 0).sum())
    assert audit["exact_negatives"] == int((exact >= 0).sum())
    assert audit["flip_rate"] == pytest.approx(total / (audit["approximate_negatives"] + audit["exact_negatives"]))
    assert audit["band"] > 0 and audit["mean_score_error"] > 0


def test_audit_goes_into_the_file_mode_report(corpus, tmp_path):
    _, q, flat, ivf, positives = corpus
    report = ivf.mine(positives, anchors=q, output=tmp_path / "m.jsonl", audit=flat, search="probes=2", **OPTIONS)
    assert set(report["audit"]) >= {"set_flips", "flip_rate", "rows_changed", "threshold_flips", "band", "in_band"}
    assert (tmp_path / "m.jsonl").exists()
    json.dumps(report)


def test_audit_bad_inputs(corpus):
    x, q, flat, ivf, positives = corpus
    with pytest.raises(TypeError):
        ivf.mine(positives, anchors=q, audit="Flat", **OPTIONS)
    with pytest.raises(minedex.ArgumentTypeError):
        ivf.mine(positives, anchors=q, audit=flat.d, **OPTIONS)
    smaller = minedex.Index("Flat", 16, "l2")
    smaller.add(x[:100])
    with pytest.raises(minedex.InvalidArgumentError, match="same vectors"):
        ivf.mine(positives, anchors=q, audit=smaller, **OPTIONS)
    other_metric = minedex.Index("Flat", 16, "ip")
    other_metric.add(x)
    with pytest.raises(ValueError):
        ivf.mine(positives, anchors=q, audit=other_metric, **OPTIONS)
    with pytest.raises(minedex.InvalidArgumentError, match="k_occurrence"):
        ivf.mine(positives, anchors=q, audit=flat, k_occurrence={0: 3}, hubness_gamma=1.0, sampling="uniform",
                 **OPTIONS)
    with pytest.raises(minedex.InvalidArgumentError):
        ivf.mine(positives, anchors=q, audit=flat, **dict(OPTIONS, num_negatives=-1))


def labelled(queries, seed, offset_spread):
    """Per query 50 candidates, 5 relevant (scores ≈ offset + 1) among noise (≈ offset), offset per query."""
    rng = np.random.default_rng(seed)
    scores, relevant = [], []
    for _ in range(queries):
        offset = rng.uniform(-offset_spread, offset_spread)
        rel = np.zeros(50, dtype=bool)
        rel[rng.choice(50, 5, replace=False)] = True
        scores.append((offset + rel * 1.0 + 0.15 * rng.standard_normal(50)).astype(np.float32))
        relevant.append(rel)
    return scores, relevant


def quality(keep, relevant):
    tp = int((keep & relevant).sum())
    p = tp / max(int(keep.sum()), 1)
    r = tp / int(relevant.sum())
    return {"precision": p, "recall": r, "f1": 0 if p + r == 0 else 2 * p * r / (p + r)}


def test_calibrated_cutoff_beats_the_plain_threshold_and_matches_numpy():
    train_s, train_r = labelled(300, 1, 1.5)
    test_s, test_r = labelled(300, 2, 1.5)
    with CalibratedCutoff.fit(train_s, train_r, top_k=10) as cutoff:
        assert cutoff.top_k == 10 and 0 < cutoff.threshold < 1
        result = cutoff.evaluate(test_s, test_r)
        assert result["calibrated"]["f1"] > result["plain"]["f1"] + 0.2
        flat_s, flat_r = np.concatenate(test_s), np.concatenate(test_r)
        for key, value in quality(flat_s >= cutoff.plain_threshold, flat_r).items():
            assert result["plain"][key] == pytest.approx(value, abs=1e-12)
        keep = cutoff.apply(test_s)
        assert len(keep) == 300 and all(k.dtype == bool and k.shape == (50,) for k in keep)
        for key, value in quality(np.concatenate(keep), flat_r).items():
            assert result["calibrated"][key] == pytest.approx(value, abs=1e-12)
        lims = np.arange(0, 300 * 50 + 1, 50)
        assert np.array_equal(cutoff.apply(flat_s, lims=lims), np.concatenate(keep))
        assert cutoff.evaluate(flat_s, flat_r, lims=lims) == result
    again = CalibratedCutoff.fit(train_s, train_r, top_k=10)
    assert again.threshold == CalibratedCutoff.fit(train_s, train_r, top_k=10).threshold  # deterministic


def test_calibrated_cutoff_bad_inputs():
    s, r = labelled(20, 3, 1.0)
    with pytest.raises(minedex.InvalidArgumentError):
        CalibratedCutoff.fit([np.array([1.0, np.nan], np.float32)], [np.array([True, False])])
    with pytest.raises(minedex.InvalidArgumentError, match="same"):
        CalibratedCutoff.fit(s, r[:-1])
    with pytest.raises(minedex.InvalidArgumentError, match="relevant"):
        CalibratedCutoff.fit([np.array([1.0, 2.0])], [np.array([True, True])])  # one class only
    with pytest.raises(minedex.InvalidArgumentError, match="topK"):
        CalibratedCutoff.fit(s, r, top_k=0)
    with pytest.raises(minedex.InvalidArgumentError):
        CalibratedCutoff.fit(s, r, iterations=0)
    with pytest.raises(ValueError):
        CalibratedCutoff.fit([], [])
    with pytest.raises(TypeError):
        CalibratedCutoff.fit(s, [np.array(["yes"] * 50)] * 20)
    with pytest.raises(minedex.InvalidArgumentError, match="0 and 1"):
        CalibratedCutoff.fit(s, [np.full(50, 2)] * 20)
    with pytest.raises(minedex.ArgumentTypeError):
        CalibratedCutoff.fit("scores", r)
    with pytest.raises(minedex.InvalidArgumentError, match="lims"):
        CalibratedCutoff.fit(np.concatenate(s), np.concatenate(r), lims=[0, 10])
    cutoff = CalibratedCutoff.fit(s, r)
    with pytest.raises(minedex.InvalidArgumentError):
        cutoff.apply([np.array([0.5, np.inf], np.float32)])
    with pytest.raises(minedex.InvalidArgumentError, match="decrease"):
        cutoff.apply(np.zeros(4, np.float32), lims=[0, 3, 2, 4])
    cutoff.close()
    cutoff.close()
    with pytest.raises(minedex.EngineError, match="closed") as closed:
        cutoff.apply(s)
    assert closed.value.code == 2 and not isinstance(closed.value, minedex.InvalidArgumentError)
