"""torch in and out: CPU tensors are read zero-copy (DLPack) when contiguous float32, tensors that require grad are
detached, results come back as tensors on request. Skipped as a module only where torch is not installed; CI
installs it (python3-torch), so there these tests always run."""

import numpy as np
import pytest

import minedex
from minedex import _validate

torch = pytest.importorskip("torch")


def test_contiguous_float32_tensor_is_not_copied():
    t = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    a = _validate.rows(t, "x")
    assert a.ctypes.data == t.data_ptr()  # the very memory the tensor owns goes to the engine
    t64 = torch.arange(10, dtype=torch.int64)
    assert _validate.ids(t64, "ids").ctypes.data == t64.data_ptr()


def test_requires_grad_non_contiguous_and_other_dtypes_are_accepted():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(200, 16, generator=g)
    with minedex.Index("Flat", 16, "l2") as index:
        index.add(base)
        w = base.clone().requires_grad_(True)
        q = w[:5] * 1.0  # part of an autograd graph
        D, I = index.search(q, 3)
        assert I[:, 0].tolist() == list(range(5))
        a = _validate.rows(w, "x")  # a leaf that requires grad: detached, still zero-copy
        assert a.ctypes.data == w.data_ptr()
        D2, I2 = index.search(base.t().contiguous().t()[:5], 3)  # column-major view: copied, same answer
        np.testing.assert_array_equal(I2, I)
        for dtype in (torch.float64, torch.float16, torch.bfloat16, torch.int32):
            _, I3 = index.search(base[:5].to(dtype), 1)
            assert I3[:, 0].tolist() == list(range(5)), dtype


def test_outputs_are_numpy_by_default_and_torch_on_request():
    x = torch.randn(100, 8, generator=torch.Generator().manual_seed(2))
    with minedex.Index("Flat", 8) as index:
        ids = index.add(x, return_type="torch")
        assert isinstance(ids, torch.Tensor) and ids.dtype == torch.int64
        D, I = index.search(x[:3], 4)
        assert isinstance(D, np.ndarray) and isinstance(I, np.ndarray)
        Dt, It = index.search(x[:3], 4, return_type="torch")
        assert Dt.dtype == torch.float32 and It.dtype == torch.int64
        assert torch.equal(It, torch.from_numpy(I))
        assert torch.equal(index.reconstruct(7, return_type="torch"), x[7])
        negatives, scores, _ = index.mine(torch.arange(3).reshape(3, 1), anchors=x[:3], num_negatives=2,
                                          return_type="torch")
        assert isinstance(negatives, torch.Tensor) and negatives.shape == (3, 2)


def test_mine_hard_negatives_from_a_torch_training_step():
    torch.manual_seed(3)  # the encoder's initialisation
    g = torch.Generator().manual_seed(3)
    encoder = torch.nn.Linear(12, 6)
    raw_corpus, raw_queries = torch.randn(300, 12, generator=g), None
    raw_queries = raw_corpus[:40] + 0.1 * torch.randn(40, 12, generator=g)
    corpus, queries = encoder(raw_corpus), encoder(raw_queries)  # both require grad
    assert corpus.requires_grad
    mined = minedex.mine_hard_negatives(queries, corpus, torch.arange(40), num_negatives=4,
                                        output_format="n-tuple", verbose=False, return_type="torch")
    assert isinstance(mined.negatives, torch.Tensor) and mined.negatives.shape == (40, 4)
    # the mined ids index the corpus embeddings for a loss; the graph is intact
    negatives = corpus[mined.negatives[mined.negatives[:, 0] >= 0]]
    loss = (queries[:, None, :] * negatives).sum(-1).logsumexp(-1).mean()
    loss.backward()
    assert encoder.weight.grad is not None


def test_bad_tensors_raise_clear_errors():
    with minedex.Index("Flat", 4) as index:
        with pytest.raises(minedex.InvalidArgumentError, match="non-finite"):
            index.add(torch.full((2, 4), float("nan")))
        with pytest.raises(minedex.ArgumentTypeError, match="complex"):
            index.add(torch.zeros(2, 4, dtype=torch.complex64))
        with pytest.raises(minedex.ArgumentTypeError, match="dtype bool"):
            index.add(torch.zeros(2, 4, dtype=torch.bool))
        with pytest.raises(minedex.InvalidArgumentError, match="Dimension mismatch"):
            index.add(torch.zeros(2, 5))
        with pytest.raises(minedex.ArgumentTypeError, match="integers"):
            index.add(torch.zeros(2, 4), ids=torch.tensor([1.5, 2.0]))
        with pytest.raises(minedex.InvalidArgumentError, match="2-D"):
            index.add(torch.zeros(2, 2, 4))
        if hasattr(torch, "device") and torch.device("meta").type == "meta":
            with pytest.raises(minedex.InvalidArgumentError, match="move it to the CPU"):
                index.add(torch.zeros(2, 4, device="meta"))
