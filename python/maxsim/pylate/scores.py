"""Drop-ins for :mod:`pylate.scores`: ``colbert_scores``, ``colbert_scores_pairwise``
and ``colbert_kd_scores``, masks included.

Each keeps PyLate's contract (arguments, shapes, result dtype) and scores on
the CPU with :mod:`maxsim`, without materialising padding or the
``(Nq, Nd, Lq, Ld)`` similarity tensor PyLate's einsum builds. Calls maxsim
does not take (see :mod:`maxsim.pylate._fallback`) go to PyLate's original.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

from maxsim import _scoring
from maxsim._convert import describe

from ._fallback import call_original_scores, resolve_backend
from ._inputs import (
    NOT_BINARY,
    array_f32,
    binary_mask,
    check_dims,
    is_integer_input,
    needs_grad,
    on_accelerator,
    out_dtype,
    token_batch,
    token_matrix,
    torch_dtype,
)

__all__ = ["colbert_kd_scores", "colbert_scores", "colbert_scores_pairwise"]


def zero_floor_arg(zero_floor: np.ndarray | None) -> Any:
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
    zf = zero_floor_arg(zero_floor)
    if isinstance(queries, np.ndarray):
        if queries.shape[1] == 0:
            return out
        if queries_mask is None or queries_mask.all():
            out[:] = _scoring.scores_batch(queries, docs, zero_floor=zf)
            return out
        rows = queries_mask.any(axis=1)
        if rows.any():
            out[rows] = _scoring.scores_batch(
                np.ascontiguousarray(queries[rows]),
                docs,
                queries_mask=np.ascontiguousarray(queries_mask[rows]),
                zero_floor=zf,
            )
        return out
    for i, q in enumerate(queries):
        if q.shape[0]:
            out[i] = _scoring.scores(q, docs, zero_floor=zf)
    return out


def unmasked_documents(
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
    kept, keep, zero_floor = unmasked_documents(docs, documents_mask)
    out = np.zeros((len(queries), n_docs), dtype=np.float32)
    if kept:
        out[:, keep] = _batch_scores(queries, kept, len(kept), queries_mask, zero_floor)
    return out


def _use_maxsim(backend: str | None, *objs: Any) -> bool:
    """False when PyLate's original should handle the call."""
    if resolve_backend(backend) != "auto":
        return False
    if on_accelerator(*objs) or needs_grad(*objs):
        return False
    return not any(is_integer_input(o) for o in objs[:2])


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
        return call_original_scores("colbert_scores", args, backend)
    queries = token_batch(queries_embeddings, "queries_embeddings")
    docs = token_batch(documents_embeddings, "documents_embeddings")
    check_dims(queries, docs, "queries_embeddings", "documents_embeddings")
    qm = dm = None
    if queries_mask is not None:
        if not isinstance(queries, np.ndarray):
            raise ValueError(
                "queries_mask: needs rectangular queries_embeddings, got queries "
                f"of different lengths ({describe(queries_embeddings)})"
            )
        qm = binary_mask(queries_mask, "queries_mask", queries.shape[:2])
    if documents_mask is not None:
        if not isinstance(docs, np.ndarray):
            raise ValueError(
                "documents_mask: needs rectangular documents_embeddings, got "
                f"documents of different lengths ({describe(documents_embeddings)})"
            )
        dm = binary_mask(documents_mask, "documents_mask", docs.shape[:2])
    if qm is NOT_BINARY or dm is NOT_BINARY:
        return call_original_scores("colbert_scores", args, backend)
    out = _score_matrix(queries, docs, qm, dm, "documents_embeddings")  # type: ignore[arg-type]
    return torch.from_numpy(out).to(out_dtype(*args))


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
        return call_original_scores("colbert_kd_scores", args, backend)
    queries = array_f32(queries_embeddings, "queries_embeddings")
    docs = array_f32(documents_embeddings, "documents_embeddings")
    if queries.ndim != 3:
        raise ValueError(
            "queries_embeddings: expected a 3-D (batch, n_tokens, dim) array, "
            f"got {describe(queries_embeddings)}"
        )
    if docs.ndim != 4 or docs.shape[0] != queries.shape[0]:
        raise ValueError(
            "documents_embeddings: expected a 4-D (batch, n_candidates, n_tokens, dim) "
            f"array with batch {queries.shape[0]}, got {describe(documents_embeddings)}"
        )
    check_dims(queries, docs, "queries_embeddings", "documents_embeddings")
    qm = binary_mask(queries_mask, "queries_mask", queries.shape[:2])
    dm = binary_mask(documents_mask, "documents_mask", docs.shape[:3])
    if qm is NOT_BINARY or dm is NOT_BINARY:
        return call_original_scores("colbert_kd_scores", args, backend)
    batch, n_candidates, doc_len, _ = docs.shape
    if dm is None and n_candidates and doc_len == 0:
        raise ValueError(
            "documents_embeddings: documents have zero tokens "
            f"({describe(documents_embeddings)}); MaxSim needs at least one token per document"
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
            kept, keep, floor = unmasked_documents(docs[b], dm[b])  # type: ignore[index]
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
        scores = _scoring.scores_grouped(
            group_queries,
            group_docs,
            offsets,
            zero_floor=zero_floor if zero_floor.any() else None,
        )
        out.reshape(-1)[np.concatenate(targets)] = scores
    return torch.from_numpy(out).to(out_dtype(*args))


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
        return call_original_scores("colbert_scores_pairwise", args, backend)
    dtype: torch.dtype | None = None
    pairs: list[tuple[int, np.ndarray, np.ndarray]] = []  # (i, query, doc), query non-empty
    n_pairs = 0
    for i, (q, d) in enumerate(zip(queries_embeddings, documents_embeddings)):
        qa = token_matrix(q, f"queries_embeddings[{i}]")
        da = token_matrix(d, f"documents_embeddings[{i}]")
        if qa.shape[1] != da.shape[1]:
            raise ValueError(
                f"queries_embeddings[{i}] has embedding size {qa.shape[1]} but "
                f"documents_embeddings[{i}] has {da.shape[1]}"
            )
        if da.shape[0] == 0:
            raise ValueError(
                f"documents_embeddings[{i}]: document has zero tokens (shape {da.shape})"
            )
        pair_dtype = torch.promote_types(torch_dtype(q), torch_dtype(d))
        dtype = pair_dtype if dtype is None else torch.promote_types(dtype, pair_dtype)
        n_pairs += 1
        if qa.shape[0]:  # a query without tokens scores 0
            pairs.append((i, qa, da))
    values = np.zeros(n_pairs, dtype=np.float32)
    if pairs:
        # Every pair in one native call (a group of one document per query).
        positions, queries, docs = zip(*pairs)
        offsets = list(range(len(pairs) + 1))
        values[list(positions)] = _scoring.scores_grouped(list(queries), list(docs), offsets)
    out = torch.from_numpy(values)
    if dtype is not None and dtype.is_floating_point:
        out = out.to(dtype)
    return out
