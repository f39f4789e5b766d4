"""Drop-in scoring for Stanford ColBERT (``colbert.modeling.colbert``).

:func:`score` and :func:`score_packed` follow the contracts of Stanford
ColBERT's ``colbert_score`` and ``colbert_score_packed``:

* ``colbert_score(Q, D_padded, D_mask)``: ``Q`` is ``(1 | Nd, Lq, d)``,
  ``D_padded`` is ``(Nd, Ld, d)``, ``D_mask`` is ``(Nd, Ld)`` or
  ``(Nd, Ld, 1)`` (non-zero = real token). With ``Q.size(0) == 1`` the query
  is scored against every document; otherwise query ``i`` against document
  ``i``. Padding is set to ``-9999`` before the max, so it is never a match.
* ``colbert_score_packed(Q, D_packed, D_lengths)``: one query ``(1, Lq, d)``
  or ``(Lq, d)``; documents in the "doclens" layout, ``D_packed`` of shape
  ``(sum(D_lengths), d)``.

Both return a ``(Nd,)`` torch tensor of ``Σ_i max_j <q_i, d_j>``, computed
with :mod:`maxsim` in float32 on the CPU, without copying ``D_packed`` (when
it is a float32 CPU tensor or array) and without materialising the
``(Nd, Ld, Lq)`` score tensor.

Semantics, exactly: padding never matches. One documented divergence in
Stanford ColBERT itself: its CPU ``colbert_score_packed`` path
(``segmented_maxsim.cpp``) starts each per-token max at 0, so there every
query token scores ``max(0, best)``. Pass ``zero_floor=True`` to
:func:`score_packed` to reproduce that path. A document with no real token
scores ``-9999`` per query token, as in ColBERT's padded path (``0`` with
``zero_floor=True``).

The ``config`` arguments are accepted for signature compatibility; only
``interaction == "colbert"`` (the default) is supported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "maxsim.colbert returns torch tensors and needs PyTorch: `pip install torch`."
    ) from exc

import maxsim as _maxsim
from maxsim._convert import c_aligned, describe, to_numpy

__all__ = ["score", "score_packed"]

#: The value ColBERT writes over padded similarities (``colbert_score_reduce``).
PADDING_SCORE = -9999.0


def _f32(x: Any, name: str) -> np.ndarray:
    """A float32, C-contiguous CPU view of ``x`` (copied only if it must be)."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected a float tensor, got {describe(x)}")
        return c_aligned(to_numpy(x, name, move=True), dtype=np.float32)
    if isinstance(x, np.ndarray):
        if x.dtype.kind != "f":
            raise TypeError(f"{name}: expected a float array, got {describe(x)}")
        return c_aligned(x, dtype=np.float32)
    raise TypeError(f"{name}: expected a torch.Tensor or numpy array, got {describe(x)}")


def _ints(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = to_numpy(x, name, move=True)
    elif isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name}: expected a torch.Tensor, numpy array or list of ints, got {describe(x)}"
        )
    if x.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer lengths, got {describe(x)}")
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D (Nd,) array, got {describe(x)}")
    if x.size and x.min() < 0:
        raise ValueError(f"{name}: lengths must be >= 0, got {describe(x)} with min {x.min()}")
    return x.astype(np.int64, copy=False)


def _out_dtype(d: Any) -> torch.dtype:
    """ColBERT scores in ``D``'s dtype (``Q`` is cast to it)."""
    if isinstance(d, torch.Tensor) and d.is_floating_point():
        return d.dtype
    if isinstance(d, np.ndarray) and d.dtype.kind == "f":
        # Byte order does not change the dtype (torch only takes native order).
        return torch.from_numpy(np.empty(0, dtype=d.dtype.newbyteorder("="))).dtype
    return torch.float32


def _check_config(config: Any) -> None:
    interaction = getattr(config, "interaction", "colbert")
    if interaction != "colbert":
        raise NotImplementedError(
            f"config.interaction={interaction!r} is not supported; only 'colbert'"
        )


def _packed_scores(
    q: np.ndarray, flat: np.ndarray, lengths: np.ndarray, zero_floor: bool
) -> np.ndarray:
    """``(Nd,)`` float32 MaxSim of ``q`` against packed docs, empties handled."""
    n_docs = lengths.shape[0]
    empty = np.float32(0.0 if zero_floor else PADDING_SCORE * q.shape[0])
    out = np.full(n_docs, empty, dtype=np.float32)
    keep = lengths > 0
    if q.shape[0] == 0:
        out[:] = 0.0
        return out
    if not keep.any():
        return out
    bounds = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    # Empty documents own no rows: the kept ones stay contiguous in ``flat``.
    offsets = np.append(bounds[:-1][keep], bounds[-1])
    packed = _maxsim.PackedDocs(flat, offsets)
    out[keep] = _maxsim.scores(q, packed, zero_floor=True if zero_floor else None)
    return out


