"""Refresher: a miner that a training loop holds open while the encoder changes (ANCE's asynchronous index refresh as
an API).

Protocol (one trainer thread, any number of mining threads):

1. ``r = Refresher(corpus_embeddings, index="Flat", metric="cosine", max_staleness=S)`` embeds nothing itself: it
   takes the corpus vectors of step 0 and builds the first snapshot.
2. Every N training steps the trainer asks ``ids = r.due(m)`` (the m corpus items whose vectors are oldest),
   re-embeds them with the current encoder and calls ``r.push(ids, vectors, step)``. Pushes go to the live table
   only; no snapshot ever changes.
3. ``r.refresh()`` (or ``push(..., refresh=True)``) builds the next snapshot from a copy of the live table in a
   background thread; when it is complete it is swapped in atomically (a reference swap under a lock). A mining
   call that started on the old snapshot finishes on it; the old snapshot is freed when its last user is done.
4. ``r.mine(query_embeddings, positives, step=..., **mine_hard_negatives options)`` mines on the current snapshot
   and tags every row with the snapshot id and the staleness of the vectors it used (``step`` minus the step at
   which the oldest of the row's positive and negative vectors was embedded). With ``max_staleness=S``, mining on a
   snapshot holding any vector older than ``step - S`` raises :class:`StaleSnapshotError` (naming how many items are
   overdue): re-embed ``due()`` first, push and refresh. Re-embedding the oldest first is what keeps the bound.

Snapshots are immutable copies, so a row never mixes vectors of two snapshots (``test_refresher.py`` checks every
mined score against the snapshot's own vectors while pushes and swaps run concurrently). Rebuilding a snapshot costs
one index build over the corpus (a copy for "Flat"; clustering or graph construction for approximate specs). For
specs that train (IVF's k-means, PQ codebooks) ``retrain_every=k`` trains afresh only every k-th snapshot; the ones
between start from the last training's state (saved empty, right after training) and only add the live vectors: on
60 000 64-d vectors an ``IVF1024,Flat`` snapshot takes 1.25 s with training and ~0.25 s without. The centroids then
lag the encoder by up to k - 1 refreshes (results stay exact within the probed lists; which lists a query probes gets
worse as the embeddings drift). ``retrain_every=None`` trains once, as the C# ``MiningRefresher`` does.
"""

import os
import shutil
import tempfile
import threading

import numpy as np

from . import _validate as v
from .hard_negatives import mine_hard_negatives
from .index import Index, load


class StaleSnapshotError(v.InvalidArgumentError):
    """Mining would use vectors older than the staleness bound: re-embed :meth:`Refresher.due` items, push, refresh."""


class Snapshot:
    """An immutable generation of the corpus: its index, a copy of the vectors and of their embedding steps."""

    def __init__(self, number, step, index, vectors, embedded_at, trained_at=None):
        self.number = number
        self.step = step
        self.index = index
        self.vectors = vectors
        self.embedded_at = embedded_at
        self.trained_at = trained_at  # number of the snapshot whose training this index uses (None: needs none)
        self.oldest = int(embedded_at.min()) if embedded_at.size else step
        self._users = 0
        self._retired = False

    def __repr__(self):
        return f"<minedex.Snapshot {self.number} built at step {self.step}, oldest vector from step {self.oldest}>"


