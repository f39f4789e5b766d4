"""Searching a retrieval index: encode the query, first-stage search, optional
cross-encoder rerank; each stage timed.

First stages by kind:

* ``dense``: exact inner product over every document (``maxsim.topk`` on the
  ``(n, 1, dim)`` view of the float32 matrix): time and memory linear in the
  corpus (``4 * dim`` bytes per document; about 1.5 GB and tens of ms per query
  on one core for a million 384-d documents). Past a few million documents use
  ``--kind binary`` (32x smaller codes, Hamming search, exact rescoring).
* ``binary``: Hamming top ``k * rescore_multiplier`` over packed sign bits,
  rescored by the exact dot product with the stored float16/int8/float32
  vectors (or, with ``--store none``, against the unpacked bits as
  sentence-transformers does).
* ``colbert``: :meth:`maxsim.Index.search` (PLAID-style centroid probing;
  ``nprobe``, ``n_candidates``; exact MaxSim on the stored vectors when the
  index keeps them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .encoders import Encoder, check_dim, check_same_model, load_encoder, load_reranker
from .errors import CliError, log
from .store import RetrievalIndex


@dataclass
class Hits:
    """One query's results: document ordinals and scores, best first, and stage times (s)."""

    ordinals: np.ndarray
    scores: np.ndarray
    first_ordinals: np.ndarray
    first_scores: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class SearchOptions:
    nprobe: Optional[int] = None
    n_candidates: Optional[int] = None
    rescore_multiplier: int = 4


class Searcher:
    """An opened index with its query encoder and, optionally, a reranker."""

    def __init__(
        self,
        index_dir: str | Path,
        *,
        model: Optional[str] = None,
        backend: str = "auto",
        rerank: Optional[str] = None,
        rerank_backend: str = "auto",
        options: Optional[SearchOptions] = None,
    ) -> None:
        self.index = RetrievalIndex.open(Path(index_dir))
        if self.index.n_docs == 0:
            raise CliError(f"{self.index.path}: the index holds no documents")
        if not self.index.complete:
            log.warning(
                f"warning: {self.index.path} is partly built ({self.index.n_docs} "
                "documents); rerun `maxsim index build` to finish it"
            )
        self.options = options or SearchOptions()
        recorded = self.index.settings.get("model")
        chosen = check_same_model(recorded, model, self.index.path)
        encoder_kind = "dense" if self.index.kind == "binary" else self.index.kind
        the_backend = recorded["backend"] if recorded and model is None else backend
        self.encoder: Encoder = load_encoder(chosen, encoder_kind, the_backend)
        if self.encoder.dim != self.index.dim:
            raise CliError(
                f"the model gives dimension {self.encoder.dim}, the index at "
                f"{self.index.path} holds dimension {self.index.dim}"
            )
        self.reranker = load_reranker(rerank, rerank_backend) if rerank else None
        self._load_first_stage()

    def _load_first_stage(self) -> None:
        kind = self.index.kind
        if kind == "dense":
            matrix = self.index.load_vectors()
            assert matrix is not None
            check_dim(matrix, self.index.dim, str(self.index.path))
            self._docs = np.ascontiguousarray(matrix, dtype=np.float32)
        elif kind == "binary":
            from maxsim.binary import BinaryIndex

            codes = self.index.load_vectors()
            assert codes is not None
            self._binary = BinaryIndex(self.index.dim)
            self._binary.add(codes)
            self._rescore = self.index.load_vectors("rescore")
        else:
            self._colbert = self.index.colbert_index()
            self._exact = self.index.settings["build"]["store"] is not None

    def encode(self, texts: list[str]) -> Any:
        return self.encoder.encode_queries(texts)

    def first_stage(self, query: Any, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ordinals int64, scores float32)``, best first, at most ``depth``."""
        kind = self.index.kind
        if kind == "dense":
            from maxsim import _native

            # One query vector against an (n, dim) matrix is a matrix-vector
            # product, then the native top-k (ties to the lower ordinal, as
            # maxsim.topk). maxsim.topk on (n, 1, dim) documents took 2.6 ms
            # (SciFact, 5,183 x 384, Zen 5). einsum, not `@`: numpy's own
            # single-threaded loop, 0.30 ms p50, where OpenBLAS's threaded
            # sgemv took 0.09 ms on an idle machine but 12 ms p50 with the
            # 2 vCPUs busy (its threads wait for each other).
            scores = np.einsum("ij,j->i", self._docs, np.ascontiguousarray(query, np.float32))
            top, idx = _native.topk_rows(scores[None, :], min(depth, len(scores)))
            return idx[0].astype(np.int64), top[0]
        if kind == "binary":
            scores, idx = self._binary.search_rescore(
                np.ascontiguousarray(query, np.float32),
                depth,
                rescore_multiplier=self.options.rescore_multiplier,
                db_float=self._rescore,
            )
            return idx.astype(np.int64), scores
        scores, ids = self._colbert.search(
            query,
            depth,
            nprobe=self.options.nprobe,
            n_candidates=self.options.n_candidates,
            rerank="exact" if self._exact else None,
        )
        keep = np.isfinite(scores)
        return np.asarray(ids, dtype=np.int64)[keep], scores[keep]

    def rerank_scores(self, query: str, ordinals: np.ndarray, batch_size: int = 32) -> np.ndarray:
        assert self.reranker is not None
        pairs = [(query, self.text_of(int(o))) for o in ordinals]
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        scores = self.reranker.score(pairs, batch_size=batch_size, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32)

    def text_of(self, ordinal: int) -> str:
        doc = self.index.doc(ordinal)
        title, text = doc.get("title") or "", doc.get("text") or ""
        return f"{title} {text}".strip() if title else text.strip()

    def search(self, query: str, k: int, candidates: Optional[int] = None) -> Hits:
        """Encode, search (``candidates`` deep when reranking, else ``k``), rerank to ``k``."""
        t0 = time.perf_counter()
        q = self.encode([query])[0]
        t1 = time.perf_counter()
        depth = max(k, candidates or 0) if self.reranker is not None else k
        ordinals, scores = self.first_stage(q, depth)
        t2 = time.perf_counter()
        seconds = {"encode": t1 - t0, "search": t2 - t1}
        hits = Hits(ordinals[:k], scores[:k], ordinals, scores, seconds)
        if self.reranker is not None:
            new = self.rerank_scores(query, ordinals)
            order = np.lexsort((np.arange(len(new)), -new))[:k]  # ties keep first-stage order
            hits.ordinals, hits.scores = ordinals[order], new[order]
            seconds["rerank"] = time.perf_counter() - t2
        return hits
