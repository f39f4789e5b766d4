"""Input conversion shared by every public function.

Rules (documented in the README):

* numpy arrays and torch CPU tensors are accepted; torch tensors are viewed
  through ``Tensor.numpy()`` (no copy) after ``detach()``.
* C-contiguous, aligned float32 is passed to the kernels without a copy.
* float64, float16 and bfloat16 (torch, or numpy ``ml_dtypes.bfloat16``)
  are converted to float32; non-contiguous arrays are made contiguous,
  unaligned ones (a view at an odd byte offset of a buffer or memory map)
  aligned, and byte-swapped ones (``'>f4'``) put in native order. These copy.
* integer, bool, complex and object dtypes raise ``TypeError``; a wrong number
  of dimensions raises ``ValueError``. Messages name the argument, its shape
  and its dtype.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

_FLOAT_NAMES = {"float16", "float32", "float64", "bfloat16"}


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

    One ``Tensor.numpy()`` per item (about 0.7 µs) lets a list of tensors take
    the one-pass native readiness checks of numpy lists, instead of about
    4.5 µs of conversion and checks per item. What the views are (their
    dtype, strides, shapes) is for those checks to judge.
    """
    if not items or not is_torch_tensor(items[0]):
        return items
    try:
        # Raises for a tensor that needs a gradient or is not on the CPU, for
        # bfloat16, and for an item that is not a tensor.
        return [t.numpy() for t in items]
    except (RuntimeError, TypeError, AttributeError):
        return items


def describe(x: Any) -> str:
    """``shape (..) dtype ..`` for an array-like, for error messages."""
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None:
        return f"a {type(x).__name__}"
    return f"shape {tuple(shape)} dtype {dtype}"


def _torch_to_numpy(x: Any, name: str) -> np.ndarray:
    if x.device.type != "cpu":
        raise TypeError(
            f"{name}: torch tensor on device {x.device} ({describe(x)}); "
            "maxsim runs on the CPU, move it with .cpu() first"
        )
    x = x.detach()
    dtype_name = str(x.dtype).replace("torch.", "")
    if dtype_name == "bfloat16":
        # numpy has no native bfloat16: widen in torch (exact).
        x = x.float()
    elif x.is_complex() or not x.is_floating_point():
        raise TypeError(
            f"{name}: expected a floating-point tensor (float32, float64, float16, bfloat16), "
            f"got {describe(x)}"
        )
    if x.is_conj() or x.is_neg():
        x = x.resolve_conj().resolve_neg()
    return x.numpy()


def as_float32(x: Any, name: str, ndim: int) -> np.ndarray:
    """Returns ``x`` as a C-contiguous float32 numpy array with ``ndim`` dimensions.

    No copy when ``x`` already is C-contiguous float32 (numpy or torch CPU).
    """
    if is_torch_tensor(x):
        array = _torch_to_numpy(x, name)
    elif isinstance(x, np.ndarray):
        array = x
    else:
        try:
            array = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(
                f"{name}: cannot be read as an array ({type(x).__name__}): {exc}"
            ) from None
    dtype = array.dtype
    if dtype.kind != "f" and dtype.name not in _FLOAT_NAMES:
        raise TypeError(
            f"{name}: expected a floating-point array (float32, float64, float16, bfloat16), "
            f"got {describe(array)}"
        )
    if array.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got {describe(array)}")
    if dtype != np.float32:
        array = array.astype(np.float32)
    return c_aligned(array)


def as_bool_mask(x: Any, name: str, length: int) -> np.ndarray:
    """A ``(length,)`` bool mask; integer 0/1 masks are accepted too."""
    if is_torch_tensor(x):
        if x.device.type != "cpu":
            raise TypeError(f"{name}: torch tensor on device {x.device}; move it with .cpu()")
        x = x.detach().numpy()
    array = np.asarray(x)
    if array.dtype.kind not in "bui":
        raise TypeError(f"{name}: expected a bool (or 0/1 integer) mask, got {describe(array)}")
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(f"{name}: expected shape ({length},), got {describe(array)}")
    return (
        np.ascontiguousarray(array != 0) if array.dtype.kind != "b" else np.ascontiguousarray(array)
    )


def as_k(k: Any) -> int:
    """Validates ``k``: an integer >= 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k: expected an integer >= 1, got {k!r} ({type(k).__name__})")
    if k < 1:
        raise ValueError(f"k: must be at least 1, got {k}")
    return int(k)
