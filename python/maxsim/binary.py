"""Binary embeddings: quantization, Hamming search, rescoring and binary MaxSim.

Codes are sentence-transformers' packed sign bits:

* ``ubinary`` (``uint8``): ``np.packbits(x > 0, axis=-1)`` -- most significant bit
  first, ``x <= 0`` and NaN give 0, the last byte zero-padded;
* ``binary`` (``int8``): the same bytes with the top bit flipped (``ubinary - 128``).

Every function accepts either kind (and torch CPU tensors). Hamming distances do
not depend on which: two ``int8`` inputs are compared as they are, and when the
two kinds are mixed the ``int8`` side is converted. Distances are
``popcount(a ^ b)`` over all code bits, exactly as faiss ``IndexBinaryFlat``.

Quick tour::

    from maxsim import binary
    codes = binary.quantize(emb)                      # (n, d/8) uint8
    dist, ids = binary.search(binary.quantize(q), codes, k=10)
    scores, ids = binary.search_rescore(q, codes, k=10, rescore_multiplier=4)
    index = binary.BinaryIndex(384); index.add(emb); index.save("idx.mxb")

Work runs in Rust with the GIL released, on the package's thread pool
(``maxsim.set_num_threads``); results are identical for any thread count.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._convert import c_aligned

__all__ = [
    "BinaryIndex",
    "PackedCodes",
    "hamming",
    "maxsim_scores",
    "quantize",
    "search",
    "search_rescore",
    "unpack",
]

_GROUP = 8  # codes per interleaved group (see docs/binary.md)


# ----------------------------------------------------------------------------- input helpers


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None:
        return f"a {type(x).__name__}"
    return f"shape {tuple(shape)} dtype {dtype}"


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if _is_torch(x):
        if x.device.type != "cpu":
            raise TypeError(
                f"{name}: torch tensor on device {x.device} ({_describe(x)}); "
                "move it to the CPU with .cpu() first"
            )
        x = x.detach()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()  # numpy has no bfloat16; widening is exact
        if x.is_conj() or x.is_neg():
            x = x.resolve_conj().resolve_neg()
        return x.numpy()
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: cannot be read as an array ({type(x).__name__}): {exc}") from None


def _as_codes(x: Any, name: str, ndims: Tuple[int, ...] = (2,)) -> np.ndarray:
    """A C-contiguous uint8 or int8 code array with one of ``ndims`` dimensions."""
    array = _to_numpy(x, name)
    if array.dtype not in (np.uint8, np.int8):
        raise TypeError(
            f"{name}: expected packed binary codes of dtype uint8 (ubinary) or int8 (binary), "
            f"got {_describe(array)}"
        )
    if array.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name}: expected a {want} array of codes, got {_describe(array)}")
    if array.shape[-1] == 0:
        raise ValueError(f"{name}: codes must have at least one byte, got {_describe(array)}")
    return np.ascontiguousarray(array)


def _to_ubinary(codes: np.ndarray) -> np.ndarray:
    """int8 ``binary`` codes as ``ubinary`` bytes (a copy); uint8 unchanged."""
    if codes.dtype == np.int8:
        return np.bitwise_xor(codes.view(np.uint8), np.uint8(0x80))
    return codes


def _common_bytes(arrays: Sequence[np.ndarray]) -> list:
    """Views every array as uint8 so that Hamming distances are preserved: all
    int8 → compared as they are; mixed → int8 ones converted to ubinary."""
    if all(a.dtype == np.int8 for a in arrays):
        return [a.view(np.uint8) for a in arrays]
    return [_to_ubinary(a) for a in arrays]


def _check_same_bytes(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{a_name}: codes of {a.shape[-1]} bytes ({a.shape[-1] * 8} bits; {_describe(a)}) "
            f"do not match {b_name}: {b.shape[-1]} bytes ({b.shape[-1] * 8} bits; {_describe(b)})"
        )


def _as_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer >= 1, got {k!r} ({type(k).__name__})")
    if k < 1:
        raise ValueError(f"{name}: must be at least 1, got {k}")
    return int(k)


def _as_position(value: Any, name: str, upper: int) -> int:
    """An integer in ``[0, upper]``, else ValueError naming ``name``."""
    is_integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not is_integer or not 0 <= value <= upper:
        raise ValueError(f"{name}: expected an integer in [0, {upper}], got {value!r}")
    return int(value)


def _as_float_array(x: Any, name: str, ndims: Tuple[int, ...]) -> np.ndarray:
    """A float array (float16/32/64 kept as they are, bfloat16 widened)."""
    array = _to_numpy(x, name)
    if array.dtype.name == "bfloat16":  # ml_dtypes
        array = array.astype(np.float32)
    if array.dtype.kind != "f":
        raise TypeError(
            f"{name}: expected floating-point embeddings (float32, float64, float16, bfloat16), "
            f"got {_describe(array)}"
        )
    if array.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name}: expected a {want} array, got {_describe(array)}")
    return array


def _as_float32(x: Any, name: str, ndims: Tuple[int, ...]) -> np.ndarray:
    array = _as_float_array(x, name, ndims)
    return c_aligned(array, dtype=np.float32)


# ----------------------------------------------------------------------------- quantization


def quantize(x: Any, precision: str = "ubinary") -> np.ndarray:
    """Sign-quantizes float embeddings to packed bits along the last axis.

    Bit-identical to sentence-transformers' ``quantize_embeddings``:
    ``precision="ubinary"`` gives ``np.packbits(x > 0, axis=-1)`` (uint8) and
    ``precision="binary"`` the same bytes with the top bit flipped, as int8.
    ``x`` is float32/float64/float16/bfloat16, any number of dimensions >= 1
    (``(d,)``, ``(n, d)``, ``(n_docs, doc_len, d)``, ...); the result has shape
    ``(*x.shape[:-1], ceil(d / 8))``. NaN and ``-0.0`` give 0 bits.
    """
    if precision not in ("ubinary", "binary"):
        raise ValueError(f"precision: expected 'ubinary' or 'binary', got {precision!r}")
    array = _as_float_array(x, "x", tuple(range(1, 33)))
    dim = array.shape[-1]
    if dim == 0:
        raise ValueError(f"x: the last dimension must be at least 1, got {_describe(array)}")
    rows = c_aligned(array).reshape(-1, dim)
    if rows.dtype == np.float32:
        codes = _native.binary_quantize_f32(rows)
    elif rows.dtype == np.float64:
        codes = _native.binary_quantize_f64(rows)
    elif rows.dtype == np.float16:
        codes = _native.binary_quantize_f16(rows.view(np.uint16))
    else:  # longdouble and other exotic floats: x > 0 is exact in numpy
        codes = np.packbits(rows > 0, axis=-1)
    codes = codes.reshape(*array.shape[:-1], codes.shape[-1])
    if precision == "binary":
        return np.bitwise_xor(codes, np.uint8(0x80)).view(np.int8)
    return codes


def unpack(codes: Any, dim: Optional[int] = None) -> np.ndarray:
    """Reverses :func:`quantize`: ``(..., n_bytes)`` codes → ``(..., dim)`` 0/1 uint8.

    ``dim`` defaults to ``8 * n_bytes`` and must satisfy
    ``8 * (n_bytes - 1) < dim <= 8 * n_bytes``. int8 (``binary``) codes are
    converted back to their bits first.
    """
    array = _as_codes(codes, "codes", tuple(range(1, 33)))
    n_bytes = array.shape[-1]
    if dim is None:
        dim = 8 * n_bytes
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim: expected an integer, got {dim!r} ({type(dim).__name__})")
    if not 8 * (n_bytes - 1) < dim <= 8 * n_bytes:
        raise ValueError(
            f"dim: {dim} does not fit codes of {n_bytes} bytes ({_describe(array)}); "
            f"needs {8 * (n_bytes - 1)} < dim <= {8 * n_bytes}"
        )
    return np.unpackbits(_to_ubinary(array), axis=-1, count=int(dim))


# ----------------------------------------------------------------------------- distances and search


def hamming(a_codes: Any, b_codes: Any) -> np.ndarray:
    """All pairwise Hamming distances: ``(n_a, n_b)`` int32. A 1-D input is one code."""
    a = _as_codes(a_codes, "a_codes", (1, 2))
    b = _as_codes(b_codes, "b_codes", (1, 2))
    _check_same_bytes(a, "a_codes", b, "b_codes")
    a, b = _common_bytes([a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])])
    return _native.binary_hamming(a, b)


def search(query_codes: Any, db_codes: Any, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Exact Hamming k-nearest neighbours, as faiss ``IndexBinaryFlat.search``.

    Returns ``(distances int32, indices int64)``: ascending distance, ties to the
    lower index. ``query_codes`` is ``(n_bytes,)`` (1-D results) or
    ``(n_queries, n_bytes)`` (2-D results); ``db_codes`` is ``(n, n_bytes)``.
    ``k > n`` returns ``n`` results per query.
    """
    k = _as_k(k)
    q = _as_codes(query_codes, "query_codes", (1, 2))
    db = _as_codes(db_codes, "db_codes", (2,))
    _check_same_bytes(q, "query_codes", db, "db_codes")
    single = q.ndim == 1
    q2, db = _common_bytes([q.reshape(1, -1) if single else q, db])
    dist, idx = _native.binary_search(q2, k, db_codes=db)
    return (dist[0], idx[0]) if single else (dist, idx)


