"""mine_hard_negatives: sentence-transformers' function of the same name, on embeddings, through the engine's miner.

The parameters keep sentence-transformers' names and meanings (``sentence_transformers.util.mine_hard_negatives``):
the corpus is de-duplicated by text and queries with the same text are merged (their positives pooled), each query
gets the candidates ranked ``range_max + max_positives`` deep, positives are removed (unless ``include_positives``),
the margins (measured from the query's *lowest* positive score) and score bounds drop candidates, the window
``[range_min, range_max)`` is counted over the surviving candidates, and ``num_negatives`` are taken from it, best
first ("top") or uniformly at random ("random"). What differs, on purpose:

* embeddings come in (numpy, torch CPU tensors or lists), texts are optional; any index spec, or a built
  :class:`~minedex.Index`, does the search, with exact re-scoring of the candidates for approximate indexes;
* the relative margin is sign-safe (``neg > pos - |pos|*m`` is dropped), identical to ``pos*(1 - m)`` whenever the
  positive score is positive (always so for cosine scores of real positives);
* a window narrower than ``num_negatives`` is an error instead of rows with fewer columns (n-tuple) or a crash
  (triplet); ``range_max`` beyond the corpus is clamped instead of a ``topk`` error;
* random draws come from the engine's counter-based generator (``seed``): the same distribution as ``random.sample``
  without replacement over the window, reproducible for any thread count;
* the engine's extra guards are options: ``duplicate_threshold``, ``hubness_gamma`` with ``k_occurrence``,
  ``max_hand_outs_per_item``, ``sampling_strategy="simans"`` / ``"softmax"`` (``simans_a``, ``simans_b``,
  ``temperature``), ``positive_anchor``, ``exclusions``.
"""

import errno
import json
import os
import re
import time
import warnings

import numpy as np

from . import _validate as v
from ._mining import IdLists, csr
from . import index as _index_module
from .index import Index
from .cluster import ClusterIndex

OUTPUT_FORMATS = ("triplet", "n-tuple", "labeled-pair", "labeled-list")
SAMPLING = {"top": "top", "random": "uniform", "uniform": "uniform", "simans": "simans", "softmax": "softmax"}
GUARDS = ("duplicate_threshold", "positive_anchor", "max_hand_outs_per_item", "simans_a", "simans_b", "temperature",
          "hubness_gamma")


class HardNegatives:
    """The result of :func:`mine_hard_negatives`.

    Attributes
    ----------
    columns : dict
        Column name -> list, in ``output_format``'s layout (texts when texts were given, ids otherwise); what
        ``datasets.Dataset.from_dict`` and ``pandas.DataFrame`` take.
    query_rows : numpy int64 (q,)
        The input row of each unique query (the first row with its text).
    positives : list of lists
        Corpus ids of each unique query's positives (canonical ids after de-duplication of the corpus by text).
    negatives : (q, num_negatives) int64
        Mined corpus ids per unique query, best first, padded with -1 where the window ran short.
    scores : (q, num_negatives) float32
        Their scores (larger is closer), NaN padding.
    positive_scores : list of float32 arrays
        The score of each positive of each unique query.
    report : dict
        The engine's mining report (filters, shortfall, score statistics) plus ``rows`` and ``missing_rows``.
    row_query : numpy int64 (rows,)
        The unique query (index into ``negatives``) each row comes from.
    """

    def __init__(self, layout, query_rows, positives, negatives, scores, flat_positive_scores, report, output_format,
                 rows=None):
        self._layout = layout  # () -> (columns, row_query): the rows are built when first read
        self._columns = None
        self._row_query = None
        self._extra = []  # (name, row_query -> list) columns added by the refresher
        self.query_rows = query_rows
        self._positives = positives  # IdLists
        self.negatives = negatives
        self.scores = scores
        self._flat_positive_scores = flat_positive_scores
        self._report = report  # a dict, or () -> dict: the score statistics are computed when first read
        self.output_format = output_format
        self._rows_count = None if rows is None else int(rows)  # None: the report's "rows"

    @property
    def report(self):
        """The engine's mining report (filters, shortfall, score statistics) plus ``rows`` and ``missing_rows``
        (the score statistics are computed on first access)."""
        if callable(self._report):
            self._report = self._report()
        return self._report

    def _rows(self):
        if self._columns is None:
            columns, row_query = self._layout()
            for name, make in self._extra:
                columns[name] = make(row_query)
            self._columns, self._row_query = columns, row_query
        return self._columns

    @property
    def columns(self):
        """Column name -> list, in ``output_format``'s layout (built on first access)."""
        return self._rows()

    @property
    def row_query(self):
        """The unique query (index into ``negatives``) each row comes from."""
        self._rows()
        return self._row_query

    @property
    def positives(self):
        """Corpus ids of each unique query's positives (list of lists)."""
        return self._positives.lists()

    @property
    def positive_scores(self):
        """The score of each positive of each unique query (list of float32 arrays)."""
        return _split(self._flat_positive_scores, self._positives.offsets)

    def _add_column(self, name, make):
        """Adds column ``name`` = make(row_query) (now if the rows exist, else when they are built)."""
        self._extra.append((name, make))
        if self._columns is not None:
            self._columns[name] = make(self._row_query)

    def __len__(self):
        return self._rows_count if self._rows_count is not None else int(self.report["rows"])

    def __getitem__(self, i):
        """Row ``i`` as a dict (column -> value)."""
        return {name: values[i] for name, values in self.columns.items()}

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        return f"<minedex.HardNegatives {self.output_format}: {len(self)} rows, columns {list(self.columns)}>"

    def to_pandas(self):
        """The rows as a pandas DataFrame (needs pandas)."""
        import pandas as pd
        return pd.DataFrame(self.columns)

    def to_dataset(self):
        """The rows as a Hugging Face ``datasets.Dataset`` (needs datasets)."""
        from datasets import Dataset
        return Dataset.from_dict(self.columns)

    def write_jsonl(self, path):
        """Writes one JSON object per row (``pandas.read_json(path, lines=True)`` reads it); atomic: the file
        appears only when complete. Returns the number of rows."""
        target = os.fsdecode(v.path(path))
        folder = os.path.dirname(target) or "."
        if not os.path.isdir(folder):
            raise FileNotFoundError(errno.ENOENT, f"Cannot write {target!r}: its directory does not exist", folder)
        tmp = target + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                for row in self:
                    f.write(json.dumps({k: _plain(x) for k, x in row.items()}, ensure_ascii=False))
                    f.write("\n")
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        return len(self)


