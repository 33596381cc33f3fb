"""Refresher: snapshots swapped while mining, rows tagged with their snapshot and staleness, the staleness bound."""

import threading

import numpy as np
import pytest

import minedex


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def corpus(seed, n=600, d=16):
    rng = np.random.default_rng(seed)
    return rng, rng.standard_normal((n, d)).astype(np.float32)


def test_push_refresh_and_row_tags():
    rng, c = corpus(0)
    q = c[:30] + 0.2 * rng.standard_normal((30, 16)).astype(np.float32)
    with minedex.Refresher(c, "Flat", "cosine", step=0) as r:
        first = r.snapshot
        mined = r.mine(q, np.arange(30), step=3, num_negatives=4, output_format="triplet", verbose=False)
        assert mined.snapshot == first.number and set(mined.columns["snapshot"]) == {first.number}
        assert set(mined.columns["staleness"]) == {3}
        new = rng.standard_normal((100, 16)).astype(np.float32)
        r.push(np.arange(100), new, step=5)
        assert r.snapshot is first  # pushes never touch a snapshot
        snap = r.refresh(wait=True)
        assert snap.number > first.number and np.array_equal(snap.vectors[:100], new)
        mined = r.mine(q, np.arange(30), step=6, num_negatives=4, output_format="n-tuple", verbose=False)
        # rows whose vectors all come from the push are 1 step stale, the others 6
        assert set(mined.columns["staleness"]) <= {1, 6}
        assert mined.columns["snapshot"][0] == snap.number
        assert list(r.due(3)) == [100, 101, 102]


def test_no_row_mixes_snapshots_under_concurrent_upserts():
    rng, c = corpus(1, n=400, d=12)
    q = unit(c[:40] + 0.3 * rng.standard_normal((40, 12)).astype(np.float32))
    built = {}
    r = minedex.Refresher(c, "Flat", "cosine")
    original_build = r._build

    def recording_build():
        snap = original_build()
        built[snap.number] = snap.vectors
        return snap

    r._build = recording_build
    built[r.snapshot.number] = r.snapshot.vectors
    results, errors, stop = [], [], threading.Event()

    def miner():
        try:
            while not stop.is_set():
                results.append(r.mine(q, np.arange(40), num_negatives=5, range_max=20, output_format="n-tuple",
                                      output_scores=True, verbose=False))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=miner) for _ in range(2)]
    for t in threads:
        t.start()
    trainer_rng = np.random.default_rng(2)
    for step in range(1, 25):  # the trainer: re-embed a fifth of the corpus, push, refresh in the background
        ids = trainer_rng.choice(400, 80, replace=False)
        r.push(ids, trainer_rng.standard_normal((80, 12)).astype(np.float32), step, refresh=True)
        if step % 6 == 0:  # now and then let the miners finish a call on the newest snapshot (bounded wait)
            r.refresh(wait=True)
            before, waited = len(results), 0
            while len(results) < before + 2 and waited < 3000 and not errors:
                stop.wait(0.01)
                waited += 1
    r.refresh(wait=True)
    stop.set()
    for t in threads:
        t.join()
    r.close()
    assert not errors, errors
    seen = {res.snapshot for res in results}
    assert len(results) >= 2 and len(built) >= 3
    for res in results:
        vec = unit(built[res.snapshot].astype(np.float64))
        sims = q.astype(np.float64) @ vec.T
        for i in range(40):
            sims[i, i] = -np.inf  # the positive
            expect = np.argsort(-sims[i], kind="stable")[:5]
            assert list(res.negatives[i]) == list(expect), (res.snapshot, i)
            np.testing.assert_allclose(res.scores[i], sims[i, expect], atol=1e-4)
    assert len(seen) >= 2, seen  # mining ran across swaps


def test_staleness_bound_is_enforced_and_due_lists_the_oldest_first():
    rng, c = corpus(3, n=100, d=8)
    q = c[:10]
    with minedex.Refresher(c, "Flat", "ip", max_staleness=5) as r:
        r.mine(q, np.arange(10), step=5, verbose=False)
        r.push(np.arange(50), rng.standard_normal((50, 8)).astype(np.float32), step=6, refresh=True)
        r.refresh(wait=True)
        assert r.overdue(7) == 50
        with pytest.raises(minedex.StaleSnapshotError, match="50 vectors older than max_staleness=5"):
            r.mine(q, np.arange(10), step=7, verbose=False)
        assert list(r.due(50)) == list(range(50, 100))
        r.push(r.due(50), rng.standard_normal((50, 8)).astype(np.float32), step=7)
        r.refresh(wait=True)
        mined = r.mine(q, np.arange(10), step=8, verbose=False)
        assert max(mined.columns["staleness"]) <= 5 and r.overdue() == 0


def test_an_approximate_index_snapshot():
    rng, c = corpus(4, n=800, d=16)
    with minedex.Refresher(c, "HNSW16", "cosine") as r:
        r.push(np.arange(200), rng.standard_normal((200, 16)).astype(np.float32), step=1, refresh=True)
        snap = r.refresh(wait=True)
        assert snap.index.description.startswith("HNSW") and len(snap.index) == 800
        mined = r.mine(c[:20], np.arange(20), num_negatives=3, verbose=False)
        assert len(mined) > 0 and mined.snapshot == snap.number


