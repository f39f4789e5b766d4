"""Reduced-precision documents: float16, bfloat16 and int8 (``maxsim.quantize``).

Documents stored in 16 or 8 bits are read by the kernels directly (no float32
copy is made): float16 and bfloat16 documents are widened to float32 inside
the kernel, a few KiB at a time, and scored exactly as their float32 widening
would be; int8 documents carry one float32 scale per token and are scored with
integer dot products against a query quantized the same way on the fly.

Accepted document inputs (besides float32):

* float16: numpy ``float16`` arrays or torch ``float16`` tensors;
* bfloat16: torch ``bfloat16`` tensors or numpy arrays of ``ml_dtypes.bfloat16``;
* int8: only as :class:`~maxsim.PackedDocs` carrying one scale per token,
  produced by ``quantize(docs, "int8_per_token")`` (raw int8 codes without
  scales raise ``TypeError``).

The query may be float32 (or float64), or the documents' own dtype; for int8
documents any floating-point query is accepted and quantized per token. Other
combinations raise ``TypeError`` saying what is supported. Scores are float32.

NaN in float16/bfloat16 documents behaves exactly as in float32 documents (a
NaN similarity never wins the max). :func:`quantize` keeps NaN for
float16/bfloat16, raises ``ValueError`` for finite values beyond the format's
range, and raises ``ValueError`` for NaN or inf when quantizing to int8.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np

from . import _native
from ._convert import (
    as_float32,
    bfloat16_dtype,
    c_aligned,
    check_doc_list,
    describe,
    dtype_name,
    half_bits,
)
from ._packed import PackedDocs

__all__ = ["quantize"]

HALF_DTYPES = ("float16", "bfloat16")
# Exponent bits: a value is non-finite when they are all set.
_EXPONENT = {"float16": 0x7C00, "bfloat16": 0x7F80}


def _check_finite_bits(bits: np.ndarray, dtype: str, name: str) -> None:
    exp = _EXPONENT[dtype]
    if bits.size and ((bits & exp) == exp).any():
        raise ValueError(
            f"{name}: contains NaN or inf (shape {bits.shape} dtype {dtype}) and check_finite=True"
        )


def _int8_without_scales(name: str, x: Any) -> TypeError:
    return TypeError(
        f"{name}: int8 codes without scales ({describe(x)}); int8 documents need one scale per "
        "token: build them with maxsim.quantize(docs, 'int8_per_token') (a PackedDocs with "
        "codes and scales), or PackedDocs(codes, offsets, scales=...)"
    )


class ReducedDocs:
    """Reduced-precision documents normalised for the native layer."""

    __slots__ = ("kind", "dtype", "arrays", "n_docs", "dim")

    def __init__(self, kind: str, dtype: str, arrays: tuple, n_docs: int, dim: Optional[int]):
        self.kind = kind
        self.dtype = dtype
        self.arrays = arrays
        self.n_docs = n_docs
        self.dim = dim


def normalise_docs(docs: Any, check_finite: bool) -> Optional[ReducedDocs]:
    """``ReducedDocs`` for float16/bfloat16/int8 documents, None for anything else
    (which the float32 path handles). Raises for int8 codes without scales."""
    if isinstance(docs, PackedDocs):
        dtype = docs.flat.dtype.name
        if dtype == "int8":
            lo, hi = int(docs.offsets[0]), int(docs.offsets[-1])
            if check_finite and not np.isfinite(docs.scales[lo:hi]).all():
                raise ValueError("docs: scales contain NaN or inf and check_finite=True")
            arrays = (docs.flat, docs.scales, docs.offsets)
            return ReducedDocs("packed", "int8", arrays, len(docs), docs.dim)
        if dtype in HALF_DTYPES:
            bits = docs.flat.view(np.uint16)
            if check_finite:
                lo, hi = int(docs.offsets[0]), int(docs.offsets[-1])
                _check_finite_bits(bits[lo:hi], dtype, "docs")
            return ReducedDocs("packed", dtype, (bits, docs.offsets), len(docs), docs.dim)
        return None
    if isinstance(docs, (list, tuple)):
        # Every entry already a C-contiguous float16 (or ml_dtypes bfloat16)
        # (len_i >= 1, d) numpy array of one width: taken as they are, with no
        # per-document view or check in Python (one native pass).
        ready = _native.ready_half_list(docs)
        if ready is not None:
            dtype, dim = ready
            if check_finite:
                for i, a in enumerate(docs):
                    _check_finite_bits(a.view(np.uint16), dtype, f"docs[{i}]")
            return ReducedDocs("list", dtype, tuple(docs), len(docs), dim)
        names = [dtype_name(d) for d in docs]
        for i, (d, n) in enumerate(zip(docs, names)):
            if n == "int8":
                raise _int8_without_scales(f"docs[{i}]", d)
        if not docs or names[0] not in HALF_DTYPES or any(n != names[0] for n in names):
            return None
        dtype = names[0]
        arrays = [half_bits(d, f"docs[{i}]", 2) for i, d in enumerate(docs)]
        dim = check_doc_list(arrays, dtype)
        if check_finite:
            for i, a in enumerate(arrays):
                _check_finite_bits(a, dtype, f"docs[{i}]")
        return ReducedDocs("list", dtype, tuple(arrays), len(arrays), dim)
    dtype = dtype_name(docs)
    if dtype == "int8":
        raise _int8_without_scales("docs", docs)
    if dtype not in HALF_DTYPES:
        return None
    bits = half_bits(docs, "docs", 3)
    if bits.shape[0] > 0 and bits.shape[1] == 0:
        raise ValueError(f"docs: document 0 has zero tokens (shape {bits.shape} dtype {dtype})")
    if check_finite:
        _check_finite_bits(bits, dtype, "docs")
    return ReducedDocs("fixed", dtype, (bits,), bits.shape[0], bits.shape[2])


def _query_dtypes(docs: ReducedDocs) -> tuple:
    if docs.dtype == "int8":
        return ("float32", "float64", "float16", "bfloat16")
    return ("float32", "float64", docs.dtype)


def check_query_dtype(query: Any, docs: Any, name: str) -> None:
    """Raises TypeError when ``query``'s dtype cannot be used with reduced ``docs``."""
    if not isinstance(docs, ReducedDocs):
        return
    dtype = dtype_name(query)
    allowed = _query_dtypes(docs)
    if dtype is None or dtype in allowed:
        return
    if docs.dtype == "int8":
        what = (
            "a floating-point query (float32, float64, float16 or bfloat16), which is quantized "
            "to int8 per token on the fly"
        )
    else:
        what = f"a float32 (or float64) query, or a {docs.dtype} query like the documents"
    raise TypeError(
        f"{name}: dtype {dtype} ({describe(query)}) is not supported with {docs.dtype} "
        f"documents; they take {what}"
    )