def _plain(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (list, tuple)):
        return [_plain(y) for y in x]
    return x


def _texts(values, n, name):
    if values is None:
        return None
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise v.ArgumentTypeError(f"{name} must be a list of strings (one per row), got {type(values).__name__}.")
    values = list(values)
    if len(values) != n:
        raise v.InvalidArgumentError(f"{name} has {len(values)} texts but there are {n} embeddings: give one text per row.")
    for i, t in enumerate(values):
        if not isinstance(t, str):
            raise v.ArgumentTypeError(f"{name}[{i}] must be a string, got {type(t).__name__}.")
    return values


def _optional_float(value, name):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise v.ArgumentTypeError(f"{name} must be a number or None, got {type(value).__name__} {value!r}.")
    value = float(value)
    if not np.isfinite(value):
        raise v.InvalidArgumentError(f"{name} must be a finite number or None, got {value!r}.")
    return value


def pair_scores(metric, q, p):
    """Scores (larger is closer) of row pairs: cosine, inner product, or negative squared L2."""
    if metric == "l2":
        diff = q.astype(np.float64) - p
        return (-np.einsum("ij,ij->i", diff, diff)).astype(np.float32)
    dots = np.einsum("ij,ij->i", q, p, dtype=np.float64)  # float64 sums without (n, d) float64 copies
    if metric == "cosine":
        norms = np.sqrt(np.einsum("ij,ij->i", q, q, dtype=np.float64) * np.einsum("ij,ij->i", p, p, dtype=np.float64))
        dots = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return dots.astype(np.float32)


def _dedupe_queries(q, per_row, texts):
    """Merges rows with the same query text (sentence-transformers keys queries by text): the first row's embedding,
    and each per-row list (positives, exclusions) pooled in row order."""
    if texts is None:
        return q, per_row, np.arange(q.shape[0], dtype=np.int64)
    first, rows = {}, []
    merged = [[] for _ in per_row]
    for row, t in enumerate(texts):
        if t not in first:
            first[t] = len(rows)
            rows.append(row)
            for m in merged:
                m.append([])
        for m, lists in zip(merged, per_row):
            m[first[t]].extend(lists[row])
    rows = np.array(rows, dtype=np.int64)
    return q[rows], merged, rows