def test_bad_input():
    _, c = corpus(5, n=50, d=4)
    with pytest.raises(minedex.InvalidArgumentError, match="empty"):
        minedex.Refresher(np.zeros((0, 4), np.float32))
    with pytest.raises(minedex.EngineError, match="Unknown index spec"):
        minedex.Refresher(c, "NoSuchIndex")
    r = minedex.Refresher(c, step=10)
    for call, error, match in [
        (lambda: r.push([0], np.ones((1, 5), np.float32), 11), minedex.InvalidArgumentError, "Dimension mismatch"),
        (lambda: r.push([0, 1], np.ones((1, 4), np.float32), 11), minedex.InvalidArgumentError, "one vector per id"),
        (lambda: r.push([50], np.ones((1, 4), np.float32), 11), minedex.InvalidArgumentError, "not a corpus row"),
        (lambda: r.push([1, 1], np.ones((2, 4), np.float32), 11), minedex.InvalidArgumentError, "duplicates"),
        (lambda: r.push([0], np.full((1, 4), np.nan, np.float32), 11), minedex.InvalidArgumentError, "non-finite"),
        (lambda: r.push([0], np.ones((1, 4), np.float32), 9), minedex.InvalidArgumentError, "steps only go forward"),
        (lambda: r.push([0], np.ones((1, 4), np.float32), 1.5), minedex.ArgumentTypeError, "step"),
        (lambda: r.mine(c[:2], [0, 1], index="Flat"), minedex.ArgumentTypeError, "snapshot provides"),
        (lambda: r.due(-1), minedex.InvalidArgumentError, "count"),
    ]:
        with pytest.raises(error, match=match):
            call()
    r.close()
    with pytest.raises(minedex.InvalidArgumentError, match="closed"):
        r.mine(c[:2], [0, 1])


def test_refresh_training_example_runs_and_keeps_the_bound(capsys):
    pytest.importorskip("torch")
    import importlib.util
    import json
    import os
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "refresh_training.py")
    spec = importlib.util.spec_from_file_location("refresh_training", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--steps", "40", "--n", "1500", "--refresh-every", "5", "--fraction", "0.1", "--max-staleness", "12"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["snapshots_used"] >= 3
    assert 0 < out["staleness_max"] <= 12
    assert set(out["timing"]) == {"total_s", "mining_s", "refresh_s"}
    with pytest.raises(SystemExit):
        example.main(["--fraction", "0"])


def test_retrain_every_reuses_the_last_training_between_fresh_ones():
    import os
    rng, c = corpus(6, n=1200, d=16)
    q = c[:40] + 0.1 * rng.standard_normal((40, 16)).astype(np.float32)
    with minedex.Refresher(c, "IVF16,Flat", "l2", retrain_every=3) as r:
        trained, template = [r.snapshot.trained_at], r._template[0]
        assert trained == [1] and os.path.isfile(os.path.join(template, "trained.index"))
        for step in range(1, 5):
            r.push(np.arange(300 * (step - 1), 300 * step), rng.standard_normal((300, 16)).astype(np.float32), step)
            snap = r.refresh(wait=True)
            trained.append(snap.trained_at)
            # every snapshot holds the live table and answers exactly within its probed lists: with every list
            # probed it is exact search over the snapshot's own vectors
            D, I = snap.index.search(q, 5, probes=16)
            exact = np.argsort(((q[:, None, :] - snap.vectors[None, :, :]) ** 2).sum(-1), axis=1)[:, :5]
            assert (I == exact).mean() > 0.99
        assert trained == [1, 1, 1, 4, 4]  # snapshots 2 and 3 reuse 1's k-means, 4 trains afresh, 5 reuses it
        assert not os.path.exists(template)  # the first template went when snapshot 4 trained
        newest = r._template[0]
    assert not os.path.exists(newest)  # close() removes the last one


def test_retrain_every_none_trains_once_and_flat_needs_no_training():
    rng, c = corpus(7, n=500, d=8)
    with minedex.Refresher(c, "IVF8,Flat", "cosine", retrain_every=None) as r:
        for step in range(1, 4):
            r.push(np.arange(50), rng.standard_normal((50, 8)).astype(np.float32), step)
            assert r.refresh(wait=True).trained_at == 1
        mined = r.mine(c[:10], np.arange(10), num_negatives=2, verbose=False)
        assert mined.snapshot == 4 and len(mined) > 0
    with minedex.Refresher(c, "Flat", retrain_every=2) as r:
        assert r.snapshot.trained_at is None and r._template is None
    with minedex.Refresher(c, "IVF8,Flat") as r:  # the default retrains every snapshot and saves nothing
        r.push([0], c[:1], 1)
        assert r.refresh(wait=True).trained_at == 2 and r._template is None


def test_retrain_every_must_be_a_positive_integer_or_none():
    _, c = corpus(8, n=50, d=4)
    for bad, error in ((0, minedex.InvalidArgumentError), (-2, minedex.InvalidArgumentError),
                       (1.5, minedex.ArgumentTypeError), (True, minedex.ArgumentTypeError),
                       ("3", minedex.ArgumentTypeError)):
        with pytest.raises(error, match="retrain_every"):
            minedex.Refresher(c, "IVF4,Flat", retrain_every=bad)
