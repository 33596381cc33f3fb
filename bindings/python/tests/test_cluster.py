"""minedex.ClusterIndex against a real one-silo cluster and its HTTP gateway (``engine cluster silo`` and
``engine cluster gateway`` processes from the repository's CLI build): mining on the cluster gives the rows of local
mining, search and reads equal a local index, bad input raises the package's exceptions."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import numpy as np
import pytest

import minedex

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CLI = os.path.join(REPO, "engine", "Engine.Cli", "bin", "Release", "net10.0", "Engine.Cli")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args, ready, log):
    proc = subprocess.Popen([CLI] + args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        log.flush()
        with open(log.name, encoding="utf-8", errors="replace") as f:
            if ready in f.read():
                return proc
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    with open(log.name, encoding="utf-8", errors="replace") as f:
        raise RuntimeError(f"{' '.join(args[:2])} did not print {ready!r}:\n{f.read()[-3000:]}")


@pytest.fixture(scope="module")
def gateway():
    if not os.path.exists(CLI):
        raise RuntimeError(f"{CLI} is missing: build the CLI first (dotnet build Engine.sln -c Release), as .ci/run does.")
    work = tempfile.mkdtemp(prefix="minedex-cluster-")
    procs = []
    try:
        silo, gw, http = _free_port(), _free_port(), _free_port()
        with open(os.path.join(work, "silo.log"), "w") as silo_log, open(os.path.join(work, "gateway.log"), "w") as gw_log:
            procs.append(_start(["cluster", "silo", "--port", str(silo), "--gateway", str(gw),
                                 "--data-dir", os.path.join(work, "silo0")], "silo ready", silo_log))
            procs.append(_start(["cluster", "gateway", "--cluster", f"127.0.0.1:{gw}", "--http", str(http)],
                                "gateway ready", gw_log))
            yield f"http://127.0.0.1:{http}"
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def _data(n=1500, d=16, nq=40, seed=3):
    rng = np.random.default_rng(seed)
    corpus = rng.standard_normal((n, d)).astype(np.float32)
    queries = corpus[:nq] + 0.1 * rng.standard_normal((nq, d)).astype(np.float32)
    return corpus, queries


def test_mining_on_the_cluster_equals_local_mining(gateway):
    corpus, queries = _data()
    cluster = minedex.ClusterIndex.create(gateway, "mine", d=16, spec="Flat", metric="cosine", shards=3, replicas=1)
    cluster.add(corpus, ids=np.arange(len(corpus)))
    assert len(cluster) == len(corpus)
    positives = [[i, (i + 7) % len(corpus)] for i in range(len(queries))]
    for options in (dict(num_negatives=3), dict(num_negatives=2, sampling_strategy="random", range_max=40, seed=9),
                    dict(num_negatives=3, relative_margin=0.05, output_format="labeled-pair")):
        remote = minedex.mine_hard_negatives(queries, None, positives, index=cluster, metric="cosine", verbose=False, **options)
        local = minedex.mine_hard_negatives(queries, corpus, positives, index="Flat", metric="cosine", verbose=False, **options)
        np.testing.assert_array_equal(remote.negatives, local.negatives)
        np.testing.assert_allclose(remote.scores, local.scores, rtol=1e-5, atol=1e-6)
        assert remote.columns.keys() == local.columns.keys()
        assert remote.columns["negative" if "negative" in local.columns else "label"] == \
            local.columns["negative" if "negative" in local.columns else "label"]
    # The index-level call, by corpus ids.
    neg, scores, report = cluster.mine([[1], [2]], anchor_ids=[10, 20], num_negatives=2)
    assert neg.shape == (2, 2) and report["anchors"] == 2
    assert 10 not in neg[0] and 1 not in neg[0]


def test_search_get_remove_equal_a_local_index(gateway):
    corpus, queries = _data(n=800, d=8, nq=10, seed=5)
    cluster = minedex.ClusterIndex.create(gateway, "search", d=8, spec="Flat", metric="l2", shards=2, replicas=1)
    ids = np.arange(800) * 3
    cluster.add(corpus, ids=ids)
    local = minedex.Index("Flat", 8, "l2")
    local.add(corpus, ids=ids)
    D, I = cluster.search(queries, 5)
    D2, I2 = local.search(queries, 5)
    np.testing.assert_array_equal(I, I2)
    np.testing.assert_allclose(D, D2, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(cluster.reconstruct(9), corpus[3])
    np.testing.assert_array_equal(cluster.reconstruct_batch([0, 6]), corpus[[0, 2]])
    cluster.remove([0, 3])
    assert len(cluster) == 798
    assert 0 not in cluster.search(corpus[:1], 3)[1]
    with pytest.raises(minedex.InvalidArgumentError, match="not in the collection"):
        cluster.reconstruct(0)
    # Reopened by name: the same layout.
    again = minedex.ClusterIndex(gateway, "search")
    assert (again.d, again.metric, again.description, again.shards) == (8, "l2", "Flat", 2)


def test_bad_input_raises_the_package_exceptions(gateway):
    cluster = minedex.ClusterIndex.create(gateway, "bad", d=4, spec="Flat", metric="l2", shards=1, replicas=1)
    cluster.add(np.eye(4, dtype=np.float32), ids=[1, 2, 3, 4])
    with pytest.raises(minedex.InvalidArgumentError, match="dimension"):
        cluster.search(np.zeros((1, 3), np.float32), 2)
    with pytest.raises(minedex.InvalidArgumentError, match="non-finite"):
        cluster.add(np.full((1, 4), np.nan, np.float32), ids=[9])
    with pytest.raises(minedex.InvalidArgumentError, match="ef"):
        cluster.search(np.zeros((1, 4), np.float32), 2, ef=10)
    with pytest.raises(minedex.ArgumentTypeError):
        cluster.add(np.zeros((1, 4), np.float32), ids=[1.5])
    with pytest.raises(minedex.InvalidArgumentError, match="bogus"):
        cluster.mine([[1]], anchors=np.zeros((1, 4), np.float32), bogus=1)
    with pytest.raises(minedex.InvalidArgumentError, match="no collection"):
        minedex.ClusterIndex(gateway, "does-not-exist")
    with pytest.raises(minedex.InvalidArgumentError):
        minedex.ClusterIndex.create(gateway, "bad", d=5)           # exists with another dimension
    with pytest.raises(minedex.InvalidArgumentError, match="metric"):
        minedex.mine_hard_negatives(np.eye(4, dtype=np.float32), None, [[1]] * 4, index=cluster, metric="cosine", verbose=False)
    with pytest.raises(minedex.ClusterError, match="did not answer"):
        minedex.ClusterIndex("http://127.0.0.1:%d" % _free_port(), "x", timeout=5)
    with pytest.raises(minedex.InvalidArgumentError, match="http://"):
        minedex.ClusterIndex.create("localhost:8080", "x", d=4)
    with pytest.raises(minedex.InvalidArgumentError, match="positive"):
        minedex.ClusterIndex(gateway, "bad", timeout=0)
    # localhost reaches a gateway bound to 127.0.0.1
    assert len(minedex.ClusterIndex(gateway.replace("127.0.0.1", "localhost"), "bad")) == 4
