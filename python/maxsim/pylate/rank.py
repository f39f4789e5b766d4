"""Drop-in for :func:`pylate.rank.rerank`.

By default it reproduces PyLate's zero-padding artefact (a candidate shorter
than the longest one of its query gets ``max(0, .)`` per query token);
``exact=True`` gives true MaxSim. Nothing is padded in either mode, and every
query's candidates are scored in one native call per candidate dtype.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from maxsim import _scoring
from maxsim._convert import tensor_views

from ._fallback import original
from ._inputs import out_dtype, split_outer, token_matrix
from .scores import zero_floor_arg

__all__ = ["rerank"]


def _falls_through(queries_embeddings: Any, device: Any) -> bool:
    """True when PyLate would rerank on a device other than the CPU."""
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
    if not exact and _falls_through(queries_embeddings, device):
        pylate_rerank = original("pylate.rank.rank", "rerank")
        if pylate_rerank is not None:
            return pylate_rerank(
                documents_ids=documents_ids,
                queries_embeddings=queries_embeddings,
                documents_embeddings=documents_embeddings,
                device=device,
            )
    queries = split_outer(queries_embeddings)
    candidates = split_outer(documents_embeddings)
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
        q = token_matrix(query, f"queries_embeddings[{qi}]")
        originals = docs if isinstance(docs, list) else list(docs)
        views = tensor_views(originals)
        ready = _scoring.ready_doc_list(views)
        if ready is not None and ready[0] in ("float32", "float16"):
            # C-contiguous (len >= 1, d) numpy arrays (or views of CPU tensors)
            # of one width, float32 as PyLate's encode returns them or float16
            # from a half-precision model: scored as they are, with nothing to
            # convert or check per candidate (float16 is widened exactly in
            # registers, so its scores equal those of a float32 copy).
            arrays = views
            dims = {ready[1]}
        else:
            arrays = [
                token_matrix(d, f"documents_embeddings[{qi}][{j}]") for j, d in enumerate(originals)
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
            scores[nonempty] = _scoring.scores(q, kept, zero_floor=zero_floor_arg(zf))
        return job

    def ranked(self) -> list[dict[str, Any]]:
        """``{"id", "score"}`` dicts, best first, ordered by ``torch.sort`` as PyLate does."""
        if not self.arrays:
            return []
        # PyLate scores in the promoted dtype of the query and the (padded) docs.
        dtype = out_dtype(self.query, self.originals[0])
        scores_t = torch.from_numpy(np.asarray(self.scores, dtype=np.float32))
        if dtype != torch.float32:
            scores_t = scores_t.to(dtype)
        sorted_scores, order = torch.sort(input=scores_t, descending=True)
        ids = self.ids
        return [{"id": ids[i], "score": s} for i, s in zip(order.tolist(), sorted_scores.tolist())]


def _score_jobs(jobs: list[_RerankJob]) -> None:
    """Scores every batched job in one grouped call per candidate dtype (each
    query against its own candidates, :func:`maxsim._scoring.scores_grouped`):
    separate calls with Python work between them let the thread pool fall
    asleep between queries."""
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
        queries = [job.query_matrix for job in batched]
        docs = [a for job in batched for a in job.arrays]  # float32 or float16, as they are
        scores = _scoring.scores_grouped(
            queries, docs, offsets, zero_floor=zero_floor if zero_floor.any() else None
        )
        for job, lo, hi in zip(batched, offsets, offsets[1:]):
            job.scores = scores[lo:hi]
            job.batched = False
