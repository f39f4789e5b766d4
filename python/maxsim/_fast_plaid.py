"""``maxsim.Index.from_fast_plaid``: import a fast-plaid index folder.

fast-plaid stores numpy files (no torch needed to read them): ``metadata.json``
(``nbits``, ``num_chunks``), ``centroids.npy`` (float16, ``K × dim``),
``bucket_cutoffs.npy`` / ``bucket_weights.npy``, and per chunk ``i``:
``{i}.codes.npy`` (each token's centroid), ``{i}.residuals.npy`` (packed
residual codes, ColBERT's bit order: per dimension ``nbits`` bits, least
significant first, packed most-significant-bit first into bytes) and
``doclens.{i}.json``. A token is reconstructed as fast-plaid does it:
``normalize(centroid + bucket weights)``. The import installs fast-plaid's
centroids and buckets as the new index's training and adds every document's
reconstruction; the residuals are re-encoded against the same codebook (the
normalisation moves a reconstruction off its bucket weights, so this is a
second, small quantization; a ``store`` keeps the reconstructions exactly).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np


def _load(folder: Path, name: str) -> np.ndarray:
    path = folder / name
    try:
        return np.load(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing fast-plaid index file") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not a readable .npy file ({exc})") from None


def unpack_residuals(packed: np.ndarray, nbits: int, dim: int, weights: np.ndarray) -> np.ndarray:
    """fast-plaid's packed residual codes ``(n, dim·nbits/8)`` uint8 → ``(n, dim)``
    float32 bucket weights."""
    bits = np.unpackbits(packed, axis=1)[:, : dim * nbits].reshape(len(packed), dim, nbits)
    codes = (bits.astype(np.int64) << np.arange(nbits)).sum(axis=2)
    return weights[codes]


def reconstruct_chunks(folder: Union[str, os.PathLike]):
    """Yield, per chunk of a fast-plaid index, the list of its documents'
    reconstructed ``(len_i, dim)`` float32 vectors; first the codebook."""
    folder = Path(folder)
    meta_path = folder / "metadata.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{meta_path}: not a fast-plaid index (no metadata.json)") from None
    for field in ("nbits", "num_chunks"):
        if field not in meta:
            raise ValueError(f"{meta_path}: field {field!r} missing")
    nbits = int(meta["nbits"])
    centroids = _load(folder, "centroids.npy").astype(np.float32)
    cutoffs = _load(folder, "bucket_cutoffs.npy").astype(np.float32).ravel()
    weights = _load(folder, "bucket_weights.npy").astype(np.float32).ravel()
    yield centroids, cutoffs, weights, nbits
    dim = centroids.shape[1]
    for i in range(int(meta["num_chunks"])):
        codes = _load(folder, f"{i}.codes.npy").astype(np.int64).ravel()
        packed = _load(folder, f"{i}.residuals.npy").astype(np.uint8)
        lens_path = folder / f"doclens.{i}.json"
        try:
            lengths = json.loads(lens_path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{lens_path}: missing fast-plaid index file") from None
        if sum(lengths) != len(codes) or len(packed) != len(codes):
            raise ValueError(
                f"{folder / f'{i}.codes.npy'}: {len(codes)} codes, {len(packed)} residual rows "
                f"and {sum(lengths)} tokens in doclens.{i}.json disagree"
            )
        if codes.size and (codes.min() < 0 or codes.max() >= len(centroids)):
            raise ValueError(
                f"{folder / f'{i}.codes.npy'}: a code is outside the {len(centroids)} centroids"
            )
        vectors = centroids[codes] + unpack_residuals(packed, nbits, dim, weights)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.where(norms > 0, norms, 1.0)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        yield [vectors[offsets[j] : offsets[j + 1]] for j in range(len(lengths))]


def from_fast_plaid(
    cls: Any,
    folder: Union[str, os.PathLike],
    path: Union[str, os.PathLike],
    *,
    store: Optional[str] = None,
    ids: Any = None,
) -> Any:
    chunks = reconstruct_chunks(folder)
    centroids, cutoffs, weights, nbits = next(chunks)
    index = cls.create(
        path, centroids.shape[1], nbits=nbits, n_centroids=len(centroids), store=store
    )
    index._native.train_with(np.ascontiguousarray(centroids), cutoffs.tolist(), weights.tolist())
    first = 0
    for docs in chunks:
        chunk_ids = (
            np.arange(first, first + len(docs)) if ids is None else ids[first : first + len(docs)]
        )
        if len(docs):
            index.add(chunk_ids, docs)
        first += len(docs)
    return index
