"""Tests of bench/peers/run_peers.py that need neither faiss nor hnswlib: the loaders against numpy-written files,
recall, the missing-package message, and a whole run against a stand-in hnswlib module (exact search)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_peers  # noqa: E402

RNG = np.random.default_rng(7)


def exact_gt(xb, xq, k):
    d = ((xq[:, None, :] - xb[None, :, :]) ** 2).sum(-1)
    return np.argsort(d, axis=1, kind='stable')[:, :k].astype(np.int32)


def write_vecs(path, a):
    a = np.asarray(a)
    dims = np.full((len(a), 1), a.shape[1], dtype=np.int32).view(np.uint8)
    np.hstack([dims, a.view(np.uint8).reshape(len(a), -1)]).tofile(path)


def make_dir(tmp_path, fmt):
    xb = RNG.integers(0, 256, size=(200, 6)).astype(np.float32)
    xq = RNG.integers(0, 256, size=(9, 6)).astype(np.float32)
    gt = exact_gt(xb, xq, 10)
    d = tmp_path / fmt
    d.mkdir()
    (d / 'meta.json').write_text(json.dumps(dict(name='t', metric='l2', count=200, queries=9, dimension=6)))
    if fmt == 'fvecs':
        write_vecs(d / 'base.fvecs', xb); write_vecs(d / 'query.fvecs', xq); write_vecs(d / 'gt.ivecs', gt)
    elif fmt == 'bvecs':
        write_vecs(d / 'base.bvecs', xb.astype(np.uint8)); write_vecs(d / 'query.bvecs', xq.astype(np.uint8)); write_vecs(d / 'gt.ivecs', gt)
    else:
        np.save(d / 'base.npy', xb); np.save(d / 'query.npy', xq.astype(np.uint8)); np.save(d / 'gt.npy', gt.astype(np.int64))
    return d, xb, xq, gt


@pytest.mark.parametrize('fmt', ['fvecs', 'bvecs', 'npy'])
def test_directory_formats_load_identically(tmp_path, fmt):
    d, xb, xq, gt = make_dir(tmp_path, fmt)
    name, metric, b, q, g = run_peers.load(str(d))
    assert (name, metric) == ('t', 'l2')
    np.testing.assert_array_equal(b, xb)
    np.testing.assert_array_equal(q, xq)
    np.testing.assert_array_equal(g, gt)
    _, _, _, q5, g5 = run_peers.load(str(d), nq=5)
    assert q5.shape == (5, 6) and g5.shape == (5, 10)


def test_two_formats_in_one_directory_are_rejected(tmp_path):
    d, xb, _, _ = make_dir(tmp_path, 'fvecs')
    np.save(d / 'base.npy', xb)
    with pytest.raises(ValueError, match='keep one'):
        run_peers.load(str(d))


def test_truncated_vecs_file_is_named(tmp_path):
    d, _, _, _ = make_dir(tmp_path, 'fvecs')
    raw = (d / 'base.fvecs').read_bytes()
    (d / 'base.fvecs').write_bytes(raw[:-3])
    with pytest.raises(ValueError, match='base.fvecs'):
        run_peers.load(str(d))


def test_recall_counts_k_recall_at_k():
    gt = np.array([[1, 2, 3], [4, 5, 6]])
    assert run_peers.recall_at_k(np.array([[3, 2, 9], [7, 8, 9]]), gt, 3) == pytest.approx(2 / 6)
    assert run_peers.recall_at_k(gt, gt, 2) == 1.0


def test_missing_package_names_the_debian_package(monkeypatch):
    monkeypatch.setitem(sys.modules, 'faiss', None)
    with pytest.raises(run_peers.MissingPackage, match=r'apt-get install -y python3-faiss'):
        run_peers.require('faiss')


def run_cli(tmp_path, modules, *args):
    """Runs the script with stand-in modules first on PYTHONPATH."""
    fake = tmp_path / 'fake'
    fake.mkdir(exist_ok=True)
    for name, body in modules.items():
        (fake / f'{name}.py').write_text(textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=str(fake))
    return subprocess.run([sys.executable, os.path.join(HERE, 'run_peers.py'), *args], env=env, capture_output=True, text=True, timeout=120)


MISSING = "raise ImportError('not installed in this test')\n"

EXACT_HNSWLIB = '''
import numpy as np
__version__ = 'stand-in'
class Index:
    def __init__(self, space, dim): self.space = space
    def init_index(self, max_elements, ef_construction, M, random_seed): pass
    def add_items(self, x, ids, num_threads): self.x = np.asarray(x); self.ids = np.asarray(ids)
    def set_num_threads(self, n): pass
    def set_ef(self, ef): self.ef = ef
    def knn_query(self, q, k):
        d = ((q[:, None, :] - self.x[None, :, :]) ** 2).sum(-1)
        order = np.argsort(d, axis=1, kind='stable')[:, :k]
        return self.ids[order], np.take_along_axis(d, order, 1)
'''


def test_no_installed_peer_fails_with_the_apt_command(tmp_path):
    d, _, _, _ = make_dir(tmp_path, 'fvecs')
    r = run_cli(tmp_path, {'faiss': MISSING, 'hnswlib': MISSING}, '--data', str(d), '--threads', '1', '--repeats', '1')
    assert r.returncode == 2, r.stderr
    assert 'apt-get install -y python3-faiss' in r.stderr and 'apt-get install -y python3-hnswlib' in r.stderr
    assert r.stdout == ''


def test_rows_follow_the_schema_engine_bench_reads(tmp_path):
    d, _, _, _ = make_dir(tmp_path, 'npy')
    out = tmp_path / 'peers.jsonl'
    r = run_cli(tmp_path, {'faiss': MISSING, 'hnswlib': EXACT_HNSWLIB}, '--data', str(d), '--threads', '1', '--repeats', '1',
                '--ef', '10,20', '--out', str(out))
    assert r.returncode == 0, r.stderr
    assert 'skipping faiss' in r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row['params'] for row in rows] == [{'ef': 10}, {'ef': 20}]
    for row in rows:
        assert row['system'] == 'hnswlib' and row['spec'] == 'HNSW M16 efC200'
        assert row['recall'] == 1.0 and row['qps'] > 0 and row['build_seconds'] >= 0
        assert (row['k'], row['n'], row['nq'], row['dataset']) == (10, 200, 9, 't')


def test_a_crashing_peer_becomes_an_error_row(tmp_path):
    d, _, _, _ = make_dir(tmp_path, 'fvecs')
    crashing = EXACT_HNSWLIB.replace("def set_ef(self, ef): self.ef = ef", "def set_ef(self, ef): self.ef = ef if ef <= 10 else __import__('os').abort()")
    out = tmp_path / 'peers.jsonl'
    r = run_cli(tmp_path, {'faiss': MISSING, 'hnswlib': crashing}, '--data', str(d), '--threads', '1', '--repeats', '1',
                '--systems', 'hnswlib', '--ef', '10,20', '--out', str(out))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]['params'] == {'ef': 10}
    assert 'SIGABRT after 1 rows' in rows[1]['error']


def test_best_qps_times_repeats_and_then_until_min_seconds():
    calls = []

    def search(q):
        calls.append(len(q))
        return q

    out, qps = run_peers.best_qps(search, np.zeros((4, 2)), 2)
    assert len(calls) == 3 and qps > 0  # one warm-up and exactly --repeats timed runs at min_seconds 0
    calls.clear()
    t = run_peers.time.perf_counter()
    run_peers.best_qps(lambda q: (calls.append(1), run_peers.time.sleep(0.01), q)[-1], np.zeros((4, 2)), 2, 0.2)
    assert run_peers.time.perf_counter() - t >= 0.2 and len(calls) > 3  # kept timing past the two repeats


def test_bad_min_seconds_is_rejected(tmp_path):
    d, _, _, _ = make_dir(tmp_path, 'npy')
    r = run_cli(tmp_path, {'faiss': MISSING, 'hnswlib': EXACT_HNSWLIB}, '--data', str(d), '--min-seconds', '-1')
    assert r.returncode != 0 and '--min-seconds' in r.stderr
