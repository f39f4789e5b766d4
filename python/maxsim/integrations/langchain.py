"""LangChain: a late-interaction retriever and a reranking document compressor.

Needs only ``langchain-core`` (``pip install "maxsim[langchain]"``)::

    from maxsim.integrations.langchain import MaxSimCompressor, MaxSimRetriever

    retriever = MaxSimRetriever.from_texts(texts, "lightonai/GTE-ModernColBERT-v1", k=10)
    retriever.invoke("my question")           # Documents, best first

    compressor = MaxSimCompressor(model="lightonai/GTE-ModernColBERT-v1", top_n=3)
    compressor.compress_documents(documents, "my question")

Both write each Document's score into ``metadata["relevance_score"]`` (a
float; on copies: the Documents passed in are not modified), as
RAGatouille's LangChain compressor and LangChain's own rerankers do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional, Sequence

import numpy as np

import maxsim

from ._common import (
    TextScorer,
    best_first,
    check_count,
    load_colbert,
    load_scorer,
    missing_framework,
)

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun, Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator
except ImportError as err:  # pragma: no cover - exercised in a venv without it
    raise ImportError(missing_framework("langchain-core", "langchain", __name__)) from err

__all__ = ["MaxSimCompressor", "MaxSimRetriever"]

SCORE_KEY = "relevance_score"


def _scored(doc: Document, score: float) -> Document:
    """A copy of ``doc`` with ``metadata["relevance_score"] = score``."""
    return Document(
        page_content=doc.page_content, metadata={**doc.metadata, SCORE_KEY: score}, id=doc.id
    )


class MaxSimRetriever(BaseRetriever):
    """Retrieves Documents by ColBERT late interaction (MaxSim).

    Searches a :class:`maxsim.Index` (``index=``; PLAID/WARP-style search,
    exact with ``search_kwargs={"exact": True}`` on an index with a float
    store) or, exhaustively with exact MaxSim, a corpus of token embeddings
    (``embeddings=``: anything ``maxsim.topk`` takes, one document per entry).

    Attributes:
        encoder: the ``maxsim.models.ColBERT`` that encodes queries (a model
            folder or hub id is loaded; an ONNX export runs without torch).
        documents: the Documents returned: with ``embeddings``, a sequence
            aligned with it; with ``index``, a mapping from index id to
            Document, or a sequence indexed by int ids.
        k: Documents per query (``invoke(query, k=...)`` overrides it).
        search_kwargs: extra arguments of ``Index.search`` (``nprobe``,
            ``n_candidates``, ``rerank``, ``exact``, ``subset``); ``invoke``
            keyword arguments override them.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    encoder: Any
    documents: Any
    index: Any = None
    embeddings: Any = None
    k: int = 4
    search_kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("encoder", mode="before")
    @classmethod
    def _load_encoder(cls, value: Any) -> Any:
        return load_colbert(value)

    @model_validator(mode="after")
    def _check(self) -> MaxSimRetriever:
        check_count(self.k, "k")
        if (self.index is None) == (self.embeddings is None):
            raise ValueError("pass exactly one of index= (a maxsim.Index) and embeddings=")
        if self.index is not None and not isinstance(self.index, maxsim.Index):
            raise TypeError(f"index: expected a maxsim.Index, got {type(self.index).__name__}")
        docs = self.documents
        if isinstance(docs, (str, bytes)) or not isinstance(docs, (Sequence, Mapping)):
            raise TypeError(
                "documents: expected a sequence of Documents or a mapping id -> Document, "
                f"got {type(docs).__name__}"
            )
        values = docs.values() if isinstance(docs, Mapping) else docs
        bad = next((d for d in values if not isinstance(d, Document)), None)
        if bad is not None:
            raise TypeError(f"documents: expected Documents, found a {type(bad).__name__}")
        if self.embeddings is not None:
            if isinstance(docs, Mapping):
                raise TypeError("documents: with embeddings=, a sequence aligned with them")
            if len(docs) != len(self.embeddings):
                raise ValueError(
                    f"documents: {len(docs)} Documents for {len(self.embeddings)} embedded "
                    "documents"
                )
        encoder_dim = int(self.encoder.dim)
        corpus_dim = self.index.dim if self.index is not None else _embedding_dim(self.embeddings)
        if corpus_dim is not None and corpus_dim != encoder_dim:
            raise ValueError(
                f"encoder: its vectors have dimension {encoder_dim}, the corpus's {corpus_dim}"
            )
        return self

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        model: Any,
        *,
        metadatas: Optional[Sequence[dict]] = None,
        ids: Optional[Sequence[Any]] = None,
        index_path: Optional[str | os.PathLike[str]] = None,
        index_kwargs: Optional[dict[str, Any]] = None,
        backend: Optional[str] = None,
        batch_size: int = 32,
        **kwargs: Any,
    ) -> MaxSimRetriever:
        """Encode ``texts`` with the ColBERT ``model`` and retrieve over them.

        Without ``index_path`` the token vectors stay in memory (one
        ``maxsim.PackedDocs``) and search is exhaustive exact MaxSim; with
        it, they go into a new :class:`maxsim.Index` there
        (``index_kwargs``: ``Index.create``'s options, e.g. ``store="float16"``),
        under ``ids`` (default ``0..n-1``). Other keyword arguments (``k``,
        ``search_kwargs``, ...) are the retriever's.
        """
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"metadatas: {len(metadatas)} for {len(texts)} texts")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"ids: {len(ids)} for {len(texts)} texts")
        encoder = load_colbert(model, backend=backend)
        vectors = encoder.encode(texts, is_query=False, packed=True, batch_size=batch_size)
        docs = [
            Document(
                page_content=text,
                metadata=dict(metadatas[i]) if metadatas is not None else {},
                id=None if ids is None else str(ids[i]),
            )
            for i, text in enumerate(texts)
        ]
        if index_path is None:
            return cls(encoder=encoder, documents=docs, embeddings=vectors, **kwargs)
        index = maxsim.Index.create(index_path, dim=encoder.dim, **(index_kwargs or {}))
        keys = list(range(len(texts))) if ids is None else list(ids)
        index.add(keys, vectors)
        return cls(encoder=encoder, documents=dict(zip(keys, docs)), index=index, **kwargs)

    @classmethod
    def from_documents(
        cls, documents: Sequence[Document], model: Any, **kwargs: Any
    ) -> MaxSimRetriever:
        """:meth:`from_texts` on the Documents' text, metadata and ids (where all have one)."""
        documents = list(documents)
        ids = [d.id for d in documents]
        return cls.from_texts(
            [d.page_content for d in documents],
            model,
            metadatas=[d.metadata for d in documents],
            ids=ids if all(i is not None for i in ids) else None,
            **kwargs,
        )

    def _document(self, key: Any) -> Document:
        try:
            return self.documents[key]
        except (KeyError, IndexError, TypeError):
            raise KeyError(
                f"the index returned id {key!r}, which has no Document in documents"
            ) from None

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: Optional[int] = None,
        **search_kwargs: Any,
    ) -> list[Document]:
        k = check_count(self.k if k is None else k, "k")
        q = self.encoder.encode(query, is_query=True)
        if self.index is not None:
            scores, keys = self.index.search(q, k=k, **{**self.search_kwargs, **search_kwargs})
            found = ~np.isneginf(scores)  # missing results (fewer than k documents)
            scores, keys = scores[found], keys[found]
        else:
            if search_kwargs:
                raise TypeError(
                    f"unexpected arguments {sorted(search_kwargs)}: only an index= retriever "
                    "takes search arguments"
                )
            scores, keys = maxsim.topk(q, self.embeddings, k=k)
        return [_scored(self._document(key), float(s)) for key, s in zip(keys.tolist(), scores)]