def _as_db_float(db_float: Any, n: int, dim: int) -> dict:
    """Keyword arguments for the native rescoring: float32, float16 or int8 storage."""
    array = _to_numpy(db_float, "db_float")
    if array.dtype.name == "bfloat16":
        array = array.astype(np.float32)
    # By name: byte-swapped storage ('>f4') passes, and `c_aligned` swaps it.
    if array.dtype.name not in ("float32", "float16", "float64", "int8"):
        raise TypeError(
            f"db_float: expected float32, float16 or int8 document vectors (float64 and "
            f"bfloat16 are converted to float32), got {_describe(array)}"
        )
    if array.ndim != 2 or array.shape != (n, dim):
        raise ValueError(
            f"db_float: expected shape ({n}, {dim}) (one row per database code, the query "
            f"dimension), got {_describe(array)}"
        )
    array = c_aligned(array, dtype=np.float32 if array.dtype.name == "float64" else None)
    if array.dtype == np.float32:
        return {"db_f32": array}
    if array.dtype == np.float16:
        return {"db_f16": array.view(np.uint16)}
    return {"db_i8": array}


def _rescore_query(query_float: Any, n_bytes: int, db_desc: str) -> Tuple[np.ndarray, bool]:
    q = _as_float32(query_float, "query_float", (1, 2))
    dim = q.shape[-1]
    if dim == 0 or -(-dim // 8) != n_bytes:
        raise ValueError(
            f"query_float: dimension {dim} ({_describe(q)}) needs codes of {-(-dim // 8)} bytes, "
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
    k = _as_k(k)
    mult = _as_k(rescore_multiplier, "rescore_multiplier")
    db = _as_codes(db_codes, "db_codes", (2,))
    q, single = _rescore_query(query_float, db.shape[1], f"db_codes ({_describe(db)})")
    extra = {} if db_float is None else _as_db_float(db_float, db.shape[0], q.shape[1])
    flipped = db.dtype == np.int8
    scores, idx = _native.binary_search_rescore(
        q, k, mult, flipped=flipped, db_codes=db.view(np.uint8), **extra
    )
    return (scores[0], idx[0]) if single else (scores, idx)


# ----------------------------------------------------------------------------- binary MaxSim


class PackedCodes:
    """Variable-length binary documents back to back (the ColBERT "doclens" layout):
    ``flat`` is ``(total_tokens, n_bytes)`` uint8/int8 codes and document ``i`` is
    ``flat[offsets[i]:offsets[i + 1]]``. Any object with ``.flat`` and ``.offsets``
    (such as ``maxsim.PackedDocs``) is accepted in its place."""

    __slots__ = ("flat", "offsets")

    def __init__(self, flat: Any, offsets: Any) -> None:
        self.flat = _as_codes(flat, "flat", (2,))
        offs = np.asarray(_to_numpy(offsets, "offsets"))
        if offs.dtype.kind not in "iu" or offs.ndim != 1:
            raise TypeError(f"offsets: expected a 1-D integer array, got {_describe(offs)}")
        self.offsets = c_aligned(offs, dtype=np.int64)

    @classmethod
    def from_lengths(cls, flat: Any, lengths: Any) -> PackedCodes:
        lens = np.asarray(_to_numpy(lengths, "lengths"))
        if lens.dtype.kind not in "iu" or lens.ndim != 1:
            raise TypeError(f"lengths: expected a 1-D integer array, got {_describe(lens)}")
        return cls(flat, np.concatenate([[0], np.cumsum(lens, dtype=np.int64)]))

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)


def _query_list(query_codes: Any) -> Tuple[list, bool]:
    """Query token codes as a list of 2-D arrays; True when a single query was given."""
    if isinstance(query_codes, (list, tuple)):
        if len(query_codes) == 0:
            return [], False
        return [_as_codes(q, f"query_codes[{i}]", (2,)) for i, q in enumerate(query_codes)], False
    q = _as_codes(query_codes, "query_codes", (2, 3))
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
        flat = _as_codes(docs_codes.flat, "docs_codes.flat", (2,))
        offsets = _to_numpy(docs_codes.offsets, "docs_codes.offsets")
        if offsets.dtype.kind not in "iu" or offsets.ndim != 1:
            raise TypeError(
                f"docs_codes.offsets: expected a 1-D integer array, got {_describe(offsets)}"
            )
        offsets = c_aligned(offsets, dtype=np.int64)
        for i, q in enumerate(queries):
            _check_same_bytes(q, f"query_codes[{i}]", flat, "docs_codes.flat")
        converted = _common_bytes([*queries, flat])
        out = _native.binary_maxsim_packed(converted[:-1], converted[-1], offsets, dim=dim)
    elif isinstance(docs_codes, (list, tuple)):
        docs = [_as_codes(d, f"docs_codes[{i}]", (2,)) for i, d in enumerate(docs_codes)]
        n_bytes = docs[0].shape[1] if docs else (queries[0].shape[1] if queries else 1)
        for i, d in enumerate(docs):
            if d.shape[0] == 0:
                raise ValueError(
                    f"docs_codes[{i}]: document {i} has zero tokens ({_describe(d)}); "
                    "every document needs at least one token"
                )
            if d.shape[1] != n_bytes:
                _check_same_bytes(d, f"docs_codes[{i}]", docs[0], "docs_codes[0]")
        for i, q in enumerate(queries):
            if docs:
                _check_same_bytes(q, f"query_codes[{i}]", docs[0], "docs_codes[0]")
        converted = _common_bytes([*queries, *docs])
        nq = len(queries)
        out = _native.binary_maxsim_list(converted[:nq], converted[nq:], n_bytes, dim=dim)
    else:
        docs = _as_codes(docs_codes, "docs_codes", (3,))
        for i, q in enumerate(queries):
            _check_same_bytes(q, f"query_codes[{i}]", docs, "docs_codes")
        converted = _common_bytes([*queries, docs])
        out = _native.binary_maxsim_fixed(converted[:-1], converted[-1], dim=dim)
    return out[0] if single else out


# ----------------------------------------------------------------------------- BinaryIndex

_MAGIC = b"MXSMBIN1"
_VERSION = 1
_HEADER = struct.Struct("<8sIIQIIQII16x")  # 64 bytes, see docs/binary.md
assert _HEADER.size == 64


class BinaryIndex:
    """An exact Hamming index over ``dim``-bit codes (``ceil(dim / 8)`` bytes each).

    Codes are kept in the kernels' interleaved layout (groups of 8 codes, word by
    word), so searches read them with no conversion. ``save`` writes a small
    documented file (docs/binary.md); ``load`` memory-maps it (read-only; the
    first ``add`` after a load copies it into memory). Indices are insertion order.
    """

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim: expected an integer >= 1 (bits per code), got {dim!r}")
        self.dim = int(dim)
        self.n_bytes = -(-self.dim // 8)
        self._words_per_code = -(-self.n_bytes // 8)
        self._n = 0
        self._words = np.zeros(0, dtype=np.uint64)  # capacity, whole groups

    # -- size and layout
    def __len__(self) -> int:
        return self._n

    @property
    def ntotal(self) -> int:
        """Number of codes (faiss's name)."""
        return self._n

    def _group_words(self) -> int:
        return self._words_per_code * _GROUP

    def _used_words(self) -> int:
        return -(-self._n // _GROUP) * self._group_words()

    def _view(self) -> np.ndarray:
        return self._words[: self._used_words()]

    def codes(self) -> np.ndarray:
        """All codes, ``(ntotal, n_bytes)`` uint8 ubinary, in insertion order (a copy)."""
        return self._deinterleave(self._view(), self._n)

    def _deinterleave(self, words: np.ndarray, n: int) -> np.ndarray:
        w = self._words_per_code
        groups = words.reshape(-1, w, _GROUP).transpose(0, 2, 1)
        as_bytes = np.ascontiguousarray(groups).astype("<u8", copy=False).view(np.uint8)
        return np.ascontiguousarray(as_bytes.reshape(-1, w * 8)[:n, : self.n_bytes])

    def reconstruct_n(self, i0: int = 0, ni: Optional[int] = None) -> np.ndarray:
        """Codes ``i0 .. i0 + ni`` (default: to the end), ``(ni, n_bytes)`` uint8
        ubinary, as faiss's ``reconstruct_n``. Reads only their groups."""
        i0 = _as_position(i0, "i0", self._n)
        ni = self._n - i0 if ni is None else _as_position(ni, "ni", self._n - i0)
        if ni == 0:
            return np.zeros((0, self.n_bytes), dtype=np.uint8)
        first, last = i0 // _GROUP, (i0 + ni - 1) // _GROUP
        gw = self._group_words()
        groups = self._words[first * gw : (last + 1) * gw]
        skip = i0 - first * _GROUP
        return self._deinterleave(groups, skip + ni)[skip:]

    def reconstruct(self, key: int) -> np.ndarray:
        """Code ``key`` as ``(n_bytes,)`` uint8 ubinary (faiss's ``reconstruct``)."""
        if self._n == 0 or not isinstance(key, (int, np.integer)) or not 0 <= key < self._n:
            raise ValueError(f"key: expected an index in [0, {self._n}), got {key!r}")
        return self.reconstruct_n(int(key), 1)[0]

    def reset(self) -> None:
        """Removes every code (faiss's ``reset``)."""
        self._n = 0
        self._words = np.zeros(0, dtype=np.uint64)

    def remove_ids(self, ids: Any) -> int:
        """Removes the codes at indices ``ids`` (1-D integers; repeats and
        indices outside ``[0, ntotal)`` are ignored) and returns how many were
        removed. The remaining codes keep their insertion order and are
        renumbered densely, as faiss's ``IndexBinaryFlat.remove_ids`` does."""
        array = _to_numpy(ids, "ids")
        if array.dtype.kind not in "iu" or array.ndim != 1:
            raise TypeError(f"ids: expected a 1-D integer array, got {_describe(array)}")
        inside = array[(array >= 0) & (array < self._n)].astype(np.int64)
        keep = np.ones(self._n, dtype=bool)
        keep[inside] = False
        removed = self._n - int(keep.sum())
        if removed:
            kept = self.codes()[keep]
            self.reset()
            self.add(kept)
        return removed

    # -- adding
    def _as_index_codes(self, x: Any, name: str) -> np.ndarray:
        array = _to_numpy(x, name)
        if array.dtype in (np.uint8, np.int8):
            codes = _as_codes(array, name, (1, 2))
            if codes.shape[-1] != self.n_bytes:
                raise ValueError(
                    f"{name}: codes of {codes.shape[-1]} bytes ({_describe(codes)}) do not match "
                    f"the index dimension {self.dim} ({self.n_bytes} bytes per code)"
                )
            return _to_ubinary(codes).reshape(-1, self.n_bytes)
        if array.dtype.kind == "f" or array.dtype.name == "bfloat16":
            if array.ndim not in (1, 2) or array.shape[-1] != self.dim:
                raise ValueError(
                    f"{name}: float vectors must be ({self.dim},) or (n, {self.dim}) for an index "
                    f"of dimension {self.dim}, got {_describe(array)}"
                )
            return quantize(array.reshape(-1, self.dim))
        raise TypeError(
            f"{name}: expected uint8/int8 codes or float vectors, got {_describe(array)}"
        )

    def add(self, x: Any) -> None:
        """Appends codes (``(n, n_bytes)`` uint8/int8) or float vectors (``(n, dim)``,
        quantized with :func:`quantize`). 1-D input adds one entry."""
        new = self._as_index_codes(x, "x")
        if new.shape[0] == 0:
            return
        gw = self._group_words()
        start_group = self._n // _GROUP
        partial = self._n % _GROUP
        if partial:
            tail_words = self._words[start_group * gw : (start_group + 1) * gw]
            new = np.concatenate([self._deinterleave(tail_words, partial), new])
        block = _native.binary_interleave(np.ascontiguousarray(new))
        needed = start_group * gw + block.shape[0]
        if needed > self._words.shape[0] or not self._words.flags.writeable:
            capacity = max(
                needed, 2 * self._words.shape[0] if self._words.flags.writeable else needed
            )
            grown = np.zeros(capacity, dtype=np.uint64)
            grown[: start_group * gw] = self._words[: start_group * gw]
            self._words = grown
        self._words[start_group * gw : needed] = block
        self._n = start_group * _GROUP + new.shape[0]

    # -- searching
    def _query_codes(self, query: Any) -> Tuple[np.ndarray, bool]:
        codes = self._as_index_codes(query, "query")
        array = _to_numpy(query, "query")
        return np.ascontiguousarray(codes), array.ndim == 1

    def search(self, query: Any, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """Exact Hamming k-NN of query codes or float vectors (quantized), as :func:`search`."""
        k = _as_k(k)
        q, single = self._query_codes(query)
        dist, idx = _native.binary_search(
            q, k, db_words=self._view(), n=self._n, n_bytes=self.n_bytes
        )
        return (dist[0], idx[0]) if single else (dist, idx)

    def search_rescore(
        self, query_float: Any, k: int, rescore_multiplier: int = 4, db_float: Any = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """As :func:`search_rescore` over the index's codes; ``db_float`` rows follow
        insertion order."""
        k = _as_k(k)
        mult = _as_k(rescore_multiplier, "rescore_multiplier")
        q, single = _rescore_query(query_float, self.n_bytes, f"the index (dim {self.dim})")
        if q.shape[1] != self.dim:
            raise ValueError(
                f"query_float: dimension {q.shape[1]} does not match the index dimension {self.dim}"
            )
        extra = {} if db_float is None else _as_db_float(db_float, self._n, self.dim)
        scores, idx = _native.binary_search_rescore(
            q, k, mult, db_words=self._view(), n=self._n, n_bytes=self.n_bytes, **extra
        )
        return (scores[0], idx[0]) if single else (scores, idx)

    # -- persistence
    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the index (header + interleaved little-endian words; docs/binary.md)."""
        payload = np.ascontiguousarray(self._view()).astype("<u8", copy=False)
        payload_bytes = memoryview(payload).cast("B")
        head = _HEADER.pack(
            _MAGIC,
            _VERSION,
            self.dim,
            self._n,
            self.n_bytes,
            _GROUP,
            payload.shape[0],
            zlib.crc32(payload_bytes),
            0,
        )
        head = head[:44] + struct.pack("<I", zlib.crc32(head[:44])) + head[48:]
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "wb") as f:
            f.write(head)
            f.write(payload_bytes)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], *, verify: bool = True) -> BinaryIndex:
        """Memory-maps an index written by :meth:`save`.

        The header is always checked (magic, version, checksum, sizes against the
        file length); with ``verify=True`` the payload checksum is checked too
        (one sequential read). Any mismatch raises ``ValueError``.
        """
        path = os.fspath(path)
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(_HEADER.size)
        if len(head) < _HEADER.size:
            raise ValueError(f"{path}: truncated: {size} bytes, shorter than the 64-byte header")
        magic, version, dim, n, n_bytes, group, n_words, payload_crc, head_crc = _HEADER.unpack(
            head
        )
        if magic != _MAGIC:
            raise ValueError(
                f"{path}: not a maxsim binary index (magic {magic!r}, expected {_MAGIC!r})"
            )
        if version != _VERSION:
            raise ValueError(
                f"{path}: unsupported version {version} (this maxsim reads {_VERSION})"
            )
        if zlib.crc32(head[:44]) != head_crc:
            raise ValueError(f"{path}: corrupted header (checksum mismatch)")
        if dim < 1 or n_bytes != -(-dim // 8) or group != _GROUP:
            raise ValueError(
                f"{path}: inconsistent header (dim {dim}, n_bytes {n_bytes}, group {group})"
            )
        index = cls(dim)
        expected_words = -(-n // _GROUP) * index._group_words()
        if n_words != expected_words:
            raise ValueError(
                f"{path}: inconsistent header ({n} codes of {n_bytes} bytes need {expected_words} "
                f"words, header says {n_words})"
            )
        if size != _HEADER.size + 8 * n_words:
            state = "truncated" if size < _HEADER.size + 8 * n_words else "has trailing bytes"
            raise ValueError(
                f"{path}: {state}: {size} bytes, expected {_HEADER.size + 8 * n_words} "
                f"for {n} codes of {n_bytes} bytes"
            )
        if n_words == 0:
            words = np.zeros(0, dtype=np.uint64)
        else:
            words = np.memmap(path, dtype="<u8", mode="r", offset=_HEADER.size, shape=(n_words,))
            if verify and zlib.crc32(memoryview(words).cast("B")) != payload_crc:
                raise ValueError(f"{path}: corrupted payload (checksum mismatch)")
        index._words = words
        index._n = int(n)
        return index

    def __repr__(self) -> str:
        return f"BinaryIndex(dim={self.dim}, ntotal={self._n})"
