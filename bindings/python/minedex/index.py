"""The Index class: a numpy-first wrapper over an engine_index handle."""

import ctypes

import numpy as np

from . import _arrays as arr
from . import _validate as v
from ._handle import NativeObject
from ._native import check, lib

METRICS = {0: "l2", 1: "ip", 2: "cosine"}

# Floats handed to the engine per add call (the C ABI takes at most 2^31 - 1 per call); larger batches go in parts.
MAX_CALL_VALUES = 1 << 30


class Index(NativeObject):
    """A vector index living in the native engine (same code as the C# ``IndexFactory`` / ``IVectorIndex``).

    Parameters
    ----------
    spec : str
        Composition string, e.g. ``"Flat"`` (exact search).
    d : int
        Vector dimension.
    metric : str
        ``"l2"`` (squared Euclidean, smaller is closer), ``"ip"`` (inner product) or ``"cosine"``
        (similarities, larger is closer).

    Searches may run from several Python threads at once (the GIL is released during native calls).
    Use ``with minedex.Index(...) as index:`` or ``index.close()`` to free native memory early; otherwise it is
    freed when the object is garbage collected.
    """

    _free = staticmethod(lib.engine_index_free)
    _what = "index"

    def __init__(self, spec, d, metric="l2"):
        handle = ctypes.c_void_p()
        spec_b, metric_b = v.text(spec, "spec"), v.text(metric, "metric")
        d = v.integer(d, "d (the dimension)")
        check(lib.engine_index_create(spec_b, d, metric_b, ctypes.byref(handle)))
        self._h = handle.value
        self._d = d

    @classmethod
    def _from_handle(cls, handle):
        self = cls.__new__(cls)
        self._h = handle
        out = ctypes.c_int32()
        check(lib.engine_index_dimension(self._h, ctypes.byref(out)))
        self._d = out.value
        return self

    # ----------------------------------------------------------------------------------------------- properties
    @property
    def d(self):
        """Vector dimension."""
        return self._d

    @property
    def ntotal(self):
        """Number of live vectors (same as ``len(index)``)."""
        out = ctypes.c_int64()
        check(lib.engine_index_count(self._handle(), ctypes.byref(out)))
        return out.value

    def __len__(self):
        return self.ntotal

    @property
    def metric(self):
        """``"l2"``, ``"ip"`` or ``"cosine"``."""
        out = ctypes.c_int32()
        check(lib.engine_index_metric(self._handle(), ctypes.byref(out)))
        return METRICS[out.value]

    @property
    def is_trained(self):
        """True when :meth:`add` is accepted."""
        out = ctypes.c_int32()
        check(lib.engine_index_is_trained(self._handle(), ctypes.byref(out)))
        return bool(out.value)

    @property
    def description(self):
        """The composition string, e.g. ``"Flat"``."""
        return self._text(lib.engine_index_description)

    def __repr__(self):
        if not self._h:
            return "<minedex.Index closed>"
        return f"<minedex.Index {self.description!r} d={self.d} metric={self.metric} ntotal={self.ntotal}>"

    # ----------------------------------------------------------------------------------------------- operations
    def train(self, x):
        """Trains the index on ``x`` (n, d) float32 (clustering / codebooks; validation only for Flat)."""
        x = v.rows(x, "x")
        check(lib.engine_index_train(self._handle(), arr.fptr(x), x.shape[0], x.shape[1]))

    def add(self, x, ids=None, return_type="numpy"):
        """Adds ``x`` (n, d). ``ids`` (n,) int64, non-negative and unique; default: consecutive ids after the
        largest id added through this object (starting at ``len(index)``). Returns the ids used (a numpy array,
        or a torch tensor with ``return_type="torch"``; empty for an empty ``x``). Automatic ids that would pass
        2**63 - 1 raise :class:`minedex.EngineError` with code 5 ("invalid state"); once id 2**63 - 1 has been added,
        so does an empty automatic add (there is no next id)."""
        kind = v.return_type(return_type)
        x = v.rows(x, "x")
        n, d = x.shape
        step = max(1, MAX_CALL_VALUES // max(d, 1))
        if n > step:  # one native call takes at most MAX_CALL_VALUES floats: add in parts, all or nothing
            return v.output(self._add_in_parts(x, ids, step), kind)
        if ids is None:
            first = ctypes.c_int64(0)
            check(lib.engine_index_add(self._handle(), arr.fptr(x), n, d, None, ctypes.byref(first)))
            return v.output(np.arange(first.value, first.value + n, dtype=np.int64), kind)
        ids = v.ids(ids, "ids", n)
        check(lib.engine_index_add(self._handle(), arr.fptr(x), n, d, arr.iptr_given(ids), None))
        return v.output(ids, kind)

    def _add_in_parts(self, x, ids, step):
        """Adds ``x`` in row parts of ``step`` rows; if a part is refused, the parts already added are removed again
        before the error is raised, so the call changes nothing (as a single call)."""
        n = x.shape[0]
        if ids is not None:
            ids = v.ids(ids, "ids", n)
        added = []
        try:
            for start in range(0, n, step):
                part = np.ascontiguousarray(x[start:start + step])
                bad = np.flatnonzero(~np.isfinite(part))  # checked here so the error names the row of x, not of the part
                if bad.size:
                    row, col = divmod(int(bad[0]), part.shape[1])
                    value = float(part[row, col])  # spelled as the engine's own check spells it (Guard.Finite)
                    text = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
                    raise v.InvalidArgumentError(f"vectors contains a non-finite value ({text}) at row {start + row}, "
                                                 f"column {col}.")
                added.append(self.add(part, None if ids is None else ids[start:start + step]))
        except BaseException:
            if added:
                self.remove(np.concatenate(added))
            raise
        return np.concatenate(added)

    def search(self, q, k, threads=0, probes=None, refine=None, ef=None, return_type="numpy", quantizer_ef=None, eps=None):
        """k nearest neighbours of the queries ``q`` (nq, d).

        Returns ``(D, I)``: float32 and int64 arrays of shape (nq, k), best first. Missing results have label -1
        and distance +inf (l2) / -inf (ip, cosine). ``threads=0`` uses all cores; ``probes`` / ``refine`` are
        per-call integer knobs of approximate indexes, ``ef`` the candidate list of an HNSW search and ``quantizer_ef``
        that of the HNSW coarse quantizer of an ``IVF{n}_HNSW{M}`` index (None or 0 = the index default; an index
        without the knob raises EngineError). ``eps`` is the confidence ε₀ of the RaBitQ error bound (IVF RaBitQ lists
        with a refine store; a number in (0, 16], None = 1.9; other indexes raise EngineError). Integers must be ints (or numpy integers): a float, bool or str raises TypeError, a
        value out of range ValueError (both :class:`minedex.EngineError` with code 1), never a silent truncation.
        ``return_type="torch"`` returns torch tensors sharing the result memory.
        """
        kind = v.return_type(return_type)
        q = v.rows(q, "queries")
        nq = q.shape[0]
        k = v.integer(k, "k")
        threads = v.integer(threads, "threads")
        probes = v.optional_integer(probes, "probes")
        refine = v.optional_integer(refine, "refine")
        width = max(k, 0)
        D = np.empty((nq, width), dtype=np.float32)
        I = np.empty((nq, width), dtype=np.int64)
        eps = None if eps is None else v.bound_epsilon(eps)
        if ef is None and quantizer_ef is None and eps is None:
            check(lib.engine_index_search(self._handle(), arr.fptr(q), nq, q.shape[1], k, arr.fptr(D), arr.iptr(I),
                                          threads, probes, float(refine)))
            return v.output(D, kind), v.output(I, kind)
        params = []
        if ef is not None:
            params.append(f"ef={v.integer(ef, 'ef', 1, 1 << 20)}")  # HnswSearchParameters.MaxEf
        if quantizer_ef is not None:
            params.append(f"quantizer_ef={v.integer(quantizer_ef, 'quantizer_ef', 1, 1 << 20)}")
        if eps is not None:
            params.append(f"eps={eps!r}")
        if probes:
            params.append(f"probes={probes}")
        if refine:
            params.append(f"refine={refine}")
        check(lib.engine_index_search_with(self._handle(), arr.fptr(q), nq, q.shape[1], k, arr.fptr(D), arr.iptr(I),
                                           threads, ",".join(params).encode("utf-8")))
        return v.output(D, kind), v.output(I, kind)

    def range_search(self, q, radius, threads=0, probes=None, ef=None, return_type="numpy"):
        """Every stored vector within ``radius`` of each query ``q`` (nq, d), like faiss' ``range_search``.

        ``radius`` bounds the squared L2 distance (l2: distance <= radius, radius >= 0) or is a similarity threshold
        (ip: score >= radius; cosine: in [-1, 1]). Exact on ``"Flat"``; approximate indexes return what their search
        reaches (``probes`` for IVF, ``ef`` for HNSW). Returns ``(lims, D, I)``: query i owns ``D[lims[i]:lims[i+1]]``
        and ``I[lims[i]:lims[i+1]]``, best first. A NaN/infinite or negative l2 radius raises ValueError
        (:class:`minedex.InvalidArgumentError`), a non-number TypeError.
        """
        from ._range import range_search
        kind = v.return_type(return_type)
        params = []
        if ef is not None:
            params.append(f"ef={v.integer(ef, 'ef', 1, 1 << 20)}")
        if probes is not None:
            params.append(f"probes={v.integer(probes, 'probes', 1)}")
        lims, D, I = range_search(self, q, radius, threads, ",".join(params))
        return v.output(lims, kind), v.output(D, kind), v.output(I, kind)

    def remove(self, ids):
        """Removes ``ids`` (absent ids are ignored); returns how many were removed."""
        ids = v.ids(ids, "ids")
        out = ctypes.c_int64()
        check(lib.engine_index_remove(self._handle(), arr.iptr(ids), ids.shape[0], ctypes.byref(out)))
        return out.value

    def reconstruct(self, id, return_type="numpy"):
        """The stored vector of ``id`` as float32 (d,); raises KeyError when absent. A cosine index stores vectors
        normalised to unit length, so this is the added vector divided by its norm (an all-zero vector stays zero);
        a coded index without an exact refine store (``RFlat``) returns its best stored form (decoded codes)."""
        kind = v.return_type(return_type)
        key = v.integer(id, "id", *v.INT64)
        out = np.empty(self._d, dtype=np.float32)
        found = ctypes.c_int32()
        check(lib.engine_index_reconstruct(self._handle(), key, arr.fptr(out), self._d, ctypes.byref(found)))
        if not found.value:
            raise KeyError(id)
        return v.output(out, kind)

    def mine(self, positives, anchors=None, anchor_ids=None, exclusions=None, num_negatives=3, output=None,
             k_occurrence=None, return_type="numpy", audit=None, **options):
        """Mines hard negatives from this index (the engine's HardNegativeMiner).

        Parameters
        ----------
        positives : list of id lists, (n, p) int array, or (n,) int array
            Positive corpus ids of each anchor (at least one each; they are never returned as negatives).
        anchors : (n, d) float array, optional
            External anchor vectors (e.g. query embeddings). Give this or ``anchor_ids``.
        anchor_ids : (n,) int array, optional
            Anchors that are corpus items (an anchor never gets itself as a negative).
        exclusions : list of id lists, optional
            Extra ids never to return per anchor (e.g. known duplicates).
        num_negatives : int
            Negatives per anchor.
        output : str or path, optional
            Write the rows to this JSON-lines file instead of returning arrays (one object per kept anchor:
            anchor, positives, negatives, scores, positive_scores; the file appears only when complete).
        k_occurrence : (ids, counts) pair or {id: count} dict, optional
            k-occurrence N_k per corpus id (e.g. ``(ids, self.hubness(ids, k=10)[0])``) for hubness-aware sampling:
            with ``hubness_gamma=g > 0`` (and ``sampling`` "uniform", "simans" or "softmax") a candidate's sampling
            weight is multiplied by ``max(N_k, 1) ** -g``, so hubs are handed out less often. Ids not in the table
            count as N_k <= 1. Required when ``hubness_gamma > 0``; an error when ``hubness_gamma`` is 0.
        audit : Index, optional
            An exact index (e.g. ``"Flat"``) holding the same ids and vectors: the mining is repeated on this index and
            on it with the same options and seed (the engine's MiningAudit), and ``report["audit"]`` says how many
            decisions flip under exact scores (``set_flips``, ``flip_rate``, ``rows_changed``, ``threshold_flips``,
            ``band``, ``in_band``, ``mean_score_error``). Not with ``k_occurrence``.
        **options
            Any key of engine.h's ``engine_mine`` options: ``range_min``, ``range_max``, ``candidate_depth``,
            ``duplicate_threshold``, ``absolute_margin``, ``relative_margin``, ``positive_anchor``, ``min_score``,
            ``max_score``, ``sampling`` ("top", "uniform", "simans", "softmax"), ``simans_a``, ``simans_b``,
            ``temperature``, ``hubness_gamma`` (with ``k_occurrence``), ``max_hand_outs_per_item``,
            ``shortfall`` ("drop", "pad", "keep_short"),
            ``rescore_exact``, ``seed``, ``threads``, ``chunk_size``.

        Returns
        -------
        (negatives, scores, report)
            ``negatives`` (n, num_negatives) int64 best first, padded with -1 (a dropped row is all -1);
            ``scores`` float32 larger-is-closer, padded with NaN; ``report`` the mining report as a dict.
            With ``output``, only the report dict is returned. ``return_type="torch"`` gives torch tensors.
        """
        from ._mining import mine
        kind = v.return_type(return_type)
        result = mine(self, positives, anchors, anchor_ids, exclusions, num_negatives, output, k_occurrence,
                      audit, **options)
        if output is not None:
            return result
        negatives, scores, report = result
        return v.output(negatives, kind), v.output(scores, kind), report

    def hubness(self, ids, queries=None, k=10, **options):
        """k-occurrence N_k of each id in ``ids`` and the hubness summary (skewness, Robin Hood, Gini, hubs).

        ``ids`` are the corpus ids to report on (normally every id added). With ``queries=None`` the corpus itself
        (or a seeded sample: ``sample_size=``) is the query bank; given ``queries`` must hold at least one row (an
        empty bank raises :class:`minedex.InvalidArgumentError`, as the engine does). Other options: ``hub_factor``,
        ``top_hubs``, ``seed``, ``threads``, ``chunk_size``; each option once. Returns ``(occurrence int32 array
        aligned with ids, report dict)``.
        """
        from ._mining import hubness
        return hubness(self, ids, queries, k, **options)

    def save(self, path):
        """Writes the index to ``path`` atomically (loadable by :func:`minedex.load`, the C API and C#)."""
        check(lib.engine_index_save(self._handle(), v.path(path)))


def load(path):
    """Loads an index saved by :meth:`Index.save`, the C API or the C# engine."""
    handle = ctypes.c_void_p()
    check(lib.engine_index_load(v.path(path), ctypes.byref(handle)))
    return Index._from_handle(handle.value)
