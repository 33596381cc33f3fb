"""What a new user hit in the package (the 2026-12-06 adoption audit): rejected adds that used up automatic ids, a
corpus that did not match the index it was mined with, metric names accepted in one place and refused in another,
a float64 overflow reported as infinity, and a write into a missing directory naming a temporary file."""

import numpy as np
import pytest

import minedex


def data(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_a_rejected_add_takes_no_automatic_ids():
    x = data(10, 8, 1)
    flat = minedex.Index("Flat", 8)
    assert list(flat.add(x[:3])) == [0, 1, 2]
    bad = x[3:6].copy()
    bad[2, 0] = np.nan
    with pytest.raises(minedex.InvalidArgumentError):
        flat.add(bad)
    assert list(flat.add(x[6:8])) == [3, 4]          # ids keep matching row numbers
    ivf = minedex.Index("IVF2,Flat", 8)
    with pytest.raises(minedex.EngineError):
        ivf.add(x)                                   # not trained
    ivf.train(data(200, 8, 2))
    assert list(ivf.add(x[:3])) == [0, 1, 2]


def test_mining_with_a_built_index_checks_the_corpus_against_it():
    c = data(50, 16, 3)
    idx = minedex.Index("Flat", 16, "cosine")
    idx.add(c)
    q, pos = c[:5], np.arange(5)
    with pytest.raises(minedex.InvalidArgumentError, match="corpus_embeddings has 12 columns"):
        minedex.mine_hard_negatives(q, data(50, 12, 4), pos, index=idx, verbose=False)
    with pytest.raises(minedex.InvalidArgumentError, match="10 rows but the index holds 50"):
        minedex.mine_hard_negatives(q, c[:10], pos, index=idx, verbose=False)
    with pytest.raises(minedex.InvalidArgumentError, match="query_embeddings has 12 columns"):
        minedex.mine_hard_negatives(data(5, 12, 5), c, pos, index=idx, verbose=False)
    rows = minedex.mine_hard_negatives(q, c, pos, index=idx, output_scores=True, verbose=False)
    assert len(rows) == 5 * 3  # triplets: one row per negative (3 by default)
    assert np.allclose(np.array(rows.columns["score"])[:, 0], 1.0, atol=1e-5)  # (positive, negative) pairs: q is its positive


def test_every_metric_name_the_index_takes_is_taken_by_the_miner_and_the_refresher():
    c = data(40, 8, 6)
    for name, short in (("dot", "ip"), ("L2", "l2"), ("Cosine", "cosine"), ("euclidean", "l2"), ("angular", "cosine")):
        assert minedex.Index("Flat", 8, name).metric == short
        rows = minedex.mine_hard_negatives(c[:4], c, np.arange(4), metric=name, num_negatives=2, verbose=False)
        assert len(rows) == 4 * 2
        with minedex.Refresher(c, metric=name) as r:
            assert len(r.mine(c[:4], np.arange(4), num_negatives=2)) == 4 * 2
    with pytest.raises(minedex.InvalidArgumentError, match="metric must be 'l2', 'ip' or 'cosine'"):
        minedex.mine_hard_negatives(c[:4], c, np.arange(4), metric="manhattan", verbose=False)
    with pytest.raises(minedex.InvalidArgumentError, match="metric must be"):
        minedex.Refresher(c, metric="manhattan")


def test_refresher_mine_is_quiet_unless_asked(capsys):
    c = data(40, 8, 7)
    with minedex.Refresher(c, metric="ip") as r:
        r.mine(c[:4], np.arange(4), num_negatives=2)
        assert capsys.readouterr().out == ""
        r.mine(c[:4], np.arange(4), num_negatives=2, verbose=True)
        assert capsys.readouterr().out != ""


def test_a_float64_beyond_float32_is_named_not_called_infinite():
    idx = minedex.Index("Flat", 8)
    x = np.zeros((2, 8))
    x[1, 3] = 1e39
    with pytest.raises(minedex.InvalidArgumentError, match=r"x\[1, 3\] = 1e\+39 is beyond float32's range"):
        idx.add(x)
    x[1, 3] = np.inf                                  # a real infinity is still reported as one
    with pytest.raises(minedex.InvalidArgumentError, match="non-finite"):
        idx.add(x)


def test_write_jsonl_into_a_missing_directory_names_the_path_given(tmp_path):
    c = data(20, 8, 8)
    rows = minedex.mine_hard_negatives(c[:3], c, np.arange(3), num_negatives=2, verbose=False)
    target = tmp_path / "missing" / "m.jsonl"
    with pytest.raises(FileNotFoundError) as e:
        rows.write_jsonl(target)
    assert str(target) in str(e.value) and ".tmp" not in str(e.value)
    assert rows.write_jsonl(tmp_path / "m.jsonl") == 3 * 2
    assert not (tmp_path / "m.jsonl.tmp").exists()
