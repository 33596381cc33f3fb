#!/usr/bin/python3
"""Peer runner for `engine bench --peers`: measures faiss and hnswlib on the same data set and prints their
recall-QPS sweeps as JSON lines in the schema engine bench reads (system, spec, params, recall, qps, build_seconds,
plus k, threads, dataset, n, nq, version).

    /usr/bin/python3 bench/peers/run_peers.py --data /tmp/mnist --k 10 --threads 2 --out /tmp/peers.jsonl
    engine bench --data /tmp/mnist --specs specs.json --peers /tmp/peers.jsonl --plot mnist.png --csv mnist.csv

--data takes what engine bench takes: a data-set directory (meta.json and base/query as .fvecs, .bvecs or .npy,
gt as .ivecs or .npy) or an ann-benchmarks .hdf5 file (needs h5py). The peers come from Debian's packages
(apt-get install -y python3-faiss python3-hnswlib); a system whose package is missing is reported on stderr and
left out, and the runner fails when none of the asked systems can run. Debian's faiss is built without AVX2, so say
which build produced a plot (each row's "version" field does).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

APT_PACKAGES = {'faiss': 'python3-faiss', 'hnswlib': 'python3-hnswlib', 'h5py': 'python3-h5py'}
DEFAULT_NPROBE = '1,2,4,8,16,32,64,128'
DEFAULT_K_FACTOR = '1,2,4,8'
DEFAULT_EF = '10,20,40,80,160,320'


class MissingPackage(RuntimeError):
    """A Python module the run needs is not installed; the message says which Debian package provides it."""


def require(module):
    try:
        return __import__(module)
    except ImportError as e:
        raise MissingPackage(f'{module} is not installed ({e}); install it with: apt-get install -y {APT_PACKAGES[module]}') from e


# ---------------------------------------------------------------------------------------------------------------
# Data: the same inputs engine bench accepts.

def read_vecs(path, dtype):
    """TEXMEX .fvecs / .ivecs (int32 dim + 4-byte values) or .bvecs (int32 dim + bytes) into an (n, d) array."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0:
        return np.zeros((0, 0), dtype=dtype)
    d = int(raw[:4].view(np.int32)[0])
    width = np.dtype(dtype).itemsize
    row = 4 + d * width
    if d <= 0 or raw.size % row:
        raise ValueError(f'{path}: {raw.size} bytes is not a whole number of rows of dimension {d}')
    rows = raw.reshape(-1, row)
    if np.any(rows[:, :4].copy().view(np.int32)[:, 0] != d):
        raise ValueError(f'{path}: rows of different dimensions')
    return rows[:, 4:].copy().view(dtype).reshape(-1, d)


def read_matrix(path):
    ext = os.path.splitext(path)[1].lower()
    if ext == '.fvecs':
        return read_vecs(path, np.float32)
    if ext == '.ivecs':
        return read_vecs(path, np.int32)
    if ext == '.bvecs':
        return read_vecs(path, np.uint8)
    if ext == '.npy':
        a = np.load(path, allow_pickle=False)
        if a.ndim != 2:
            raise ValueError(f'{path}: expected a 2-d array, got shape {a.shape}')
        return a
    raise ValueError(f'{path}: unsupported format {ext}')


def find(directory, stem, extensions):
    found = [os.path.join(directory, stem + e) for e in extensions if os.path.exists(os.path.join(directory, stem + e))]
    if len(found) > 1:
        raise ValueError(f'{directory} holds {" and ".join(found)}: keep one')
    if not found:
        raise FileNotFoundError(f'{directory} has no {stem}{"|".join(extensions)}')
    return found[0]