def score_packed(
    Q: Any,
    D_packed: Any,
    D_lengths: Any,
    config: Any = None,
    *,
    zero_floor: bool = False,
) -> torch.Tensor:
    """``colbert_score_packed``: one query against documents in doclens layout.

    Parameters
    ----------
    Q
        ``(1, Lq, d)`` or ``(Lq, d)`` float tensor/array.
    D_packed
        ``(total_tokens, d)`` float tensor/array: the documents' tokens back
        to back; ``total_tokens >= sum(D_lengths)`` (extra rows are ignored,
        as in ColBERT). Float32 CPU input is read in place, not copied.
    D_lengths
        ``(Nd,)`` integer tensor/array/list of token counts.
    config
        ColBERT's ``ColBERTConfig`` (optional); only ``interaction="colbert"``.
    zero_floor
        ``False`` (default): exact MaxSim, as ColBERT's GPU/padded path.
        ``True``: each query token scores ``max(0, best)``, as ColBERT's CPU
        ``segmented_maxsim`` path.

    Returns
    -------
    torch.Tensor
        ``(Nd,)`` scores in ``D_packed``'s float dtype.
    """
    _check_config(config)
    q = _f32(Q, "Q")
    if q.ndim == 3 and q.shape[0] == 1:
        q = q[0]
    if q.ndim != 2:
        raise ValueError(f"Q: expected (1, Lq, d) or (Lq, d), got {describe(Q)}")
    flat = _f32(D_packed, "D_packed")
    if flat.ndim != 2:
        raise ValueError(
            f"D_packed: expected a 2-D (total_tokens, d) array, got {describe(D_packed)}"
        )
    if flat.shape[1] != q.shape[1]:
        raise ValueError(
            f"Q has embedding size {q.shape[1]} ({describe(Q)}) but D_packed has "
            f"{flat.shape[1]} ({describe(D_packed)})"
        )
    lengths = _ints(D_lengths, "D_lengths")
    total = int(lengths.sum())
    if total > flat.shape[0]:
        raise ValueError(
            f"D_lengths sums to {total} tokens but D_packed has only {flat.shape[0]} "
            f"rows ({describe(D_packed)})"
        )
    out = _packed_scores(q, flat, lengths, zero_floor)
    return torch.from_numpy(out).to(_out_dtype(D_packed))


def score(Q: Any, D_padded: Any, D_mask: Any, config: Any = None) -> torch.Tensor:
    """``colbert_score``: queries against padded documents; padding never matches.

    Parameters
    ----------
    Q
        ``(1, Lq, d)`` (scored against every document) or ``(Nd, Lq, d)``
        (query ``i`` against document ``i``) float tensor/array.
    D_padded
        ``(Nd, Ld, d)`` float tensor/array.
    D_mask
        ``(Nd, Ld)`` or ``(Nd, Ld, 1)`` mask; non-zero marks a real token.
        Only real tokens are scored (gathered, never padded).
    config
        ColBERT's ``ColBERTConfig`` (optional); only ``interaction="colbert"``.

    Returns
    -------
    torch.Tensor
        ``(Nd,)`` scores in ``D_padded``'s float dtype. A document without any
        real token scores ``-9999 * Lq``, as in ColBERT.
    """
    _check_config(config)
    q = _f32(Q, "Q")
    d = _f32(D_padded, "D_padded")
    if d.ndim != 3:
        raise ValueError(f"D_padded: expected a 3-D (Nd, Ld, d) array, got {describe(D_padded)}")
    n_docs, doc_len, dim = d.shape
    if q.ndim != 3 or q.shape[0] not in (1, n_docs):
        raise ValueError(
            f"Q: expected (1, Lq, d) or ({n_docs}, Lq, d) to match D_padded "
            f"{describe(D_padded)}, got {describe(Q)}"
        )
    if q.shape[2] != dim:
        raise ValueError(
            f"Q has embedding size {q.shape[2]} ({describe(Q)}) but D_padded has "
            f"{dim} ({describe(D_padded)})"
        )
    if isinstance(D_mask, (torch.Tensor, np.ndarray)):
        mask = to_numpy(D_mask, "D_mask", move=True) != 0
    else:
        raise TypeError(f"D_mask: expected a torch.Tensor or numpy array, got {describe(D_mask)}")
    if mask.shape == (n_docs, doc_len, 1):
        mask = mask[..., 0]
    if mask.shape != (n_docs, doc_len):
        raise ValueError(
            f"D_mask: expected shape ({n_docs}, {doc_len}) or ({n_docs}, {doc_len}, 1) "
            f"to match D_padded {describe(D_padded)}, got {describe(D_mask)}"
        )
    lengths = mask.sum(axis=1, dtype=np.int64)
    if n_docs == 0:
        return torch.zeros(0, dtype=_out_dtype(D_padded))
    if q.shape[0] == 1 and np.array_equal(mask, np.arange(doc_len) < lengths[:, None]):
        # Padding at the end (the usual layout): score views of the real tokens.
        out = np.full(n_docs, np.float32(PADDING_SCORE * q.shape[1]), dtype=np.float32)
        keep = lengths > 0
        if q.shape[1] == 0:
            out[:] = 0.0
        elif keep.any():
            views = [d[i, :n] for i, n in enumerate(lengths.tolist()) if n]
            out[keep] = _maxsim.scores(q[0], views)
        return torch.from_numpy(out).to(_out_dtype(D_padded))
    if mask.all():
        flat = d.reshape(n_docs * doc_len, dim)  # a view: nothing is padding
    else:
        flat = d.reshape(n_docs * doc_len, dim)[mask.reshape(-1)]
    if q.shape[0] == 1:
        out = _packed_scores(q[0], flat, lengths, False)
    else:
        # Aligned: query i against document i only.
        out = np.empty(n_docs, dtype=np.float32)
        bounds = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(lengths, out=bounds[1:])
        for i in range(n_docs):
            out[i] = _packed_scores(
                q[i], flat[bounds[i] : bounds[i + 1]], lengths[i : i + 1], False
            )[0]
    return torch.from_numpy(out).to(_out_dtype(D_padded))