def check_queries_dtype(queries: Any, docs: Any) -> None:
    """``check_query_dtype`` for a batch (3-D array or list of 2-D arrays)."""
    if not isinstance(docs, ReducedDocs):
        return
    if isinstance(queries, (list, tuple)):
        for i, q in enumerate(queries):
            check_query_dtype(q, docs, f"queries[{i}]")
    else:
        check_query_dtype(queries, docs, "queries")


def run(
    queries: list,
    masks: Optional[list],
    docs: ReducedDocs,
    zero_floor: Optional[np.ndarray],
) -> np.ndarray:
    """Scores float32 ``queries`` against reduced documents: ``(n_queries, n_docs)`` float32."""
    if docs.dtype == "int8":
        codes, scales, offsets = docs.arrays
        return _native.maxsim_int8_packed(queries, codes, scales, offsets, masks, zero_floor)
    bf16 = docs.dtype == "bfloat16"
    if docs.kind == "fixed":
        return _native.maxsim_half_fixed(queries, docs.arrays[0], bf16, masks, zero_floor)
    if docs.kind == "packed":
        flat, offsets = docs.arrays
        return _native.maxsim_half_packed(queries, flat, offsets, bf16, masks, zero_floor)
    return _native.maxsim_half_list(queries, list(docs.arrays), docs.dim, bf16, masks, zero_floor)


#: ``quantize``'s ``dtype`` names. ``"int8_per_token"`` says which int8: one
#: scale per token, unlike the per-dimension ranges of
#: ``maxsim.models.quantize_embeddings(x, "int8")`` (sentence-transformers' scheme).
QUANTIZE_DTYPES = ("int8_per_token", "float16", "bfloat16")
_QUANTIZE_ALIASES = {"fp16": "float16", "half": "float16", "bf16": "bfloat16"}
#: Deprecated names of ``"int8_per_token"``: plain "int8" did not say which int8.
_DEPRECATED_INT8 = ("int8", "i8")


def _dtype_arg(dtype: Any) -> str:
    if isinstance(dtype, str):
        name = dtype.strip().lower().replace("torch.", "")
    else:
        name = dtype_name(np.empty(0, dtype=dtype)) if not str(dtype).startswith("torch.") else None
        if name is None:
            name = str(dtype).replace("torch.", "")
    name = _QUANTIZE_ALIASES.get(name, name)
    if name in _DEPRECATED_INT8:
        warnings.warn(
            f"maxsim.quantize(docs, {dtype!r}) is deprecated: pass 'int8_per_token' (int8 "
            "codes with one float32 scale per token; maxsim.models.quantize_embeddings' "
            "'int8' is a different scheme, per-dimension ranges)",
            DeprecationWarning,
            stacklevel=3,
        )
        name = "int8_per_token"
    if name not in QUANTIZE_DTYPES:
        raise ValueError(
            f"dtype: expected 'int8_per_token', 'float16' or 'bfloat16', got {dtype!r}"
        )
    return name


