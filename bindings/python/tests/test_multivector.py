"""Multi-vector (MUVERA) indexes through the Python binding: exact search equals a float64 numpy Chamfer brute force,
MUVERA search has a recall floor and becomes exact with every item as candidate, removal and save/load round trips,
and bad inputs (empty token sets, mixed dimensions, bad knobs) raise the binding's usual exception kinds."""

import numpy as np
import pytest

import minedex
from minedex import ArgumentTypeError, EngineError, InvalidArgumentError


def unit(a):
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


def make(n, nq, d, seed):
    """n documents in families of ten (tokens near three shared centres, a quarter near an own direction), so a
    query's exact top 10 is mostly its source's family; each query is 4..8 noisy tokens of one document."""
    rng = np.random.default_rng(seed)
    families = max(1, n // 10)
    centres = unit(rng.standard_normal((families * 3, d)))
    docs = []
    for i in range(n):
        f, own = i % families, unit(rng.standard_normal(d))
        count = int(rng.integers(8, 24))
        picks = [own if rng.integers(4) == 0 else centres[3 * f + int(rng.integers(3))] for _ in range(count)]
        docs.append(unit(np.array(picks) + 0.6 / np.sqrt(d) * rng.standard_normal((count, d))))
    queries = []
    for _ in range(nq):
        src = docs[int(rng.integers(0, n))]
        count = int(rng.integers(4, 9))
        picks = src[rng.integers(0, len(src), count)]
        queries.append(unit(picks + 0.3 / np.sqrt(d) * rng.standard_normal((count, d))))
    return docs, queries


def chamfer(q, docs):
    """Chamfer similarity of query q with every document, in float64."""
    q64 = q.astype(np.float64)
    return np.array([(q64 @ p.astype(np.float64).T).max(axis=1).sum() for p in docs])


def truth(queries, docs, k):
    return [set(np.argsort(-chamfer(q, docs), kind="stable")[:k].tolist()) for q in queries]


def test_exact_search_is_the_numpy_chamfer_brute_force():
    docs, queries = make(150, 8, 16, seed=1)
    with minedex.MultiVectorIndex(16, ksim=3, dproj=8, reps=6, tokens="f32") as index:
        ids = index.add(docs)
        assert ids.tolist() == list(range(150))
        assert len(index) == 150 and index.token_count == sum(len(p) for p in docs) and index.d == 16
        S, I = index.search(queries, k=5, exact=True)
        assert S.shape == (8, 5) and S.dtype == np.float32 and I.dtype == np.int64
        for i, q in enumerate(queries):
            ref = chamfer(q, docs)
            np.testing.assert_allclose(S[i], ref[I[i]], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(S[i], -np.sort(-ref)[:5], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec,tokens", [("Flat", "f16"), ("HNSW16", "f32"), ("IVF8,Flat", "f16")])
def test_muvera_search_recall_floor_and_all_candidates_is_exact(spec, tokens):
    docs, queries = make(400, 30, 24, seed=2)
    index = minedex.MultiVectorIndex(24, fde_spec=spec, ksim=4, dproj=16, reps=10, seed=7, tokens=tokens)
    index.train(docs)
    index.add(docs)
    expected = truth(queries, docs, 10)
    probes = 8 if spec.startswith("IVF") else None
    S, I = index.search(queries, k=10, candidates=60, probes=probes, threads=2)
    recall = np.mean([len(set(I[i].tolist()) & expected[i]) / 10 for i in range(len(queries))])
    assert recall >= 0.85, f"recall@10 {recall:.3f} with 60 of 400 candidates ({spec})"
    assert (np.diff(S, axis=1) <= 0).all()
    if spec == "Flat":
        _, few = index.search(queries, k=10, candidates=10, reps=1)
        low = np.mean([len(set(few[i].tolist()) & expected[i]) / 10 for i in range(len(queries))])
        assert low < recall, "candidates/reps do not reach the engine"
        _, everything = index.search(queries, k=10, candidates=400)
        _, exact = index.search(queries, k=10, exact=True)
        assert everything.tolist() == exact.tolist()


def test_ids_3d_batches_torch_remove_and_save_load_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    batch = unit(rng.standard_normal((40, 6, 8)))  # one (n, n_tokens, d) array
    index = minedex.MultiVectorIndex(8, fde_spec="HNSW8", ksim=3, dproj=4, reps=8, final=128)
    ids = index.add(batch, ids=np.arange(40) * 10 + 5)
    assert ids.tolist() == [10 * i + 5 for i in range(40)]
    more = index.add([torch.from_numpy(batch[0])])  # automatic ids continue after the largest id added
    assert more.tolist() == [396]
    assert index.remove([5, 15, 15, 7, 396]) == 3
    assert len(index) == 38 and index.token_count == 38 * 6
    queries = [batch[0], batch[1][:2], batch[30]]
    S1, I1 = index.search(queries, k=38, candidates=38, threads=1)
    assert not ({5, 15, 396} & set(I1.ravel().tolist())) and (I1 >= 0).all()
    assert I1[2, 0] == 305
    path = tmp_path / "mv"
    index.save(path)
    index.close()
    with pytest.raises(EngineError) as closed:
        index.search(queries, k=1)
    assert closed.value.code == 2
    loaded = minedex.load_multivector(str(path))
    assert loaded.description.startswith("MUVERA(ksim=3,dproj=4,reps=8,final=128,fill=1,seed=42),F16|HNSW8")
    S2, I2 = loaded.search(queries, k=38, candidates=38, threads=1)
    assert I2.tolist() == I1.tolist()
    np.testing.assert_array_equal(S1, S2)
    St, It = loaded.search(queries, k=3, return_type="torch")
    assert isinstance(It, torch.Tensor) and It.shape == (3, 3)
    assert loaded.remove([25]) == 1 and len(loaded) == 37


def test_bad_inputs_raise_the_binding_exception_kinds(tmp_path):
    docs, queries = make(30, 2, 8, seed=4)
    index = minedex.MultiVectorIndex(8, ksim=2, dproj=4, reps=4)
    index.add(docs)
    # Empty token sets: in a list, as a 0-token 3-D batch.
    with pytest.raises(InvalidArgumentError, match="no tokens"):
        index.add([docs[0], np.zeros((0, 8), dtype=np.float32)])
    with pytest.raises(InvalidArgumentError, match="no tokens"):
        index.add(np.zeros((3, 0, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="no tokens"):
        index.search([[]], k=1)
    # Mixed dimensions: inside a batch, and against the index.
    with pytest.raises(InvalidArgumentError, match="Mixed dimensions"):
        index.add([np.ones((2, 8)), np.ones((2, 7))])
    with pytest.raises(InvalidArgumentError, match="Mixed dimensions") as wrong_d:
        index.search([np.ones((2, 5))], k=1)
    assert wrong_d.value.code == 1
    # Other values and types.
    with pytest.raises(InvalidArgumentError, match="finite"):
        index.add([np.full((2, 8), np.nan)])
    with pytest.raises(ArgumentTypeError):
        index.add("tokens")
    with pytest.raises(ArgumentTypeError):
        index.add([np.ones((2, 8), dtype=np.complex64)])
    with pytest.raises(InvalidArgumentError, match="3-D"):
        index.add(np.ones((4, 8), dtype=np.float32))
    with pytest.raises(InvalidArgumentError):
        index.add([docs[0]], ids=[3])  # already present
    with pytest.raises(InvalidArgumentError):
        index.add([docs[0], docs[1]], ids=[100])
    with pytest.raises(InvalidArgumentError, match="k must be at least 1"):
        index.search(queries, k=0)
    with pytest.raises(ArgumentTypeError):
        index.search(queries, k=5, candidates=20.5)
    with pytest.raises(InvalidArgumentError, match="Candidates"):
        index.search(queries, k=5, candidates=3)
    with pytest.raises(InvalidArgumentError, match="reps"):
        index.search(queries, k=5, reps=5)  # the index has R = 4
    with pytest.raises(InvalidArgumentError):
        index.search(queries, k=5, probes=4)  # Flat has no probes
    with pytest.raises(InvalidArgumentError, match="exact"):
        index.search(queries, k=5, exact=True, candidates=50)
    assert len(index) == 30  # rejected calls changed nothing
    with pytest.raises(InvalidArgumentError):
        minedex.MultiVectorIndex(8, fde_spec="Nope")
    with pytest.raises(InvalidArgumentError, match="SimHashBits"):
        minedex.MultiVectorIndex(8, ksim=40)
    with pytest.raises(InvalidArgumentError, match="tokens"):
        minedex.MultiVectorIndex(8, tokens="f8")
    with pytest.raises(ArgumentTypeError):
        minedex.MultiVectorIndex(8, reps=2.0)
    with pytest.raises(InvalidArgumentError):
        minedex.MultiVectorIndex(0)
    ivf = minedex.MultiVectorIndex(8, fde_spec="IVF4,Flat", ksim=2, dproj=4, reps=4)
    with pytest.raises(EngineError, match="not trained") as untrained:
        ivf.add(docs)
    assert untrained.value.code == 5
    with pytest.raises(EngineError) as missing:
        minedex.MultiVectorIndex.load(tmp_path / "missing")
    assert missing.value.code == 3
    assert index.remove([]) == 0
