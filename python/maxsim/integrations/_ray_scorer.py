"""``MaxSimScorer``: score batches of (query, candidates) rows, for
``ray.data.Dataset.map_batches`` (see :mod:`maxsim.integrations.ray`).

It is a plain callable class: Ray Data builds one per actor (so the index
and the model load once per actor) and calls it on numpy batches; it also
runs without Ray, on the same dicts of arrays.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import numpy as np

import maxsim
from maxsim._convert import as_float32, describe

from ._common import check_count, load_colbert

__all__ = ["MaxSimScorer"]

Batch = dict[str, np.ndarray]


def assigned_cpus() -> Optional[int]:
    """CPUs Ray assigned to the current actor or task (at least 1), or None
    outside Ray (where maxsim keeps its own default)."""
    try:
        import ray
    except ImportError:
        return None
    if not ray.is_initialized():
        return None
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except AssertionError:  # Ray's answer in the driver, which is no actor or task
        return None
    return max(1, int(cpus)) if cpus else None


def _rows(column: Any, name: str) -> list[Any]:
    if isinstance(column, np.ndarray) or isinstance(column, (list, tuple)):
        return list(column)
    raise TypeError(f"{name}: expected a numpy column or a list of rows, got {describe(column)}")


def _is_text(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "UO"
    )


def _numeric(value: Any, name: str) -> Any:
    """An object-dtype array of numbers (numpy builds one from a list of
    equal-shape rows with ``dtype=object``) as float32; anything else as is."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim >= 1:
        try:
            return value.astype(np.float32)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name}: expected numeric vectors, got an object array of shape {value.shape} "
                f"holding {type(value.flat[0]).__name__ if value.size else 'nothing'}"
            ) from None
    return value


def _stack(rows: list[np.ndarray], dtype: Any) -> np.ndarray:
    """One 2-D array when every row has the same length, else an object array of rows."""
    if rows and all(len(r) == len(rows[0]) for r in rows):
        return np.stack(rows).astype(dtype, copy=False)
    out = np.empty(len(rows), dtype=object)
    out[:] = [np.asarray(r, dtype=dtype) for r in rows]
    return out


