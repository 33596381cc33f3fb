"""Mining and hubness through the bindings, checked against numpy references."""

import os

import numpy as np
import pytest

import minedex


def normalized(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_top_mining_matches_numpy_ranking():
    x, q = normalized(800, 16, 11), normalized(40, 16, 12)
    index = minedex.Index("Flat", 16, "ip")
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
    index = minedex.Index("Flat", 8, "cosine")
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
    index = minedex.Index("Flat", 2, "ip")
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
    index = minedex.Index("Flat", 4)
    index.add(np.random.default_rng(1).standard_normal((20, 4)).astype(np.float32))
    with pytest.raises(minedex.EngineError) as e:
        index.mine(**kwargs)
    assert needle.lower() in str(e.value).lower()
    assert len(index) == 20


def test_hubness_occurrence_matches_numpy_knn():
    x = normalized(400, 8, 14)
    index = minedex.Index("Flat", 8, "ip")
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
    with pytest.raises(minedex.EngineError):
        index.hubness(np.arange(400) + 1000, k=0)
    with pytest.raises(minedex.EngineError):
        index.hubness([1, 1], k=2)
    # lists as deep as the index hold every item (N_k flat, skewness 0): the mistake is named, not answered
    with pytest.raises(minedex.InvalidArgumentError, match="vector count"):
        index.hubness(np.arange(400) + 1000, k=399)
    with pytest.raises(minedex.InvalidArgumentError, match="vector count"):
        index.hubness(np.arange(400) + 1000, queries=q, k=5000)


def test_mine_to_jsonl_file_matches_buffers(tmp_path):
    import json
    x, q = normalized(300, 8, 16), normalized(25, 8, 17)
    index = minedex.Index("Flat", 8, "ip")
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
    with pytest.raises(minedex.EngineError) as e:
        index.mine(positives, anchors=q, output=tmp_path / "no-such-dir" / "x.jsonl")
    assert e.value.status == "io"


# ------------------------------------------------------------------------------------------ hubness-aware sampling
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def hubby(n, d, seed):
    """Gaussian data in d = 48 dimensions: high enough for clear hubs in the k-NN graph (N_k skewness > 1)."""
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def hub_setup():
    x = hubby(2000, 48, 21)
    index = minedex.Index("Flat", 48, "ip")
    index.add(x)
    ids = np.arange(len(x))
    occ, hub = index.hubness(ids, k=10)
    anchors = ids[:1000]
    _, nn = index.search(x[anchors], 2)
    positives = np.where(nn[:, 0] == anchors, nn[:, 1], nn[:, 0])
    return index, ids, occ, hub, anchors, positives


def test_hubness_gamma_hands_out_hubs_less_often():
    index, ids, occ, hub, anchors, positives = hub_setup()
    assert hub["skewness"] > 1.0
    common = dict(anchor_ids=anchors, num_negatives=5, range_max=50, sampling="uniform", seed=11, threads=1)
    plain, _, rep0 = index.mine(positives, **common)
    half, _, rep_half = index.mine(positives, k_occurrence=(ids, occ), hubness_gamma=0.5, **common)
    one, _, rep1 = index.mine(positives, k_occurrence=(ids, occ), hubness_gamma=1.0, **common)
    again, _, _ = index.mine(positives, k_occurrence=dict(zip(ids.tolist(), occ.tolist())), hubness_gamma=1.0,
                             **common)
    other, _, _ = index.mine(positives, k_occurrence=(ids, occ), hubness_gamma=1.0, **dict(common, seed=12))
    four, _, _ = index.mine(positives, k_occurrence=(ids, occ), hubness_gamma=1.0, **dict(common, threads=4))
    assert np.array_equal(one, again) and np.array_equal(one, four)  # deterministic; a dict is the same table
    assert not np.array_equal(one, other)  # the seed matters
    assert not np.array_equal(plain, one)
    # The window (and so the candidate set) is unchanged; only the draw inside it is re-weighted.
    assert rep1["candidates"] == rep_half["candidates"] == rep0["candidates"]
    assert rep1["rows_written"] == rep0["rows_written"] == 1000
    # Hubs (N_k >= 2k, the report's definition) are handed out less often, more so with a larger gamma.
    hubs = ids[occ >= 2 * 10]
    assert len(hubs) > 0
    shares = [np.isin(neg, hubs).mean() for neg in (plain, half, one)]
    assert shares[2] < shares[1] < 0.8 * shares[0], shares
    mean_nk = [occ[neg].mean() for neg in (plain, half, one)]
    assert mean_nk[2] < mean_nk[1] < mean_nk[0], mean_nk
    # gamma 0.5 evens out the hand-outs: lower skewness and cap, no correlation of hand-outs with N_k left.
    # (gamma 1 over-corrects on this data: rarely-seen anti-hubs are then drawn whenever they enter a window.)
    assert rep_half["hand_out_skewness"] < 0.8 * rep0["hand_out_skewness"]
    assert rep_half["max_hand_outs"] < rep0["max_hand_outs"]
    corr = [np.corrcoef(np.bincount(neg.ravel(), minlength=len(ids)), occ)[0, 1] for neg in (plain, half, one)]
    assert corr[0] > 0.4 and abs(corr[1]) < 0.15 and corr[2] < 0, corr


def test_hubness_gamma_weight_is_max_nk_1_to_the_minus_gamma():
    """Corpus anchor 0 with positive 3 has the window [1, 2]; id 1 is a hub with N_k = 99, id 2 is not in the
    table (N_k <= 1). Over 4000 seeds, P(id 1 drawn) = 99^-0.5 / (99^-0.5 + 1)."""
    index = minedex.Index("Flat", 2, "ip")
    index.add(np.array([[1, 0], [0.99, 0.1], [0.98, -0.1], [-1, 0]], np.float32))
    table = (np.array([1, 2]), np.array([99, 0]))  # id 2 is absent -> N_k <= 1
    picks = []
    for seed in range(4000):
        neg, _, _ = index.mine([[3]], anchor_ids=[0], num_negatives=1, range_max=2, sampling="uniform",
                               k_occurrence=table, hubness_gamma=0.5, seed=seed)
        picks.append(neg[0, 0])
    p_hub = np.mean(np.array(picks) == 1)
    expected = 99 ** -0.5 / (99 ** -0.5 + 1.0)  # = 0.0913
    assert abs(p_hub - expected) < 0.02, p_hub


def test_hubness_weighting_matches_the_csharp_cli(tmp_path):
    """The same data mined by `engine mine --hubness-gamma --hub-k` (C# HardNegativeMiner with N_k from
    HubnessAnalyzer over the whole corpus) and through the bindings gives identical rows."""
    import json
    import subprocess
    x = hubby(1500, 48, 22)
    q = hubby(200, 48, 23)
    index = minedex.Index("Flat", 48, "ip")
    index.add(x)
    ids = np.arange(len(x))
    _, nn = index.search(q, 1)
    positives = nn[:, 0]
    occ, _ = index.hubness(ids, k=7)  # the CLI's defaults: whole corpus as bank, seed 42
    neg, scores, report = index.mine(positives, anchors=q, num_negatives=4, range_max=40, sampling="softmax",
                                     temperature=0.5, k_occurrence=(ids, occ), hubness_gamma=0.8, seed=5)

    def vecs(path, a, dtype):
        rows = np.empty((len(a), a.shape[1] + 1), dtype=np.int32)
        rows[:, 0] = a.shape[1]
        rows[:, 1:] = a.astype(dtype).view(np.int32)
        rows.tofile(path)

    vecs(tmp_path / "base.fvecs", x, np.float32)
    vecs(tmp_path / "query.fvecs", q, np.float32)
    vecs(tmp_path / "pos.ivecs", positives[:, None], np.int32)
    cli = os.path.join(REPO, "engine", "Engine.Cli")
    build = subprocess.run(["dotnet", "build", cli, "-c", "Release", "-nologo", "-v", "q"], capture_output=True,
                           text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    dll = os.path.join(cli, "bin", "Release", "net10.0", "Engine.Cli.dll")
    out = tmp_path / "neg.jsonl"
    run = subprocess.run(["dotnet", dll, "mine", "--corpus", str(tmp_path / "base.fvecs"),
                          "--anchors", str(tmp_path / "query.fvecs"), "--positives", str(tmp_path / "pos.ivecs"),
                          "--metric", "ip", "--negatives", "4", "--range", "0:40", "--sampling", "softmax",
                          "--temperature", "0.5", "--hubness-gamma", "0.8", "--hub-k", "7", "--seed", "5",
                          "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == report["rows_written"] == 200
    for i, row in enumerate(rows):
        assert row["anchor"] == i and row["negatives"] == list(neg[i])
        np.testing.assert_allclose(row["scores"], scores[i], rtol=1e-6)
    # minedex.read_mined reads both of the CLI's formats; the binary container's checksums are verified.
    from_jsonl = minedex.read_mined(out)
    assert list(from_jsonl["anchor"]) == list(range(200))
    assert [list(n) for n in from_jsonl["negatives"]] == [r["negatives"] for r in rows]
    binary = tmp_path / "neg.bin"
    run = subprocess.run(["dotnet", dll, "mine", "--corpus", str(tmp_path / "base.fvecs"),
                          "--anchors", str(tmp_path / "query.fvecs"), "--positives", str(tmp_path / "pos.ivecs"),
                          "--metric", "ip", "--negatives", "4", "--range", "0:40", "--sampling", "softmax",
                          "--temperature", "0.5", "--hubness-gamma", "0.8", "--hub-k", "7", "--seed", "5",
                          "--format", "binary", "--out", str(binary)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    from_binary = minedex.read_mined(binary)
    assert from_binary["header"]["metric"] == "ip" and from_binary["header"]["dimension"] == 48
    assert from_binary["report"]["rows_written"] == 200
    for key in ("anchor", "positives", "negatives", "scores", "positive_scores"):
        assert all(np.array_equal(a, b) for a, b in zip(from_binary[key], from_jsonl[key])), key
    blob = bytearray(binary.read_bytes())
    blob[len(blob) // 2] ^= 0x10
    (tmp_path / "flipped.bin").write_bytes(bytes(blob))
    with pytest.raises(minedex.CorruptFileError, match="checksum mismatch") as e:
        minedex.read_mined(tmp_path / "flipped.bin")
    assert e.value.code == 4
    (tmp_path / "cut.bin").write_bytes(bytes(blob[:len(blob) - 9]))
    with pytest.raises(minedex.CorruptFileError):
        minedex.read_mined(tmp_path / "cut.bin", verify=False)
    # The JSONL path of the bindings gives the same rows.
    report2 = index.mine(positives, anchors=q, num_negatives=4, range_max=40, sampling="softmax", temperature=0.5,
                         k_occurrence=(ids, occ), hubness_gamma=0.8, seed=5, output=tmp_path / "py.jsonl")
    assert report2["rows_written"] == 200
    assert [json.loads(line)["negatives"] for line in (tmp_path / "py.jsonl").read_text().splitlines()] == \
        [r["negatives"] for r in rows]


TABLE = (np.arange(20), np.ones(20, np.int64))


@pytest.mark.parametrize("kwargs, needle", [
    (dict(hubness_gamma=0.5, sampling="uniform"), "needs a k-occurrence table"),
    (dict(hubness_gamma=0.0, sampling="uniform", k_occurrence=TABLE), "hubness_gamma' is 0"),
    (dict(k_occurrence=TABLE, sampling="uniform"), "hubness_gamma' is 0"),
    (dict(hubness_gamma=-1.0, sampling="uniform", k_occurrence=TABLE), "must be >= 0"),
    (dict(hubness_gamma=0.5, k_occurrence=TABLE), "got 'top'"),
    (dict(hubness_gamma="strong", sampling="uniform", k_occurrence=TABLE), "must be a number"),
    (dict(hubness_gamma=0.5, sampling="uniform", k_occurrence=(np.array([1, 1]), np.array([2, 3]))), "twice"),
    (dict(hubness_gamma=0.5, sampling="uniform", k_occurrence=(np.array([1, 2]), np.array([2, -3]))), ">= 0"),
    (dict(hubness_gamma=0.5, sampling="uniform", k_occurrence=(np.array([1, 2]), np.array([2]))), "one count per id"),
    (dict(hubness_gamma=0.5, sampling="uniform", k_occurrence=(np.array([1]), np.array([2.5]))), "integers"),
    (dict(hubness_gamma=0.5, sampling="uniform", k_occurrence=np.arange(20)), "pair of arrays"),
])
def test_bad_hubness_options_raise(kwargs, needle):
    index = minedex.Index("Flat", 4)
    index.add(np.random.default_rng(1).standard_normal((20, 4)).astype(np.float32))
    with pytest.raises(minedex.EngineError) as e:
        index.mine([[0]], anchors=np.ones((1, 4), np.float32), num_negatives=2, range_max=10, **kwargs)
    assert needle.lower() in str(e.value).lower()
    assert e.value.status == "invalid argument"


def test_occurrence_table_null_pointers_are_errors_not_crashes():
    import ctypes
    from minedex._native import lib
    index = minedex.Index("Flat", 4)
    index.add(np.random.default_rng(1).standard_normal((20, 4)).astype(np.float32))
    off = np.array([0, 1], np.int64)
    pos = np.array([0], np.int64)
    neg = np.empty(2, np.int64)
    i64p = ctypes.POINTER(ctypes.c_int64)
    opts = b'{"num_negatives": 2, "range_max": 10, "sampling": "uniform", "hubness_gamma": 1}'
    for occ_ids, n_occ, needle in ((None, 3, b"occurrence_ids is a null pointer"),
                                   (pos.ctypes.data_as(i64p), 1, b"occurrence is a null pointer"),
                                   (None, -1, b"must not be negative")):
        code = lib.engine_mine_with_occurrence(
            index._handle(), None, 1, 4, pos.ctypes.data_as(i64p), off.ctypes.data_as(i64p), pos.ctypes.data_as(i64p),
            None, None, occ_ids, None, n_occ, opts, neg.ctypes.data_as(i64p), None, 2, None, 0, None)
        assert code == 1
        assert needle in lib.engine_last_error()
