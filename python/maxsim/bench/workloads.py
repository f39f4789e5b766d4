"""The standard workloads (from the core issue), seeded and L2-normalised.

* fixed: query 32 x 128 float32, 1000 documents x 300 tokens x 128;
* variable: the same query, 1000 documents of 50-800 tokens;
* batch: 32 queries over the fixed documents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIM = 128
QUERY_TOKENS = 32


def _normalised(rng: np.random.Generator, rows: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((rows, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


@dataclass
class Workload:
    name: str
    queries: np.ndarray  # (n_queries, 32, 128) float32
    flat: np.ndarray  # (total_tokens, 128) float32
    lengths: np.ndarray  # (n_docs,) int64
    fixed_len: int | None  # tokens per document when all are equal

    @property
    def offsets(self) -> np.ndarray:
        out = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=out[1:])
        return out

    @property
    def docs3d(self) -> np.ndarray:
        assert self.fixed_len is not None
        return self.flat.reshape(len(self.lengths), self.fixed_len, self.flat.shape[1])

    @property
    def doc_list(self) -> list[np.ndarray]:
        o = self.offsets
        return [self.flat[o[i] : o[i + 1]] for i in range(len(self.lengths))]

    def flops(self) -> float:
        """Multiply-adds x 2 of one pass of every query over every token."""
        n_q, nq, d = self.queries.shape
        return 2.0 * n_q * nq * d * float(self.lengths.sum())


def make(name: str, n_docs: int = 1000, seed: int = 0) -> Workload:
    rng = np.random.default_rng(seed)
    if name in ("fixed", "batch"):
        lengths = np.full(n_docs, 300, dtype=np.int64)
        fixed_len: int | None = 300
    elif name == "variable":
        lengths = rng.integers(50, 801, size=n_docs).astype(np.int64)
        fixed_len = None
    else:
        raise ValueError(f"unknown workload {name!r}; expected fixed, variable or batch")
    n_queries = 32 if name == "batch" else 1
    queries = _normalised(rng, n_queries * QUERY_TOKENS).reshape(n_queries, QUERY_TOKENS, DIM)
    flat = _normalised(rng, int(lengths.sum()))
    return Workload(name, queries, flat, lengths, fixed_len)