class MaxSimScorer:
    """Scores each row's candidates for its query, for ``Dataset.map_batches``.

    A row holds a query and its candidates; the batch comes back with a
    ``scores`` column (one float32 per candidate, in the candidates' order:
    a ``(batch, n)`` array when every row has ``n`` candidates) and, with
    ``top_k``, ``top_indices`` (positions into the candidates, best first,
    ties to the earlier candidate, ``-1`` past the row's candidates) and
    ``top_scores`` (``-inf`` there).

    What a row holds depends on what the scorer is built with:

    ========================  ===========================  ============================
    built with                ``query`` per row            ``candidates`` per row
    ========================  ===========================  ============================
    ``index=``                ``(nq, dim)`` vectors, or a  ids of the index (int or str)
                              text with ``model=`` too
    ``model=`` only           a text                       texts
    neither                   ``(nq, dim)`` vectors        ``(n, len, dim)`` vectors or
                                                           n ``(len_i, dim)`` arrays
    ========================  ===========================  ============================

    With an index, the candidates are scored on its stored full vectors
    (exact MaxSim) when it has a store, else on the decompressed residuals;
    an id missing from the index is a ValueError naming the row.

    Inputs are read, never written: Ray Data's ``zero_copy_batch=True``
    read-only batches are scored in place (C-contiguous float32 vectors are
    not copied).

    Args:
        index: the folder of a :class:`maxsim.Index`, opened once per scorer
            (memory-mapped: actors on one node share its pages).
        model: a ColBERT model folder or hub id (an ONNX export runs without
            torch), loaded once per scorer, or a loaded ``maxsim.models.ColBERT``.
        backend: the model's backend (``None``: from its folder).
        query_column, candidates_column, scores_column: column names.
        top_k: also return the ``top_k`` best of each row.
        keep_columns: input columns passed through (``True``: all, ``False``:
            none, or a list of names).
        num_threads: maxsim's (and ONNX Runtime's) threads in this process;
            ``None``: the CPUs Ray assigned to the actor, outside Ray maxsim's default.
        batch_size: texts per forward pass of the model.
        verify: check the index's checksums when it opens (reads it once).
    """

    def __init__(
        self,
        index: Optional[Union[str, os.PathLike[str]]] = None,
        *,
        model: Any = None,
        backend: Optional[str] = None,
        query_column: str = "query",
        candidates_column: str = "candidates",
        scores_column: str = "scores",
        top_k: Optional[int] = None,
        keep_columns: Union[bool, Sequence[str]] = True,
        num_threads: Optional[int] = None,
        batch_size: int = 32,
        verify: bool = True,
    ) -> None:
        self.top_k = check_count(top_k, "top_k", allow_none=True)
        self.batch_size = check_count(batch_size, "batch_size")
        self.query_column = query_column
        self.candidates_column = candidates_column
        self.scores_column = scores_column
        self.keep_columns = keep_columns
        threads = check_count(num_threads, "num_threads", allow_none=True) or assigned_cpus()
        if threads is not None:
            maxsim.set_num_threads(threads)
        self.index = None
        self.rerank: Optional[str] = None
        if index is not None:
            if isinstance(index, maxsim.Index):
                raise TypeError(
                    "index: pass the index's folder (each actor opens it, memory-mapped), "
                    "not an open maxsim.Index"
                )
            self.index = maxsim.Index.open(index, verify=verify)
            self.rerank = "exact" if self.index.stats()["store"] is not None else None
        self.model = None if model is None else load_colbert(model, backend=backend)

    # -- one batch ------------------------------------------------------------

    def __call__(self, batch: Batch) -> Batch:
        for column in (self.query_column, self.candidates_column):
            if column not in batch:
                raise KeyError(f"batch has no column {column!r} (it has {sorted(batch)})")
        queries = _rows(batch[self.query_column], self.query_column)
        candidates = _rows(batch[self.candidates_column], self.candidates_column)
        query_vectors = self._query_vectors(queries)
        if self.index is not None:
            scores = self._index_scores(query_vectors, candidates)
        elif self.model is not None:
            scores = self._text_scores(query_vectors, candidates)
        else:
            scores = self._vector_scores(query_vectors, candidates)
        out = self._kept(batch)
        out[self.scores_column] = _stack(scores, np.float32)
        if self.top_k is not None:
            out["top_indices"], out["top_scores"] = self._top(scores)
        return out

    def _kept(self, batch: Batch) -> Batch:
        if self.keep_columns is True:
            return dict(batch)
        if self.keep_columns is False:
            return {}
        missing = [c for c in self.keep_columns if c not in batch]
        if missing:
            raise KeyError(f"keep_columns: the batch has no column {missing[0]!r}")
        return {c: batch[c] for c in self.keep_columns}

    def _query_vectors(self, queries: list[Any]) -> list[np.ndarray]:
        name = self.query_column
        if queries and _is_text(queries[0]):
            if self.model is None:
                raise TypeError(f"{name}: text queries need a model= to encode them")
            texts = [str(q) for q in queries]
            return self.model.encode(texts, is_query=True, batch_size=self.batch_size)
        return [
            as_float32(_numeric(q, f"{name}[{r}]"), f"{name}[{r}]", 2)
            for r, q in enumerate(queries)
        ]

    def _index_scores(self, queries: list[np.ndarray], candidates: list[Any]) -> list[np.ndarray]:
        name = self.candidates_column
        id_rows = []
        for r, row in enumerate(candidates):
            ids = np.asarray(row)
            if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iuUO":
                raise ValueError(
                    f"{name}[{r}]: expected a non-empty 1-D array of index ids, got {describe(ids)}"
                )
            id_rows.append(ids.astype(np.int64) if ids.dtype.kind in "iu" else ids.tolist())
        k = max(len(ids) for ids in id_rows)
        # With n_candidates >= the subset, the index scores every listed id.
        top_scores, top_ids = self.index.search(
            queries, k=k, subset=id_rows, n_candidates=k, rerank=self.rerank
        )
        return [
            _align(ids, top_ids[r], top_scores[r], f"{name}[{r}]") for r, ids in enumerate(id_rows)
        ]

    def _text_scores(self, queries: list[np.ndarray], candidates: list[Any]) -> list[np.ndarray]:
        rows = []
        for r, row in enumerate(candidates):
            texts = [row] if _is_text(row) else list(row)
            if not texts or not all(_is_text(t) for t in texts):
                name = f"{self.candidates_column}[{r}]"
                raise TypeError(f"{name}: expected a non-empty list of texts")
            rows.append([str(t) for t in texts])
        flat = [t for row in rows for t in row]
        docs = self.model.encode(flat, is_query=False, batch_size=self.batch_size, packed=True)
        ends = np.cumsum([len(row) for row in rows])
        return [
            maxsim.scores(q, docs[end - len(row) : end]) for q, row, end in zip(queries, rows, ends)
        ]

    def _vector_scores(self, queries: list[np.ndarray], candidates: list[Any]) -> list[np.ndarray]:
        out = []
        for r, (q, row) in enumerate(zip(queries, candidates)):
            if isinstance(row, np.ndarray) and row.dtype == object:
                row = list(row)
            if _is_text(row) or (isinstance(row, list) and row and _is_text(row[0])):
                raise TypeError(f"{self.candidates_column}[{r}]: texts need a model=")
            out.append(maxsim.scores(q, row))
        return out

    def _top(self, scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        k = self.top_k
        indices = np.full((len(scores), k), -1, dtype=np.int64)
        values = np.full((len(scores), k), -np.inf, dtype=np.float32)
        for r, s in enumerate(scores):
            order = np.argsort(-s.astype(np.float64), kind="stable")[:k]
            indices[r, : len(order)] = order
            values[r, : len(order)] = s[order]
        return indices, values


def _align(ids: Any, found_ids: np.ndarray, found_scores: np.ndarray, name: str) -> np.ndarray:
    """The score of each of ``ids`` (a row's candidates) from the index's
    results ``found_ids`` / ``found_scores``; ValueError for an id it lacks."""
    present = ~np.isneginf(found_scores)
    found_ids, found_scores = found_ids[present], found_scores[present]
    if isinstance(ids, np.ndarray):  # int ids
        order = np.argsort(found_ids.astype(np.int64), kind="stable")
        sorted_ids = found_ids[order].astype(np.int64)
        pos = np.minimum(np.searchsorted(sorted_ids, ids), max(len(sorted_ids) - 1, 0))
        ok = sorted_ids[pos] == ids if len(sorted_ids) else np.zeros(len(ids), bool)
        if not ok.all():
            raise ValueError(f"{name}: id {int(ids[~ok][0])} is not in the index")
        return found_scores[order][pos].astype(np.float32)
    by_id = dict(zip(found_ids.tolist(), found_scores.tolist()))
    missing = next((i for i in ids if i not in by_id), None)
    if missing is not None:
        raise ValueError(f"{name}: id {missing!r} is not in the index")
    return np.array([by_id[i] for i in ids], dtype=np.float32)
