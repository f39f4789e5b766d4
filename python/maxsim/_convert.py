"""Input conversion shared by every public function: the one place where
torch tensors, numpy arrays and array-likes become what the native layer
borrows, and where error messages describe an argument.

Rules (documented in the README):

* numpy arrays and torch CPU tensors are accepted; torch tensors are viewed
  through ``Tensor.numpy()`` (no copy) after ``detach()``.
* C-contiguous, aligned float32 is passed to the kernels without a copy.
* float64, float16 and bfloat16 (torch, or numpy ``ml_dtypes.bfloat16``)
  are converted to float32; non-contiguous arrays are made contiguous,
  unaligned ones (a view at an odd byte offset of a buffer or memory map)
  aligned, and byte-swapped ones (``'>f4'``) put in native order. These copy.
* Document storage (:func:`as_doc_storage`) keeps float16, bfloat16 and int8
  as they are: the kernels read them directly.
* integer, bool, complex and object dtypes raise ``TypeError``; a wrong number
  of dimensions raises ``ValueError``. Messages name the argument, its shape
  and its dtype (:func:`describe`).

Nothing here imports torch: a tensor is recognised by its type's module.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

_FLOAT_NAMES = {"float16", "float32", "float64", "bfloat16"}
_FLOAT32 = np.dtype(np.float32)

#: One number of dimensions, or the accepted ones.
Ndim = Union[int, Tuple[int, ...]]


def describe(x: Any) -> str:
    """A short description of ``x`` for error messages: ``shape (..) dtype ..``
    (plus the device for a torch tensor), a sequence's length, or its type."""
    if isinstance(x, (list, tuple)):
        return f"{type(x).__name__} of length {len(x)}"
    shape = getattr(x, "shape", None)
    if shape is None:
        return f"an object of type {type(x).__name__}"
    text = f"shape {tuple(shape)} dtype {getattr(x, 'dtype', None)}"
    if is_torch_tensor(x):
        text += f" (torch, device {x.device})"
    return text


def c_aligned(x: Any, dtype: Any = None) -> np.ndarray:
    """``x`` as a C-contiguous numpy array whose elements are aligned and in
    native byte order, as the native layer borrows it: no copy when it already
    is (``np.ascontiguousarray`` alone keeps a view at an odd byte offset,
    which Rust cannot borrow as a slice, and keeps byte-swapped storage such
    as ``'>f2'``, whose raw bits are not the values')."""
    array = np.ascontiguousarray(x, dtype=dtype)
    if not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))
    return array if array.flags.aligned else array.copy()