def load(path, nq=0):
    """Returns (name, metric 'l2'|'ip'|'cosine', base float32, queries float32, gt int64)."""
    if os.path.isfile(path) and path.lower().endswith(('.hdf5', '.h5')):
        h5py = require('h5py')
        with h5py.File(path, 'r') as f:
            distance = f.attrs['distance']
            distance = distance.decode() if isinstance(distance, bytes) else str(distance)
            metric = {'euclidean': 'l2', 'angular': 'cosine', 'dot': 'ip', 'ip': 'ip'}.get(distance.lower())
            if metric is None:
                raise ValueError(f'{path}: distance {distance!r} is not supported (euclidean, angular, dot)')
            xb, xq, gt = f['train'][:], f['test'][:], f['neighbors'][:]
        name = os.path.splitext(os.path.basename(path))[0]
    elif os.path.isdir(path):
        with open(os.path.join(path, 'meta.json')) as fh:
            meta = json.load(fh)
        metric = meta['metric']
        name = meta.get('name', os.path.basename(os.path.normpath(path)))
        xb = read_matrix(find(path, 'base', ('.fvecs', '.bvecs', '.npy')))
        xq = read_matrix(find(path, 'query', ('.fvecs', '.bvecs', '.npy')))
        gt = read_matrix(find(path, 'gt', ('.ivecs', '.npy')))
    else:
        raise FileNotFoundError(f'--data {path}: neither a data-set directory nor an .hdf5 file')
    if xb.shape[1] != xq.shape[1]:
        raise ValueError(f'base dimension {xb.shape[1]} != query dimension {xq.shape[1]}')
    if len(gt) != len(xq):
        raise ValueError(f'ground truth has {len(gt)} rows for {len(xq)} queries')
    if nq:
        xq, gt = xq[:nq], gt[:nq]
    xb = np.ascontiguousarray(xb, dtype=np.float32)
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    if metric == 'cosine':  # the engine normalises on insertion; the peers search unit vectors by inner product
        xb = xb / np.maximum(np.linalg.norm(xb, axis=1, keepdims=True), 1e-30)
        xq = xq / np.maximum(np.linalg.norm(xq, axis=1, keepdims=True), 1e-30)
    return name, metric, xb, xq, np.asarray(gt, dtype=np.int64)


# ---------------------------------------------------------------------------------------------------------------
# Measuring.

def recall_at_k(ids, gt, k):
    """k-recall@k: the fraction of each query's k exact neighbours found among its k results (as the engine counts)."""
    ids, gt = np.asarray(ids)[:, :k], np.asarray(gt)[:, :k]
    hits = sum(np.intersect1d(ids[i], gt[i][gt[i] >= 0]).size for i in range(len(ids)))
    return hits / float(k * len(ids))


MAX_TIMED_PASSES = 100_000


def best_qps(search, queries, repeats, min_seconds=0.0):
    """Runs search(queries) once to warm up, then repeats times and on until min_seconds of timed runs have passed
    (engine bench --min-seconds, the same rule); returns (result of the last run, best QPS)."""
    out = search(queries)
    best = float('inf')
    start = time.perf_counter()
    r = 0
    while r < repeats or (time.perf_counter() - start < min_seconds and r < MAX_TIMED_PASSES):
        t = time.perf_counter()
        out = search(queries)
        best = min(best, time.perf_counter() - t)
        r += 1
    return out, len(queries) / best


def int_list(text):
    values = [int(v) for v in text.split(',') if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f'{text!r}: expected positive integers separated by commas')
    return values


def index_bytes_faiss(faiss, index):
    """The index as faiss writes it (codes, ids, refine store, centroids); None where this faiss cannot say."""
    try:
        return int(faiss.serialize_index(index).size)
    except (AttributeError, RuntimeError, TypeError):
        return None


def index_bytes_hnswlib(index):
    """hnswlib's saved file, its memory image (vectors, links, labels); None where this hnswlib cannot say."""
    save = getattr(index, 'save_index', None)
    if save is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'hnsw.bin')
        try:
            save(path)
            return os.path.getsize(path)
        except (OSError, RuntimeError):
            return None


