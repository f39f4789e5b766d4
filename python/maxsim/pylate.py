"""Drop-in MaxSim scoring for `PyLate <https://github.com/lightonai/pylate>`_.

Everything here keeps PyLate's contracts (arguments, shapes, return types,
ordering) while scoring on the CPU with :mod:`maxsim` and never materialising
padding or the ``(Nq, Nd, Lq, Ld)`` similarity tensor that PyLate's einsum
builds.

* :func:`colbert_scores`, :func:`colbert_scores_pairwise` and
  :func:`colbert_kd_scores` mirror :mod:`pylate.scores`, masks included.
* :func:`rerank` mirrors :func:`pylate.rank.rerank`; by default it reproduces
  PyLate's zero-padding artefact (a candidate shorter than the longest one
  gets ``max(0, .)`` per query token), ``exact=True`` gives true MaxSim.
* :func:`patch`, :func:`unpatch` and :func:`patched` reroute PyLate itself.
* :class:`Index` is an end-to-end PyLate index with exact MaxSim search.

Inputs on CUDA/MPS, inputs that need gradients, an explicit PyLate
``backend`` other than ``"auto"``, non-binary masks and integer embeddings
are handed to PyLate's original function, so nothing changes for them.

PyLate itself is only needed for :func:`patch`/:func:`patched` and for those
fall-throughs; the scoring functions and :class:`Index` need only torch.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import itertools
import os
import pickle
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "maxsim.pylate needs PyTorch, which PyLate depends on. Install PyLate "
        "with `pip install pylate` (it brings torch), or torch alone with "
        "`pip install torch`."
    ) from exc

import maxsim as _maxsim
from maxsim import _native
from maxsim._convert import c_aligned, tensor_views
from maxsim._pylate_plaid import PLAID  # noqa: F401  (maxsim.pylate.PLAID)

__all__ = [
    "Index",
    "colbert_kd_scores",
    "colbert_scores",
    "colbert_scores_pairwise",
    "is_patched",
    "patch",
    "patched",
    "rerank",
    "unpatch",
]

_INSTALL_HINT = (
    "PyLate is not installed. Install it with `pip install pylate` "
    "(PyLate 1.4 to 1.6 are supported; pylate==1.6.0 pins torch==2.11.0 "
    "through fast-plaid)."
)

_BACKENDS = ("auto", "torch", "flash", "lik")

# A masked or padded token in PyLate is multiplied by 0: its similarity is 0.
# Nothing is ever materialised for it here; the score of a document with such
# a token is computed with ``zero_floor`` (max(0, best) per query token).


# --------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------


def _describe(x: Any) -> str:
    """A short "shape ... dtype ..." description of ``x`` for error messages."""
    if isinstance(x, torch.Tensor):
        return f"shape {tuple(x.shape)} dtype {x.dtype} (torch, device {x.device})"
    if isinstance(x, np.ndarray):
        return f"shape {x.shape} dtype {x.dtype} (numpy)"
    if isinstance(x, (list, tuple)):
        return f"{type(x).__name__} of length {len(x)}"
    return f"object of type {type(x).__name__}"


def _torch_dtype(x: Any) -> torch.dtype:
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


def _is_integer_input(x: Any) -> bool:
    """True when ``x`` holds integers or booleans (PyLate then scores in ints)."""
    if isinstance(x, torch.Tensor):
        return not (x.is_floating_point() or x.is_complex())
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "iub"
    if isinstance(x, (list, tuple)) and x:
        return isinstance(x[0], (torch.Tensor, np.ndarray)) and _is_integer_input(x[0])
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


def _on_accelerator(*objs: Any) -> bool:
    return any(t.device.type != "cpu" for t in _tensors(*objs))


def _needs_grad(*objs: Any) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in _tensors(*objs))


def _tensor_to_f32(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype != torch.float32:
        t = t.to(torch.float32)
    return c_aligned(t.numpy())


def _array_f32(x: Any, name: str) -> np.ndarray:
    """``x`` (tensor, array or nested list) as a C-contiguous float32 array."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise TypeError(f"{name}: expected real numbers, got {_describe(x)}")
        return _tensor_to_f32(x)
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{name}: expected a float array, got {_describe(x)}")
        return c_aligned(x, dtype=np.float32)
    if isinstance(x, (list, tuple)):
        if x and isinstance(x[0], torch.Tensor):
            try:
                return _tensor_to_f32(torch.stack(list(x)))
            except (RuntimeError, TypeError) as exc:
                raise ValueError(
                    f"{name}: items cannot be stacked into one tensor "
                    f"({_describe(x)}, first item {_describe(x[0])}): {exc}"
                ) from exc
        try:
            return c_aligned(np.asarray(x, dtype=np.float32))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{name}: cannot be read as a rectangular float array ({_describe(x)}): {exc}"
            ) from exc
    raise TypeError(f"{name}: expected a torch.Tensor, a numpy array or a list, got {_describe(x)}")


