"""minedex.mine_hard_negatives against a brute-force numpy re-implementation of sentence-transformers' rules.

``st_reference`` follows ``sentence_transformers.util.mine_hard_negatives`` (v5) step by step on a dataset of
(query text, positive text) pairs and a text -> embedding table standing in for the model: the corpus is
``dict.fromkeys(corpus + positives)``, queries are de-duplicated by text with their positives pooled, the full
cosine matrix is cut to the top ``range_max + max_positives``, positives are masked, margins (from the lowest
positive score) and score bounds mask candidates, the survivors are re-ranked, ``[range_min:range_max]`` is the
window and "top" takes its head; the output formats are built as sentence-transformers builds them. Intended
behaviour where sentence-transformers has a bug or a crash: the relative margin is sign-safe (identical for the
positive scores used here), ``range_max`` beyond the corpus is clamped (``topk`` raises there), and labeled-pair
rows are per unique query.
"""

import json
import warnings

import numpy as np
import pytest

import minedex

# ------------------------------------------------------------------------------------------------ the reference


def st_reference(pairs, extra_corpus, table, range_min=0, range_max=None, max_score=None, min_score=None,
                 absolute_margin=None, relative_margin=None, num_negatives=3, include_positives=False,
                 output_format="triplet"):
    queries_all = [qt for qt, _ in pairs]
    positives_all = [pt for _, pt in pairs]
    counts = {}
    for qt in queries_all:
        counts[qt] = counts.get(qt, 0) + 1
    max_positives = max(counts.values())
    if range_max is None:
        if absolute_margin is not None or relative_margin is not None or max_score is not None:
            range_max = range_min + num_negatives * 10 + max_positives
        else:
            range_max = range_min + num_negatives + max_positives
    corpus = list(dict.fromkeys(list(extra_corpus) + positives_all))
    corpus_idx = {t: i for i, t in enumerate(corpus)}
    queries = list(dict.fromkeys(queries_all))
    query_idx = {t: i for i, t in enumerate(queries)}
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    qe = unit(np.stack([table[t] for t in queries]).astype(np.float64))
    ce = unit(np.stack([table[t] for t in corpus]).astype(np.float64))
    sim = qe @ ce.T
    depth = min(range_max + max_positives, len(corpus))
    order = np.argsort(-sim, axis=1, kind="stable")[:, :depth]
    scores = np.take_along_axis(sim, order, axis=1)
    pos_idx = [[] for _ in queries]
    for qt, pt in pairs:
        pos_idx[query_idx[qt]].append(corpus_idx[pt])
    pos_scores = [np.array([sim[i, j] for j in p]) for i, p in enumerate(pos_idx)]
    if not include_positives:
        for i, p in enumerate(pos_idx):
            scores[i, np.isin(order[i], p)] = -np.inf
    floor = np.array([ps.min() for ps in pos_scores])[:, None]
    if absolute_margin is not None:
        scores[scores + absolute_margin > floor] = -np.inf
    if relative_margin is not None:
        scores[scores > floor - np.abs(floor) * relative_margin] = -np.inf
    if max_score is not None:
        scores[scores > max_score] = -np.inf
    if min_score is not None:
        scores[scores < min_score] = -np.inf
    rerank = np.argsort(-scores, axis=1, kind="stable")[:, :range_max]
    cand = np.take_along_axis(order, rerank, axis=1)[:, range_min:]
    cand_scores = np.take_along_axis(scores, rerank, axis=1)[:, range_min:]
    negs = [[int(j) for j, s in zip(cand[i, :num_negatives], cand_scores[i, :num_negatives]) if np.isfinite(s)]
            for i in range(len(queries))]

    cols = {"anchor": [], "positive": []}
    if output_format == "triplet":
        cols["negative"] = []
        for i, q in enumerate(queries):
            for p in pos_idx[i]:
                for j in negs[i]:
                    cols["anchor"].append(q); cols["positive"].append(corpus[p]); cols["negative"].append(corpus[j])
    elif output_format == "n-tuple":
        for k in range(num_negatives):
            cols[f"negative_{k + 1}"] = []
        for i, q in enumerate(queries):
            if len(negs[i]) < num_negatives:
                continue
            for p in pos_idx[i]:
                cols["anchor"].append(q); cols["positive"].append(corpus[p])
                for k, j in enumerate(negs[i]):
                    cols[f"negative_{k + 1}"].append(corpus[j])
    elif output_format == "labeled-pair":
        cols["label"] = []
        for i, q in enumerate(queries):
            for doc, label in [(p, 1) for p in pos_idx[i]] + [(j, 0) for j in negs[i]]:
                cols["anchor"].append(q); cols["positive"].append(corpus[doc]); cols["label"].append(label)
    else:
        cols["labels"] = []
        for i, q in enumerate(queries):
            if not negs[i]:
                continue
            for p in pos_idx[i]:
                cols["anchor"].append(q)
                cols["positive"].append([corpus[p]] + [corpus[j] for j in negs[i]])
                cols["labels"].append([1] + [0] * len(negs[i]))
    window = [[(int(j), float(s)) for j, s in zip(cand[i], cand_scores[i]) if np.isfinite(s)] for i in range(len(queries))]
    return cols, {"corpus": corpus, "queries": queries, "negatives": negs, "window": window, "range_max": range_max}