def mine_hard_negatives(query_embeddings, corpus_embeddings, positives, *, queries=None, corpus=None,
                        index="Flat", metric="cosine", range_min=0, range_max=None, max_score=None, min_score=None,
                        absolute_margin=None, relative_margin=None, num_negatives=3, sampling_strategy="top",
                        include_positives=False, output_format="triplet", output_scores=False, batch_size=1024,
                        anchor_column_name="anchor", positive_column_name="positive", exclusions=None,
                        rescore_exact=None, seed=42, threads=0, verbose=True, k_occurrence=None,
                        query_block_size=100_000, search_params=None, return_type="numpy", **guards):
    """Adds hard negatives to (query, positive) pairs, with sentence-transformers' parameters and output formats.

    Parameters
    ----------
    query_embeddings : (nq, d) array-like or torch tensor
        One row per query (the dataset's anchor column, embedded). Rows with the same ``queries`` text are one query.
    corpus_embeddings : (nc, d) array-like or torch tensor, or None
        The candidate corpus; ids are row numbers. None when ``index`` is a built :class:`~minedex.Index` whose ids
        are the corpus row numbers.
    positives : list of id lists, (nq,) or (nq, p) integer array
        Corpus ids of each query's positives (several per query are fine; each (query, positive) pair is a row).
    queries, corpus : list of str, optional
        Texts of the rows; when given, output columns hold texts (as trainers expect), the corpus is de-duplicated by
        text (a duplicate of a positive is the positive) and queries with the same text are merged.
    index : str, Index or ClusterIndex
        Index spec built over the corpus ("Flat" = exact, as sentence-transformers; "IVF1024,PQ32x4fs,RFlat",
        "HNSW32", ...), a built Index, or a :class:`~minedex.ClusterIndex` (a corpus on an engine cluster, through
        ``engine cluster gateway``: the miner runs there, over every shard). Approximate indexes re-score candidates
        exactly (``rescore_exact``).
    metric : str
        "cosine" (sentence-transformers' default similarity), "ip" or "l2" (scores are negative squared distances).
    range_min, range_max, max_score, min_score, absolute_margin, relative_margin, num_negatives
        As sentence-transformers. ``range_max=None`` is ``range_min + num_negatives * 10 + max_positives`` when a
        margin or ``max_score`` is set, else ``range_min + num_negatives + max_positives``.
    sampling_strategy : str
        "top" (best of the window), "random" (uniform without replacement), or the engine's "simans" / "softmax".
    include_positives : bool
        Keep positives among the candidates (forces ``output_format="n-tuple"``, with a warning, as
        sentence-transformers does).
    output_format : str
        "triplet" (anchor, positive, negative), "n-tuple" (anchor, positive, negative_1..n; only queries with all
        ``num_negatives``), "labeled-pair" (anchor, positive, label 1/0), "labeled-list" (anchor, [docs], labels).
    output_scores : bool
        Add a ``score`` column: [positive, negative(s)] scores for triplet / n-tuple, the pair's score for
        labeled-pair, and a list aligned with the documents (``scores``) for labeled-list. sentence-transformers'
        ``output_format="n-tuple-scores"`` is accepted as ``"n-tuple"`` with ``output_scores=True``.
    batch_size : int
        Queries per batched index search (memory: batch_size x candidate depth candidates).
    search_params : dict, optional
        Knobs of the candidate search of an approximate index, e.g. ``{"probes": 16, "refine": 4}`` (IVF) or
        ``{"ef": 128}`` (HNSW): the names of :meth:`Index.search`; a knob the index lacks is an error.
    query_block_size : int
        Queries handed to the engine per call; with ``verbose``, progress is printed after each block. The rows do
        not depend on it (a hand-out cap, ``max_hand_outs_per_item``, makes it one block: the cap counts per call).
    exclusions : list of id lists, optional
        Extra corpus ids never to return per query (engine option).
    rescore_exact : bool, optional
        Re-score candidates exactly from the stored vectors; default: on for indexes whose scores come from codes
        (PQ, RaBitQ, binary, SQ8/F16 refine), off where the index already scores from the float vectors (Flat,
        ``IVF{n},Flat``, HNSW, specs ending in ``,RFlat`` / ``,Refine(Flat)``; :func:`scores_are_exact`).
    seed, threads : int
        Seed of the random strategies; threads of the search (0 = all cores; the output does not depend on it).
    verbose : bool
        Print the report (score statistics, what each filter dropped, shortfall).
    k_occurrence, **guards
        Engine guards: ``duplicate_threshold``, ``positive_anchor`` ("min" as sentence-transformers, "mean",
        "max"), ``max_hand_outs_per_item``, ``simans_a``, ``simans_b``, ``temperature``, ``hubness_gamma`` with
        ``k_occurrence`` (see :meth:`Index.mine`).
    return_type : str
        "numpy" or "torch" for the ``negatives`` / ``scores`` arrays of the result.

    Returns
    -------
    HardNegatives
        ``columns`` (the rows), ``negatives`` / ``scores`` per unique query, ``report``.
    """
    kind = v.return_type(return_type)
    unknown = sorted(set(guards) - set(GUARDS))
    if unknown:
        raise v.ArgumentTypeError(f"mine_hard_negatives() got unexpected keyword argument(s) {unknown}; "
                                  f"engine guards are {list(GUARDS)}.")
    if output_format == "n-tuple-scores":  # sentence-transformers' name for n-tuple with a score list
        output_format, output_scores = "n-tuple", True
    if output_format not in OUTPUT_FORMATS:
        raise v.InvalidArgumentError(f"output_format must be one of {list(OUTPUT_FORMATS)}, got {output_format!r}.")
    if sampling_strategy not in SAMPLING:
        raise v.InvalidArgumentError(
            f"sampling_strategy must be 'top', 'random', 'simans' or 'softmax', got {sampling_strategy!r}.")
    metric = v.metric(metric)
    for flag, name in ((include_positives, "include_positives"), (output_scores, "output_scores"), (verbose, "verbose")):
        if not isinstance(flag, (bool, np.bool_)):
            raise v.ArgumentTypeError(f"{name} must be a bool, got {type(flag).__name__} {flag!r}.")
    num_negatives = v.integer(num_negatives, "num_negatives")
    range_min = v.integer(range_min, "range_min")
    batch_size = v.integer(batch_size, "batch_size")
    query_block_size = v.integer(query_block_size, "query_block_size", 1, v.INT32[1])
    if num_negatives < 1:
        raise v.InvalidArgumentError(f"num_negatives must be at least 1, got {num_negatives}.")
    if range_min < 0:
        raise v.InvalidArgumentError(f"range_min must be >= 0, got {range_min}.")
    if batch_size < 1:
        raise v.InvalidArgumentError(f"batch_size must be at least 1, got {batch_size}.")
    margins = {name: _optional_float(value, name) for name, value in (
        ("max_score", max_score), ("min_score", min_score), ("absolute_margin", absolute_margin),
        ("relative_margin", relative_margin))}
    if include_positives and output_format != "n-tuple":
        warnings.warn("include_positives=True: output_format is set to 'n-tuple' so that the ranking order is kept "
                      "(as sentence-transformers does).", stacklevel=2)
        output_format = "n-tuple"

    q = v.rows(query_embeddings, "query_embeddings")
    nq = q.shape[0]
    if nq == 0:
        raise v.InvalidArgumentError("query_embeddings is empty: there is nothing to mine for.")
    queries = _texts(queries, nq, "queries")
    p_off, p_val = csr(positives, nq, "positives")
    empty = np.flatnonzero(np.diff(p_off) == 0)
    if empty.size:
        raise v.InvalidArgumentError(f"Query {int(empty[0])} has no positive: every query needs at least one.")

    # ---- the corpus and the index
    own_index = not isinstance(index, (Index, ClusterIndex))
    if own_index:
        if corpus_embeddings is None:
            raise v.InvalidArgumentError("corpus_embeddings is None: give the corpus vectors or a built Index.")
        c = v.rows(corpus_embeddings, "corpus_embeddings")
        nc = c.shape[0]
        if nc == 0:
            raise v.InvalidArgumentError("corpus_embeddings is empty: there is nothing to mine from.")
        if c.shape[1] != q.shape[1]:
            raise v.InvalidArgumentError(f"Dimension mismatch: query_embeddings has {q.shape[1]} columns but "
                                         f"corpus_embeddings has {c.shape[1]}.")
    else:
        if q.shape[1] != index.d:
            raise v.InvalidArgumentError(f"Dimension mismatch: query_embeddings has {q.shape[1]} columns but the index "
                                         f"holds {index.d}-dimensional vectors.")
        c = None if corpus_embeddings is None else v.rows(corpus_embeddings, "corpus_embeddings")
        if c is not None:
            # The index's ids are the corpus row numbers: negatives come from the index, positive scores from these
            # rows, so they must be the vectors the index was built from (at least their shape is checked here).
            if c.shape[1] != index.d:
                raise v.InvalidArgumentError(f"Dimension mismatch: corpus_embeddings has {c.shape[1]} columns but the "
                                             f"index holds {index.d}-dimensional vectors.")
            if c.shape[0] < len(index):
                raise v.InvalidArgumentError(
                    f"corpus_embeddings has {c.shape[0]} rows but the index holds {len(index)} vectors, whose ids are "
                    f"corpus row numbers: give the rows the index was built from, or corpus_embeddings=None.")
        nc = len(index) if c is None else c.shape[0]
    corpus = _texts(corpus, nc, "corpus")
    canonical = np.arange(nc, dtype=np.int64)
    if corpus is not None:
        first = {}
        for row, t in enumerate(corpus):
            canonical[row] = first.setdefault(t, row)
    bad = np.flatnonzero((p_val < 0) | (p_val >= nc))
    if bad.size:
        i = int(np.searchsorted(p_off, bad[0], side="right")) - 1
        raise v.InvalidArgumentError(f"positives[{i}] holds {int(p_val[bad[0]])}, which is not a corpus row (0..{nc - 1}).")
    pos = IdLists(p_off, canonical[p_val])
    excl = IdLists(*csr(exclusions, nq, "exclusions")) if exclusions is not None else None
    if queries is not None:  # merge queries by text (Python lists: texts are Python objects anyway)
        excl_lists = excl.lists() if excl is not None else [[] for _ in range(nq)]
        q, (pos_lists, excl_lists), query_rows = _dedupe_queries(q, [pos.lists(), excl_lists], queries)
        pos, excl = _id_lists(pos_lists), _id_lists(excl_lists)
    else:
        query_rows = np.arange(nq, dtype=np.int64)
    n_unique = q.shape[0]
    pos_counts = np.diff(pos.offsets)
    max_positives = int(pos_counts.max())
    if range_max is None:
        if any(margins[k] is not None for k in ("absolute_margin", "relative_margin", "max_score")):
            range_max = range_min + num_negatives * 10 + max_positives
        else:
            range_max = range_min + num_negatives + max_positives
        if verbose:
            print(f"Setting range_max to {range_max} based on the provided parameters.")
    range_max = v.integer(range_max, "range_max")
    if range_max <= range_min:
        raise v.InvalidArgumentError(f"range_max ({range_max}) must be larger than range_min ({range_min}).")
    if num_negatives > range_max - range_min:
        raise v.InvalidArgumentError(
            f"num_negatives ({num_negatives}) is larger than the window [range_min, range_max) = [{range_min}, "
            f"{range_max}), which holds {range_max - range_min} candidates: raise range_max or lower num_negatives.")

    if own_index:
        keep = np.flatnonzero(canonical == np.arange(nc))
        unique_rows = c if keep.size == nc else c[keep]  # no copy of the corpus unless texts repeat
        built = Index(index, c.shape[1], metric)
        # One native call takes at most MAX_CALL_VALUES floats: a larger corpus trains on an even sample of rows
        # (Flat only validates; k-means and codebooks need far fewer rows than that) and is added in parts.
        stride = -(-unique_rows.shape[0] * unique_rows.shape[1] // _index_module.MAX_CALL_VALUES)
        built.train(unique_rows if stride <= 1 else np.ascontiguousarray(unique_rows[::stride]))
        built.add(unique_rows, ids=keep)
        del unique_rows
        search_index = built
    else:
        if index.metric != metric:
            raise v.InvalidArgumentError(f"The index measures {index.metric!r} but metric={metric!r}.")
        search_index = built = index
    if rescore_exact is None:
        rescore_exact = not scores_are_exact(search_index.description)

    if not own_index and corpus is not None:  # a built index keeps duplicate texts: exclude the positives' copies
        by_text = {}
        for row in range(nc):
            by_text.setdefault(int(canonical[row]), []).append(row)
        excl_lists = excl.lists()
        for i, p in enumerate(pos.lists()):
            excl_lists[i].extend(r for pid in set(p) for r in by_text[pid] if r != pid)
        excl = _id_lists(excl_lists)
    if excl is not None and excl.values.size == 0:
        excl = None

    unique_pos = _first_occurrences(pos)
    # sentence-transformers searches range_max + max_positives candidates, whatever the filters. Without score
    # filters, exclusions or kept positives that is also the engine's automatic depth (range_max plus the excluded
    # ids), which lets a "top" selection search shallow first and deepen only the anchors left short (same rows on
    # an exact index, a fraction of the candidates); otherwise the depth is set explicitly.
    automatic = (all(x is None for x in margins.values()) and excl is None and not include_positives)
    options = dict(range_min=range_min, range_max=range_max, sampling=SAMPLING[sampling_strategy],
                   shortfall="keep_short", chunk_size=batch_size, rescore_exact=bool(rescore_exact), seed=seed,
                   threads=threads, include_positives=bool(include_positives), **guards)
    if not automatic:
        options["candidate_depth"] = range_max + max_positives
    options.update({k: x for k, x in margins.items() if x is not None})
    if search_params is not None:
        options["search"] = _search_text(search_params)
    # Queries go to the engine in blocks (progress, bounded memory); anchor_id_offset keeps the random streams and
    # so the rows identical to one call. The hand-out cap counts over one call, so it needs a single block.
    block = n_unique if guards.get("max_hand_outs_per_item") else query_block_size
    negatives = np.full((n_unique, num_negatives), -1, dtype=np.int64)
    scores = np.full((n_unique, num_negatives), np.nan, dtype=np.float32)
    report, started = None, time.perf_counter()
    try:
        for first in range(0, n_unique, block):
            last = min(n_unique, first + block)
            neg, sc, part = search_index.mine(unique_pos.block(first, last), anchors=q[first:last],
                                              exclusions=excl.block(first, last) if excl is not None else None,
                                              num_negatives=num_negatives, k_occurrence=k_occurrence,
                                              anchor_id_offset=first, **options)
            negatives[first:last], scores[first:last] = neg, sc
            report = part if report is None else _merge_reports(report, part)
            if verbose and block < n_unique:
                print(f"Mined {last:,}/{n_unique:,} queries ({last / n_unique:.1%}) in {time.perf_counter() - started:.1f} s",
                      flush=True)
    finally:
        if own_index:
            built.close()

    # ---- positive scores (exact, per pair) and the rows in the chosen layout
    flat_q = np.repeat(np.arange(n_unique), pos_counts)
    flat_p = pos.values
    flat_scores = np.empty(flat_p.size, dtype=np.float32)
    for first in range(0, flat_p.size, 65536):  # in slices: no (pairs x d) float64 copy of the whole set
        sl = slice(first, first + 65536)
        if c is not None:
            pvec = c[flat_p[sl]]
        elif isinstance(index, ClusterIndex):  # one round trip per slice, not per positive
            pvec = index.reconstruct_batch(flat_p[sl])
        else:
            pvec = np.stack([index.reconstruct(int(pid)) for pid in flat_p[sl]])
        flat_scores[sl] = pair_scores(metric, q[flat_q[sl]], pvec)

    anchor_of = (lambda i: queries[query_rows[i]]) if queries is not None else (lambda i: int(query_rows[i]))
    doc_of = (lambda j: corpus[j]) if corpus is not None else (lambda j: int(j))

    def layout():  # the rows, built when first read (a training loop that only reads .negatives never pays for them)
        row_query = []  # the unique query of each row, recorded as each row's anchor cell is written

        def anchor_cell(i):
            row_query.append(i)
            return anchor_of(i)

        columns, _ = _layout(output_format, output_scores, anchor_column_name, positive_column_name, anchor_cell,
                             doc_of, pos.lists(), _split(flat_scores, pos.offsets), negatives, scores, num_negatives)
        return columns, np.array(row_query, dtype=np.int64)

    rows, missing = _row_counts(output_format, pos_counts, (negatives >= 0).sum(axis=1), num_negatives)
    report = dict(report, rows=rows, missing_rows=missing, output_format=output_format,
                  range_max=range_max, unique_queries=n_unique, queries=nq, query_blocks=-(-n_unique // block))

    def full_report():  # the score statistics cost a few sorts over the output: only when printed or read
        return dict(report, **_score_statistics(flat_q, flat_scores, negatives, scores))
    result = HardNegatives(layout, query_rows, pos, v.output(negatives, kind), v.output(scores, kind),
                           flat_scores, full_report, output_format, rows)
    if verbose:
        print(format_report(result.report, margins))
    return result


_EXACT_SCORES = re.compile(r"^(Flat|HNSW\d+(,efC\d+)?|IVF\d+(_HNSW\d+)?,Flat)$")


def scores_are_exact(description):
    """True when an index of this description returns scores computed from the float vectors (up to rounding), so
    mining needs no exact re-scoring: Flat, ``IVF{n},Flat``, HNSW, and any spec ending in ``,RFlat`` or
    ``,Refine(Flat)`` (the refine stage re-scores what it returns from the float vectors)."""
    return bool(_EXACT_SCORES.match(description)) or description.endswith((",RFlat", ",Refine(Flat)"))


def _id_lists(lists):
    """IdLists from a list of id lists."""
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(x) for x in lists])
    values = np.fromiter((x for row in lists for x in row), dtype=np.int64, count=int(offsets[-1]))
    return IdLists(offsets, values)


def _first_occurrences(lists):
    """Each list without repeated ids (first occurrence kept, order kept)."""
    n, m = len(lists), lists.values.shape[0]
    if m == n:  # one id per list: nothing repeats
        return lists
    owner = np.repeat(np.arange(n), np.diff(lists.offsets))
    order = np.lexsort((np.arange(m), lists.values, owner))
    so, sv = owner[order], lists.values[order]
    first = np.ones(m, dtype=bool)
    first[1:] = (so[1:] != so[:-1]) | (sv[1:] != sv[:-1])
    keep = np.zeros(m, dtype=bool)
    keep[order[first]] = True
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(owner[keep], minlength=n))
    return IdLists(offsets, lists.values[keep])