class Refresher:
    """Holds a corpus and its index across training steps; see the module docstring for the protocol.

    Parameters
    ----------
    corpus_embeddings : (n, d) array-like or torch tensor
        Corpus vectors at ``step`` (ids are row numbers).
    index : str
        Index spec of every snapshot ("Flat", "HNSW32", "IVF256,Flat", ...).
    metric : str
        "cosine", "ip" or "l2".
    max_staleness : int, optional
        Largest allowed age in steps of any vector a mining call uses (None = unbounded).
    step : int
        Training step of ``corpus_embeddings``.
    retrain_every : int or None
        For specs that train: train every k-th snapshot afresh (1, the default: every one), the others reuse the
        last training; None trains only the first. Ignored by specs without training ("Flat", "HNSW32").
    """

    def __init__(self, corpus_embeddings, index="Flat", metric="cosine", max_staleness=None, step=0, retrain_every=1):
        vectors = v.rows(corpus_embeddings, "corpus_embeddings")
        if vectors.shape[0] == 0:
            raise v.InvalidArgumentError("corpus_embeddings is empty: a refresher needs a corpus.")
        if not isinstance(index, str):
            raise v.ArgumentTypeError(f"index must be an index spec string, got {type(index).__name__}.")
        self._spec, self._metric = index, v.metric(metric)
        self._max_staleness = None if max_staleness is None else v.integer(max_staleness, "max_staleness", 0)
        step = v.integer(step, "step", *v.INT64)
        self._retrain_every = None if retrain_every is None else v.integer(retrain_every, "retrain_every", 1)
        self._template = None  # (directory, snapshot number): the last training's index, saved empty
        self._lock = threading.Lock()
        self._vectors = vectors.copy()
        self._embedded_at = np.full(vectors.shape[0], step, dtype=np.int64)
        self._step = step
        self._numbers = 0
        self._builder = None
        self._dirty = False
        self._error = None
        self._closed = False
        try:
            self._snapshot = self._build()
        except BaseException:
            self._drop_template()
            raise

    # ------------------------------------------------------------------------------------------- state
    @property
    def snapshot(self):
        """The snapshot mining uses now."""
        return self._snapshot

    @property
    def step(self):
        """The latest training step seen (by :meth:`push` or :meth:`mine`)."""
        return self._step

    def __len__(self):
        return self._vectors.shape[0]

    def due(self, count):
        """The ``count`` corpus ids whose live vectors are oldest (oldest first, ties by id): re-embed these next."""
        count = v.integer(count, "count", 0, len(self))
        with self._lock:
            order = np.lexsort((np.arange(len(self)), self._embedded_at))
        return order[:count].astype(np.int64)

    def overdue(self, step=None):
        """How many live vectors are older than the staleness bound at ``step`` (0 when unbounded)."""
        if self._max_staleness is None:
            return 0
        step = self._step if step is None else v.integer(step, "step", *v.INT64)
        with self._lock:
            return int(np.count_nonzero(self._embedded_at < step - self._max_staleness))

    # ------------------------------------------------------------------------------------------- updates
    def push(self, ids, vectors, step, refresh=False):
        """Stores re-embedded ``vectors`` of corpus ``ids`` computed at training ``step`` (upsert into the live table;
        snapshots are untouched). ``refresh=True`` starts a background rebuild afterwards."""
        self._check_open()
        ids = v.ids(ids, "ids")
        x = v.rows(vectors, "vectors")
        step = v.integer(step, "step", *v.INT64)
        if x.shape[0] != ids.shape[0]:
            raise v.InvalidArgumentError(f"Got {ids.shape[0]} ids but {x.shape[0]} vectors: there must be one vector per id.")
        if x.shape[1] != self._vectors.shape[1]:
            raise v.InvalidArgumentError(f"Dimension mismatch: vectors have {x.shape[1]} columns, the corpus {self._vectors.shape[1]}.")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            bad = int(ids[(ids < 0) | (ids >= len(self))][0])
            raise v.InvalidArgumentError(f"ids holds {bad}, which is not a corpus row (0..{len(self) - 1}).")
        if not np.all(np.isfinite(x)):
            row = int(np.flatnonzero(~np.all(np.isfinite(x), axis=1))[0])
            raise v.InvalidArgumentError(f"vectors contains a non-finite value at row {row}.")
        if np.unique(ids).size != ids.size:
            raise v.InvalidArgumentError("ids holds duplicates: push each corpus item once per call.")
        with self._lock:
            if step < self._step:
                raise v.InvalidArgumentError(f"step {step} is before the latest step {self._step}: steps only go forward.")
            self._vectors[ids] = x
            self._embedded_at[ids] = step
            self._step = step
        if refresh:
            self.refresh()

    def refresh(self, wait=False):
        """Builds the next snapshot from the live table in a background thread and swaps it in when complete. A
        refresh requested while one is building runs right after it (so the last push is always covered).
        ``wait=True`` blocks until the table as of now is in the current snapshot. Returns the snapshot in use."""
        self._check_open()
        with self._lock:
            if self._builder is not None:
                self._dirty = True
                builder = self._builder
            else:
                builder = self._builder = threading.Thread(target=self._background, name="minedex-refresh", daemon=True)
                builder.start()
        if wait:
            while builder is not None:
                builder.join()
                with self._lock:
                    builder = self._builder
            self._raise_background_error()
        return self._snapshot

    def _background(self):
        while True:
            try:
                fresh = self._build()
            except Exception as e:  # kept for the trainer: raised by the next refresh(wait=True) or mine()
                with self._lock:
                    self._error, self._builder, self._dirty = e, None, False
                return
            with self._lock:
                old, self._snapshot = self._snapshot, fresh
                self._retire(old)
                if self._closed:
                    self._retire(fresh)
                if not self._dirty or self._closed:
                    self._builder = None
                    return
                self._dirty = False

    def _build(self):
        with self._lock:
            vectors, embedded_at, step = self._vectors.copy(), self._embedded_at.copy(), self._step
            self._numbers += 1
            number = self._numbers
        index, trained_at = self._trained_index(vectors, number)
        try:
            index.add(vectors, ids=np.arange(vectors.shape[0], dtype=np.int64))
        except BaseException:
            index.close()
            raise
        return Snapshot(number, step, index, vectors, embedded_at, trained_at)

    def _trained_index(self, vectors, number):
        """(an empty trained index for snapshot ``number``, the number of the snapshot it was trained for): loaded
        from the last training when ``retrain_every`` allows, else trained on ``vectors`` (and saved for reuse).
        Builds run one at a time (the constructor, then the single builder thread), so the template needs no lock."""
        if self._template is not None:
            directory, trained_at = self._template
            if self._retrain_every is None or number - trained_at < self._retrain_every:
                return load(os.path.join(directory, "trained.index")), trained_at
        index = Index(self._spec, vectors.shape[1], self._metric)
        if index.is_trained:  # nothing to train (Flat, HNSW): nothing to reuse
            return index, None
        try:
            index.train(vectors)
            if self._retrain_every != 1:
                directory = tempfile.mkdtemp(prefix="minedex-refresher-")
                index.save(os.path.join(directory, "trained.index"))
                self._drop_template()
                self._template = (directory, number)
        except BaseException:
            index.close()
            raise
        return index, number

    def _retire(self, snap):
        """Frees ``snap`` now if nobody mines on it, else when its last user finishes (lock held)."""
        snap._retired = True
        if snap._users == 0:
            snap.index.close()

    # ------------------------------------------------------------------------------------------- mining
    def mine(self, query_embeddings, positives, step=None, **options):
        """:func:`minedex.mine_hard_negatives` on the current snapshot (``index`` and ``corpus_embeddings`` come
        from it). Adds the columns ``snapshot`` (its number) and ``staleness`` (``step`` minus the embedding step of
        the oldest positive or negative vector of the row) and the attributes ``snapshot`` and ``staleness`` (per
        unique query). Quiet unless ``verbose=True`` is passed (a training loop calls it every few steps; the function
        itself prints its score table by default, as sentence-transformers does). Raises :class:`StaleSnapshotError`
        when the snapshot breaks ``max_staleness``."""
        self._check_open()
        self._raise_background_error()
        for key in ("index", "corpus_embeddings", "metric"):
            if key in options:
                raise v.ArgumentTypeError(f"Refresher.mine() takes no {key!r}: the snapshot provides it.")
        options.setdefault("verbose", False)
        with self._lock:
            if step is not None:
                step = v.integer(step, "step", *v.INT64)
                if step < self._step:
                    raise v.InvalidArgumentError(f"step {step} is before the latest step {self._step}: steps only go forward.")
                self._step = step
            now = self._step
            snap = self._snapshot
            if self._max_staleness is not None and now - snap.oldest > self._max_staleness:
                overdue = int(np.count_nonzero(snap.embedded_at < now - self._max_staleness))
                raise StaleSnapshotError(
                    f"Snapshot {snap.number} holds {overdue} vectors older than max_staleness={self._max_staleness} "
                    f"steps at step {now} (oldest from step {snap.oldest}): re-embed refresher.due(...) items, push "
                    "them and refresh.")
            snap._users += 1
        try:
            result = mine_hard_negatives(query_embeddings, snap.vectors, positives, index=snap.index,
                                         metric=self._metric, **options)
        finally:
            with self._lock:
                snap._users -= 1
                if snap._retired and snap._users == 0:
                    snap.index.close()
        negatives = np.asarray(result.negatives.numpy() if hasattr(result.negatives, "numpy") else result.negatives)
        pos = result._positives  # IdLists: the oldest vector of each row, without a Python loop over queries
        at = snap.embedded_at
        oldest = np.minimum.reduceat(at[pos.values], pos.offsets[:-1]) if pos.values.size else np.zeros(0, np.int64)
        if negatives.size:
            oldest = np.minimum(oldest, np.where(negatives >= 0, at[np.maximum(negatives, 0)], np.iinfo(np.int64).max).min(axis=1))
        result.snapshot = snap.number
        result.staleness = now - oldest
        number, staleness = snap.number, result.staleness
        result._add_column("snapshot", lambda row_query: [number] * len(row_query))
        result._add_column("staleness", lambda row_query: [int(x) for x in staleness[row_query]])
        return result

    # ------------------------------------------------------------------------------------------- lifetime
    def _check_open(self):
        if self._closed:
            raise v.InvalidArgumentError("The refresher is closed.")

    def _raise_background_error(self):
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self):
        """Waits for a running rebuild and frees every snapshot (mining calls in flight finish first)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            builder = self._builder
        if builder is not None:
            builder.join()
        with self._lock:
            if not self._snapshot._retired:
                self._retire(self._snapshot)
        self._drop_template()

    def _drop_template(self):
        """Removes the saved training (its temporary directory), if any."""
        if self._template is not None:
            shutil.rmtree(self._template[0], ignore_errors=True)
            self._template = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