def is_torch_tensor(x: Any) -> bool:
    """True for a ``torch.Tensor`` (checked without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def tensor_views(items: Sequence[Any]) -> Sequence[Any]:
    """``items`` as numpy arrays when every item is a torch tensor that numpy
    can view without a copy (on the CPU, no gradient, a numpy dtype: float32
    and float16 but not bfloat16); else ``items`` unchanged.

    One ``Tensor.numpy()`` per item lets a list of tensors take the one-pass
    native readiness checks of numpy lists instead of a Python conversion and
    check per item. What the views are (their dtype, strides, shapes) is for
    those checks to judge.
    """
    if not items or not is_torch_tensor(items[0]):
        return items
    try:
        # Raises for a tensor that needs a gradient or is not on the CPU, for
        # bfloat16, and for an item that is not a tensor.
        return [t.numpy() for t in items]
    except (RuntimeError, TypeError, AttributeError):
        return items


def cpu_tensor(x: Any, name: str, *, move: bool = False) -> Any:
    """A torch tensor detached and on the CPU.

    A tensor on another device raises ``TypeError`` (maxsim computes on the
    CPU and does not copy behind the caller's back), unless ``move``: the
    drop-ins whose originals accept any device copy it to the CPU.
    """
    if x.device.type != "cpu":
        if not move:
            raise TypeError(
                f"{name}: torch tensor on device {x.device} ({describe(x)}); "
                "maxsim runs on the CPU, move it with .cpu() first"
            )
        x = x.cpu()
    return x.detach()


def to_numpy(x: Any, name: str, *, move: bool = False) -> np.ndarray:
    """``x`` as a numpy array, without a copy where numpy can view it.

    torch tensors go through :func:`cpu_tensor`; bfloat16 tensors are widened
    to float32 (exact; numpy has no bfloat16), and lazily conjugated or
    negated views are resolved (``Tensor.numpy()`` refuses them). Anything
    else goes through ``np.asarray``; what cannot be read as an array (a
    ragged list) raises ``TypeError``.
    """
    if is_torch_tensor(x):
        import torch  # already imported: x is a tensor

        t = cpu_tensor(x, name, move=move)
        if t.dtype is torch.bfloat16:
            t = t.float()
        try:
            return t.numpy()
        except RuntimeError:  # a lazily conjugated or negated view
            return t.resolve_conj().resolve_neg().numpy()
        except TypeError as exc:  # a dtype numpy lacks (uint16, float8...)
            raise TypeError(f"{name}: {describe(x)} has no numpy equivalent: {exc}") from None
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: cannot be read as an array ({type(x).__name__}): {exc}") from None


def dtype_name(x: Any) -> Optional[str]:
    """The dtype name of an array or tensor (``"float16"``, ``"bfloat16"``...), else None."""
    if type(x) is np.ndarray and x.dtype == _FLOAT32:  # the common case, checked cheaply
        return "float32"
    if is_torch_tensor(x):
        return str(x.dtype).replace("torch.", "")
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return None
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def bfloat16_dtype() -> Optional[np.dtype]:
    """numpy's ``ml_dtypes.bfloat16`` dtype, or None when ml_dtypes is not installed."""
    try:
        import ml_dtypes
    except ImportError:  # pragma: no cover - ml_dtypes is a test dependency
        return None
    return np.dtype(ml_dtypes.bfloat16)


def _ndim_text(ndim: Ndim) -> str:
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    return " or ".join(f"{d}-D" for d in ndims)


def _has_ndim(array: Any, ndim: Ndim) -> bool:
    return array.ndim == ndim if isinstance(ndim, int) else array.ndim in ndim


def as_float_array(x: Any, name: str, ndim: Ndim) -> np.ndarray:
    """``x`` as a floating-point numpy array with ``ndim`` dimensions (one
    number or a tuple of accepted ones), its float dtype kept (float16,
    float32, float64) except bfloat16, which is widened to float32 (exact).
    Not necessarily contiguous."""
    array = to_numpy(x, name)
    dtype = array.dtype
    # kind "f" first: dtype.name builds a string, too slow for every call.
    bfloat16 = dtype.kind != "f" and dtype.name == "bfloat16"  # ml_dtypes
    if dtype.kind != "f" and not bfloat16:
        raise TypeError(
            f"{name}: expected floating-point values (float32, float64, float16, bfloat16), "
            f"got {describe(array)}"
        )
    if not _has_ndim(array, ndim):
        raise ValueError(f"{name}: expected a {_ndim_text(ndim)} array, got {describe(array)}")
    return array.astype(np.float32) if bfloat16 else array


def as_float32(x: Any, name: str, ndim: Ndim) -> np.ndarray:
    """``x`` as a C-contiguous, aligned float32 numpy array with ``ndim``
    dimensions (one number or a tuple of accepted ones).

    No copy when ``x`` already is C-contiguous float32 (numpy or torch CPU).
    """
    array = as_float_array(x, name, ndim)
    if array.dtype != _FLOAT32:
        array = array.astype(np.float32)
    return c_aligned(array)


def half_bits(x: Any, name: str, ndim: int) -> np.ndarray:
    """A float16/bfloat16 array or tensor as C-contiguous uint16 bits (no copy when contiguous)."""
    if is_torch_tensor(x):
        import torch

        t = cpu_tensor(x, name)
        if t.dim() != ndim:
            raise ValueError(f"{name}: expected a {ndim}-D array, got {describe(t)}")
        return t.contiguous().view(torch.int16).numpy().view(np.uint16)
    array = np.asarray(x)
    if array.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got {describe(array)}")
    return c_aligned(array).view(np.uint16)


def as_doc_storage(x: Any, name: str, ndim: int) -> np.ndarray:
    """Document storage for ``PackedDocs``: float16, bfloat16 (as ``ml_dtypes.bfloat16``)
    and int8 arrays are kept as they are; anything else is converted to float32.
    bfloat16 without ml_dtypes installed is widened to float32 (exact)."""
    dtype = dtype_name(x)
    if dtype == "float16" or dtype == "int8":
        if is_torch_tensor(x):
            x = cpu_tensor(x, name).contiguous().numpy()
        array = np.asarray(x)
        if array.ndim != ndim:
            raise ValueError(f"{name}: expected a {ndim}-D array, got {describe(array)}")
        return c_aligned(array)
    if dtype == "bfloat16":
        bf16 = bfloat16_dtype()
        if bf16 is not None:
            return half_bits(x, name, ndim).view(bf16)
    return as_float32(x, name, ndim)


def as_scales(scales: Any, n_tokens: int) -> np.ndarray:
    """Validates int8 ``scales``: float ``(n_tokens,)``, finite and >= 0; returns
    them as C-contiguous float32."""
    array = to_numpy(scales, "scales", move=True)
    if array.dtype.kind != "f":
        raise TypeError(f"scales: expected a float array, got {describe(array)}")
    if array.ndim != 1 or array.shape[0] != n_tokens:
        raise ValueError(
            f"scales: expected shape ({n_tokens},) (one scale per token of flat), "
            f"got {describe(array)}"
        )
    array = c_aligned(array, dtype=np.float32)
    if array.size and not (np.isfinite(array).all() and (array >= 0).all()):
        raise ValueError("scales: must be finite and >= 0")
    return array


def as_int64_vector(x: Any, name: str) -> np.ndarray:
    """A 1-D integer array (offsets, lengths) as C-contiguous int64."""
    array = to_numpy(x, name, move=True)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got {describe(array)}")
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got {describe(array)}")
    return c_aligned(array, dtype=np.int64)


def check_doc_list(arrays: Sequence[np.ndarray], dtype: Optional[str] = None) -> Optional[int]:
    """The common width ``d`` of ``docs``, a list of ``(len_i, d)`` arrays (None
    when empty); ValueError naming the index of a document without tokens or
    of another width. ``dtype`` names the values' dtype when the arrays hold
    their bits (float16/bfloat16 as uint16)."""
    dim = arrays[0].shape[1] if len(arrays) else None
    for i, a in enumerate(arrays):
        if a.shape[0] == 0 or a.shape[1] != dim:
            what = describe(a) if dtype is None else f"shape {a.shape} dtype {dtype}"
            if a.shape[0] == 0:
                raise ValueError(
                    f"docs: document {i} has zero tokens ({what}); "
                    "every document needs at least one token"
                )
            raise ValueError(
                f"docs[{i}]: dimension {a.shape[1]} ({what}) differs from docs[0]'s {dim}"
            )
    return dim


def as_bool_mask(x: Any, name: str, length: int) -> np.ndarray:
    """A ``(length,)`` bool mask; integer 0/1 masks are accepted too."""
    if is_torch_tensor(x):
        x = cpu_tensor(x, name).numpy()
    array = np.asarray(x)
    if array.dtype.kind not in "bui":
        raise TypeError(f"{name}: expected a bool (or 0/1 integer) mask, got {describe(array)}")
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(f"{name}: expected shape ({length},), got {describe(array)}")
    return (
        np.ascontiguousarray(array != 0) if array.dtype.kind != "b" else np.ascontiguousarray(array)
    )


def as_k(k: Any, name: str = "k") -> int:
    """Validates ``k`` (or another count named ``name``): an integer >= 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer >= 1, got {k!r} ({type(k).__name__})")
    if k < 1:
        raise ValueError(f"{name}: must be at least 1, got {k}")
    return int(k)