def _split(flat, offsets):
    """[flat[offsets[i]:offsets[i+1]] for each i] (views)."""
    return np.split(flat, offsets[1:-1]) if offsets.shape[0] > 1 else []


def _row_counts(fmt, pos_counts, found, n_neg):
    """(rows, missing rows) of a layout, from the positives and found negatives per query (as _layout counts them)."""
    if fmt == "triplet":
        return int(np.sum(pos_counts * found)), int(np.sum(pos_counts * (n_neg - found)))
    if fmt == "n-tuple":
        full = found == n_neg
        return int(pos_counts[full].sum()), int(pos_counts[~full].sum())
    if fmt == "labeled-pair":
        return int(np.sum(pos_counts + found)), int(np.sum(n_neg - found))
    return int(pos_counts[found > 0].sum()), int(pos_counts[found == 0].sum())


def _search_text(params):
    """{"probes": 16, "refine": 4} -> "probes=16,refine=4" (integers only, names without '=' or ',')."""
    if not isinstance(params, dict):
        raise v.ArgumentTypeError(f"search_params must be a dict such as {{'probes': 16}}, got {type(params).__name__}.")
    parts = []
    for name, value in params.items():
        if not isinstance(name, str) or not name or any(ch in name for ch in "=,\0"):
            raise v.InvalidArgumentError(f"search_params has an invalid knob name {name!r}.")
        parts.append(f"{name}={v.integer(value, f'search_params[{name!r}]')}")
    return ",".join(parts)


