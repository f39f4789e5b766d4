"""MaxSim scoring: ``scores``, ``scores_batch``, ``topk``, grouped scoring, runtime settings.

Every scoring call of the package goes through this module: it turns the
documents into one of the native layer's layouts (fixed 3-D, packed, list;
float32 here, float16 / bfloat16 / int8 through :mod:`maxsim._reduced`) and
makes one native call.

MaxSim of a query ``Q`` ``(nq, d)`` and a document ``D`` ``(nd, d)`` is
``sum_i max_j <q_i, d_j>``: plain dot products, no normalisation.

Edge cases (documented in the README):

* an empty document collection (a ``(0, L, d)`` array or an empty list) gives an
  empty result; a query with zero tokens raises ``ValueError``;
* a query whose tokens are all masked out scores 0 against every document;
* a document with zero tokens raises ``ValueError`` naming its index;
* NaN/inf inputs never crash; NaN similarities are skipped by the max (a token
  whose similarities are all NaN contributes -inf), so results are unspecified
  for non-finite data. Pass ``check_finite=True`` to get a ``ValueError`` instead.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _native, _reduced
from ._convert import (
    as_bool_mask,
    as_float32,
    as_k,
    check_doc_list,
    describe,
    tensor_views,
    to_numpy,
)
from ._packed import PackedDocs

_FLOAT32 = np.dtype(np.float32)

DocsLike = Union[np.ndarray, Sequence[np.ndarray], PackedDocs, Any]

__all__ = [
    "scores",
    "scores_batch",
    "scores_grouped",
    "topk",
    "info",
    "set_num_threads",
    "get_num_threads",
    "set_kernel",
]


def _check_finite(array: np.ndarray, name: str) -> None:
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or inf ({describe(array)}) and check_finite=True")


class _Docs:
    """Documents normalised for the native layer."""

    __slots__ = ("kind", "arrays", "n_docs", "dim")

    def __init__(self, kind: str, arrays: tuple, n_docs: int, dim: Optional[int]) -> None:
        self.kind = kind
        self.arrays = arrays
        self.n_docs = n_docs
        self.dim = dim


def _normalise_docs(docs: DocsLike, check_finite: bool) -> _Docs:
    if isinstance(docs, (list, tuple)):
        docs = tensor_views(docs)  # a list of CPU tensors: their numpy views
        # Every entry already a C-contiguous float32 (len_i >= 1, d) array of one
        # width: nothing to convert or check per document (one native pass).
        width = _native.ready_f32_list(docs)
        if width is not None:
            if check_finite:
                for i, a in enumerate(docs):
                    _check_finite(a, f"docs[{i}]")
            return _Docs("list", tuple(docs), len(docs), width)
    reduced = _reduced.normalise_docs(docs, check_finite)  # float16 / bfloat16 / int8
    if reduced is not None:
        return reduced
    if isinstance(docs, PackedDocs):
        if check_finite:
            lo, hi = int(docs.offsets[0]), int(docs.offsets[-1])
            _check_finite(docs.flat[lo:hi], "docs")
        return _Docs("packed", (docs.flat, docs.offsets), len(docs), docs.dim)
    if isinstance(docs, (list, tuple)):
        arrays = [as_float32(d, f"docs[{i}]", 2) for i, d in enumerate(docs)]
        if check_finite:
            for i, a in enumerate(arrays):
                _check_finite(a, f"docs[{i}]")
        dim = check_doc_list(arrays)
        return _Docs("list", tuple(arrays), len(arrays), dim)
    if isinstance(docs, (str, bytes, dict)):
        raise TypeError(
            "docs: expected a 3-D array, a list of 2-D arrays or PackedDocs, "
            f"got {type(docs).__name__}"
        )
    array = as_float32(docs, "docs", 3) if _ndim(docs) == 3 else None
    if array is None:
        raise ValueError(
            "docs: expected a 3-D (n_docs, doc_len, d) array, a list of 2-D (len_i, d) arrays "
            f"or PackedDocs, got {describe(docs)}"
        )
    if check_finite:
        _check_finite(array, "docs")
    if array.shape[0] > 0 and array.shape[1] == 0:
        raise ValueError(f"docs: document 0 has zero tokens ({describe(array)})")
    return _Docs("fixed", (array,), array.shape[0], array.shape[2])


def _ndim(x: Any) -> int:
    if hasattr(x, "ndim"):
        return int(x.ndim)
    try:
        return np.ndim(x)
    except Exception:
        return -1


def _zero_floor(zero_floor: Any, n_docs: int) -> Optional[np.ndarray]:
    if zero_floor is None or zero_floor is False:
        return None
    if zero_floor is True:
        return np.ones(n_docs, dtype=bool)
    return as_bool_mask(zero_floor, "zero_floor", n_docs)


def _run(
    queries: list[np.ndarray],
    masks: Optional[list[np.ndarray]],
    docs: _Docs,
    zero_floor: Optional[np.ndarray],
) -> np.ndarray:
    n_queries = len(queries)
    if docs.n_docs == 0:
        return np.zeros((n_queries, 0), dtype=np.float32)
    dim = docs.dim
    for i, q in enumerate(queries):
        if q.shape[1] != dim:
            name = "query" if n_queries == 1 else f"queries[{i}]"
            raise ValueError(
                f"{name}: dimension {q.shape[1]} ({describe(q)}) does not match the documents' "
                f"dimension {dim}"
            )
    if isinstance(docs, _reduced.ReducedDocs):
        return _reduced.run(queries, masks, docs, zero_floor)
    if docs.kind == "fixed":
        return _native.maxsim_fixed(queries, docs.arrays[0], masks, zero_floor)
    if docs.kind == "packed":
        return _native.maxsim_packed(queries, docs.arrays[0], docs.arrays[1], masks, zero_floor)
    return _native.maxsim_list(queries, list(docs.arrays), dim, masks, zero_floor)


def _query(query: Any, name: str, check_finite: bool) -> np.ndarray:
    q = as_float32(query, name, 2)
    if q.shape[0] == 0:
        raise ValueError(
            f"{name}: has zero tokens ({describe(q)}); a query needs at least one token"
        )
    if q.shape[1] == 0:
        raise ValueError(f"{name}: dimension must be at least 1 ({describe(q)})")
    if check_finite:
        _check_finite(q, name)
    return q


def scores(
    query: Any,
    docs: DocsLike,
    *,
    query_mask: Any = None,
    zero_floor: Any = None,
    check_finite: bool = False,
) -> np.ndarray:
    """MaxSim of one query against every document.

    Args:
        query: ``(nq, d)`` float array (numpy or torch CPU).
        docs: a 3-D ``(n_docs, doc_len, d)`` array, a list/tuple of 2-D ``(len_i, d)``
            arrays, or a :class:`PackedDocs`.
        query_mask: optional bool ``(nq,)``; ``False`` tokens are skipped.
        zero_floor: optional bool or bool ``(n_docs,)``; for marked documents each query
            token's best similarity is floored at 0, as if the document had an extra all-zero
            token (PyLate's zero padding/masking). No padding is materialised.
        check_finite: raise ``ValueError`` on NaN/inf inputs (costs one pass over the data).

    Returns:
        float32 ``(n_docs,)``.
    """
    d = _normalise_docs(docs, check_finite)
    _reduced.check_query_dtype(query, d, "query")
    q = _query(query, "query", check_finite)
    masks = None if query_mask is None else [as_bool_mask(query_mask, "query_mask", q.shape[0])]
    return _run([q], masks, d, _zero_floor(zero_floor, d.n_docs))[0]


def _queries(queries: Any, check_finite: bool) -> list[np.ndarray]:
    if isinstance(queries, (list, tuple)):
        return [_query(q, f"queries[{i}]", check_finite) for i, q in enumerate(queries)]
    if _ndim(queries) != 3:
        raise ValueError(
            "queries: expected a 3-D (n_queries, nq, d) array or a list of 2-D arrays, "
            f"got {describe(queries)}"
        )
    batch = as_float32(queries, "queries", 3)
    if check_finite:
        _check_finite(batch, "queries")
    if batch.shape[1] == 0 and batch.shape[0] > 0:
        raise ValueError(f"queries: have zero tokens ({describe(batch)})")
    return list(batch)


def _queries_mask(queries_mask: Any, queries: list[np.ndarray]) -> Optional[list[np.ndarray]]:
    if queries_mask is None:
        return None
    if isinstance(queries_mask, (list, tuple)):
        if len(queries_mask) != len(queries):
            raise ValueError(f"queries_mask: {len(queries_mask)} masks for {len(queries)} queries")
        return [
            as_bool_mask(m, f"queries_mask[{i}]", q.shape[0])
            for i, (m, q) in enumerate(zip(queries_mask, queries))
        ]
    mask = to_numpy(queries_mask, "queries_mask", move=True)
    if mask.ndim != 2 or mask.shape[0] != len(queries):
        raise ValueError(f"queries_mask: expected shape ({len(queries)}, nq), got {describe(mask)}")
    return [
        as_bool_mask(m, f"queries_mask[{i}]", q.shape[0])
        for i, (m, q) in enumerate(zip(mask, queries))
    ]


def scores_batch(
    queries: Any,
    docs: DocsLike,
    *,
    queries_mask: Any = None,
    zero_floor: Any = None,
    check_finite: bool = False,
) -> np.ndarray:
    """MaxSim of every query against every document.

    Args:
        queries: a 3-D ``(n_queries, nq, d)`` array or a list of 2-D ``(nq_i, d)`` arrays.
        docs: as in :func:`scores`.
        queries_mask: optional bool ``(n_queries, nq)`` (or a list of ``(nq_i,)`` masks).
        zero_floor, check_finite: as in :func:`scores`.

    Returns:
        float32 ``(n_queries, n_docs)``. Row ``i`` equals ``scores(queries[i], docs)`` bitwise.
    """
    d = _normalise_docs(docs, check_finite)
    _reduced.check_queries_dtype(queries, d)
    qs = _queries(queries, check_finite)
    if not qs:
        return np.zeros((0, d.n_docs), dtype=np.float32)
    return _run(qs, _queries_mask(queries_mask, qs), d, _zero_floor(zero_floor, d.n_docs))


def topk(
    query: Any,
    docs: DocsLike,
    k: int,
    *,
    query_mask: Any = None,
    check_finite: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best documents by MaxSim, best first (faiss's (distances, indices) order).

    Ties go to the lower index; ``k > n_docs`` returns ``n_docs`` results.

    Args:
        query: ``(nq, d)`` for one query, or a 3-D array / list of 2-D arrays for a batch.
        docs: as in :func:`scores`.
        k: number of results, ``>= 1``.
        query_mask: ``(nq,)`` for one query, or as ``queries_mask`` of :func:`scores_batch`.

    Returns:
        ``(scores float32, indices int64)``: shape ``(k',)`` for one query, ``(n_queries, k')``
        for a batch, with ``k' = min(k, n_docs)``.
    """
    k = as_k(k)
    single = not isinstance(query, (list, tuple)) and _ndim(query) == 2
    if single:
        all_scores = scores(query, docs, query_mask=query_mask, check_finite=check_finite)[None, :]
    else:
        all_scores = scores_batch(query, docs, queries_mask=query_mask, check_finite=check_finite)
    top_scores, top_indices = _native.topk_rows(np.ascontiguousarray(all_scores), k)
    if single:
        return top_scores[0], top_indices[0]
    return top_scores, top_indices


def ready_doc_list(docs: Sequence[Any]) -> Optional[tuple[str, int]]:
    """``(dtype name, width)`` when ``docs`` is a list or tuple of arrays the
    kernels read as they are, else None.

    "As they are": every entry a C-contiguous, aligned numpy array in native
    byte order, of shape ``(len_i, width)`` with ``len_i >= 1`` and one
    ``width >= 1``, all of one dtype: float32 (``"float32"``), float16
    (``"float16"``) or ``ml_dtypes.bfloat16`` (``"bfloat16"``). One native pass
    over the list, with no Python work per entry. Such lists can be passed to
    :func:`scores_grouped` (and :func:`scores`) without conversion.
    """
    width = _native.ready_f32_list(docs)
    if width is not None:
        return ("float32", width)
    return _native.ready_half_list(docs)


def scores_grouped(
    queries: Sequence[np.ndarray],
    docs: Sequence[np.ndarray],
    group_offsets: Sequence[int],
    *,
    zero_floor: Optional[np.ndarray] = None,
) -> np.ndarray:
    """MaxSim of each query against its own group of documents, in one call.

    Query ``g`` is scored against ``docs[group_offsets[g]:group_offsets[g + 1]]``
    (PyLate's rerank, distillation and pairwise scores). Every group runs in
    one native call, groups and documents in parallel: separate calls with
    Python work between them let the thread pool fall asleep between groups.

    Args:
        queries: C-contiguous float32 ``(nq_g, d)`` arrays, one per group.
        docs: ``(len_i >= 1, d)`` arrays, every group's back to back, all of
            one dtype as :func:`ready_doc_list` accepts them: float32, or
            float16 / ``ml_dtypes.bfloat16``, which are read as stored and
            widened to float32 exactly (their scores equal those of a float32
            copy).
        group_offsets: ``len(queries) + 1`` non-decreasing integers from 0 to
            ``len(docs)``; an empty group scores nothing.
        zero_floor: optional bool ``(len(docs),)``: for marked documents each
            query token's best similarity is floored at 0 (PyLate's padding),
            as in :func:`scores`.

    Returns:
        float32 ``(len(docs),)``: document ``i``'s score against its group's query.

    Raises:
        ValueError: mismatched widths, a document without tokens, offsets
            that do not cover ``docs``, a ``zero_floor`` of the wrong length
            (the message names the argument and the index).
        TypeError: an array of another dtype or layout.
    """
    offsets = list(group_offsets)
    if not len(docs) or docs[0].dtype == _FLOAT32:
        return _native.maxsim_list_groups(queries, docs, offsets, zero_floor)
    bf16 = docs[0].dtype.name == "bfloat16"  # else float16; the native call checks each
    return _native.maxsim_half_list_groups(queries, docs, offsets, bf16, zero_floor)


def set_num_threads(n: int) -> None:
    """Sets the number of threads maxsim uses (default: ``MAXSIM_NUM_THREADS`` or all CPUs)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n: expected an integer >= 1, got {n!r}")
    _native.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads maxsim uses."""
    return int(_native.num_threads())


def set_kernel(name: str) -> None:
    """Forces a kernel (``scalar``, ``avx2``, ``avx512``, ``amx``, ``neon``) for the process.

    Raises ``RuntimeError`` if this CPU lacks it, ``ValueError`` for an unknown name.
    """
    _native.set_kernel(name)


def info() -> dict:
    """Package version, the kernel in force and what it runs for each kind of
    work (``kernel_paths``: float32, float16, bfloat16, int8, hamming,
    quantize), detected CPU features, the state of AMX (off by default until
    verified on real hardware) and the thread count."""
    from . import __version__

    return {
        "version": __version__,
        "kernel": _native.kernel(),
        "float_path": _native.float_path(),
        "best_kernel": _native.best_kernel(),
        "supported_kernels": list(_native.supported_kernels()),
        "cpu_features": list(_native.cpu_features()),
        "num_threads": get_num_threads(),
        "reduced_kernels": _reduced.paths(),
        "kernel_paths": dict(_native.kernel_paths()),
        "amx": _native.amx_status(),
        "machine": os.uname().machine if hasattr(os, "uname") else "",
    }