def run_engine(pairs, extra_corpus, table, **options):
    """The same problem through minedex: one embedding row per pair, the corpus as extra + pair positives (with
    their duplicates), texts on both sides."""
    corpus = list(extra_corpus) + [pt for _, pt in pairs]
    positives = [[len(extra_corpus) + r] for r in range(len(pairs))]
    q = np.stack([table[qt] for qt, _ in pairs]).astype(np.float32)
    c = np.stack([table[t] for t in corpus]).astype(np.float32)
    options.setdefault("verbose", False)
    return minedex.mine_hard_negatives(q, c, positives, queries=[qt for qt, _ in pairs], corpus=corpus, **options)


def make_problem(seed, n_queries=40, n_extra=300, d=16, multi=0, duplicate_texts=0, noise=0.6):
    """Seeded texts and embeddings: each query has a close positive; ``multi`` queries get a second pair (two
    positives); ``duplicate_texts`` extra corpus entries repeat a positive's text (the same embedding)."""
    rng = np.random.default_rng(seed)
    table, pairs = {}, []
    for i in range(n_queries):
        base = rng.standard_normal(d)
        table[f"q{i}"] = base + noise * rng.standard_normal(d)
        table[f"p{i}"] = base
        pairs.append((f"q{i}", f"p{i}"))
    for i in range(multi):
        table[f"p{i}b"] = table[f"p{i}"] + 0.5 * rng.standard_normal(d)
        pairs.append((f"q{i}", f"p{i}b"))
    extra = []
    for i in range(n_extra):
        table[f"c{i}"] = rng.standard_normal(d)
        extra.append(f"c{i}")
    for i in range(duplicate_texts):
        extra.insert(int(rng.integers(0, len(extra))), f"p{i}")  # a copy of a positive inside the corpus
        extra.insert(int(rng.integers(0, len(extra))), f"c{i}")  # a copy of another candidate
    return pairs, extra, table


