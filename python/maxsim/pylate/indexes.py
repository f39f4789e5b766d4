"""An end-to-end PyLate index with exact MaxSim search (PyLate's ``pylate.indexes``).

:class:`Index` implements PyLate's index interface and stores every
document's token embeddings packed in one array, float32 or float16; a search
scores the query against all of them (or a subset) with :mod:`maxsim`.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from maxsim import _scoring
from maxsim._convert import as_k, describe
from maxsim._packed import PackedDocs

from ._inputs import split_outer, token_matrix

__all__ = ["Index"]


def _topk_desc(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, best first, ties to the lower index."""
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
        threshold = scores[part].min()
        candidates = np.flatnonzero(scores >= threshold)
    else:
        candidates = np.arange(n)
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order[:k]]


class Index:
    """An end-to-end PyLate index that searches with exact MaxSim.

    Stores every document's token embeddings packed in one ``(total_tokens,
    d)`` array (float32, or float16 to halve memory) and scores queries
    against all of them (or a ``subset``) with :mod:`maxsim`: no HNSW, no
    quantisation, no candidate generation, no padding. Implements PyLate's
    index interface (``add_documents``, ``remove_documents``, ``__call__``,
    ``get_documents_embeddings``), with ``is_end_to_end_index = True``, so
    ``pylate.retrieve.ColBERT(index=Index())`` returns its results directly.

    Parameters
    ----------
    index_folder
        Folder to persist the index in (``index_folder/index_name``). ``None``
        (default) keeps it in memory only. When set, the index is saved after
        every ``add_documents``/``remove_documents`` and loaded on creation.
    index_name
        Sub-folder name inside ``index_folder``.
    override
        Start empty even if a saved index exists.
    dtype
        Storage dtype: ``"float32"`` (default) or ``"float16"``. Scores are
        always float32: float16 rows are widened exactly in registers, so they
        score as a float32 copy of the stored values would.
    chunk_tokens
        Accepted for compatibility and unused: float16 rows are no longer
        converted in chunks.

    Examples
    --------
    >>> import numpy as np
    >>> from maxsim.pylate import Index
    >>> rng = np.random.default_rng(0)
    >>> index = Index().add_documents(
    ...     ["a", "b"], [rng.random((5, 8), dtype=np.float32), rng.random((3, 8), dtype=np.float32)]
    ... )
    >>> [r["id"] for r in index(rng.random((1, 4, 8), dtype=np.float32), k=2)[0]]  # doctest: +SKIP
    """

    is_end_to_end_index = True

    def __init__(
        self,
        index_folder: str | os.PathLike[str] | None = None,
        index_name: str = "maxsim",
        override: bool = False,
        dtype: str | np.dtype = "float32",
        chunk_tokens: int = 1 << 20,
    ) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
            raise ValueError(f"dtype: expected 'float32' or 'float16', got {dtype!r}")
        del chunk_tokens  # unused, see the docstring
        self.path = (
            None if index_folder is None else os.path.join(os.fspath(index_folder), index_name)
        )
        self._ids: list[Any] = []
        self._positions: dict[Any, int] = {}
        self._lengths = np.zeros(0, dtype=np.int64)
        self._flat: np.ndarray | None = None  # (total_tokens, dim) self.dtype
        self._pending: list[np.ndarray] = []
        self._dim: int | None = None
        if self.path is not None and not override and os.path.exists(self._file("ids.pkl")):
            self._load()
        _register_with_pylate()

    # -- storage ----------------------------------------------------------

    def _file(self, name: str) -> str:
        assert self.path is not None
        return os.path.join(self.path, name)

    def _save(self) -> None:
        if self.path is None:
            return
        os.makedirs(self.path, exist_ok=True)
        flat = self._consolidated()
        np.save(self._file("embeddings.npy"), flat)
        np.save(self._file("lengths.npy"), self._lengths)
        with open(self._file("ids.pkl"), "wb") as f:
            pickle.dump({"ids": self._ids, "dim": self._dim, "dtype": self.dtype.str}, f)

    def _load(self) -> None:
        with open(self._file("ids.pkl"), "rb") as f:
            meta = pickle.load(f)
        self._ids = list(meta["ids"])
        self._positions = {doc_id: i for i, doc_id in enumerate(self._ids)}
        self._dim = meta["dim"]
        self._lengths = np.load(self._file("lengths.npy"))
        self._flat = np.load(self._file("embeddings.npy")).astype(self.dtype, copy=False)

    def _consolidated(self) -> np.ndarray:
        """The packed ``(total_tokens, dim)`` store (appends merged lazily)."""
        if self._pending:
            parts = ([] if self._flat is None else [self._flat]) + self._pending
            self._flat = np.concatenate(parts) if len(parts) > 1 else parts[0]
            self._pending = []
        if self._flat is None:
            self._flat = np.zeros((0, self._dim or 0), dtype=self.dtype)
        return self._flat

    def _offsets(self) -> np.ndarray:
        offsets = np.zeros(self._lengths.shape[0] + 1, dtype=np.int64)
        np.cumsum(self._lengths, out=offsets[1:])
        return offsets

    def __len__(self) -> int:
        return len(self._ids)

    # -- PyLate interface -------------------------------------------------

    def add_documents(
        self,
        documents_ids: Any,
        documents_embeddings: Any,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> Index:
        """Add documents; an id already present is replaced.

        Parameters
        ----------
        documents_ids
            One id or a sequence of ids (any hashable: str, int, ...).
        documents_embeddings
            Per document a ``(n_tokens, d)`` tensor/array/list, or a 3-D
            ``(n_docs, n_tokens, d)`` tensor/array (a 2-D one is one
            document). Zero-token documents are rejected.
        batch_size, kwargs
            Accepted for compatibility with PyLate's indexes; unused.

        Returns
        -------
        Index
            ``self``.
        """
        if isinstance(documents_ids, (str, bytes)) or not isinstance(documents_ids, Iterable):
            documents_ids = [documents_ids]
        documents_ids = list(documents_ids)
        docs = split_outer(documents_embeddings)
        arrays = [token_matrix(d, f"documents_embeddings[{i}]") for i, d in enumerate(docs)]
        if len(arrays) != len(documents_ids):
            raise ValueError(
                f"documents_ids has {len(documents_ids)} ids but documents_embeddings "
                f"has {len(arrays)} documents ({describe(documents_embeddings)})"
            )
        if len(set(documents_ids)) != len(documents_ids):
            raise ValueError("documents_ids: contains duplicate ids")
        for i, a in enumerate(arrays):
            if a.shape[0] == 0:
                raise ValueError(
                    f"documents_embeddings[{i}]: document has zero tokens (shape {a.shape})"
                )
            if self._dim is None:
                self._dim = a.shape[1]
            elif a.shape[1] != self._dim:
                raise ValueError(
                    f"documents_embeddings[{i}]: embedding size {a.shape[1]} does not "
                    f"match the index's {self._dim} (shape {a.shape})"
                )
        if not arrays:
            return self
        present = [doc_id for doc_id in documents_ids if doc_id in self._positions]
        if present:
            self._remove(present)
        start = len(self._ids)
        self._ids.extend(documents_ids)
        self._positions.update((doc_id, start + i) for i, doc_id in enumerate(documents_ids))
        self._lengths = np.concatenate(
            [self._lengths, np.array([a.shape[0] for a in arrays], dtype=np.int64)]
        )
        self._pending.append(np.concatenate(arrays).astype(self.dtype, copy=False))
        self._save()
        return self

    def remove_documents(self, documents_ids: Any) -> Index:
        """Remove documents by id.

        Raises
        ------
        KeyError
            If an id is not in the index (nothing is removed then).
        """
        if isinstance(documents_ids, (str, bytes)) or not isinstance(documents_ids, Iterable):
            documents_ids = [documents_ids]
        documents_ids = list(documents_ids)
        missing = [doc_id for doc_id in documents_ids if doc_id not in self._positions]
        if missing:
            raise KeyError(f"documents_ids not in the index: {missing[:10]!r}")
        self._remove(documents_ids)
        self._save()
        return self

    def update_documents(self, documents_ids: Any, documents_embeddings: Any) -> Index:
        """Replace (or add) documents; same arguments as :meth:`add_documents`."""
        return self.add_documents(documents_ids, documents_embeddings)

    def _remove(self, documents_ids: list[Any]) -> None:
        flat = self._consolidated()
        keep_docs = np.ones(len(self._ids), dtype=bool)
        keep_docs[[self._positions[doc_id] for doc_id in documents_ids]] = False
        self._flat = flat[np.repeat(keep_docs, self._lengths)]
        self._lengths = self._lengths[keep_docs]
        self._ids = [doc_id for doc_id, k in zip(self._ids, keep_docs) if k]
        self._positions = {doc_id: i for i, doc_id in enumerate(self._ids)}

    def get_documents_embeddings(
        self, documents_ids: Sequence[Sequence[Any]]
    ) -> list[list[np.ndarray]]:
        """Per group of ids, the stored ``(n_tokens, d)`` float32 embeddings (copies)."""
        flat = self._consolidated()
        offsets = self._offsets()
        out = []
        for group in documents_ids:
            rows = []
            for doc_id in group:
                p = self._positions[doc_id]
                rows.append(np.array(flat[offsets[p] : offsets[p + 1]], dtype=np.float32))
            out.append(rows)
        return out

    def __call__(
        self,
        queries_embeddings: Any,
        k: int = 10,
        subset: Sequence[Any] | Sequence[Sequence[Any]] | None = None,
        **kwargs: Any,
    ) -> list[list[dict[str, Any]]]:
        """Exact MaxSim top-``k`` documents for each query.

        Parameters
        ----------
        queries_embeddings
            Per query a ``(Lq, d)`` tensor/array/list, or a ``(Nq, Lq, d)``
            tensor/array (a 2-D input is one query). Tensors may be on any
            device; they are scored on the CPU.
        k
            Documents per query.
        subset
            Optional ids to search among: one list for every query, or one
            list per query. Unknown ids are ignored.
        kwargs
            Accepted for compatibility; unused.

        Returns
        -------
        list[list[dict]]
            Per query, ``{"id", "score"}`` dicts, best first, ties to the
            document added first.
        """
        k = as_k(k)
        if len(self._ids) == 0:
            raise ValueError("The index is empty, add documents before querying.")
        queries = [
            token_matrix(q, f"queries_embeddings[{i}]")
            for i, q in enumerate(split_outer(queries_embeddings))
        ]
        for i, q in enumerate(queries):
            if q.shape[1] != self._dim:
                raise ValueError(
                    f"queries_embeddings[{i}]: embedding size {q.shape[1]} does not "
                    f"match the index's {self._dim} (shape {q.shape})"
                )
        if subset is not None:
            per_query = len(subset) > 0 and isinstance(subset[0], (list, tuple, np.ndarray))
            if per_query and len(subset) != len(queries):
                raise ValueError(f"subset: {len(subset)} lists for {len(queries)} queries")
            return [
                self._search_subset(q, k, subset[i] if per_query else subset)
                for i, q in enumerate(queries)
            ]
        all_scores = self._score_all(queries)
        return [self._results(s, _topk_desc(s, k), None) for s in all_scores]

    # -- search -----------------------------------------------------------

    def _results(
        self, scores: np.ndarray, top: np.ndarray, positions: np.ndarray | None
    ) -> list[dict[str, Any]]:
        ids = self._ids
        pos = top if positions is None else positions[top]
        return [
            {"id": ids[p], "score": float(scores[t])} for p, t in zip(pos.tolist(), top.tolist())
        ]

    def _score_all(self, queries: list[np.ndarray]) -> list[np.ndarray]:
        """Per query, float32 scores against every document.

        float16 rows are scored as they are stored: maxsim widens them to
        float32 in registers, exactly, so the scores equal those of a float32
        copy, without converting or reading twice the bytes."""
        packed = PackedDocs(self._consolidated(), self._offsets())
        n_docs = len(self._ids)
        out = [np.zeros(n_docs, dtype=np.float32) for _ in queries]
        scored = [i for i, q in enumerate(queries) if q.shape[0]]  # no tokens: 0
        if scored:
            block = _scoring.scores_batch([queries[i] for i in scored], packed)
            for row, i in enumerate(scored):
                out[i] = block[row]
        return out

    def _search_subset(self, query: np.ndarray, k: int, ids: Iterable[Any]) -> list[dict[str, Any]]:
        positions = np.array(
            sorted({self._positions[i] for i in ids if i in self._positions}),
            dtype=np.int64,
        )
        if positions.size == 0:
            return []
        flat = self._consolidated()
        offsets = self._offsets()
        # Views of the stored rows (float32 or float16, scored as stored).
        docs = [flat[offsets[p] : offsets[p + 1]] for p in positions.tolist()]
        if query.shape[0]:
            scores = np.asarray(_scoring.scores(query, docs), dtype=np.float32)
        else:
            scores = np.zeros(len(docs), dtype=np.float32)
        return self._results(scores, _topk_desc(scores, k), positions)


def _register_with_pylate() -> None:
    """Make :class:`Index` a virtual subclass of PyLate's index base class.

    Only when PyLate is already imported: constructing an index never pays
    for importing PyLate.
    """
    module = sys.modules.get("pylate.indexes.base")
    base = getattr(module, "Base", None)
    if base is not None and not issubclass(Index, base):
        base.register(Index)
