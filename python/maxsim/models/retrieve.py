"""End-to-end retrieval: embed the query, search, then optionally rerank."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import maxsim
import maxsim.binary
from maxsim._convert import as_k

__all__ = ["retrieve", "dense_search", "binary_search_rescore"]


def _top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of a 1-D float32 score array, best first; ties to the lower index."""
    # One query of one token against n one-token "documents" is exactly a
    # top-k over the scores themselves: reuse the core's selection.
    column = np.ascontiguousarray(scores, dtype=np.float32).reshape(-1, 1, 1)
    top_scores, top_idx = maxsim.topk(np.ones((1, 1), np.float32), column, k)
    return top_scores, top_idx


def dense_search(query: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-``k``: ``query (d,)`` against ``corpus (n, d)`` float32.

    A single-vector corpus is a fixed-length multi-vector corpus with one token
    per document, so this is :func:`maxsim.topk` on a ``(n, 1, d)`` view (no copy
    for C-contiguous float32).

    Returns:
        ``(scores float32 (k,), indices int64 (k,))``, best first, ties to the lower index.
    """
    corpus32 = np.ascontiguousarray(corpus, dtype=np.float32)
    query32 = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
    return maxsim.topk(query32, corpus32.reshape(corpus32.shape[0], 1, -1), k)


def binary_search_rescore(
    query: np.ndarray,
    codes: np.ndarray,
    k: int,
    *,
    rescore_multiplier: int = 4,
    corpus_float: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Hamming search over packed sign bits, then float rescoring.

    ``query`` is the float query ``(d,)``, ``codes`` the ``(n, ceil(d/8))`` uint8
    ``"ubinary"`` corpus codes. The ``k * rescore_multiplier`` nearest codes by
    Hamming distance are rescored with ``corpus_float @ query`` when
    ``corpus_float`` (``(n, d)``) is given, else as sentence-transformers does
    (the query against the unpacked 0/1 bits); see
    :func:`maxsim.binary.search_rescore`.

    Returns:
        ``(scores float32 (k,), indices int64 (k,))``, best first.
    """
    return maxsim.binary.search_rescore(
        np.ascontiguousarray(query, dtype=np.float32),
        codes,
        k,
        rescore_multiplier=rescore_multiplier,
        db_float=corpus_float,
    )


def retrieve(
    query: str | np.ndarray,
    corpus_embeddings: np.ndarray,
    k: int = 10,
    *,
    embedder: Any = None,
    corpus_float: np.ndarray | None = None,
    rescore_multiplier: int = 4,
    candidates: int | None = None,
    reranker: Any = None,
    documents: Sequence[str] | None = None,
    colbert: Any = None,
    colbert_docs: Sequence[np.ndarray] | None = None,
    rerank_kwargs: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embed -> search (dense, or binary + rescoring) -> optional rerank, for one query.

    Args:
        query: the query text (needs ``embedder``) or its ``(d,)`` float32 embedding.
        corpus_embeddings: ``(n, d)`` float32 unit vectors (exact dense search), or
            ``(n, ceil(d/8))`` uint8 ``"ubinary"`` codes (binary search with rescoring).
        k: number of results.
        embedder: an :class:`~maxsim.models.Embedder` (or :class:`EmbedRerank`) for a
            text query; a corpus narrower than the model is treated as Matryoshka
            truncation (``dim=d``).
        corpus_float: ``(n, d)`` float32 vectors used to rescore binary candidates.
        rescore_multiplier: binary search keeps ``depth * rescore_multiplier`` codes
            before rescoring.
        candidates: first-stage depth when a second stage is given (default
            ``max(k, 100)``); else ``k``.
        reranker: a cross-encoder (:class:`Reranker`, :class:`MatryoshkaReranker`
            or :class:`EmbedRerank`) rescoring the candidates; needs ``documents``
            and a text query.
        documents: the corpus texts (index-aligned with ``corpus_embeddings``).
        colbert: a :class:`ColBERT` encoder; the candidates are rescored by MaxSim
            against ``colbert_docs`` (list of ``(n_tokens_i, dim)`` float32 arrays,
            index-aligned with the corpus). Needs a text query.
        rerank_kwargs: extra keyword arguments for ``reranker.score`` (e.g.
            ``{"layer": 2, "dim": 64}`` for a Matryoshka reranker).

    Returns:
        ``(scores float32 (m,), indices int64 (m,))`` best first, ``m = min(k, n)``.
        Scores are those of the last stage that ran.

    Raises:
        TypeError / ValueError: naming the offending argument.
    """
    k = as_k(k)
    if not isinstance(corpus_embeddings, np.ndarray):
        raise TypeError(
            f"corpus_embeddings must be a numpy array, got {type(corpus_embeddings).__name__}"
        )
    if corpus_embeddings.ndim != 2 or corpus_embeddings.shape[0] == 0:
        raise ValueError(
            f"corpus_embeddings must have shape (n, d) with n >= 1, got {corpus_embeddings.shape}"
        )
    if reranker is not None and colbert is not None:
        raise ValueError("pass at most one of reranker and colbert")
    rescore_multiplier = as_k(rescore_multiplier, "rescore_multiplier")
    n = corpus_embeddings.shape[0]
    binary = corpus_embeddings.dtype == np.uint8
    if not binary and not np.issubdtype(corpus_embeddings.dtype, np.floating):
        raise ValueError(
            "corpus_embeddings must be float (dense) or uint8 (ubinary codes), "
            f"got dtype {corpus_embeddings.dtype}"
        )
    if corpus_float is not None:
        if not binary:
            raise ValueError("corpus_float is only used with uint8 (binary) corpus_embeddings")
        if (
            not isinstance(corpus_float, np.ndarray)
            or corpus_float.ndim != 2
            or corpus_float.shape[0] != n
        ):
            raise ValueError(f"corpus_float must have shape ({n}, d)")

    # ---- the query vector
    text_query: str | None = None
    if isinstance(query, str):
        if embedder is None:
            raise ValueError("a text query needs embedder=")
        text_query = query
        if binary:
            d = (
                corpus_float.shape[1]
                if corpus_float is not None
                else corpus_embeddings.shape[1] * 8
            )
        else:
            d = corpus_embeddings.shape[1]
        full = embedder.embedder.dim if hasattr(embedder, "embedder") else embedder.dim
        if d > full:
            raise ValueError(f"corpus_embeddings have d={d} but the embedder gives {full}")
        q = embedder.embed(query, is_query=True, dim=None if d == full else d)
    elif isinstance(query, np.ndarray):
        if query.ndim != 1:
            raise ValueError(f"query embedding must have shape (d,), got {query.shape}")
        q = query.astype(np.float32, copy=False)
    else:
        raise TypeError(f"query must be a str or a (d,) numpy array, got {type(query).__name__}")

    second_stage = reranker is not None or colbert is not None
    if second_stage and text_query is None:
        raise ValueError("reranking needs the query text (query must be a str)")
    if candidates is None:
        depth = max(k, 100) if second_stage else k
    else:
        if (
            isinstance(candidates, bool)
            or not isinstance(candidates, (int, np.integer))
            or candidates < k
        ):
            raise ValueError(f"candidates must be an int >= k ({k}), got {candidates!r}")
        depth = int(candidates)
    depth = min(depth, n)

    # ---- first stage
    if binary:
        if q.shape[0] > corpus_embeddings.shape[1] * 8:
            raise ValueError("query dimension does not match the binary codes")
        scores, idx = binary_search_rescore(
            q,
            corpus_embeddings,
            depth,
            rescore_multiplier=rescore_multiplier,
            corpus_float=corpus_float,
        )
    else:
        if q.shape[0] != corpus_embeddings.shape[1]:
            raise ValueError(
                f"query has d={q.shape[0]} but corpus_embeddings have "
                f"d={corpus_embeddings.shape[1]}"
            )
        scores, idx = dense_search(q, corpus_embeddings, depth)
    if not second_stage:
        return scores[:k], idx[:k]

    # ---- second stage
    assert text_query is not None
    if reranker is not None:
        if documents is None or len(documents) != n:
            raise ValueError(f"reranker needs documents= with {n} texts (one per corpus row)")
        pairs = [(text_query, documents[int(i)]) for i in idx]
        new = np.asarray(reranker.score(pairs, **(rerank_kwargs or {})), dtype=np.float32)
    else:
        if colbert_docs is None or len(colbert_docs) != n:
            raise ValueError(
                f"colbert needs colbert_docs= with {n} token matrices (one per corpus row)"
            )
        q_tok = colbert.encode(text_query, is_query=True)
        new = maxsim.scores(q_tok, [colbert_docs[int(i)] for i in idx])
    s, j = _top(new, k)
    return s, idx[j]