SUMMED = ("anchors", "rows_written", "negatives_written", "candidates", "deepened_anchors", "wall_seconds")


def _merge_reports(a, b):
    """The report of two consecutive blocks: counters add up, the peak memory is the larger; score statistics are
    recomputed over the whole output afterwards (:func:`_score_statistics`)."""
    out = dict(a)
    for key in SUMMED:
        out[key] = a.get(key, 0) + b.get(key, 0)
    for group in ("skipped", "shortfall"):
        out[group] = {k: a.get(group, {}).get(k, 0) + b.get(group, {}).get(k, 0)
                      for k in set(a.get(group, {})) | set(b.get(group, {}))}
    out["peak_memory_bytes"] = max(a.get("peak_memory_bytes", 0), b.get("peak_memory_bytes", 0))
    return out


def _summary(values):
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"count": 0}
    p25, p50, p75 = np.quantile(values, [0.25, 0.5, 0.75])
    return {"count": int(values.size), "mean": float(values.mean()), "std": float(values.std()),
            "min": float(values.min()), "p25": float(p25), "p50": float(p50), "p75": float(p75),
            "max": float(values.max())}


def _score_statistics(flat_q, flat_positive, negatives, scores):
    """Statistics over the whole output: positive scores per (query, positive) pair, negative scores per mined
    negative, differences per (pair, negative) as sentence-transformers reports them; hand-out counts."""
    found = negatives >= 0
    diffs = (flat_positive[:, None] - scores[flat_q])[found[flat_q]] if flat_q.size else np.zeros(0)
    ids, counts = np.unique(negatives[found], return_counts=True)
    if counts.size > 1 and counts.std() > 0:
        skew = float(np.mean((counts - counts.mean()) ** 3) / counts.std() ** 3)
    else:
        skew = 0.0 if counts.size > 1 else float("nan")
    return {"positive_scores": _summary(flat_positive), "negative_scores": _summary(scores[found]),
            "differences": _summary(diffs), "distinct_negative_ratio": ids.size / max(int(found.sum()), 1),
            "max_hand_outs": int(counts.max()) if counts.size else 0, "hand_out_skewness": skew}


