"""Reference Hamming search for the binary tests: numpy's ``bitwise_count``
and a full sort by (distance, index), faiss's order."""

from __future__ import annotations

import numpy as np


def ref_hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances with numpy's bitwise_count (uint8 codes)."""
    return np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=-1, dtype=np.int64)


def ref_search(q: np.ndarray, db: np.ndarray, k: int):
    """Full sort by (distance, index)."""
    dist = ref_hamming(q, db)
    order = np.lexsort((np.broadcast_to(np.arange(db.shape[0]), dist.shape), dist), axis=-1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), order


def tied_codes(rng, n: int, n_bytes: int, mask: int = 0x03) -> np.ndarray:
    """Codes where only a few bits vary: many equal distances."""
    return (rng.integers(0, 256, size=(n, n_bytes), dtype=np.uint8) & np.uint8(mask)).astype(
        np.uint8
    )
