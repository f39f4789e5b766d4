"""Binary codes: sign quantization, unpacking, and the checks every binary
function applies to code arrays.

Codes are sentence-transformers' packed sign bits (see :mod:`maxsim.binary`).
Hamming distances do not depend on the kind: two ``int8`` inputs are compared
as they are, and when the two kinds are mixed the ``int8`` side is converted.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

from .. import _native
from .._convert import as_float_array, c_aligned, describe, to_numpy


def as_codes(x: Any, name: str, ndims: Tuple[int, ...] = (2,)) -> np.ndarray:
    """A C-contiguous uint8 or int8 code array with one of ``ndims`` dimensions."""
    array = to_numpy(x, name)
    if array.dtype not in (np.uint8, np.int8):
        raise TypeError(
            f"{name}: expected packed binary codes of dtype uint8 (ubinary) or int8 (binary), "
            f"got {describe(array)}"
        )
    if array.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name}: expected a {want} array of codes, got {describe(array)}")
    if array.shape[-1] == 0:
        raise ValueError(f"{name}: codes must have at least one byte, got {describe(array)}")
    return np.ascontiguousarray(array)


def to_ubinary(codes: np.ndarray) -> np.ndarray:
    """int8 ``binary`` codes as ``ubinary`` bytes (a copy); uint8 unchanged."""
    if codes.dtype == np.int8:
        return np.bitwise_xor(codes.view(np.uint8), np.uint8(0x80))
    return codes


def common_bytes(arrays: Sequence[np.ndarray]) -> list:
    """Views every array as uint8 so that Hamming distances are preserved: all
    int8 → compared as they are; mixed → int8 ones converted to ubinary."""
    if all(a.dtype == np.int8 for a in arrays):
        return [a.view(np.uint8) for a in arrays]
    return [to_ubinary(a) for a in arrays]


def check_same_bytes(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{a_name}: codes of {a.shape[-1]} bytes ({a.shape[-1] * 8} bits; {describe(a)}) "
            f"do not match {b_name}: {b.shape[-1]} bytes ({b.shape[-1] * 8} bits; {describe(b)})"
        )


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
    array = as_float_array(x, "x", tuple(range(1, 33)))
    dim = array.shape[-1]
    if dim == 0:
        raise ValueError(f"x: the last dimension must be at least 1, got {describe(array)}")
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
    array = as_codes(codes, "codes", tuple(range(1, 33)))
    n_bytes = array.shape[-1]
    if dim is None:
        dim = 8 * n_bytes
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim: expected an integer, got {dim!r} ({type(dim).__name__})")
    if not 8 * (n_bytes - 1) < dim <= 8 * n_bytes:
        raise ValueError(
            f"dim: {dim} does not fit codes of {n_bytes} bytes ({describe(array)}); "
            f"needs {8 * (n_bytes - 1)} < dim <= {8 * n_bytes}"
        )
    return np.unpackbits(to_ubinary(array), axis=-1, count=int(dim))