def _float32_packed(docs: Any) -> tuple:
    """``(flat float32 (n, d), offsets int64)`` for a 3-D array, a 2-D array (one
    document), a list of 2-D arrays, or PackedDocs."""
    if isinstance(docs, PackedDocs):
        lo, hi = int(docs.offsets[0]), int(docs.offsets[-1])
        if docs.flat.dtype == np.int8:
            raise TypeError(
                "docs: already int8-quantized PackedDocs; quantize the float embeddings"
            )
        flat = as_float32(docs.flat[lo:hi], "docs", 2)
        return flat, c_aligned(docs.offsets - lo, dtype=np.int64)
    if isinstance(docs, (list, tuple)):
        arrays = [as_float32(d, f"docs[{i}]", 2) for i, d in enumerate(docs)]
        if not arrays:
            raise ValueError("docs: empty list; quantize needs at least one document")
        check_doc_list(arrays)
        lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return np.concatenate(arrays, axis=0), offsets
    ndim = getattr(docs, "ndim", None)
    if ndim is None:
        ndim = np.ndim(docs)
    if ndim == 2:
        flat = as_float32(docs, "docs", 2)
        if flat.shape[0] == 0:
            raise ValueError(f"docs: the document has zero tokens ({describe(flat)})")
        return flat, np.array([0, flat.shape[0]], dtype=np.int64)
    if ndim != 3:
        raise ValueError(
            "docs: expected a 3-D (n_docs, doc_len, d) array, a 2-D (len, d) array, a list of "
            f"2-D arrays or PackedDocs, got {describe(docs)}"
        )
    array = as_float32(docs, "docs", 3)
    n, length, dim = array.shape
    if n > 0 and length == 0:
        raise ValueError(f"docs: document 0 has zero tokens ({describe(array)})")
    return array.reshape(n * length, dim), np.arange(n + 1, dtype=np.int64) * length


def quantize(docs: Any, dtype: Any = "int8_per_token") -> Any:
    """Stores documents in reduced precision: returns a :class:`~maxsim.PackedDocs`.

    Args:
        docs: float embeddings: a 3-D ``(n_docs, doc_len, d)`` array, a 2-D ``(len, d)``
            array (one document), a list of 2-D arrays, or a ``PackedDocs``
            (numpy or torch CPU; any float dtype).
        dtype: ``"int8_per_token"`` (default), ``"float16"`` or ``"bfloat16"``.
            ``"int8"`` (and ``np.int8``) is a deprecated alias of ``"int8_per_token"``.

    ``"int8_per_token"``: per-token symmetric ("absmax") quantization. For each token
    ``s = max_k |x_k| / 127`` (float32) and ``c_k = round_half_even(x_k / s)``,
    clamped to ``[-127, 127]``; ``x_k ≈ s * c_k`` with ``|x_k - s * c_k| <= s / 2``.
    The result's ``flat`` holds the int8 codes and ``scales`` the float32 scales. A
    token whose largest magnitude is below 1e-30 gets scale 0 and zero codes.
    NaN or inf raise ``ValueError``. This is not sentence-transformers'
    ``"int8"`` (:func:`maxsim.models.quantize_embeddings`), which maps each
    dimension's calibrated range to 256 levels and has no per-token scale.

    ``"float16"`` / ``"bfloat16"``: round to nearest even (the CPU's conversion
    instructions where present). NaN is kept; a finite value beyond the format's
    range raises ``ValueError``. bfloat16 ``PackedDocs`` store their values as
    ``ml_dtypes.bfloat16``, which must be installed.

    Returns:
        ``PackedDocs`` whose ``flat`` has the requested dtype (and ``scales`` for int8).
    """
    name = _dtype_arg(dtype)
    flat, offsets = _float32_packed(docs)
    if name == "int8_per_token":
        codes, scales = _native.quantize_int8(flat)
        return PackedDocs(codes, offsets, scales=scales)
    if name == "bfloat16":
        bf16 = bfloat16_dtype()
        if bf16 is None:
            raise ModuleNotFoundError(
                "quantize(..., 'bfloat16') returns ml_dtypes.bfloat16 arrays: "
                "pip install ml-dtypes (or pass torch bfloat16 tensors to maxsim directly)"
            )
        return PackedDocs(_native.to_half_bits(flat, True).view(bf16), offsets)
    return PackedDocs(_native.to_half_bits(flat, False).view(np.float16), offsets)


def paths() -> dict:
    """Implementation used for each document dtype under the kernel in force."""
    return dict(_native.reduced_paths())
