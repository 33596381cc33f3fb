"""A collection on an engine cluster (Orleans silos), reached through ``engine cluster gateway`` over HTTP.

The package's engine is a NativeAOT library and cannot host an Orleans client, so a cluster is served to Python by
a gateway process (``engine cluster gateway --cluster HOST:PORT --http PORT``), an Orleans client itself. Mining runs
in the gateway with the engine's own miner over the cluster's router, so :meth:`ClusterIndex.mine` takes exactly the
options of :meth:`minedex.Index.mine`, and :func:`minedex.mine_hard_negatives` accepts a ``ClusterIndex`` as its
``index`` (``corpus_embeddings=None``: the cluster holds the corpus, ids = corpus rows).

>>> import minedex
>>> corpus = minedex.ClusterIndex.create("http://127.0.0.1:8080", "docs", d=384, spec="HNSW32", metric="cosine")
>>> corpus.add(embeddings, ids=np.arange(len(embeddings)))
>>> rows = minedex.mine_hard_negatives(queries, None, positives, index=corpus, metric="cosine")
"""

import http.client
import json
import struct
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from . import _validate as v
from ._mining import csr, occurrence_table
from ._native import ArgumentTypeError, EngineError, InvalidArgumentError

__all__ = ["ClusterError", "ClusterIndex"]

_MAGIC = b"MDX1"
_DTYPES = {"f4": np.float32, "i8": np.int64}
_PART_BYTES = 64 << 20  # request bodies are cut below this (the gateway takes at most 1 GiB)


class ClusterError(EngineError):
    """The cluster or its gateway failed (unreachable, a silo error, an internal error): code 5 (invalid state) or 99."""


def _envelope(header, arrays):
    header = dict(header)
    header["arrays"] = [{"name": name, "dtype": "f4" if a.dtype == np.float32 else "i8", "shape": list(a.shape)}
                        for name, a in arrays]
    h = json.dumps(header).encode("utf-8")
    return b"".join([_MAGIC, struct.pack("<I", len(h)), h] + [np.ascontiguousarray(a).tobytes() for _, a in arrays])


def _read_envelope(body):
    if len(body) < 8 or body[:4] != _MAGIC:
        raise ClusterError("The gateway answered with something other than an MDX1 envelope.", 99)
    (n,) = struct.unpack_from("<I", body, 4)
    header = json.loads(body[8:8 + n].decode("utf-8"))
    at, arrays = 8 + n, {}
    for a in header.get("arrays", []):
        dtype = _DTYPES[a["dtype"]]
        count = int(np.prod(a["shape"], dtype=np.int64))
        arrays[a["name"]] = np.frombuffer(body, dtype=dtype, count=count, offset=at).reshape(a["shape"]).copy()
        at += count * np.dtype(dtype).itemsize
    return header, arrays


