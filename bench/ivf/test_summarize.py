"""Tests of bench/ivf/summarize.py: best rows per floor, and rounds merged by best QPS per setting."""
import csv
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import summarize  # noqa: E402

FIELDS = ['system', 'spec', 'params', 'k', 'recall', 'qps', 'p50_ms', 'p99_ms', 'build_seconds', 'memory_bytes',
          'disk_bytes', 'reads_per_query']


def write(path, rows):
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for system, spec, params, recall, qps in rows:
            w.writerow(dict(system=system, spec=spec, params=params, k=10, recall=recall, qps=qps, memory_bytes=1000))
    return str(path)


def test_rounds_keep_the_best_qps_per_setting_and_separate_points_of_differing_recall(tmp_path):
    a = write(tmp_path / 'a.csv', [('engine', 'IVF8,PQ4x4fs,RFlat', 'probes=2', 0.91, 100.0),
                                   ('faiss', 'IVF8,PQ4x4fs,RFlat', 'nprobe=2', 0.92, 90.0),
                                   ('hnswlib', 'HNSW M16 efC200', 'ef=10', 0.93, 50.0)])
    b = write(tmp_path / 'b.csv', [('engine', 'IVF8,PQ4x4fs,RFlat', 'probes=2', 0.91, 80.0),
                                   ('faiss', 'IVF8,PQ4x4fs,RFlat', 'nprobe=2', 0.92, 120.0),
                                   ('hnswlib', 'HNSW M16 efC200', 'ef=10', 0.89, 70.0)])
    rows, fields = summarize.merge([a, b])
    assert fields == FIELDS
    got = {(r['system'], r['params'], r['recall']): r['qps'] for r in rows}
    assert got == {('engine', 'probes=2', 0.91): 100.0, ('faiss', 'nprobe=2', 0.92): 120.0,
                   ('hnswlib', 'ef=10', 0.93): 50.0, ('hnswlib', 'ef=10', 0.89): 70.0}
    out = subprocess.run([sys.executable, os.path.join(HERE, 'summarize.py'), a, b, '10', '--merged', str(tmp_path / 'm.csv')],
                         capture_output=True, text=True, check=True).stdout
    assert 'engine/faiss IVF 0.83x' in out  # 100 vs 120 at recall >= 0.90
    assert '| 0.90 | engine | `IVF8,PQ4x4fs,RFlat` | probes=2 | 0.9100 | 100 | 100 |' in out  # 1000 bytes / 10 vectors
    assert len(list(csv.DictReader(open(tmp_path / 'm.csv')))) == 4


def test_one_file_with_the_vector_count_as_before(tmp_path):
    a = write(tmp_path / 'a.csv', [('engine', 'IVF8,Flat', 'probes=8', 0.99, 10.0)])
    out = subprocess.run([sys.executable, os.path.join(HERE, 'summarize.py'), a, '5'], capture_output=True, text=True, check=True).stdout
    assert '| 0.99 | engine | `IVF8,Flat` | probes=8 | 0.9900 | 10 | 200 |' in out