def _token_matrix(x: Any, name: str) -> np.ndarray:
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
    arr = _array_f32(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (n_tokens, dim) array, got {_describe(x)}")
    return arr


def _batch(x: Any, name: str) -> np.ndarray | list[np.ndarray]:
    """A batch of token matrices: a 3-D float32 array, or a list of 2-D ones.

    Rectangular input (what PyLate accepts) gives the 3-D array, exactly as
    PyLate's ``convert_to_tensor`` would stack it. A list of 2-D items of
    different lengths, which PyLate rejects, is kept as a list (no padding).
    """
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            return []
        items = [_token_matrix(item, f"{name}[{i}]") for i, item in enumerate(x)]
        dims = {item.shape[1] for item in items}
        if len(dims) != 1:
            raise ValueError(f"{name}: items have different embedding sizes {sorted(dims)}")
        if len({item.shape[0] for item in items}) == 1:
            return np.stack(items)
        return items
    arr = _array_f32(x, name)
    if arr.ndim != 3:
        raise ValueError(
            f"{name}: expected a 3-D (batch, n_tokens, dim) array or a list of "
            f"2-D (n_tokens, dim) arrays, got {_describe(x)}"
        )
    return arr


_NOT_BINARY = object()


def _mask(mask: Any, name: str, shape: tuple[int, ...]) -> np.ndarray | None | object:
    """A 0/1 mask as a bool array of ``shape``; ``_NOT_BINARY`` otherwise."""
    if mask is None:
        return None
    if isinstance(mask, torch.Tensor):
        t = mask.detach().cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        m = t.numpy() if not t.is_complex() else np.zeros(0, np.complex64)
    elif isinstance(mask, np.ndarray):
        m = mask
    elif isinstance(mask, (list, tuple)):
        m = _array_f32(mask, name)
    else:
        raise TypeError(
            f"{name}: expected a torch.Tensor, numpy array or list, got {_describe(mask)}"
        )
    if m.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric 0/1 mask, got {_describe(mask)}")
    if m.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {_describe(mask)}")
    if m.dtype == np.bool_:
        return m
    binary = m != 0
    if not np.array_equal(m, binary.astype(m.dtype)):
        return _NOT_BINARY
    return binary


def _out_dtype(*objs: Any) -> torch.dtype:
    """Result dtype of PyLate's einsum and mask products over ``objs``."""
    dtype: torch.dtype | None = None
    for obj in objs:
        if obj is None:
            continue
        d = _torch_dtype(obj)
        dtype = d if dtype is None else torch.promote_types(dtype, d)
    if dtype is None or not dtype.is_floating_point:
        return torch.float32
    return dtype


def _resolve_backend(backend: str | None) -> str:
    resolved = backend
    if resolved is None:
        resolved = os.environ.get("PYLATE_SCORES_BACKEND", "auto")
    if not isinstance(resolved, str) or resolved.lower() not in _BACKENDS:
        raise ValueError(
            f"backend must be one of 'auto', 'torch', 'flash', 'lik'; got {resolved!r}"
        )
    return resolved.lower()


# --------------------------------------------------------------------------
# PyLate originals (fall-through targets)
# --------------------------------------------------------------------------

_SAVED: dict[tuple[str, str], Any] = {}
_LOCK = threading.RLock()


def _pylate_available() -> bool:
    if "pylate" in sys.modules:
        return True
    import importlib.util

    return importlib.util.find_spec("pylate") is not None


def _original(module: str, attr: str) -> Callable[..., Any] | None:
    """PyLate's own ``module.attr``, even while patched; None without PyLate."""
    fn = _SAVED.get((module, attr))
    if fn is None:
        if not _pylate_available():
            return None
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return None
        fn = getattr(mod, attr, None)
    if fn is None or getattr(fn, "__module__", None) == __name__:
        return None
    return fn


def _call_original_scores(name: str, args: tuple[Any, ...], backend: str | None) -> torch.Tensor:
    fn = _original("pylate.scores", name)
    if fn is None:
        resolved = _resolve_backend(backend)
        if resolved in ("flash", "lik"):
            raise RuntimeError(
                f"backend={resolved!r} needs PyLate and an accelerator. " + _INSTALL_HINT
            )
        return _TORCH_REFERENCE[name](*args)
    if backend is not None:
        return fn(*args, backend=backend)
    return fn(*args)


def _torch_colbert_scores(q: Any, d: Any, qm: Any = None, dm: Any = None) -> torch.Tensor:
    """PyLate's torch path, for fall-throughs when PyLate is not installed."""
    q, d = _to_tensor(q), _to_tensor(d)
    s = torch.einsum("ash,bth->abst", q, d)
    if qm is not None:
        s = s * _to_tensor(qm).unsqueeze(1).unsqueeze(3)
    if dm is not None:
        s = s * _to_tensor(dm).unsqueeze(0).unsqueeze(2)
    return s.max(axis=-1).values.sum(axis=-1)


def _torch_colbert_kd_scores(q: Any, d: Any, qm: Any = None, dm: Any = None) -> torch.Tensor:
    """PyLate's torch path of ``colbert_kd_scores`` (fall-through without PyLate)."""
    q, d = _to_tensor(q), _to_tensor(d)
    s = torch.einsum("ash,abth->abst", q, d)
    if qm is not None:
        s = s * _to_tensor(qm).unsqueeze(1).unsqueeze(3)
    if dm is not None:
        s = s * _to_tensor(dm).unsqueeze(2)
    return s.max(axis=-1).values.sum(axis=-1)


def _torch_colbert_scores_pairwise(q: Any, d: Any) -> torch.Tensor:
    """PyLate's torch path of ``colbert_scores_pairwise`` (fall-through without PyLate)."""
    out = [
        torch.einsum("sh,th->st", _to_tensor(a), _to_tensor(b)).max(axis=-1).values.sum()
        for a, b in zip(q, d)
    ]
    return torch.stack(out, dim=0)


def _to_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], torch.Tensor):
        return torch.stack(list(x))
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


_TORCH_REFERENCE: dict[str, Callable[..., torch.Tensor]] = {
    "colbert_scores": _torch_colbert_scores,
    "colbert_kd_scores": _torch_colbert_kd_scores,
    "colbert_scores_pairwise": _torch_colbert_scores_pairwise,
}


# --------------------------------------------------------------------------
# Core scoring helpers (numpy in, numpy out)
# --------------------------------------------------------------------------


def _zero_floor_arg(zero_floor: np.ndarray | None) -> Any:
    """Pass ``zero_floor`` to the core in its cheapest form."""
    if zero_floor is None or not zero_floor.any():
        return None
    if zero_floor.all():
        return True
    return zero_floor


def _batch_scores(
    queries: np.ndarray | list[np.ndarray],
    docs: Any,
    n_docs: int,
    queries_mask: np.ndarray | None,
    zero_floor: np.ndarray | None,
) -> np.ndarray:
    """``(n_queries, n_docs)`` float32 MaxSim, masked query tokens skipped."""
    n_queries = len(queries)
    out = np.zeros((n_queries, n_docs), dtype=np.float32)
    if n_queries == 0 or n_docs == 0:
        return out
    zf = _zero_floor_arg(zero_floor)
    if isinstance(queries, np.ndarray):
        if queries.shape[1] == 0:
            return out
        if queries_mask is None or queries_mask.all():
            out[:] = _maxsim.scores_batch(queries, docs, zero_floor=zf)
            return out
        rows = queries_mask.any(axis=1)
        if rows.any():
            out[rows] = _maxsim.scores_batch(
                np.ascontiguousarray(queries[rows]),
                docs,
                queries_mask=np.ascontiguousarray(queries_mask[rows]),
                zero_floor=zf,
            )
        return out
    for i, q in enumerate(queries):
        if q.shape[0]:
            out[i] = _maxsim.scores(q, docs, zero_floor=zf)
    return out


