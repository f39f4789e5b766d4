"""``maxsim.pylate.PLAID``: PyLate's PLAID index interface on ``maxsim.Index``.

A drop-in for ``pylate.indexes.PLAID``: the same constructor arguments
(those that apply on the CPU), the same methods and results, so
``pylate.retrieve.ColBERT(index=maxsim.pylate.PLAID(...))`` works unchanged,
without fast-plaid's torch pins. Search runs maxsim's Rust index (see
:class:`maxsim.Index`); PyLate is imported only if it is already loaded.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any, Sequence

import numpy as np

from .._convert import is_torch_tensor
from ..index import Index

__all__ = ["PLAID"]


def _as_numpy(x: Any) -> np.ndarray:
    if is_torch_tensor(x):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _query_list(queries: Any) -> list[np.ndarray]:
    """Queries as 2-D arrays: a 3-D array/tensor is a batch, a 2-D one a single query."""
    if isinstance(queries, (list, tuple)):
        return [_as_numpy(q) for q in queries]
    array = _as_numpy(queries)
    if array.ndim == 2:
        return [array]
    if array.ndim == 3:
        return list(array)
    raise ValueError(
        f"queries_embeddings: expected (n_queries, n_tokens, dim) or a list of (n_tokens, dim), "
        f"got shape {array.shape}"
    )


class PLAID:
    """PyLate's PLAID index, on :class:`maxsim.Index`.

    Parameters follow ``pylate.indexes.PLAID``. Used: ``index_folder``,
    ``index_name``, ``override``, ``nbits``, ``kmeans_niters``,
    ``max_points_per_centroid``, ``seed``, ``n_ivf_probe`` (centroids probed
    per query token) and ``n_full_scores`` (documents fully scored).
    Accepted and ignored (GPU, torch or fast-plaid settings): ``use_fast``,
    ``n_samples_kmeans``, ``use_triton``, ``batch_size``, ``num_threads``
    (use ``maxsim.set_num_threads``), ``show_progress``, ``device``,
    ``low_memory``. maxsim's own: ``store`` (``"float16"`` etc., keeps full
    vectors) and ``rerank`` (:meth:`maxsim.Index.search`'s: ``"auto"``, the
    default, scores the ``n_full_scores`` candidates exactly on those
    vectors when there is a store, else on the decompressed residuals).
    """

    is_end_to_end_index = True

    def __init__(
        self,
        index_folder: str = "indexes",
        index_name: str = "colbert",
        override: bool = False,
        use_fast: bool = True,
        nbits: int = 4,
        kmeans_niters: int = 4,
        max_points_per_centroid: int = 256,
        n_samples_kmeans: int | None = None,
        seed: int = 42,
        use_triton: bool | None = None,
        n_ivf_probe: int = 8,
        n_full_scores: int = 8192,
        batch_size: int = 1 << 18,
        num_threads: int | None = None,
        show_progress: bool = True,
        device: str | list[str] | None = None,
        low_memory: bool = False,
        store: str | None = None,
        rerank: str | None = "auto",
        **kwargs: Any,
    ) -> None:
        self.path = os.path.join(os.fspath(index_folder), index_name, "maxsim_index")
        self.nbits = nbits
        self.kmeans_niters = kmeans_niters
        self.max_points_per_centroid = max_points_per_centroid
        self.seed = seed
        self.n_ivf_probe = n_ivf_probe
        self.n_full_scores = n_full_scores
        self.store = store
        self.rerank = rerank
        if override and os.path.exists(self.path):
            shutil.rmtree(self.path)
        self._index: Index | None = None
        if os.path.exists(os.path.join(self.path, "manifest.json")):
            self._index = Index.open(self.path)
        _register_with_pylate()

    def __len__(self) -> int:
        return 0 if self._index is None else len(self._index)

    def add_documents(self, documents_ids: Any, documents_embeddings: Any, **kwargs: Any) -> PLAID:
        """Add documents; an id already in the index is replaced."""
        if isinstance(documents_ids, (str, int, np.integer)):
            documents_ids = [documents_ids]
        documents_ids = list(documents_ids)
        if _as_numpy_ndim(documents_embeddings) == 2:
            documents_embeddings = [documents_embeddings]
        docs = [_as_numpy(d).astype(np.float32, copy=False) for d in documents_embeddings]
        if not docs:
            return self
        if self._index is None:
            self._index = Index.create(
                self.path,
                docs[0].shape[1],
                nbits=self.nbits,
                store=self.store,
                seed=self.seed,
                kmeans_iters=self.kmeans_niters,
                max_points_per_centroid=self.max_points_per_centroid,
            )
        self._index.add(documents_ids, docs, replace=True)
        return self

    def remove_documents(self, documents_ids: Sequence[Any]) -> PLAID:
        """Remove documents; ids not in the index are ignored (as PyLate's PLAID)."""
        if self._index is None:
            return self
        if isinstance(documents_ids, (str, int, np.integer)):
            documents_ids = [documents_ids]
        present = set(self._index.ids())
        known = [i for i in documents_ids if i in present]
        if known:
            self._index.delete(known)
        return self

    def update_documents(self, documents_ids: Any, documents_embeddings: Any) -> PLAID:
        """Replace (or add) documents."""
        return self.add_documents(documents_ids, documents_embeddings)

    def __call__(
        self,
        queries_embeddings: Any,
        k: int = 10,
        subset: list[list[Any]] | list[Any] | None = None,
        **kwargs: Any,
    ) -> list[list[dict[str, Any]]]:
        """Per query, ``{"id", "score"}`` dicts, best first."""
        if self._index is None or len(self._index) == 0:
            raise ValueError("The index is empty. Please add documents before querying.")
        queries = _query_list(queries_embeddings)
        if subset is not None and len(subset) == 0:
            return [[] for _ in queries]
        scores, ids = self._index.search(
            queries,
            k,
            nprobe=self.n_ivf_probe,
            n_candidates=max(self.n_full_scores, k),
            subset=subset,
            rerank=self.rerank,
        )
        results = []
        for row_scores, row_ids in zip(scores, ids):
            results.append(
                [
                    {
                        "id": doc_id.item() if isinstance(doc_id, np.generic) else doc_id,
                        "score": float(s),
                    }
                    for s, doc_id in zip(row_scores, row_ids)
                    if s != -np.inf
                ]
            )
        return results

    def get_documents_embeddings(
        self, documents_ids: Sequence[Sequence[Any]]
    ) -> list[list[np.ndarray]]:
        """Per group of ids, each document's vectors (the stored full vectors
        with a ``store``, else the decompressed residuals)."""
        if self._index is None:
            raise KeyError("the index is empty")
        return [self._index.get(list(group)) if len(group) else [] for group in documents_ids]


def _as_numpy_ndim(x: Any) -> int:
    return int(getattr(x, "ndim", -1))


def _register_with_pylate() -> None:
    """Make :class:`PLAID` a virtual subclass of PyLate's index base (only when
    PyLate is already imported)."""
    module = sys.modules.get("pylate.indexes.base")
    base = getattr(module, "Base", None)
    if base is not None and not issubclass(PLAID, base):
        base.register(PLAID)
