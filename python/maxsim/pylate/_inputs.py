"""PyLate's inputs as maxsim takes them: tensors, arrays and nested lists
become float32 token matrices; masks become bool arrays; result dtypes follow
PyLate's type promotion.

A masked or padded token in PyLate is multiplied by 0: its similarity is 0.
Nothing is ever materialised for it here; the score of a document with such a
token is computed with ``zero_floor`` (max(0, best) per query token).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from maxsim._convert import c_aligned, describe, to_numpy

#: What :func:`binary_mask` returns for a mask with values other than 0 and 1
#: (PyLate's original then handles the call).
NOT_BINARY = object()


def torch_dtype(x: Any) -> torch.dtype:
    """The dtype PyLate's ``convert_to_tensor`` would give ``x``."""
    if isinstance(x, torch.Tensor):
        return x.dtype
    if isinstance(x, np.ndarray):
        try:
            # Byte order does not change the dtype (torch only takes native order).
            return torch.from_numpy(np.empty(0, dtype=x.dtype.newbyteorder("="))).dtype
        except TypeError:
            return torch.float32
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], torch.Tensor):
        dtype = x[0].dtype
        for item in x[1:]:
            if isinstance(item, torch.Tensor):
                dtype = torch.promote_types(dtype, item.dtype)
        return dtype
    # Lists of arrays or of Python numbers become float32 in PyLate.
    return torch.float32


def out_dtype(*objs: Any) -> torch.dtype:
    """Result dtype of PyLate's einsum and mask products over ``objs``."""
    dtype: torch.dtype | None = None
    for obj in objs:
        if obj is None:
            continue
        d = torch_dtype(obj)
        dtype = d if dtype is None else torch.promote_types(dtype, d)
    if dtype is None or not dtype.is_floating_point:
        return torch.float32
    return dtype


def is_integer_input(x: Any) -> bool:
    """True when ``x`` holds integers or booleans (PyLate then scores in ints)."""
    if isinstance(x, torch.Tensor):
        return not (x.is_floating_point() or x.is_complex())
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "iub"
    if isinstance(x, (list, tuple)) and x:
        return isinstance(x[0], (torch.Tensor, np.ndarray)) and is_integer_input(x[0])
    return False


def _tensors(*objs: Any) -> Iterator[torch.Tensor]:
    """The torch tensors among ``objs``, looking one level into lists."""
    for obj in objs:
        if isinstance(obj, torch.Tensor):
            yield obj
        elif isinstance(obj, (list, tuple)):
            for item in obj:
                if isinstance(item, torch.Tensor):
                    yield item
                elif isinstance(item, (list, tuple)):
                    for sub in item:
                        if isinstance(sub, torch.Tensor):
                            yield sub
                        else:
                            break
                else:
                    break


def on_accelerator(*objs: Any) -> bool:
    """True when a tensor among ``objs`` is on a device other than the CPU."""
    return any(t.device.type != "cpu" for t in _tensors(*objs))


def needs_grad(*objs: Any) -> bool:
    """True when gradients are enabled and a tensor among ``objs`` requires one."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in _tensors(*objs))


def _tensor_f32(t: torch.Tensor, name: str) -> np.ndarray:
    return c_aligned(to_numpy(t, name, move=True), dtype=np.float32)


def array_f32(x: Any, name: str) -> np.ndarray:
    """``x`` (tensor, array or nested list) as a C-contiguous float32 array."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise TypeError(f"{name}: expected real numbers, got {describe(x)}")
        return _tensor_f32(x, name)
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{name}: expected a float array, got {describe(x)}")
        return c_aligned(x, dtype=np.float32)
    if isinstance(x, (list, tuple)):
        if x and isinstance(x[0], torch.Tensor):
            try:
                return _tensor_f32(torch.stack(list(x)), name)
            except (RuntimeError, TypeError) as exc:
                raise ValueError(
                    f"{name}: items cannot be stacked into one tensor "
                    f"({describe(x)}, first item {describe(x[0])}): {exc}"
                ) from exc
        try:
            return c_aligned(np.asarray(x, dtype=np.float32))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{name}: cannot be read as a rectangular float array ({describe(x)}): {exc}"
            ) from exc
    raise TypeError(f"{name}: expected a torch.Tensor, a numpy array or a list, got {describe(x)}")


def token_matrix(x: Any, name: str) -> np.ndarray:
    """One query or document: a 2-D ``(n_tokens, dim)`` float32 array."""
    if type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 2:
        return c_aligned(x)  # the array itself when already contiguous and aligned
    if (
        type(x) is torch.Tensor
        and x.dtype is torch.float32
        and x.dim() == 2
        and not x.requires_grad
        and x.device.type == "cpu"
        and x.is_contiguous()
    ):
        return x.numpy()  # the common case (PyLate's own outputs): a view, no checks left
    arr = array_f32(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (n_tokens, dim) array, got {describe(x)}")
    return arr


def token_batch(x: Any, name: str) -> np.ndarray | list[np.ndarray]:
    """A batch of token matrices: a 3-D float32 array, or a list of 2-D ones.

    Rectangular input (what PyLate accepts) gives the 3-D array, exactly as
    PyLate's ``convert_to_tensor`` would stack it. A list of 2-D items of
    different lengths, which PyLate rejects, is kept as a list (no padding).
    """
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            return []
        items = [token_matrix(item, f"{name}[{i}]") for i, item in enumerate(x)]
        dims = {item.shape[1] for item in items}
        if len(dims) != 1:
            raise ValueError(f"{name}: items have different embedding sizes {sorted(dims)}")
        if len({item.shape[0] for item in items}) == 1:
            return np.stack(items)
        return items
    arr = array_f32(x, name)
    if arr.ndim != 3:
        raise ValueError(
            f"{name}: expected a 3-D (batch, n_tokens, dim) array or a list of "
            f"2-D (n_tokens, dim) arrays, got {describe(x)}"
        )
    return arr


def split_outer(x: Any) -> Any:
    """PyLate's ``rank.reshape_embeddings``: a 2-D input is one item."""
    if isinstance(x, (torch.Tensor, np.ndarray)) and x.ndim == 2:
        return x[None]
    return x


def binary_mask(mask: Any, name: str, shape: tuple[int, ...]) -> np.ndarray | None | object:
    """A 0/1 mask as a bool array of ``shape``; :data:`NOT_BINARY` for other values."""
    if mask is None:
        return None
    if isinstance(mask, torch.Tensor):
        m = to_numpy(mask, name, move=True)
    elif isinstance(mask, np.ndarray):
        m = mask
    elif isinstance(mask, (list, tuple)):
        m = array_f32(mask, name)
    else:
        raise TypeError(
            f"{name}: expected a torch.Tensor, numpy array or list, got {describe(mask)}"
        )
    if m.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric 0/1 mask, got {describe(mask)}")
    if m.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {describe(mask)}")
    if m.dtype == np.bool_:
        return m
    binary = m != 0
    if not np.array_equal(m, binary.astype(m.dtype)):
        return NOT_BINARY
    return binary


def check_dims(a: Any, b: Any, name_a: str, name_b: str) -> None:
    """Raises ValueError when the embedding sizes of two batches differ."""

    def dim(x: Any) -> int | None:
        if isinstance(x, np.ndarray):
            return x.shape[-1]
        return x[0].shape[-1] if len(x) else None

    da, db = dim(a), dim(b)
    if da is not None and db is not None and da != db:
        raise ValueError(f"{name_a} has embedding size {da} but {name_b} has {db}")