def run_faiss(spec, xb, xq, gt, metric, a, emit):
    faiss = require('faiss')
    faiss.omp_set_num_threads(a.threads)
    mt = faiss.METRIC_L2 if metric == 'l2' else faiss.METRIC_INNER_PRODUCT
    t = time.perf_counter()
    index = faiss.index_factory(xb.shape[1], spec, mt)
    index.train(xb)
    index.add(xb)
    build = time.perf_counter() - t
    version = 'faiss ' + faiss.__version__
    size = index_bytes_faiss(faiss, index)
    search = lambda q: index.search(q, a.k)[1]
    inner = faiss.downcast_index(index.base_index) if hasattr(index, 'k_factor') else index
    try:
        ivf = faiss.extract_index_ivf(inner)
    except RuntimeError:
        ivf = None
    hnsw = getattr(faiss.downcast_index(inner), 'hnsw', None)
    if ivf is not None:
        factors = a.k_factor if hasattr(index, 'k_factor') else [None]
        grid = [dict(nprobe=p, **({'k_factor': f} if f else {})) for p in a.nprobe if p <= ivf.nlist for f in factors]
    elif hnsw is not None:
        grid = [dict(efSearch=max(ef, a.k)) for ef in a.ef]
    else:
        grid = [{}]
    for params in grid:
        if 'nprobe' in params:
            ivf.nprobe = params['nprobe']
        if 'k_factor' in params:
            index.k_factor = params['k_factor']
        if 'efSearch' in params:
            hnsw.efSearch = params['efSearch']
        ids, qps = best_qps(search, xq, a.repeats, a.min_seconds)
        emit('faiss', spec, params, recall_at_k(ids, gt, a.k), qps, build, version, size)


