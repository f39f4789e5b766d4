"""``maxsim.Index``: a compressed, memory-mapped, updatable multi-vector index.

A PLAID/WARP-style index in Rust (``rust/maxsim-index``): token embeddings
are stored as a centroid id plus a residual quantized to ``nbits`` per
dimension, in immutable segment files under a versioned manifest. Search
probes the ``nprobe`` best centroids of each query token, prunes the
candidates by their centroid interaction to ``n_candidates`` and scores
those by exact MaxSim on the stored full vectors with maxsim's kernels
(the default when the index was created with a ``store``), or on the
decompressed residuals (the default without one).

Quick tour::

    index = maxsim.Index.create("my.index", dim=128, store="float16")
    index.add(["a", "b"], [doc_a, doc_b])      # docs: anything maxsim.scores takes
    scores, ids = index.search(query, k=10)    # best first; exact with a store
    index.delete(["a"]); index.compact()
    index = maxsim.Index.open("my.index")      # memory-mapped

Every write is one atomic commit (files fsynced, then the manifest
renamed): a process killed at any point leaves the last committed state.
One writer at a time (a lock file); any number of readers, each on the
snapshot it opened (``reload()`` picks up later commits).
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from . import _native
from ._convert import as_float32, as_k, describe, is_torch_tensor, tensor_views
from ._packed import PackedDocs

__all__ = ["Index"]

IdsLike = Union[Sequence[int], Sequence[str], np.ndarray]
_STORES = (None, "float16", "bfloat16", "int8", "float32")
# ``rerank`` values: the native flag (None: exact when the index has a store).
_RERANK = {"auto": None, "exact": True, None: False}


def _positive(value: Any, name: str, allow_none: bool = True) -> Optional[int]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name}: must be at least 1, got {value}")
    return int(value)


def _ids(ids: Any, name: str) -> Union[np.ndarray, list[str]]:
    """``ids`` as an int64 array or a list of str (one kind)."""
    if is_torch_tensor(ids):
        ids = ids.detach().cpu().numpy()
    if isinstance(ids, (str, bytes, int, np.integer)):
        ids = [ids]
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D array of ids, got {describe(ids)}")
        if ids.dtype.kind in "iu":
            if ids.dtype.kind == "u" and ids.size and ids.max() > np.iinfo(np.int64).max:
                raise ValueError(f"{name}: ids above int64's range ({describe(ids)})")
            return np.ascontiguousarray(ids, dtype=np.int64)
        if ids.dtype.kind in "UO":
            ids = ids.tolist()
        else:
            raise TypeError(f"{name}: ids must be integers or str, got {describe(ids)}")
    ids = list(ids)
    if not ids:
        return np.zeros(0, dtype=np.int64)
    if all(isinstance(i, str) for i in ids):
        return ids
    if all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids):
        try:
            return np.array(ids, dtype=np.int64)
        except OverflowError:
            raise ValueError(f"{name}: an id is outside int64's range") from None
    bad = next(
        (i for i in ids if not isinstance(i, (str, int, np.integer)) or isinstance(i, bool)), None
    )
    if bad is None:
        raise TypeError(f"{name}: mixes int and str ids; one id type per index")
    raise TypeError(f"{name}: ids must be int or str, got {bad!r} ({type(bad).__name__})")


def _doc_list(docs: Any, name: str = "docs") -> list[np.ndarray]:
    """Documents in any form ``maxsim.scores`` takes, as float32 ``(len_i, d)`` arrays."""
    if isinstance(docs, PackedDocs):
        flat = as_float32(docs.flat, f"{name}.flat", 2)
        offsets = np.asarray(docs.offsets, dtype=np.int64)
        return [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    if isinstance(docs, (str, bytes, dict)):
        raise TypeError(
            f"{name}: expected a 3-D array, a list of 2-D arrays or PackedDocs, "
            f"got {type(docs).__name__}"
        )
    if isinstance(docs, np.ndarray) or is_torch_tensor(docs):
        if docs.ndim == 2:
            raise ValueError(
                f"{name}: a 2-D array is one document; pass a list of documents "
                f"or a 3-D (n_docs, doc_len, d) array, got {describe(docs)}"
            )
        array = as_float32(docs, name, 3)
        return list(array)
    if not isinstance(docs, (list, tuple)):
        try:
            docs = list(docs)
        except TypeError:
            raise TypeError(f"{name}: expected documents, got {type(docs).__name__}") from None
    docs = tensor_views(docs)
    return [as_float32(d, f"{name}[{i}]", 2) for i, d in enumerate(docs)]


def _check_docs(arrays: list[np.ndarray], dim: int, name: str) -> None:
    for i, a in enumerate(arrays):
        if a.shape[0] == 0:
            raise ValueError(
                f"{name}[{i}]: has zero tokens ({describe(a)}); every document needs one"
            )
        if a.shape[1] != dim:
            raise ValueError(
                f"{name}[{i}]: dimension {a.shape[1]} ({describe(a)}) does not match "
                f"the index's {dim}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"{name}[{i}]: contains NaN or inf ({describe(a)})")


class Index:
    """A compressed, memory-mapped, updatable multi-vector index.

    Create one with :meth:`create` or open one with :meth:`open`; do not
    call the constructor.
    """

    def __init__(self, native: Any) -> None:
        self._native = native

    # -- lifecycle ------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Union[str, os.PathLike],
        dim: int,
        *,
        nbits: int = 2,
        n_centroids: Optional[int] = None,
        store: Optional[str] = None,
        seed: int = 0,
        codec: str = "pq",
        kmeans_iters: int = 4,
        max_points_per_centroid: int = 32,
    ) -> Index:
        """Create an empty index in the folder ``path`` (created if needed).

        Args:
            dim: embedding width.
            nbits: residual bits per dimension, 1, 2 or 4.
            n_centroids: k-means centroids; ``None``: PLAID's rule, the power
                of two at or below ``16 √tokens`` of the training data (or of
                ``expected_tokens`` given to :meth:`train`).
            store: keep full vectors for ``rerank="exact"``: ``"float16"``,
                ``"bfloat16"``, ``"int8"`` or ``"float32"``; ``None``: none.
            seed: seeds sampling and k-means (the index depends only on it).
            codec: how residuals are compressed, both in ``nbits`` per
                dimension: ``"pq"``, product quantization (one byte per
                ``8 / nbits`` dimensions, 256 learned codewords each), or
                ``"scalar"``, ColBERTv2's per-dimension buckets (what
                fast-plaid stores). ``"pq"`` reconstructs residuals closer,
                which is what ranking without a ``store`` rests on.
            kmeans_iters: Lloyd iterations.
            max_points_per_centroid: k-means samples at most this many tokens per centroid.
        """
        dim = _positive(dim, "dim", allow_none=False)
        if isinstance(nbits, bool) or nbits not in (1, 2, 4):
            raise ValueError(f"nbits: must be 1, 2 or 4, got {nbits!r}")
        n_centroids = _positive(n_centroids, "n_centroids")
        if store not in _STORES:
            raise ValueError(
                f"store: expected None, 'float16', 'bfloat16', 'int8' or 'float32', got {store!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
        if codec not in ("pq", "scalar"):
            raise ValueError(f"codec: expected 'pq' or 'scalar', got {codec!r}")
        native = _native.NativeIndex.create(
            os.fspath(path),
            dim,
            int(nbits),
            codec,
            n_centroids,
            store,
            int(seed),
            _positive(kmeans_iters, "kmeans_iters", allow_none=False),
            _positive(max_points_per_centroid, "max_points_per_centroid", allow_none=False),
        )
        return cls(native)

    @classmethod
    def open(
        cls, path: Union[str, os.PathLike], *, mmap: bool = True, verify: bool = True
    ) -> Index:
        """Open the index in the folder ``path``.

        Args:
            mmap: memory-map the files (``False``: read them into memory).
            verify: check every file's checksums first (reads each file once,
                without making the mapping resident). Sizes, headers and the
                manifest are always checked.
        """
        return cls(_native.NativeIndex.open(os.fspath(path), bool(mmap), bool(verify)))

    @classmethod
    def from_fast_plaid(
        cls,
        folder: Union[str, os.PathLike],
        path: Union[str, os.PathLike],
        *,
        store: Optional[str] = None,
        ids: Any = None,
    ) -> Index:
        """Convert the fast-plaid index in ``folder`` into a new index at ``path``.

        fast-plaid's centroids and residual buckets become this index's, and
        its documents (ids ``0..n-1`` in fast-plaid's order, or ``ids``) are
        added as fast-plaid reconstructs them (``normalize(centroid +
        residual)``). Needs neither torch nor fast-plaid. With ``store``, the
        stored "full" vectors are those reconstructions (fast-plaid keeps no
        originals).
        """
        from ._fast_plaid import from_fast_plaid

        return from_fast_plaid(cls, folder, path, store=store, ids=ids)

    def reload(self) -> bool:
        """Pick up commits made since this object's snapshot (another process,
        another ``Index`` object). Returns whether anything changed."""
        return self._native.reload()

    # -- writes ---------------------------------------------------------------

    def train(self, docs: Any, *, expected_tokens: Optional[int] = None) -> None:
        """Train centroids and residual buckets on a sample of documents
        (before the first :meth:`add`; otherwise the first ``add`` trains on
        its own batch). ``expected_tokens`` sizes the centroid count for the
        whole corpus by PLAID's rule."""
        arrays = _doc_list(docs, "docs")
        _check_docs(arrays, self.dim, "docs")
        self._native.train(arrays, self.dim, _positive(expected_tokens, "expected_tokens"))

    def add(self, ids: IdsLike, docs: Any, *, replace: bool = False) -> None:
        """Add documents as one commit.

        Args:
            ids: one id per document: ints (int64) or str, the index's one kind.
            docs: a 3-D ``(n_docs, doc_len, d)`` array, a list of 2-D
                ``(len_i, d)`` arrays or tensors, a :class:`maxsim.PackedDocs`,
                or any iterable of 2-D arrays.
            replace: an id already in the index replaces its document (in the
                same commit); without it that is a ``ValueError``.
        """
        arrays = _doc_list(docs, "docs")
        id_list = _ids(ids, "ids")
        if len(id_list) != len(arrays):
            raise ValueError(f"ids: {len(id_list)} ids for {len(arrays)} documents")
        _check_docs(arrays, self.dim, "docs")
        if arrays:
            self._native.add(id_list, arrays, self.dim, bool(replace))

    def delete(self, ids: IdsLike) -> int:
        """Delete documents by id (tombstones; :meth:`compact` reclaims the
        space). Unknown ids raise ``KeyError`` and nothing is deleted.
        Returns the number deleted."""
        return self._native.delete(_ids(ids, "ids"))

    def compact(self) -> None:
        """Merge all segments into one without the deleted documents."""
        self._native.compact()

    # -- reads ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._native)

    def ids(self) -> Union[np.ndarray, list[str]]:
        """Live ids in insertion order: an int64 array, or a list of str."""
        return self._native.ids()

    def get(self, ids: IdsLike) -> list[np.ndarray]:
        """The vectors of each document, ``(n_tokens, dim)`` float32: the
        stored full vectors (as stored: rounded to the store's type), or
        without a store the decompressed residuals. Unknown ids raise ``KeyError``."""
        return self._native.get(_ids(ids, "ids"))

    @property
    def dim(self) -> int:
        return self._native.dim

    @property
    def path(self) -> str:
        return os.fspath(self._native.path)

    def stats(self) -> dict:
        """Counts and sizes: ``n_docs``, ``n_tokens``, ``n_segments``,
        ``n_tombstones``, ``n_centroids``, ``nbits``, ``codec``,
        ``bytes_per_token`` (index files without the store), ``index_bytes``,
        ``store_bytes``, ..."""
        return self._native.stats()

    def search(
        self,
        queries: Any,
        k: int = 10,
        *,
        nprobe: Optional[int] = None,
        n_candidates: Optional[int] = None,
        subset: Optional[Iterable[Any]] = None,
        rerank: Optional[str] = "auto",
        exact: bool = False,
        return_certified: bool = False,
    ) -> tuple:
        """The ``k`` best documents of each query, best first.

        Args:
            queries: one ``(nq, d)`` query (2-D array or tensor), or a batch: a
                3-D array or a list of 2-D arrays.
            k: results per query.
            nprobe: centroids probed per query token (default 8).
            n_candidates: documents fully scored. Default: ``max(1024, 64 k)``
                when they are scored exactly, ``max(256, 16 k)`` on residuals.
            subset: ids to search among, for every query, or one list per
                query; unknown ids are ignored. Applied before any scoring.
            rerank: how the ``n_candidates`` are scored. ``"exact"``: MaxSim
                on the stored full vectors (needs ``store``), exhaustive
                search's scores; ``None``: MaxSim on the decompressed
                residuals (approximate scores); ``"auto"`` (default):
                ``"exact"`` when the index has a store, else ``None``.
                Recall@10 against exhaustive MaxSim at the defaults
                (``docs/index-benchmarks.md``, ``nbits=2``): with a float16
                store 1.000 on SciFact (1.24M tokens) and on a synthetic
                10M-token corpus; without one (product codec) 0.960 and
                0.711, bounded by the ``nbits`` codes (the synthetic
                tokens are mostly Gaussian noise): create the index with a
                ``store`` when recall matters.
            exact: widen ``nprobe`` until the result is certified to be the
                exhaustive top-k (needs a float ``store``; implies ``rerank``).
            return_certified: also return a bool per query: the result is
                provably the exhaustive top-k. Only exactly scored results can
                be certified: without ``rerank="exact"`` (or ``exact``) it is
                always False.

        Returns:
            ``(scores, ids)``: float32 and the ids (int64, or an object array of
            str), ``(k,)`` for one query or ``(n_queries, k)`` for a batch.
            Missing results (fewer than ``k`` documents) have score ``-inf``
            and id ``-1`` (``None`` for str ids). With ``return_certified``, a
            third item: bool, one per query.
        """
        k = as_k(k)
        nprobe = _positive(nprobe, "nprobe")
        n_candidates = _positive(n_candidates, "n_candidates")
        if not isinstance(rerank, (str, type(None))) or rerank not in _RERANK:
            raise ValueError(f"rerank: expected 'auto', 'exact' or None, got {rerank!r}")
        single, arrays = self._queries(queries)
        subsets = None
        if subset is not None:
            subset = list(subset) if not isinstance(subset, np.ndarray) else subset
            per_query = len(subset) > 0 and not isinstance(subset[0], (str, int, np.integer))
            if per_query:
                if len(subset) != len(arrays):
                    raise ValueError(f"subset: {len(subset)} lists for {len(arrays)} queries")
                subsets = [_ids(s, f"subset[{i}]") for i, s in enumerate(subset)]
            else:
                one = _ids(subset, "subset")
                subsets = [one] * len(arrays)
        certify = bool(return_certified) or bool(exact)
        scores, ids, certified = self._native.search(
            arrays,
            k,
            nprobe,
            n_candidates,
            True if exact else _RERANK[rerank],
            certify,
            bool(exact),
            subsets,
        )
        if isinstance(ids, list):
            rows = np.empty((len(ids), k), dtype=object)
            for r, row in enumerate(ids):
                rows[r, : len(row)] = row
            ids = rows
        if single:
            scores, ids, certified = scores[0], ids[0], certified[0]
        if return_certified:
            return scores, ids, certified
        return scores, ids

    def _queries(self, queries: Any) -> tuple[bool, list[np.ndarray]]:
        dim = self.dim
        if isinstance(queries, (list, tuple)):
            items = tensor_views(queries)
            arrays = [as_float32(q, f"queries[{i}]", 2) for i, q in enumerate(items)]
            single = False
        else:
            ndim = getattr(queries, "ndim", None)
            if ndim == 2:
                arrays, single = [as_float32(queries, "queries", 2)], True
            elif ndim == 3:
                arrays, single = list(as_float32(queries, "queries", 3)), False
            else:
                raise ValueError(
                    "queries: expected a 2-D (nq, d) query, a 3-D batch or a list of 2-D "
                    f"queries, got {describe(queries)}"
                )
        for i, q in enumerate(arrays):
            name = "queries" if single else f"queries[{i}]"
            if q.shape[0] == 0:
                raise ValueError(f"{name}: has zero tokens ({describe(q)}); a query needs one")
            if q.shape[1] != dim:
                raise ValueError(
                    f"{name}: dimension {q.shape[1]} ({describe(q)}) does not match "
                    f"the index's {dim}"
                )
            if not np.isfinite(q).all():
                raise ValueError(f"{name}: contains NaN or inf ({describe(q)})")
        return single, arrays

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"maxsim.Index({self.path!r}, dim={s['dim']}, docs={s['n_docs']}, "
            f"segments={s['n_segments']}, nbits={s['nbits']}, codec={s['codec']!r}, "
            f"store={s['store']!r})"
        )