def _layout(fmt, with_scores, a_col, p_col, anchor_of, doc_of, pos_lists, positive_scores, negatives, scores, n_neg):
    """Rows of one output format, and how many of the possible rows are missing (shortfall)."""
    cols = {a_col: [], p_col: []}
    found = negatives >= 0
    missing = 0
    if fmt == "triplet":
        cols["negative"] = []
        for i, p in enumerate(pos_lists):
            for pid, ps in zip(p, positive_scores[i]):
                for j, s in zip(negatives[i][found[i]], scores[i][found[i]]):
                    cols[a_col].append(anchor_of(i)); cols[p_col].append(doc_of(pid)); cols["negative"].append(doc_of(j))
                    if with_scores:
                        cols.setdefault("score", []).append([float(ps), float(s)])
                missing += n_neg - int(found[i].sum())  # per (query, positive) pair, as sentence-transformers
    elif fmt == "n-tuple":
        for k in range(1, n_neg + 1):
            cols[f"negative_{k}"] = []
        for i, p in enumerate(pos_lists):
            if not found[i].all():
                missing += len(p)
                continue
            for pid, ps in zip(p, positive_scores[i]):
                cols[a_col].append(anchor_of(i)); cols[p_col].append(doc_of(pid))
                for k, j in enumerate(negatives[i], start=1):
                    cols[f"negative_{k}"].append(doc_of(j))
                if with_scores:
                    cols.setdefault("score", []).append([float(ps)] + [float(s) for s in scores[i]])
    elif fmt == "labeled-pair":
        cols["label"] = []
        for i, p in enumerate(pos_lists):
            pairs = [(pid, 1, ps) for pid, ps in zip(p, positive_scores[i])]
            pairs += [(j, 0, s) for j, s in zip(negatives[i][found[i]], scores[i][found[i]])]
            for doc, label, s in pairs:
                cols[a_col].append(anchor_of(i)); cols[p_col].append(doc_of(doc)); cols["label"].append(label)
                if with_scores:
                    cols.setdefault("score", []).append(float(s))
            missing += n_neg - int(found[i].sum())
    else:  # labeled-list
        cols["labels"] = []
        for i, p in enumerate(pos_lists):
            negs = negatives[i][found[i]]
            if negs.size == 0:
                missing += len(p)
                continue
            for pid, ps in zip(p, positive_scores[i]):
                cols[a_col].append(anchor_of(i))
                cols[p_col].append([doc_of(pid)] + [doc_of(j) for j in negs])
                cols["labels"].append([1] + [0] * int(negs.size))
                if with_scores:
                    cols.setdefault("scores", []).append([float(ps)] + [float(s) for s in scores[i][found[i]]])
    if with_scores:
        cols.setdefault("scores" if fmt == "labeled-list" else "score", [])
    return cols, missing