def run_hnswlib(xb, xq, gt, metric, a, emit):
    hnswlib = require('hnswlib')
    index = hnswlib.Index(space='l2' if metric == 'l2' else 'ip', dim=xb.shape[1])
    t = time.perf_counter()
    index.init_index(max_elements=len(xb), ef_construction=a.ef_construction, M=a.hnsw_m, random_seed=100)
    index.add_items(xb, np.arange(len(xb)), num_threads=a.threads)
    build = time.perf_counter() - t
    size = index_bytes_hnswlib(index)
    index.set_num_threads(a.threads)
    spec = f'HNSW M{a.hnsw_m} efC{a.ef_construction}'
    for ef in a.ef:
        index.set_ef(max(ef, a.k))
        ids, qps = best_qps(lambda q: index.knn_query(q, k=a.k)[0], xq, a.repeats, a.min_seconds)
        emit('hnswlib', spec, {'ef': max(ef, a.k)}, recall_at_k(ids, gt, a.k), qps, build, 'hnswlib ' + getattr(hnswlib, '__version__', 'debian'), size)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True, help='data-set directory or ann-benchmarks .hdf5 file')
    ap.add_argument('--k', type=int, default=10)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--nq', type=int, default=0, help='use only the first NQ queries (0 = all)')
    ap.add_argument('--repeats', type=int, default=3, help='timed runs per setting; QPS is the best')
    ap.add_argument('--min-seconds', type=float, default=0.0,
                    help='keep timing a setting until this many seconds of timed runs (and --repeats runs) have passed '
                         '(engine bench --min-seconds); 0 = exactly --repeats runs')
    ap.add_argument('--systems', default='faiss,hnswlib', help='comma-separated: faiss, hnswlib')
    ap.add_argument('--faiss-specs', default='', help='faiss index_factory strings separated by ";" '
                    '(default: IVF<nlist>,PQ<d/4>x4fs,RFlat;HNSW32)')
    ap.add_argument('--nprobe', type=int_list, default=int_list(DEFAULT_NPROBE))
    ap.add_argument('--k-factor', type=int_list, default=int_list(DEFAULT_K_FACTOR))
    ap.add_argument('--ef', type=int_list, default=int_list(DEFAULT_EF), help='efSearch (faiss HNSW) / ef (hnswlib) values')
    ap.add_argument('--hnsw-m', type=int, default=16)
    ap.add_argument('--ef-construction', type=int, default=200)
    ap.add_argument('--out', default='-', help='JSON-lines output file (default stdout)')
    ap.add_argument('--job', default='', help=argparse.SUPPRESS)  # internal: SYSTEM:SPEC run in a child process
    a = ap.parse_args(argv)
    if a.k < 1 or a.threads < 1 or a.repeats < 1 or a.nq < 0:
        ap.error('--k, --threads and --repeats must be at least 1, --nq at least 0')
    if not 0 <= a.min_seconds <= 3600:
        ap.error(f'--min-seconds must be between 0 and 3600 (got {a.min_seconds})')
    systems = [s.strip() for s in a.systems.split(',') if s.strip()]
    unknown = [s for s in systems if s not in ('faiss', 'hnswlib')]
    if unknown or not systems:
        ap.error(f'--systems: unknown {unknown} (known: faiss, hnswlib)')

    try:
        name, metric, xb, xq, gt = load(a.data, a.nq)
    except MissingPackage as e:
        print(f'run_peers: {e}', file=sys.stderr)
        return 2
    if gt.shape[1] < a.k:
        ap.error(f'ground truth holds {gt.shape[1]} neighbours per query, fewer than --k {a.k}')
    n, d = xb.shape
    common = dict(k=a.k, threads=a.threads, dataset=name, n=int(n), nq=int(len(xq)))
    out = sys.stdout if a.out == '-' else open(a.out, 'w')

    def emit(system, spec, params, recall, qps, build, version, index_bytes):
        row = dict(system=system, spec=spec, params=params, recall=round(recall, 5), qps=round(qps, 1),
                   build_seconds=round(build, 3), version=version, **common)
        if index_bytes is not None:
            row['index_bytes'] = index_bytes
        out.write(json.dumps(row) + '\n')
        out.flush()
        print(f'{system:8} {spec:28} {params} recall@{a.k}={recall:.4f} qps={qps:.0f}', file=sys.stderr)

    nlist = 1 << max(4, int(round(np.log2(4 * np.sqrt(n)))))
    m = next((m for m in (d // 4, d // 8, d // 2, d) if m > 0 and d % m == 0), d)
    specs = [s.strip() for s in a.faiss_specs.split(';') if s.strip()] or [f'IVF{nlist},PQ{m}x4fs,RFlat', 'HNSW32']
    jobs = [('faiss', spec) for spec in specs] if 'faiss' in systems else []
    jobs += [('hnswlib', None)] if 'hnswlib' in systems else []

    if a.job:  # child process: one system/spec, rows on stdout
        system, _, spec = a.job.partition(':')
        try:
            if system == 'faiss':
                run_faiss(spec, xb, xq, gt, metric, a, emit)
            else:
                run_hnswlib(xb, xq, gt, metric, a, emit)
        except MissingPackage as e:
            print(f'run_peers: {e}', file=sys.stderr)
            return 3
        return 0

    # Each system/spec runs in a child process: a peer that aborts (Debian's faiss 1.7.3 has fast-scan assertions
    # that kill the process) costs only its own remaining rows, and is reported as an "error" row engine bench skips.
    ran, missing = 0, []
    try:
        for system, spec in jobs:
            argv_child = [sys.executable, os.path.abspath(__file__)] + [x for x in (argv if argv is not None else sys.argv[1:])]
            argv_child += ['--out', '-', '--job', f'{system}:{spec or ""}']
            child = subprocess.Popen(argv_child, stdout=subprocess.PIPE, text=True)
            rows = 0
            for line in child.stdout:
                out.write(line)
                out.flush()
                rows += 1
            code = child.wait()
            if code == 3:
                missing.append(f'{system}: {APT_PACKAGES[system]} is not installed')
                print(f'run_peers: skipping {system}: install it with apt-get install -y {APT_PACKAGES[system]}', file=sys.stderr)
                continue
            ran += 1
            if code != 0:
                why = f'killed by signal {signal.Signals(-code).name}' if code < 0 else f'exited with code {code}'
                error = dict(system=system, spec=spec or 'hnswlib', error=f'peer process {why} after {rows} rows (see stderr)', **common)
                out.write(json.dumps(error) + '\n')
                out.flush()
                print(f'run_peers: {system} {spec or ""} {why} after {rows} rows', file=sys.stderr)
    finally:
        if out is not sys.stdout:
            out.close()
    if not ran:
        print('run_peers: none of the asked systems could run:\n  ' + '\n  '.join(missing), file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