class ClusterIndex:
    """A plain-vector collection of an engine cluster (ids are ``int64``), through its HTTP gateway.

    The subset of :class:`minedex.Index` that a corpus on a cluster needs: ``d``, ``metric``, ``description``,
    ``len()``, :meth:`add`, :meth:`remove`, :meth:`search`, :meth:`reconstruct`, :meth:`mine`. Errors are the
    package's: :class:`minedex.InvalidArgumentError` (a ValueError) for bad input, :class:`minedex.ArgumentTypeError`
    (a TypeError) for wrong types, :class:`ClusterError` when the cluster or the gateway fails.
    """

    def __init__(self, url, collection, timeout=600.0):
        """Opens the existing collection ``collection`` of the cluster behind the gateway at ``url``."""
        self._target(url, collection, timeout)
        self._info = self._json("GET")

    def _target(self, url, collection, timeout):
        self._url = v.text(url, "url").decode("utf-8").rstrip("/")
        if not self._url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"url must start with http:// or https://, got {self._url!r}.")
        self._name = v.text(collection, "collection").decode("utf-8")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
            raise ArgumentTypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}.")
        self._timeout = float(timeout)
        if not self._timeout > 0:
            raise InvalidArgumentError(f"timeout must be positive, got {timeout!r}.")

    @classmethod
    def create(cls, url, collection, d, spec="Flat", metric="l2", shards=2, replicas=2, training_size=1000, timeout=600.0):
        """Creates the collection (or opens it when it exists with this layout) and returns it.

        ``spec`` is any index spec every shard builds ("Flat", "HNSW32", "IVF1024,Flat", ...); ``training_size`` is
        the vectors a shard holds before a spec that needs training is trained (exact search until then).
        """
        self = cls.__new__(cls)
        self._target(url, collection, timeout)
        body = {"dimension": v.integer(d, "d", 1, 65536), "spec": v.text(spec, "spec").decode("utf-8"),
                "metric": v.text(metric, "metric").decode("utf-8"), "shards": v.integer(shards, "shards", 1, 4096),
                "replicas": v.integer(replicas, "replicas", 1, 16),
                "training_size": v.integer(training_size, "training_size", 1, 100_000_000)}
        self._json("PUT", json.dumps(body).encode("utf-8"))
        self._info = self._json("GET")
        return self

    # ---- transport

    def _request(self, method, suffix, body=None, content_type="application/octet-stream"):
        url = f"{self._url}/v1/collections/{urllib.parse.quote(self._name, safe='')}{suffix}"
        req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                err = json.loads(raw.decode("utf-8"))
                message, kind = err.get("error", ""), err.get("kind", "internal")
            except ValueError:  # not the gateway's JSON (an HTTP server error page, a proxy): say what it was
                message, kind = f"HTTP {e.code} {e.reason} from {url} (not an engine gateway answer)", "internal"
            if kind in ("invalid_argument", "not_found"):
                raise InvalidArgumentError(message) from None
            if kind == "argument_type":
                raise ArgumentTypeError(message) from None
            raise ClusterError(message, 5 if kind == "state" else 99) from None
        except (urllib.error.URLError, OSError) as e:
            raise ClusterError(f"The cluster gateway at {self._url} did not answer ({e}); is "
                               f"'engine cluster gateway' running?", 5) from None
        except http.client.HTTPException as e:  # a reply cut short (the gateway stopped mid-answer)
            raise ClusterError(f"The cluster gateway at {self._url} broke off its answer ({type(e).__name__}: {e}).", 5) from None

    def _json(self, method, body=None):
        return json.loads(self._request(method, "", body, "application/json").decode("utf-8"))

    def _call(self, op, header, arrays):
        return _read_envelope(self._request("POST", "/" + op, _envelope(header, arrays)))

    # ---- the index surface

    @property
    def d(self):
        """Vector dimension."""
        return int(self._info["dimension"])

    @property
    def metric(self):
        """``"l2"``, ``"ip"`` or ``"cosine"``."""
        return self._info["metric"]

    @property
    def description(self):
        """The spec every shard builds (what decides whether the shards' scores are exact)."""
        return self._info["spec"]

    @property
    def shards(self):
        return int(self._info["shards"])

    @property
    def replicas(self):
        return int(self._info["replicas"])

    def __len__(self):
        return int(self._json("GET")["count"])

    @property
    def ntotal(self):
        """Live vectors over every shard."""
        return len(self)

    def __repr__(self):
        return f"<minedex.ClusterIndex {self._name!r} at {self._url} spec={self.description!r} d={self.d} metric={self.metric}>"

    def add(self, x, ids):
        """Inserts or replaces vectors by id (``ids`` required: the cluster spreads ids over its shards); returns once
        every replica of every touched shard made them durable."""
        x = v.rows(x, "x")
        if x.shape[1] != self.d:
            raise InvalidArgumentError(f"x has {x.shape[1]} columns but the collection's dimension is {self.d}.")
        ids = v.ids(ids, "ids", x.shape[0])
        step = max(1, _PART_BYTES // (self.d * 4 + 8))
        for first in range(0, x.shape[0], step):
            self._call("upsert", {}, [("vectors", x[first:first + step]), ("ids", ids[first:first + step])])
        return ids

    def remove(self, ids):
        """Deletes ids (absent ones are ignored)."""
        ids = v.ids(ids, "ids")
        for first in range(0, ids.shape[0], 1 << 20):
            self._call("delete", {}, [("ids", ids[first:first + (1 << 20)])])

    def search(self, q, k, return_type="numpy", **params):
        """(distances, labels), each (nq, k): the exact merge of every shard's top k. ``params`` are the shards'
        knobs by name (``probes=16``, ``ef=128``, ...; a knob the spec lacks is an error)."""
        kind = v.return_type(return_type)
        q = v.rows(q, "q")
        if q.shape[1] != self.d:
            raise InvalidArgumentError(f"q has {q.shape[1]} columns but the collection's dimension is {self.d}.")
        k = v.integer(k, "k", 1, 10_000)
        settings = {str(name): str(v.integer(x, name, 0, 1 << 30) if isinstance(x, (int, np.integer)) else x)
                    for name, x in params.items() if x is not None}
        _, out = self._call("search", {"k": k, "settings": settings}, [("queries", q)])
        return v.output(out["distances"], kind), v.output(out["labels"], kind)

    def reconstruct_batch(self, ids):
        """The stored vectors of ``ids`` (n, d), in order. Raises InvalidArgumentError naming the first absent id."""
        ids = v.ids(ids, "ids")
        _, out = self._call("get", {}, [("ids", ids)])
        row = {int(i): r for r, i in enumerate(out["ids"])}
        missing = [int(i) for i in ids if int(i) not in row]
        if missing:
            raise InvalidArgumentError(f"id {missing[0]} is not in the collection.")
        return out["vectors"][[row[int(i)] for i in ids]] if len(ids) else np.zeros((0, self.d), np.float32)

    def reconstruct(self, id, return_type="numpy"):
        """The stored vector of one id."""
        return v.output(self.reconstruct_batch([id])[0], v.return_type(return_type))

    def mine(self, positives, anchors=None, anchor_ids=None, exclusions=None, num_negatives=3, k_occurrence=None,
             return_type="numpy", **options):
        """Mines hard negatives on the cluster: :meth:`minedex.Index.mine` with the same arguments and options (the
        engine's miner runs in the gateway over the router; ``search`` holds the shards' knobs, e.g.
        ``"probes=16"``). Returns ``(negatives, scores, report)``; no ``output`` file or ``audit``."""
        kind = v.return_type(return_type)
        if (anchors is None) == (anchor_ids is None):
            raise InvalidArgumentError("Give exactly one of anchors (vectors) and anchor_ids (corpus ids).")
        arrays = []
        if anchors is not None:
            a = v.rows(anchors, "anchors")
            if a.shape[1] != self.d:
                raise InvalidArgumentError(f"anchors have {a.shape[1]} columns but the collection's dimension is {self.d}.")
            n = a.shape[0]
            arrays.append(("anchors", a))
        else:
            ids = v.ids(anchor_ids, "anchor_ids")
            n = ids.shape[0]
            arrays.append(("anchor_ids", ids))
        p_off, p_val = csr(positives, n, "positives")
        arrays += [("positive_offsets", np.asarray(p_off, np.int64)), ("positives", np.asarray(p_val, np.int64))]
        if exclusions is not None:
            e_off, e_val = csr(exclusions, n, "exclusions")
            arrays += [("exclusion_offsets", np.asarray(e_off, np.int64)), ("exclusions", np.asarray(e_val, np.int64))]
        if k_occurrence is not None:
            occ_ids, occ = occurrence_table(k_occurrence)
            arrays += [("occurrence_ids", occ_ids), ("occurrence", np.asarray(occ, np.int64))]
        width = v.integer(num_negatives, "num_negatives")
        opts = v.options(dict(options, num_negatives=width))
        header, out = self._call("mine", {"options": opts, "width": width}, arrays)
        return v.output(out["negatives"], kind), v.output(out["scores"], kind), header["report"]

    def close(self):
        """Nothing to release (the gateway holds the cluster connection); for symmetry with Index."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