def _embedding_dim(embeddings: Any) -> Optional[int]:
    if isinstance(embeddings, maxsim.PackedDocs):
        return int(embeddings.flat.shape[1])
    shape = getattr(embeddings, "shape", None)
    if shape is not None:
        return int(shape[-1])
    if isinstance(embeddings, (list, tuple)) and embeddings:
        inner = getattr(embeddings[0], "shape", None)
        return int(inner[-1]) if inner else None
    return None


class MaxSimCompressor(BaseDocumentCompressor):
    """Reranks Documents with a ColBERT model (MaxSim) or a cross-encoder.

    Keeps the ``top_n`` best (all with ``top_n=None``), best first (ties keep
    the input order), as copies with ``metadata["relevance_score"]``. Use it as
    ``ContextualCompressionRetriever(base_compressor=..., base_retriever=...)``.

    Attributes:
        model: a ``maxsim.models.ColBERT``, ``Reranker`` or ``CausalReranker``,
            or a model folder / hub id to load (an ONNX export loads with
            ``backend="onnx"``, without torch).
        top_n: Documents kept (LangChain's rerankers' default, 3).
        kind: ``"colbert"`` or ``"cross-encoder"``; ``None``: from the model.
        backend: ``"torch"``, ``"onnx"`` or ``None`` (from the folder).
        batch_size: texts (or pairs) per forward pass.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Any
    top_n: Optional[int] = 3
    kind: Optional[str] = None
    backend: Optional[str] = None
    batch_size: int = 32
    _scorer: TextScorer = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        check_count(self.top_n, "top_n", allow_none=True)
        self._scorer = load_scorer(
            self.model, kind=self.kind, backend=self.backend, batch_size=self.batch_size
        )
        self.kind = self._scorer.kind

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Optional[Callbacks] = None,
    ) -> Sequence[Document]:
        documents = list(documents)
        if not documents:
            return []
        scores = self._scorer.score(query, [d.page_content for d in documents])
        order = best_first(scores)[: self.top_n]
        return [_scored(documents[i], float(scores[i])) for i in order]