CASES = {
    "defaults": dict(),
    "window_relative_margin": dict(range_min=2, range_max=25, relative_margin=0.05, num_negatives=4),
    "absolute_margin_and_bounds": dict(absolute_margin=0.05, max_score=0.9, min_score=0.05, num_negatives=5),
    "margin_default_range_max": dict(relative_margin=0.1, num_negatives=2),
    "range_min_only": dict(range_min=5, num_negatives=3),
}
FORMATS = ["triplet", "n-tuple", "labeled-pair", "labeled-list"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_equals_reference_on_exact_index(case, fmt):
    pairs, extra, table = make_problem(seed=11, multi=6, duplicate_texts=4)
    expected, _ = st_reference(pairs, extra, table, output_format=fmt, **CASES[case])
    got = run_engine(pairs, extra, table, output_format=fmt, **CASES[case])
    assert got.columns == expected
    assert len(got) == len(expected["anchor"]) > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_more_negatives_than_survivors_and_range_max_beyond_corpus(fmt):
    # A 15-item corpus and a window up to 50 (sentence-transformers' topk fails there); queries with two positives
    # have 13 candidates for 14 requested negatives.
    pairs, extra, table = make_problem(seed=3, n_queries=10, n_extra=2, multi=3)
    options = dict(range_max=50, num_negatives=14)  # 15-item corpus: 13 or 14 candidates
    expected, ref = st_reference(pairs, extra, table, output_format=fmt, **options)
    assert any(len(n) < 14 for n in ref["negatives"]) and any(len(n) == 14 for n in ref["negatives"])  # the edge case is exercised
    got = run_engine(pairs, extra, table, output_format=fmt, **options)
    assert got.columns == expected
    short = sum(len(n) < 14 for n in ref["negatives"])
    assert got.report["shortfall"]["rows"] == short
    assert (got.report["missing_rows"] > 0) == (fmt != "labeled-list")  # labeled-list keeps short lists


def test_several_positives_per_query_use_the_lowest_positive_for_margins():
    pairs, extra, table = make_problem(seed=5, n_queries=20, multi=20)
    options = dict(absolute_margin=0.02, num_negatives=3, output_format="n-tuple", output_scores=True)
    expected, ref = st_reference(pairs, extra, table, **{k: x for k, x in options.items() if k != "output_scores"})
    got = run_engine(pairs, extra, table, **options)
    assert {k: x for k, x in got.columns.items() if k != "score"} == expected
    # every query has two positives, so two rows per query, both carrying the query's negatives
    assert len(got) == 2 * sum(len(n) == 3 for n in ref["negatives"])
    for i, ps in enumerate(got.positive_scores):
        assert len(ps) == 2
        found = got.negatives[i] >= 0
        assert np.all(got.scores[i][found] + 0.02 <= ps.min() + 1e-6)  # the margin counts from the lower positive
    for ps, *ns in got.columns["score"]:
        assert ns == sorted(ns, reverse=True)


def test_duplicate_corpus_texts_are_one_candidate_and_a_copy_of_the_positive_is_never_a_negative():
    pairs, extra, table = make_problem(seed=9, n_queries=15, n_extra=60, duplicate_texts=15)
    got = run_engine(pairs, extra, table, num_negatives=10, output_format="n-tuple")
    for row in got:
        negs = [row[f"negative_{k}"] for k in range(1, 11)]
        assert row["positive"] not in negs
        assert len(set(negs)) == len(negs)
    expected, _ = st_reference(pairs, extra, table, num_negatives=10, output_format="n-tuple")
    assert got.columns == expected


def test_duplicate_query_texts_are_merged():
    pairs, extra, table = make_problem(seed=2, n_queries=8, multi=8)
    got = run_engine(pairs, extra, table, output_format="labeled-list")
    assert got.report["unique_queries"] == 8 and got.report["queries"] == 16
    assert len(got.negatives) == 8


def test_include_positives_keeps_them_ranked_and_forces_n_tuple():
    pairs, extra, table = make_problem(seed=4, noise=0.2)
    with pytest.warns(UserWarning, match="n-tuple"):
        got = run_engine(pairs, extra, table, include_positives=True, num_negatives=3, output_format="triplet")
    expected, _ = st_reference(pairs, extra, table, include_positives=True, num_negatives=3, output_format="n-tuple")
    assert got.columns == expected
    # with a small noise the positive is the best match: it comes first
    assert sum(r["negative_1"] == r["positive"] for r in got) >= 0.9 * len(got)


def test_random_sampling_draws_from_the_window_survivors():
    pairs, extra, table = make_problem(seed=21, n_queries=60)
    options = dict(range_min=3, range_max=30, relative_margin=0.05, num_negatives=4)
    _, ref = st_reference(pairs, extra, table, **options)
    a = run_engine(pairs, extra, table, sampling_strategy="random", seed=1, **options)
    b = run_engine(pairs, extra, table, sampling_strategy="random", seed=1, **options)
    c = run_engine(pairs, extra, table, sampling_strategy="random", seed=2, **options)
    assert a.columns == b.columns  # seeded
    assert a.columns != c.columns
    corpus, top_differs = ref["corpus"], 0
    for i, window in enumerate(ref["window"]):
        allowed = {corpus[j] for j, _ in window}
        drawn = [corpus[j] for j in a.negatives[i] if j >= 0]
        expected_n = min(4, len(window))
        assert len(drawn) == expected_n and set(drawn) <= allowed
        assert list(a.scores[i][:expected_n]) == sorted(a.scores[i][:expected_n], reverse=True)
        top_differs += drawn != [corpus[j] for j, _ in window[:expected_n]]
    assert top_differs > len(ref["window"]) // 2  # really random, not the head of the window


def test_output_scores_and_ids_without_texts():
    rng = np.random.default_rng(0)
    c = rng.standard_normal((200, 8)).astype(np.float32)
    q = c[:20] + 0.2 * rng.standard_normal((20, 8)).astype(np.float32)
    got = minedex.mine_hard_negatives(q, c, np.arange(20), output_format="triplet", output_scores=True, verbose=False)
    assert set(got.columns) == {"anchor", "positive", "negative", "score"}
    assert got.columns["anchor"][:3] == [0, 0, 0] and got.columns["positive"][0] == 0
    pos, neg = np.array(got.columns["score"]).T
    unit = c / np.linalg.norm(c, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    exact_pos = np.sum(qn[got.columns["anchor"]] * unit[got.columns["positive"]], axis=1)
    exact_neg = np.sum(qn[got.columns["anchor"]] * unit[got.columns["negative"]], axis=1)
    np.testing.assert_allclose(pos, exact_pos, atol=1e-5)
    np.testing.assert_allclose(neg, exact_neg, atol=1e-5)
    nts = minedex.mine_hard_negatives(q, c, np.arange(20), output_format="n-tuple-scores", verbose=False)
    explicit = minedex.mine_hard_negatives(q, c, np.arange(20), output_format="n-tuple", output_scores=True,
                                           verbose=False)
    assert nts.columns == explicit.columns and nts.output_format == "n-tuple" and "score" in nts.columns
    lp = minedex.mine_hard_negatives(q, c, np.arange(20), output_format="labeled-pair", output_scores=True, verbose=False)
    assert len(lp.columns["score"]) == len(lp) and lp.columns["label"][:4] == [1, 0, 0, 0]
    ll = minedex.mine_hard_negatives(q, c, np.arange(20), output_format="labeled-list", output_scores=True, verbose=False)
    assert [len(s) for s in ll.columns["scores"]] == [len(d) for d in ll.columns["positive"]]


def test_l2_and_ip_metrics_match_brute_force():
    rng = np.random.default_rng(8)
    c = rng.standard_normal((150, 6)).astype(np.float32)
    q = c[:10] + 0.3 * rng.standard_normal((10, 6)).astype(np.float32)
    for metric, score in (("ip", lambda a, b: a @ b.T),
                          ("l2", lambda a, b: -((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))):
        got = minedex.mine_hard_negatives(q, c, np.arange(10), metric=metric, num_negatives=3, range_min=1,
                                          output_format="n-tuple", verbose=False)
        s = score(q.astype(np.float64), c.astype(np.float64))
        s[np.arange(10), np.arange(10)] = -np.inf
        expect = np.argsort(-s, axis=1, kind="stable")[:, 1:4]
        np.testing.assert_array_equal(got.negatives, expect)


def test_top_selection_searches_shallow_first_and_keeps_the_full_depth_rows():
    # "top" without score filters needs only the head of each window: the engine searches about range_min +
    # num_negatives deep first and deepens only anchors left short; the rows are those of a full-depth search.
    rng = np.random.default_rng(21)
    c = rng.standard_normal((3000, 8)).astype(np.float32)
    q = c[:200] + 0.2 * rng.standard_normal((200, 8)).astype(np.float32)
    got = minedex.mine_hard_negatives(q, c, np.arange(200), metric="ip", num_negatives=2, range_min=3, range_max=60,
                                      output_format="n-tuple", verbose=False)
    s = q.astype(np.float64) @ c.astype(np.float64).T
    s[np.arange(200), np.arange(200)] = -np.inf
    np.testing.assert_array_equal(got.negatives, np.argsort(-s, axis=1, kind="stable")[:, 3:5])
    assert got.report["candidates"] < 200 * 61 // 4, got.report["candidates"]  # not range_max + 1 per anchor
    # a score filter keeps sentence-transformers' depth (range_max + max_positives), searched in one pass
    margin = minedex.mine_hard_negatives(q, c, np.arange(200), metric="ip", num_negatives=2, range_min=3,
                                         range_max=60, relative_margin=0.05, output_format="n-tuple", verbose=False)
    assert margin.report["candidates"] == 200 * 61 and margin.report["deepened_anchors"] == 0


def test_ann_index_with_exact_rescoring_agrees_with_exact():
    pairs, extra, table = make_problem(seed=13, n_queries=50, n_extra=1500)
    exact = run_engine(pairs, extra, table, num_negatives=5, range_min=2, output_format="n-tuple")
    ann = run_engine(pairs, extra, table, num_negatives=5, range_min=2, output_format="n-tuple",
                     index="HNSW16,efC200")
    assert ann.report["candidates"] > 0
    a = {(r["anchor"], r[f"negative_{k}"]) for r in exact for k in range(1, 6)}
    b = {(r["anchor"], r[f"negative_{k}"]) for r in ann for k in range(1, 6)}
    assert len(a & b) / len(a | b) >= 0.9


def test_search_params_reach_the_candidate_search():
    pairs, extra, table = make_problem(seed=14, n_queries=60, n_extra=3000)
    exact = run_engine(pairs, extra, table, num_negatives=5, output_format="n-tuple")
    few = run_engine(pairs, extra, table, num_negatives=5, output_format="n-tuple", index="IVF64,Flat",
                     search_params={"probes": 1})
    all_lists = run_engine(pairs, extra, table, num_negatives=5, output_format="n-tuple", index="IVF64,Flat",
                           search_params={"probes": 64})
    assert all_lists.columns == exact.columns  # every list probed and exact re-scoring: the exact rows
    assert few.columns != exact.columns
    with pytest.raises(minedex.EngineError, match="ef"):
        run_engine(pairs, extra, table, index="IVF64,Flat", search_params={"ef": 10})
    with pytest.raises(minedex.ArgumentTypeError, match="search_params"):
        run_engine(pairs, extra, table, index="IVF64,Flat", search_params="probes=4")
    with pytest.raises(minedex.ArgumentTypeError, match="integer"):
        run_engine(pairs, extra, table, index="IVF64,Flat", search_params={"probes": 2.5})


def test_prebuilt_index_and_its_duplicate_texts():
    pairs, extra, table = make_problem(seed=6, n_queries=12, n_extra=80, duplicate_texts=12)
    corpus = list(extra) + [pt for _, pt in pairs]
    c = np.stack([table[t] for t in corpus]).astype(np.float32)
    q = np.stack([table[qt] for qt, _ in pairs]).astype(np.float32)
    with minedex.Index("Flat", c.shape[1], "cosine") as index:
        index.add(c)
        got = minedex.mine_hard_negatives(q, None, [[len(extra) + r] for r in range(len(pairs))], index=index,
                                          queries=[qt for qt, _ in pairs], corpus=corpus, num_negatives=5,
                                          output_format="n-tuple", verbose=False)
        assert len(index) == len(corpus)  # the caller's index is left alone
    for row in got:
        assert row["positive"] not in [row[f"negative_{k}"] for k in range(1, 6)]


def test_report_is_printed_when_verbose(capsys):
    pairs, extra, table = make_problem(seed=1, n_queries=10)
    got = run_engine(pairs, extra, table, relative_margin=0.05, verbose=True)
    out = capsys.readouterr().out
    assert "Setting range_max to" in out and "Metric" in out and "Positive" in out and "Difference" in out
    assert f"{len(got):,} rows (triplet)" in out
    assert got.report["negative_scores"]["count"] == sum(int((n >= 0).sum()) for n in got.negatives)


def test_write_jsonl_round_trip(tmp_path):
    pairs, extra, table = make_problem(seed=1, n_queries=5)
    got = run_engine(pairs, extra, table, output_format="labeled-list", output_scores=True)
    path = tmp_path / "rows.jsonl"
    assert got.write_jsonl(path) == len(got)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows == [got[i] for i in range(len(got))]


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_arguments_raise_clear_errors():
    rng = np.random.default_rng(0)
    c = rng.standard_normal((50, 4)).astype(np.float32)
    q = c[:5].copy()
    pos = np.arange(5)
    mine = lambda **kw: minedex.mine_hard_negatives(kw.pop("q", q), kw.pop("c", c), kw.pop("pos", pos),
                                                    verbose=False, **kw)
    cases = [
        (dict(num_negatives=5, range_min=2, range_max=5), minedex.InvalidArgumentError, "window"),
        (dict(output_format="quadruplet"), minedex.InvalidArgumentError, "output_format"),
        (dict(sampling_strategy="hardest"), minedex.InvalidArgumentError, "sampling_strategy"),
        (dict(relative_margin=float("nan")), minedex.InvalidArgumentError, "relative_margin"),
        (dict(max_score="0.5"), minedex.ArgumentTypeError, "max_score"),
        (dict(num_negatives=2.0), minedex.ArgumentTypeError, "num_negatives"),
        (dict(num_negatives=0), minedex.InvalidArgumentError, "num_negatives"),
        (dict(batch_size=0), minedex.InvalidArgumentError, "batch_size"),
        (dict(pos=[0, 1, 2, 3, 50]), minedex.InvalidArgumentError, "not a corpus row"),
        (dict(pos=[[0], [1], [], [3], [4]]), minedex.InvalidArgumentError, "no positive"),
        (dict(pos=np.arange(4)), minedex.InvalidArgumentError, "one per anchor"),
        (dict(q=np.full((2, 4), np.nan, np.float32), pos=[0, 1]), minedex.InvalidArgumentError, "non-finite"),
        (dict(q=np.ones((2, 3), np.float32), pos=[0, 1]), minedex.InvalidArgumentError, "Dimension mismatch"),
        (dict(q=np.ones((5, 4), np.complex64)), minedex.ArgumentTypeError, "complex"),
        (dict(queries=["a", "b"]), minedex.InvalidArgumentError, "one text per row"),
        (dict(corpus=[1] * 50), minedex.ArgumentTypeError, "corpus\\[0\\]"),
        (dict(metric="manhattan"), minedex.InvalidArgumentError, "metric"),
        (dict(margin=0.1), minedex.ArgumentTypeError, "margin"),
        (dict(return_type="jax"), minedex.InvalidArgumentError, "return_type"),
        (dict(index="NoSuchIndex"), minedex.EngineError, "Unknown index spec"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            mine(**kwargs)


@pytest.mark.parametrize("strategy", ["top", "random"])
def test_query_blocks_give_the_rows_of_one_call_and_show_progress(strategy, capsys):
    pairs, extra, table = make_problem(seed=17, n_queries=45, multi=5)
    options = dict(num_negatives=4, range_max=40, relative_margin=0.05, sampling_strategy=strategy, seed=5,
                   output_format="n-tuple", output_scores=True)
    whole = run_engine(pairs, extra, table, **options)
    sliced = run_engine(pairs, extra, table, query_block_size=7, verbose=True, **options)
    out = capsys.readouterr().out
    assert "Mined 7/45 queries" in out and "Mined 45/45 queries (100.0%)" in out
    # the same rows; scores may differ in the last float bit (the batched search blocks queries differently)
    assert {k: x for k, x in sliced.columns.items() if k != "score"} == \
        {k: x for k, x in whole.columns.items() if k != "score"}
    np.testing.assert_allclose(sliced.columns["score"], whole.columns["score"], rtol=0, atol=1e-6)
    assert sliced.report["query_blocks"] == 7 and whole.report["query_blocks"] == 1
    for key in ("anchors", "negatives_written", "candidates"):
        assert sliced.report[key] == whole.report[key], key
    assert sliced.report["skipped"] == whole.report["skipped"]
    assert sliced.report["negative_scores"] == pytest.approx(whole.report["negative_scores"], abs=1e-6)
    with pytest.raises(minedex.InvalidArgumentError, match="query_block_size"):
        run_engine(pairs, extra, table, query_block_size=0)
