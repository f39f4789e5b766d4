"""Exact Hamming search, rescoring with float vectors, and binary MaxSim.

Work runs in Rust with the GIL released, on the package's thread pool; results
are identical for any thread count.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .. import _native
from .._convert import as_float32, as_k, c_aligned, describe, to_numpy
from ._codes import as_codes, check_same_bytes, common_bytes


def hamming(a_codes: Any, b_codes: Any) -> np.ndarray:
    """All pairwise Hamming distances: ``(n_a, n_b)`` int32. A 1-D input is one code."""
    a = as_codes(a_codes, "a_codes", (1, 2))
    b = as_codes(b_codes, "b_codes", (1, 2))
    check_same_bytes(a, "a_codes", b, "b_codes")
    a, b = common_bytes([a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])])
    return _native.binary_hamming(a, b)


def search(query_codes: Any, db_codes: Any, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Exact Hamming k-nearest neighbours, as faiss ``IndexBinaryFlat.search``.

    Returns ``(distances int32, indices int64)``: ascending distance, ties to the
    lower index. ``query_codes`` is ``(n_bytes,)`` (1-D results) or
    ``(n_queries, n_bytes)`` (2-D results); ``db_codes`` is ``(n, n_bytes)``.
    ``k > n`` returns ``n`` results per query.
    """
    k = as_k(k)
    q = as_codes(query_codes, "query_codes", (1, 2))
    db = as_codes(db_codes, "db_codes", (2,))
    check_same_bytes(q, "query_codes", db, "db_codes")
    single = q.ndim == 1
    q2, db = common_bytes([q.reshape(1, -1) if single else q, db])
    dist, idx = _native.binary_search(q2, k, db_codes=db)
    return (dist[0], idx[0]) if single else (dist, idx)


def as_db_float(db_float: Any, n: int, dim: int) -> dict:
    """Keyword arguments for the native rescoring: float32, float16 or int8 storage."""
    array = to_numpy(db_float, "db_float")
    if array.dtype.name == "bfloat16":
        array = array.astype(np.float32)
    # By name: byte-swapped storage ('>f4') passes, and `c_aligned` swaps it.
    if array.dtype.name not in ("float32", "float16", "float64", "int8"):
        raise TypeError(
            f"db_float: expected float32, float16 or int8 document vectors (float64 and "
            f"bfloat16 are converted to float32), got {describe(array)}"
        )
    if array.ndim != 2 or array.shape != (n, dim):
        raise ValueError(
            f"db_float: expected shape ({n}, {dim}) (one row per database code, the query "
            f"dimension), got {describe(array)}"
        )
    array = c_aligned(array, dtype=np.float32 if array.dtype.name == "float64" else None)
    if array.dtype == np.float32:
        return {"db_f32": array}
    if array.dtype == np.float16:
        return {"db_f16": array.view(np.uint16)}
    return {"db_i8": array}