def _unmasked_documents(
    docs: np.ndarray, documents_mask: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The unmasked tokens of each padded document, as PyLate scores them.

    ``docs`` is ``(Nd, Ld, d)`` float32, ``documents_mask`` ``(Nd, Ld)`` bool.
    Returns ``(kept, keep, zero_floor)``: ``kept`` holds one ``(n_i, d)``
    array per document with at least one unmasked token (views when the
    mask is a prefix, the usual padding; else views of one compacted copy),
    ``keep`` is the ``(Nd,)`` bool array of those documents, and
    ``zero_floor`` is ``(len(kept),)`` bool: the kept documents that lost a
    token, whose similarities PyLate floors at 0 (it multiplies masked
    similarities by 0). Documents with no unmasked token score exactly 0.
    """
    n_docs, doc_len, dim = docs.shape
    lengths = documents_mask.sum(axis=1, dtype=np.int64)
    keep = lengths > 0
    kept_lengths = lengths[keep].tolist()
    if np.array_equal(documents_mask, np.arange(doc_len) < lengths[:, None]):
        kept = [docs[i, :n] for i, n in zip(np.flatnonzero(keep).tolist(), kept_lengths)]
    else:
        flat = docs.reshape(n_docs * doc_len, dim)[documents_mask.reshape(-1)]
        kept = np.split(flat, np.cumsum(kept_lengths)[:-1]) if kept_lengths else []
    return kept, keep, lengths[keep] < doc_len


def _score_matrix(
    queries: np.ndarray | list[np.ndarray],
    docs: np.ndarray | list[np.ndarray],
    queries_mask: np.ndarray | None,
    documents_mask: np.ndarray | None,
    docs_name: str,
) -> np.ndarray:
    """PyLate's masked ``colbert_scores`` as a float32 ``(Nq, Nd)`` array."""
    n_docs = len(docs)
    if documents_mask is None:
        if isinstance(docs, np.ndarray):
            if n_docs and docs.shape[1] == 0:
                raise ValueError(
                    f"{docs_name}: documents have zero tokens (shape {docs.shape}); "
                    "MaxSim needs at least one token per document"
                )
        else:
            for i, d in enumerate(docs):
                if d.shape[0] == 0:
                    raise ValueError(
                        f"{docs_name}[{i}]: document has zero tokens (shape {d.shape})"
                    )
        return _batch_scores(queries, docs, n_docs, queries_mask, None)
    kept, keep, zero_floor = _unmasked_documents(docs, documents_mask)
    out = np.zeros((len(queries), n_docs), dtype=np.float32)
    if kept:
        out[:, keep] = _batch_scores(queries, kept, len(kept), queries_mask, zero_floor)
    return out


# --------------------------------------------------------------------------
# pylate.scores drop-ins
# --------------------------------------------------------------------------


def _use_maxsim(backend: str | None, *objs: Any) -> bool:
    """False when PyLate's original should handle the call."""
    if _resolve_backend(backend) != "auto":
        return False
    if _on_accelerator(*objs) or _needs_grad(*objs):
        return False
    return not any(_is_integer_input(o) for o in objs[:2])


def colbert_scores(
    queries_embeddings: list | np.ndarray | torch.Tensor,
    documents_embeddings: list | np.ndarray | torch.Tensor,
    queries_mask: torch.Tensor | np.ndarray | None = None,
    documents_mask: torch.Tensor | np.ndarray | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """MaxSim of every query against every document, as PyLate computes it.

    Same contract as :func:`pylate.scores.colbert_scores`.

    Parameters
    ----------
    queries_embeddings
        ``(Nq, Lq, d)`` float tensor/array, or a list of ``(Lq, d)`` items.
    documents_embeddings
        ``(Nd, Ld, d)`` float tensor/array, or a list of ``(Ld, d)`` items.
        A list of items of different lengths (which PyLate rejects) is scored
        as is, without padding.
    queries_mask
        Optional ``(Nq, Lq)`` 0/1 (or bool) mask; a masked query token adds 0.
    documents_mask
        Optional ``(Nd, Ld)`` 0/1 (or bool) mask; a masked document token has
        similarity 0, so each query token of that document scores
        ``max(0, best unmasked similarity)``.
    backend
        PyLate's scoring backend. ``None``/``"auto"`` scores CPU inputs here;
        any other value (or ``PYLATE_SCORES_BACKEND``) is handed to PyLate.

    Returns
    -------
    torch.Tensor
        ``(Nq, Nd)`` scores on the CPU, dtype as PyLate's (float32 for float32
        inputs). Computed in float32.
    """
    args = (queries_embeddings, documents_embeddings, queries_mask, documents_mask)
    if not _use_maxsim(backend, *args):
        return _call_original_scores("colbert_scores", args, backend)
    queries = _batch(queries_embeddings, "queries_embeddings")
    docs = _batch(documents_embeddings, "documents_embeddings")
    _check_dims(queries, docs, "queries_embeddings", "documents_embeddings")
    qm = dm = None
    if queries_mask is not None:
        if not isinstance(queries, np.ndarray):
            raise ValueError(
                "queries_mask: needs rectangular queries_embeddings, got queries "
                f"of different lengths ({_describe(queries_embeddings)})"
            )
        qm = _mask(queries_mask, "queries_mask", queries.shape[:2])
    if documents_mask is not None:
        if not isinstance(docs, np.ndarray):
            raise ValueError(
                "documents_mask: needs rectangular documents_embeddings, got "
                f"documents of different lengths ({_describe(documents_embeddings)})"
            )
        dm = _mask(documents_mask, "documents_mask", docs.shape[:2])
    if qm is _NOT_BINARY or dm is _NOT_BINARY:
        return _call_original_scores("colbert_scores", args, backend)
    out = _score_matrix(queries, docs, qm, dm, "documents_embeddings")  # type: ignore[arg-type]
    return torch.from_numpy(out).to(_out_dtype(*args))


def _check_dims(a: Any, b: Any, name_a: str, name_b: str) -> None:
    def dim(x: Any) -> int | None:
        if isinstance(x, np.ndarray):
            return x.shape[-1]
        return x[0].shape[-1] if len(x) else None

    da, db = dim(a), dim(b)
    if da is not None and db is not None and da != db:
        raise ValueError(f"{name_a} has embedding size {da} but {name_b} has {db}")


def colbert_kd_scores(
    queries_embeddings: list | np.ndarray | torch.Tensor,
    documents_embeddings: list | np.ndarray | torch.Tensor,
    queries_mask: torch.Tensor | np.ndarray | None = None,
    documents_mask: torch.Tensor | np.ndarray | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """MaxSim of each query against its own candidate documents.

    Same contract as :func:`pylate.scores.colbert_kd_scores`.

    Parameters
    ----------
    queries_embeddings
        ``(B, Lq, d)`` float tensor/array (or list of ``(Lq, d)`` items).
    documents_embeddings
        ``(B, N, Ld, d)``: ``N`` candidates per query.
    queries_mask
        Optional ``(B, Lq)`` 0/1 mask (masked query tokens add 0).
    documents_mask
        Optional ``(B, N, Ld)`` 0/1 mask (masked tokens have similarity 0).
    backend
        As in :func:`colbert_scores`.

    Returns
    -------
    torch.Tensor
        ``(B, N)`` scores, dtype as PyLate's.
    """
    args = (queries_embeddings, documents_embeddings, queries_mask, documents_mask)
    if not _use_maxsim(backend, *args):
        return _call_original_scores("colbert_kd_scores", args, backend)
    queries = _array_f32(queries_embeddings, "queries_embeddings")
    docs = _array_f32(documents_embeddings, "documents_embeddings")
    if queries.ndim != 3:
        raise ValueError(
            "queries_embeddings: expected a 3-D (batch, n_tokens, dim) array, "
            f"got {_describe(queries_embeddings)}"
        )
    if docs.ndim != 4 or docs.shape[0] != queries.shape[0]:
        raise ValueError(
            "documents_embeddings: expected a 4-D (batch, n_candidates, n_tokens, dim) "
            f"array with batch {queries.shape[0]}, got {_describe(documents_embeddings)}"
        )
    _check_dims(queries, docs, "queries_embeddings", "documents_embeddings")
    qm = _mask(queries_mask, "queries_mask", queries.shape[:2])
    dm = _mask(documents_mask, "documents_mask", docs.shape[:3])
    if qm is _NOT_BINARY or dm is _NOT_BINARY:
        return _call_original_scores("colbert_kd_scores", args, backend)
    batch, n_candidates, doc_len, _ = docs.shape
    if dm is None and n_candidates and doc_len == 0:
        raise ValueError(
            "documents_embeddings: documents have zero tokens "
            f"({_describe(documents_embeddings)}); MaxSim needs at least one token per document"
        )
    # Every row in one native call (query b against its own candidates):
    # a call per row let the thread pool fall asleep between rows.
    group_queries: list[np.ndarray] = []
    group_docs: list[np.ndarray] = []
    floors: list[np.ndarray] = []
    targets: list[np.ndarray] = []  # flat positions in `out` of each group's documents
    all_kept = np.ones(n_candidates, dtype=bool)
    no_floor = np.zeros(n_candidates, dtype=bool)
    for b in range(batch):
        query = queries[b] if qm is None else queries[b][qm[b]]  # type: ignore[index]
        if query.shape[0] == 0:
            continue  # every query token masked: the row scores 0
        if dm is None:
            kept, keep, floor = list(docs[b]), all_kept, no_floor
        else:
            kept, keep, floor = _unmasked_documents(docs[b], dm[b])  # type: ignore[index]
        if not kept:
            continue  # every document token masked: every similarity is 0
        group_queries.append(query)
        group_docs.extend(kept)
        floors.append(floor)
        targets.append(b * n_candidates + np.flatnonzero(keep))
    out = np.zeros((batch, n_candidates), dtype=np.float32)
    if group_queries:
        offsets = [0, *itertools.accumulate(len(t) for t in targets)]
        zero_floor = np.concatenate(floors)
        scores = _native.maxsim_list_groups(
            group_queries, group_docs, offsets, zero_floor if zero_floor.any() else None
        )
        out.reshape(-1)[np.concatenate(targets)] = scores
    return torch.from_numpy(out).to(_out_dtype(*args))


def colbert_scores_pairwise(
    queries_embeddings: list | np.ndarray | torch.Tensor,
    documents_embeddings: list | np.ndarray | torch.Tensor,
    backend: str | None = None,
) -> torch.Tensor:
    """MaxSim of query ``i`` against document ``i``, for each pair.

    Same contract as :func:`pylate.scores.colbert_scores_pairwise`.

    Parameters
    ----------
    queries_embeddings
        ``(B, Lq, d)`` tensor/array or a sequence of ``(Lq_i, d)`` items.
    documents_embeddings
        ``(B, Ld, d)`` tensor/array or a sequence of ``(Ld_i, d)`` items
        (lengths may differ; nothing is padded).
    backend
        As in :func:`colbert_scores`.

    Returns
    -------
    torch.Tensor
        ``(B,)`` scores (pairs beyond the shorter input are dropped, like
        PyLate's ``zip``).
    """
    args = (queries_embeddings, documents_embeddings)
    if not _use_maxsim(backend, *args):
        return _call_original_scores("colbert_scores_pairwise", args, backend)
    dtype: torch.dtype | None = None
    pairs: list[tuple[int, np.ndarray, np.ndarray]] = []  # (i, query, doc), query non-empty
    n_pairs = 0
    for i, (q, d) in enumerate(zip(queries_embeddings, documents_embeddings)):
        qa = _token_matrix(q, f"queries_embeddings[{i}]")
        da = _token_matrix(d, f"documents_embeddings[{i}]")
        if qa.shape[1] != da.shape[1]:
            raise ValueError(
                f"queries_embeddings[{i}] has embedding size {qa.shape[1]} but "
                f"documents_embeddings[{i}] has {da.shape[1]}"
            )
        if da.shape[0] == 0:
            raise ValueError(
                f"documents_embeddings[{i}]: document has zero tokens (shape {da.shape})"
            )
        pair_dtype = torch.promote_types(_torch_dtype(q), _torch_dtype(d))
        dtype = pair_dtype if dtype is None else torch.promote_types(dtype, pair_dtype)
        n_pairs += 1
        if qa.shape[0]:  # a query without tokens scores 0
            pairs.append((i, qa, da))
    values = np.zeros(n_pairs, dtype=np.float32)
    if pairs:
        # Every pair in one native call (a group of one document per query).
        positions, queries, docs = zip(*pairs)
        offsets = list(range(len(pairs) + 1))
        values[list(positions)] = _native.maxsim_list_groups(list(queries), list(docs), offsets)
    out = torch.from_numpy(values)
    if dtype is not None and dtype.is_floating_point:
        out = out.to(dtype)
    return out


# --------------------------------------------------------------------------
# pylate.rank.rerank drop-in
# --------------------------------------------------------------------------


def _split_outer(x: Any) -> Any:
    """PyLate's ``rank.reshape_embeddings``: a 2-D input is one item."""
    if isinstance(x, (torch.Tensor, np.ndarray)) and x.ndim == 2:
        return x[None]
    return x


def _rerank_falls_through(queries_embeddings: Any, device: Any) -> bool:
    if device is not None:
        return torch.device(device).type != "cpu"
    if isinstance(queries_embeddings, torch.Tensor):
        return queries_embeddings.device.type != "cpu"
    if isinstance(queries_embeddings, (list, tuple)) and queries_embeddings:
        first = queries_embeddings[0]
        return isinstance(first, torch.Tensor) and first.device.type != "cpu"
    return False


def rerank(
    documents_ids: Sequence[Sequence[Any]],
    queries_embeddings: Any,
    documents_embeddings: Any,
    device: str | None = None,
    *,
    exact: bool = False,
) -> list[list[dict[str, Any]]]:
    """Rerank each query's candidates by MaxSim, best first.

    Same contract as :func:`pylate.rank.rerank`.

    Parameters
    ----------
    documents_ids
        Per query, the ids of its candidates.
    queries_embeddings
        Per query, a ``(Lq, d)`` tensor/array/list; or a ``(Nq, Lq, d)``
        tensor/array; a single 2-D input is one query.
    documents_embeddings
        Per query, a sequence of ``(Ld_i, d)`` candidate embeddings, aligned
        with ``documents_ids`` (or a 4-D array/tensor).
    device
        As in PyLate. A non-CPU device (or, with ``device=None``, queries on a
        non-CPU device) hands the call to PyLate's original ``rerank`` unless
        ``exact=True``, which always scores on the CPU.
    exact
        ``False`` (default): reproduce PyLate, including its zero padding:
        each candidate shorter than the longest candidate of its query scores
        ``max(0, best)`` per query token. ``True``: true MaxSim, no padding
        artefact. Nothing is padded in either mode.

    Returns
    -------
    list[list[dict]]
        Per query, ``{"id": ..., "score": float}`` dicts sorted best first,
        ordered with ``torch.sort`` exactly as PyLate orders them. In exact
        mode a candidate with zero tokens scores ``-inf``.
    """
    if not exact and _rerank_falls_through(queries_embeddings, device):
        original = _original("pylate.rank.rank", "rerank")
        if original is not None:
            return original(
                documents_ids=documents_ids,
                queries_embeddings=queries_embeddings,
                documents_embeddings=documents_embeddings,
                device=device,
            )
    queries = _split_outer(queries_embeddings)
    candidates = _split_outer(documents_embeddings)
    jobs = [
        _RerankJob.of(qi, query, ids, docs, exact)
        for qi, (query, ids, docs) in enumerate(zip(queries, documents_ids, candidates))
    ]
    _score_jobs(jobs)
    with _gc_paused():
        return [job.ranked() for job in jobs]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many small result dicts.

    Thousands of ``{"id", "score"}`` dicts trigger collections that walk the
    whole heap (large once torch and PyLate are imported); none of these
    objects can form cycles, so pausing is safe. The previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _RerankJob:
    """One query's rerank: its checked inputs, then its scores, then its ranking.

    ``rerank`` builds every job first (all argument errors are raised before
    any scoring), scores the jobs that need one plain MaxSim call in a single
    native call per candidate dtype (:func:`_score_jobs`), then ranks each job.
    """

    __slots__ = (
        "query",
        "query_matrix",
        "originals",
        "arrays",
        "ids",
        "zero_floor",
        "scores",
        "batched",
    )

    def __init__(
        self,
        query: Any,
        query_matrix: np.ndarray,
        originals: list[Any],
        arrays: list[np.ndarray],
        ids: Sequence[Any],
        zero_floor: np.ndarray | None,
        scores: np.ndarray,
        batched: bool,
    ) -> None:
        self.query = query  # the caller's query (for PyLate's output dtype)
        self.query_matrix = query_matrix  # C-contiguous float32 (nq, d)
        self.originals = originals  # the caller's candidates (idem)
        # C-contiguous (len_i, d) candidates: float32, or float16 when every
        # candidate is float16 (scored as stored, widened exactly in registers).
        self.arrays = arrays
        self.ids = ids
        self.zero_floor = zero_floor  # PyLate's padding artefact: max(0, .) per token
        self.scores = scores  # float32 (len(arrays),): final unless batched
        self.batched = batched  # scores still to come from _score_jobs

    @classmethod
    def of(
        cls, qi: int, query: Any, ids: Sequence[Any], docs: Iterable[Any], exact: bool
    ) -> _RerankJob:
        """Checks query ``qi``'s inputs; scores it at once unless it can be batched."""
        q = _token_matrix(query, f"queries_embeddings[{qi}]")
        originals = docs if isinstance(docs, list) else list(docs)
        views = tensor_views(originals)
        width = _native.ready_f32_list(views)
        if width is not None:
            # C-contiguous float32 (len >= 1, d) numpy arrays (or views of CPU
            # tensors) of one width, as PyLate's encode returns them: nothing
            # to convert or check per candidate.
            arrays = views
            dims = {width}
        elif (half := _native.ready_half_list(views)) is not None and half[0] == "float16":
            # float16 candidates (a half-precision model's output), as they
            # are: converting each to float32 in numpy cost about 2 ns per
            # value, 6x the scoring.
            arrays = views
            dims = {half[1]}
        else:
            arrays = [
                _token_matrix(d, f"documents_embeddings[{qi}][{j}]")
                for j, d in enumerate(originals)
            ]
            dims = {a.shape[1] for a in arrays}
        empty = np.zeros(0, dtype=np.float32)
        if not arrays:
            return cls(query, q, originals, arrays, ids, None, empty, batched=False)
        if dims != {q.shape[1]}:
            raise ValueError(
                f"documents_embeddings[{qi}]: embedding sizes {sorted(dims)} do not "
                f"match queries_embeddings[{qi}] ({q.shape[1]})"
            )
        if len(ids) < len(arrays):
            raise ValueError(
                f"documents_ids[{qi}] has {len(ids)} ids for {len(arrays)} candidate embeddings"
            )
        lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
        nonempty = lengths > 0
        if exact:
            zero_floor = None
            scores = np.full(len(arrays), -np.inf, dtype=np.float32)
        else:
            # PyLate pads every candidate to the longest one with zero vectors.
            zero_floor = lengths < lengths.max()
            scores = np.zeros(len(arrays), dtype=np.float32)
        job = cls(query, q, originals, arrays, ids, zero_floor, scores, batched=False)
        if q.shape[0] == 0:
            scores[:] = 0.0
        elif nonempty.all():
            # Every array is C-contiguous 2-D (float32, or all float16) of the
            # query's width with at least one token: one plain call, batched
            # with the other queries' of the same dtype.
            job.batched = True
        elif nonempty.any():
            kept = [a for a, k in zip(arrays, nonempty) if k]
            zf = None if zero_floor is None else zero_floor[nonempty]
            scores[nonempty] = _maxsim.scores(q, kept, zero_floor=_zero_floor_arg(zf))
        return job

    def ranked(self) -> list[dict[str, Any]]:
        """``{"id", "score"}`` dicts, best first, ordered by ``torch.sort`` as PyLate does."""
        if not self.arrays:
            return []
        # PyLate scores in the promoted dtype of the query and the (padded) docs.
        dtype = _out_dtype(self.query, self.originals[0])
        scores_t = torch.from_numpy(np.asarray(self.scores, dtype=np.float32))
        if dtype != torch.float32:
            scores_t = scores_t.to(dtype)
        sorted_scores, order = torch.sort(input=scores_t, descending=True)
        ids = self.ids
        return [{"id": ids[i], "score": s} for i, s in zip(order.tolist(), sorted_scores.tolist())]


def _score_jobs(jobs: list[_RerankJob]) -> None:
    """Scores every batched job in one native call per candidate dtype (each
    query against its own candidates): separate calls with Python work between
    them let the thread pool fall asleep, and waking it cost about 1 ms per
    query on two threads."""
    for half in (False, True):
        batched = [
            job for job in jobs if job.batched and (job.arrays[0].dtype == np.float16) == half
        ]
        if not batched:
            continue
        counts = [len(job.arrays) for job in batched]
        offsets = [0, *itertools.accumulate(counts)]
        floors = [
            np.zeros(n, dtype=bool) if job.zero_floor is None else job.zero_floor
            for job, n in zip(batched, counts)
        ]
        zero_floor = np.concatenate(floors)
        floor_arg = zero_floor if zero_floor.any() else None
        queries = [job.query_matrix for job in batched]
        if half:
            halves = [a for job in batched for a in job.arrays]  # float16, taken as they are
            scores = _native.maxsim_half_list_groups(queries, halves, offsets, False, floor_arg)
        else:
            docs = [a for job in batched for a in job.arrays]
            scores = _native.maxsim_list_groups(queries, docs, offsets, floor_arg)
        for job, lo, hi in zip(batched, offsets, offsets[1:]):
            job.scores = scores[lo:hi]
            job.batched = False


# --------------------------------------------------------------------------
# Patching PyLate
# --------------------------------------------------------------------------

# (module, attribute, replacement name). Modules missing from an older PyLate
# are skipped. ``pylate.scores`` alone does not reach ``rerank`` (it imports
# ``colbert_scores`` at import time), hence the explicit entries.
_TARGETS: tuple[tuple[str, str, str], ...] = (
    ("pylate.rank", "rerank", "rerank"),
    ("pylate.rank.rank", "rerank", "rerank"),
    ("pylate.retrieve.colbert", "rerank", "rerank"),
    ("pylate.rank.rank", "colbert_scores", "colbert_scores"),
    ("pylate.scores", "colbert_scores", "colbert_scores"),
    ("pylate.scores", "colbert_scores_pairwise", "colbert_scores_pairwise"),
    ("pylate.scores", "colbert_kd_scores", "colbert_kd_scores"),
)


def _require_pylate() -> None:
    try:
        import pylate  # noqa: F401
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc


def patch() -> list[str]:
    """Route PyLate's CPU scoring and reranking through maxsim.

    Replaces ``pylate.rank.rerank``, ``pylate.rank.rank.rerank``,
    ``pylate.retrieve.colbert.rerank``, ``pylate.rank.rank.colbert_scores``
    and ``pylate.scores.colbert_scores`` (plus ``pylate.scores``'
    ``colbert_scores_pairwise`` and ``colbert_kd_scores``). Calls on CUDA/MPS
    tensors, calls that need gradients and explicit PyLate backends still run
    PyLate's originals. Idempotent.

    Returns
    -------
    list[str]
        The ``module.attribute`` names that are patched.

    Raises
    ------
    ImportError
        If PyLate is not installed (the message says how to install it).
    """
    _require_pylate()
    this = sys.modules[__name__]
    with _LOCK:
        for module_name, attr, replacement in _TARGETS:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            if not hasattr(module, attr) or (module_name, attr) in _SAVED:
                continue
            _SAVED[(module_name, attr)] = getattr(module, attr)
            setattr(module, attr, getattr(this, replacement))
        return [f"{m}.{a}" for m, a in _SAVED]


def unpatch() -> None:
    """Restore PyLate's original functions. A no-op when not patched."""
    with _LOCK:
        for (module_name, attr), original in list(_SAVED.items()):
            module = sys.modules.get(module_name)
            if module is not None:
                setattr(module, attr, original)
            del _SAVED[(module_name, attr)]


def is_patched() -> bool:
    """True while :func:`patch` is in effect."""
    return bool(_SAVED)


@contextlib.contextmanager
def patched() -> Iterator[None]:
    """Context manager: PyLate patched inside the block, as before after it.

    Nested use is fine; only the outermost block that patched unpatches.
    """
    with _LOCK:
        was_patched = is_patched()
        patch()
    try:
        yield
    finally:
        if not was_patched:
            unpatch()


# --------------------------------------------------------------------------
# End-to-end index
# --------------------------------------------------------------------------


def _topk_desc(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, best first, ties to the lower index."""
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
        threshold = scores[part].min()
        candidates = np.flatnonzero(scores >= threshold)
    else:
        candidates = np.arange(n)
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order[:k]]


class Index:
    """An end-to-end PyLate index that searches with exact MaxSim.

    Stores every document's token embeddings packed in one ``(total_tokens,
    d)`` array (float32, or float16 to halve memory) and scores queries
    against all of them (or a ``subset``) with :mod:`maxsim`: no HNSW, no
    quantisation, no candidate generation, no padding. Implements PyLate's
    index interface (``add_documents``, ``remove_documents``, ``__call__``,
    ``get_documents_embeddings``), with ``is_end_to_end_index = True``, so
    ``pylate.retrieve.ColBERT(index=Index())`` returns its results directly.

    Parameters
    ----------
    index_folder
        Folder to persist the index in (``index_folder/index_name``). ``None``
        (default) keeps it in memory only. When set, the index is saved after
        every ``add_documents``/``remove_documents`` and loaded on creation.
    index_name
        Sub-folder name inside ``index_folder``.
    override
        Start empty even if a saved index exists.
    dtype
        Storage dtype: ``"float32"`` (default) or ``"float16"``. Scores are
        always float32: float16 rows are widened exactly in registers, so they
        score as a float32 copy of the stored values would.
    chunk_tokens
        Accepted for compatibility and unused: float16 rows are no longer
        converted in chunks.

    Examples
    --------
    >>> import numpy as np
    >>> from maxsim.pylate import Index
    >>> rng = np.random.default_rng(0)
    >>> index = Index().add_documents(
    ...     ["a", "b"], [rng.random((5, 8), dtype=np.float32), rng.random((3, 8), dtype=np.float32)]
    ... )
    >>> [r["id"] for r in index(rng.random((1, 4, 8), dtype=np.float32), k=2)[0]]  # doctest: +SKIP
    """

    is_end_to_end_index = True

    def __init__(
        self,
        index_folder: str | os.PathLike[str] | None = None,
        index_name: str = "maxsim",
        override: bool = False,
        dtype: str | np.dtype = "float32",
        chunk_tokens: int = 1 << 20,
    ) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
            raise ValueError(f"dtype: expected 'float32' or 'float16', got {dtype!r}")
        del chunk_tokens  # unused, see the docstring
        self.path = (
            None if index_folder is None else os.path.join(os.fspath(index_folder), index_name)
        )
        self._ids: list[Any] = []
        self._positions: dict[Any, int] = {}
        self._lengths = np.zeros(0, dtype=np.int64)
        self._flat: np.ndarray | None = None  # (total_tokens, dim) self.dtype
        self._pending: list[np.ndarray] = []
        self._dim: int | None = None
        if self.path is not None and not override and os.path.exists(self._file("ids.pkl")):
            self._load()
        _register_with_pylate()

    # -- storage ----------------------------------------------------------

    def _file(self, name: str) -> str:
        assert self.path is not None
        return os.path.join(self.path, name)

    def _save(self) -> None:
        if self.path is None:
            return
        os.makedirs(self.path, exist_ok=True)
        flat = self._consolidated()
        np.save(self._file("embeddings.npy"), flat)
        np.save(self._file("lengths.npy"), self._lengths)
        with open(self._file("ids.pkl"), "wb") as f:
            pickle.dump({"ids": self._ids, "dim": self._dim, "dtype": self.dtype.str}, f)

    def _load(self) -> None:
        with open(self._file("ids.pkl"), "rb") as f:
            meta = pickle.load(f)
        self._ids = list(meta["ids"])
        self._positions = {doc_id: i for i, doc_id in enumerate(self._ids)}
        self._dim = meta["dim"]
        self._lengths = np.load(self._file("lengths.npy"))
        self._flat = np.load(self._file("embeddings.npy")).astype(self.dtype, copy=False)

    def _consolidated(self) -> np.ndarray:
        """The packed ``(total_tokens, dim)`` store (appends merged lazily)."""
        if self._pending:
            parts = ([] if self._flat is None else [self._flat]) + self._pending
            self._flat = np.concatenate(parts) if len(parts) > 1 else parts[0]
            self._pending = []
        if self._flat is None:
            self._flat = np.zeros((0, self._dim or 0), dtype=self.dtype)
        return self._flat

    def _offsets(self) -> np.ndarray:
        offsets = np.zeros(self._lengths.shape[0] + 1, dtype=np.int64)
        np.cumsum(self._lengths, out=offsets[1:])
        return offsets

    def __len__(self) -> int:
        return len(self._ids)

    # -- PyLate interface -------------------------------------------------

    def add_documents(
        self,
        documents_ids: Any,
        documents_embeddings: Any,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> Index:
        """Add documents; an id already present is replaced.

        Parameters
        ----------
        documents_ids
            One id or a sequence of ids (any hashable: str, int, ...).
        documents_embeddings
            Per document a ``(n_tokens, d)`` tensor/array/list, or a 3-D
            ``(n_docs, n_tokens, d)`` tensor/array (a 2-D one is one
            document). Zero-token documents are rejected.
        batch_size, kwargs
            Accepted for compatibility with PyLate's indexes; unused.

        Returns
        -------
        Index
            ``self``.
        """
        if isinstance(documents_ids, (str, bytes)) or not isinstance(documents_ids, Iterable):
            documents_ids = [documents_ids]
        documents_ids = list(documents_ids)
        docs = _split_outer(documents_embeddings)
        arrays = [_token_matrix(d, f"documents_embeddings[{i}]") for i, d in enumerate(docs)]
        if len(arrays) != len(documents_ids):
            raise ValueError(
                f"documents_ids has {len(documents_ids)} ids but documents_embeddings "
                f"has {len(arrays)} documents ({_describe(documents_embeddings)})"
            )
        if len(set(documents_ids)) != len(documents_ids):
            raise ValueError("documents_ids: contains duplicate ids")
        for i, a in enumerate(arrays):
            if a.shape[0] == 0:
                raise ValueError(
                    f"documents_embeddings[{i}]: document has zero tokens (shape {a.shape})"
                )
            if self._dim is None:
                self._dim = a.shape[1]
            elif a.shape[1] != self._dim:
                raise ValueError(
                    f"documents_embeddings[{i}]: embedding size {a.shape[1]} does not "
                    f"match the index's {self._dim} (shape {a.shape})"
                )
        if not arrays:
            return self
        present = [doc_id for doc_id in documents_ids if doc_id in self._positions]
        if present:
            self._remove(present)
        start = len(self._ids)
        self._ids.extend(documents_ids)
        self._positions.update((doc_id, start + i) for i, doc_id in enumerate(documents_ids))
        self._lengths = np.concatenate(
            [self._lengths, np.array([a.shape[0] for a in arrays], dtype=np.int64)]
        )
        self._pending.append(np.concatenate(arrays).astype(self.dtype, copy=False))
        self._save()
        return self

    def remove_documents(self, documents_ids: Any) -> Index:
        """Remove documents by id.

        Raises
        ------
        KeyError
            If an id is not in the index (nothing is removed then).
        """
        if isinstance(documents_ids, (str, bytes)) or not isinstance(documents_ids, Iterable):
            documents_ids = [documents_ids]
        documents_ids = list(documents_ids)
        missing = [doc_id for doc_id in documents_ids if doc_id not in self._positions]
        if missing:
            raise KeyError(f"documents_ids not in the index: {missing[:10]!r}")
        self._remove(documents_ids)
        self._save()
        return self

    def update_documents(self, documents_ids: Any, documents_embeddings: Any) -> Index:
        """Replace (or add) documents; same arguments as :meth:`add_documents`."""
        return self.add_documents(documents_ids, documents_embeddings)

    def _remove(self, documents_ids: list[Any]) -> None:
        flat = self._consolidated()
        keep_docs = np.ones(len(self._ids), dtype=bool)
        keep_docs[[self._positions[doc_id] for doc_id in documents_ids]] = False
        self._flat = flat[np.repeat(keep_docs, self._lengths)]
        self._lengths = self._lengths[keep_docs]
        self._ids = [doc_id for doc_id, k in zip(self._ids, keep_docs) if k]
        self._positions = {doc_id: i for i, doc_id in enumerate(self._ids)}

    def get_documents_embeddings(
        self, documents_ids: Sequence[Sequence[Any]]
    ) -> list[list[np.ndarray]]:
        """Per group of ids, the stored ``(n_tokens, d)`` float32 embeddings (copies)."""
        flat = self._consolidated()
        offsets = self._offsets()
        out = []
        for group in documents_ids:
            rows = []
            for doc_id in group:
                p = self._positions[doc_id]
                rows.append(np.array(flat[offsets[p] : offsets[p + 1]], dtype=np.float32))
            out.append(rows)
        return out

    def __call__(
        self,
        queries_embeddings: Any,
        k: int = 10,
        subset: Sequence[Any] | Sequence[Sequence[Any]] | None = None,
        **kwargs: Any,
    ) -> list[list[dict[str, Any]]]:
        """Exact MaxSim top-``k`` documents for each query.

        Parameters
        ----------
        queries_embeddings
            Per query a ``(Lq, d)`` tensor/array/list, or a ``(Nq, Lq, d)``
            tensor/array (a 2-D input is one query). Tensors may be on any
            device; they are scored on the CPU.
        k
            Documents per query.
        subset
            Optional ids to search among: one list for every query, or one
            list per query. Unknown ids are ignored.
        kwargs
            Accepted for compatibility; unused.

        Returns
        -------
        list[list[dict]]
            Per query, ``{"id", "score"}`` dicts, best first, ties to the
            document added first.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"k: expected an integer >= 1, got {k!r} ({type(k).__name__})")
        if k < 1:
            raise ValueError(f"k: must be at least 1, got {k}")
        if len(self._ids) == 0:
            raise ValueError("The index is empty, add documents before querying.")
        queries = [
            _token_matrix(q, f"queries_embeddings[{i}]")
            for i, q in enumerate(_split_outer(queries_embeddings))
        ]
        for i, q in enumerate(queries):
            if q.shape[1] != self._dim:
                raise ValueError(
                    f"queries_embeddings[{i}]: embedding size {q.shape[1]} does not "
                    f"match the index's {self._dim} (shape {q.shape})"
                )
        if subset is not None:
            per_query = len(subset) > 0 and isinstance(subset[0], (list, tuple, np.ndarray))
            if per_query and len(subset) != len(queries):
                raise ValueError(f"subset: {len(subset)} lists for {len(queries)} queries")
            return [
                self._search_subset(q, k, subset[i] if per_query else subset)
                for i, q in enumerate(queries)
            ]
        all_scores = self._score_all(queries)
        return [self._results(s, _topk_desc(s, k), None) for s in all_scores]

    # -- search -----------------------------------------------------------

    def _results(
        self, scores: np.ndarray, top: np.ndarray, positions: np.ndarray | None
    ) -> list[dict[str, Any]]:
        ids = self._ids
        pos = top if positions is None else positions[top]
        return [
            {"id": ids[p], "score": float(scores[t])} for p, t in zip(pos.tolist(), top.tolist())
        ]

    def _score_all(self, queries: list[np.ndarray]) -> list[np.ndarray]:
        """Per query, float32 scores against every document.

        float16 rows are scored as they are stored: maxsim widens them to
        float32 in registers, exactly, so the scores equal those of a float32
        copy, without converting or reading twice the bytes."""
        packed = _maxsim.PackedDocs(self._consolidated(), self._offsets())
        n_docs = len(self._ids)
        out = [np.zeros(n_docs, dtype=np.float32) for _ in queries]
        scored = [i for i, q in enumerate(queries) if q.shape[0]]  # no tokens: 0
        if scored:
            block = _maxsim.scores_batch([queries[i] for i in scored], packed)
            for row, i in enumerate(scored):
                out[i] = block[row]
        return out

    def _search_subset(self, query: np.ndarray, k: int, ids: Iterable[Any]) -> list[dict[str, Any]]:
        positions = np.array(
            sorted({self._positions[i] for i in ids if i in self._positions}),
            dtype=np.int64,
        )
        if positions.size == 0:
            return []
        flat = self._consolidated()
        offsets = self._offsets()
        # Views of the stored rows (float32 or float16, scored as stored).
        docs = [flat[offsets[p] : offsets[p + 1]] for p in positions.tolist()]
        if query.shape[0]:
            scores = np.asarray(_maxsim.scores(query, docs), dtype=np.float32)
        else:
            scores = np.zeros(len(docs), dtype=np.float32)
        return self._results(scores, _topk_desc(scores, k), positions)


def _register_with_pylate() -> None:
    """Make :class:`Index` a virtual subclass of PyLate's index base class.

    Only when PyLate is already imported: constructing an index never pays
    for importing PyLate.
    """
    module = sys.modules.get("pylate.indexes.base")
    base = getattr(module, "Base", None)
    if base is not None and not issubclass(Index, base):
        base.register(Index)