def format_report(report, margins=None):
    """The report as text: sentence-transformers' score table, then what each filter dropped and the shortfall."""
    lines = ["{:<6} {:>14} {:>14} {:>14}".format("Metric", "Positive", "Negative", "Difference")]
    summaries = [report.get(k, {}) for k in ("positive_scores", "negative_scores", "differences")]
    lines.append("{:<6} {:>14} {:>14} {:>14}".format("Count", *(f"{s.get('count', 0):,}" for s in summaries[:2]), ""))
    for label, key in (("Mean", "mean"), ("Std", "std"), ("Min", "min"), ("25%", "p25"), ("50%", "p50"),
                       ("75%", "p75"), ("Max", "max")):
        cells = [f"{s[key]:.4f}" if key in s else "-" for s in summaries]
        lines.append("{:<6} {:>14} {:>14} {:>14}".format(label, *cells))
    skipped = report.get("skipped", {})
    candidates = max(report.get("candidates", 0), 1)
    for name, key in (("positives", "positives"), ("exclusions", "excluded"), ("near-duplicate guard", "near_duplicates"),
                      ("margins", "margin"), ("score bounds", "score_bounds"), ("hand-out cap", "hand_out_cap")):
        if skipped.get(key):
            lines.append(f"Skipped {skipped[key]:,} potential negatives ({skipped[key] / candidates:.2%}) due to the {name}"
                         + (_margin_text(margins, key) if margins else "") + ".")
    missing, rows = report.get("missing_rows", 0), report.get("rows", 0)
    if missing:
        lines.append(f"Could not find enough negatives for {missing:,} samples ({missing / max(missing + rows, 1):.2%}); "
                     f"{report.get('shortfall', {}).get('rows', 0):,} queries ran short. Consider adjusting range_max, "
                     "range_min and the margins / max_score to find more valid negatives.")
    lines.append(f"{rows:,} rows ({report.get('output_format')}) from {report.get('unique_queries', 0):,} unique queries; "
                 f"wall {report.get('wall_seconds', 0):.2f} s, peak memory {report.get('peak_memory_bytes', 0) / 2**20:.1f} MiB")
    return "\n".join(lines)


def _margin_text(margins, key):
    names = {"margin": ("absolute_margin", "relative_margin"), "score_bounds": ("max_score", "min_score")}.get(key, ())
    set_ = [f"{k} of {margins[k]}" for k in names if margins.get(k) is not None]
    return f" ({', '.join(set_)})" if set_ else ""