def rescore_query(query_float: Any, n_bytes: int, db_desc: str) -> Tuple[np.ndarray, bool]:
    q = as_float32(query_float, "query_float", (1, 2))
    dim = q.shape[-1]
    if dim == 0 or -(-dim // 8) != n_bytes:
        raise ValueError(
            f"query_float: dimension {dim} ({describe(q)}) needs codes of {-(-dim // 8)} bytes, "
            f"but {db_desc} has {n_bytes} bytes ({n_bytes * 8} bits) per code"
        )
    single = q.ndim == 1
    return (q.reshape(1, -1) if single else q), single


def search_rescore(
    query_float: Any,
    db_codes: Any,
    k: int,
    rescore_multiplier: int = 4,
    db_float: Any = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Hamming search for ``k * rescore_multiplier`` candidates, rescored with the float query.

    The query is quantized like the database (``ubinary``, or ``binary`` when
    ``db_codes`` is int8). Without ``db_float`` each candidate scores
    ``query · unpack(code)`` -- sentence-transformers' rescoring
    (``semantic_search_faiss(..., corpus_precision="ubinary", rescore=True)``).
    With ``db_float`` (``(n, dim)`` float32, float16 or int8 document vectors,
    row ``i`` for code ``i``) it is the exact dot product ``query · db_float[i]``.

    Returns ``(scores float32, indices int64)``, best first, ties to the lower
    index; ``min(k, n)`` per query, 1-D for a 1-D query. Sums are accumulated in
    float64 and rounded once.
    """
    k = as_k(k)
    mult = as_k(rescore_multiplier, "rescore_multiplier")
    db = as_codes(db_codes, "db_codes", (2,))
    q, single = rescore_query(query_float, db.shape[1], f"db_codes ({describe(db)})")
    extra = {} if db_float is None else as_db_float(db_float, db.shape[0], q.shape[1])
    flipped = db.dtype == np.int8
    scores, idx = _native.binary_search_rescore(
        q, k, mult, flipped=flipped, db_codes=db.view(np.uint8), **extra
    )
    return (scores[0], idx[0]) if single else (scores, idx)


class PackedCodes:
    """Variable-length binary documents back to back (the ColBERT "doclens" layout):
    ``flat`` is ``(total_tokens, n_bytes)`` uint8/int8 codes and document ``i`` is
    ``flat[offsets[i]:offsets[i + 1]]``. Any object with ``.flat`` and ``.offsets``
    (such as ``maxsim.PackedDocs``) is accepted in its place."""

    __slots__ = ("flat", "offsets")

    def __init__(self, flat: Any, offsets: Any) -> None:
        self.flat = as_codes(flat, "flat", (2,))
        offs = np.asarray(to_numpy(offsets, "offsets"))
        if offs.dtype.kind not in "iu" or offs.ndim != 1:
            raise TypeError(f"offsets: expected a 1-D integer array, got {describe(offs)}")
        self.offsets = c_aligned(offs, dtype=np.int64)

    @classmethod
    def from_lengths(cls, flat: Any, lengths: Any) -> PackedCodes:
        lens = np.asarray(to_numpy(lengths, "lengths"))
        if lens.dtype.kind not in "iu" or lens.ndim != 1:
            raise TypeError(f"lengths: expected a 1-D integer array, got {describe(lens)}")
        return cls(flat, np.concatenate([[0], np.cumsum(lens, dtype=np.int64)]))

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)


def _query_list(query_codes: Any) -> Tuple[list, bool]:
    """Query token codes as a list of 2-D arrays; True when a single query was given."""
    if isinstance(query_codes, (list, tuple)):
        if len(query_codes) == 0:
            return [], False
        return [as_codes(q, f"query_codes[{i}]", (2,)) for i, q in enumerate(query_codes)], False
    q = as_codes(query_codes, "query_codes", (2, 3))
    if q.ndim == 2:
        return [q], True
    return list(q), False


def maxsim_scores(query_codes: Any, docs_codes: Any, *, dim: Optional[int] = None) -> np.ndarray:
    """Binary MaxSim: per query token, the best document token by Hamming similarity
    ``d_bits - 2 * hamming`` (the dot product of the ±1 sign vectors), summed over
    the query tokens. Exact, int32.

    ``query_codes``: one query ``(nq, n_bytes)`` → ``(n_docs,)``; or a 3-D array /
    list of 2-D arrays → ``(n_queries, n_docs)``. ``docs_codes``: a fixed-length
    ``(n_docs, doc_len, n_bytes)`` array, a list of ``(len_i, n_bytes)`` arrays, or
    packed codes (an object with ``.flat`` ``(total_tokens, n_bytes)`` and
    ``.offsets`` ``(n_docs + 1,)``, e.g. :class:`PackedCodes`). ``dim`` is the
    number of real bits per code (default ``8 * n_bytes``); padding bits are zero
    in both codes, so it only shifts every token's similarity.
    """
    queries, single = _query_list(query_codes)
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer))):
        raise TypeError(f"dim: expected an integer, got {dim!r} ({type(dim).__name__})")
    dim = None if dim is None else int(dim)
    if hasattr(docs_codes, "flat") and hasattr(docs_codes, "offsets"):
        flat = as_codes(docs_codes.flat, "docs_codes.flat", (2,))
        offsets = to_numpy(docs_codes.offsets, "docs_codes.offsets")
        if offsets.dtype.kind not in "iu" or offsets.ndim != 1:
            raise TypeError(
                f"docs_codes.offsets: expected a 1-D integer array, got {describe(offsets)}"
            )
        offsets = c_aligned(offsets, dtype=np.int64)
        for i, q in enumerate(queries):
            check_same_bytes(q, f"query_codes[{i}]", flat, "docs_codes.flat")
        converted = common_bytes([*queries, flat])
        out = _native.binary_maxsim_packed(converted[:-1], converted[-1], offsets, dim=dim)
    elif isinstance(docs_codes, (list, tuple)):
        docs = [as_codes(d, f"docs_codes[{i}]", (2,)) for i, d in enumerate(docs_codes)]
        n_bytes = docs[0].shape[1] if docs else (queries[0].shape[1] if queries else 1)
        for i, d in enumerate(docs):
            if d.shape[0] == 0:
                raise ValueError(
                    f"docs_codes[{i}]: document {i} has zero tokens ({describe(d)}); "
                    "every document needs at least one token"
                )
            if d.shape[1] != n_bytes:
                check_same_bytes(d, f"docs_codes[{i}]", docs[0], "docs_codes[0]")
        for i, q in enumerate(queries):
            if docs:
                check_same_bytes(q, f"query_codes[{i}]", docs[0], "docs_codes[0]")
        converted = common_bytes([*queries, *docs])
        nq = len(queries)
        out = _native.binary_maxsim_list(converted[:nq], converted[nq:], n_bytes, dim=dim)
    else:
        docs = as_codes(docs_codes, "docs_codes", (3,))
        for i, q in enumerate(queries):
            check_same_bytes(q, f"query_codes[{i}]", docs, "docs_codes")
        converted = common_bytes([*queries, docs])
        out = _native.binary_maxsim_fixed(converted[:-1], converted[-1], dim=dim)
    return out[0] if single else out
