"""Embed + rerank router whose two models share one word-embedding table."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ._backbone import load_backbone
from ._common import resolve_dtype, resolve_model_dir
from .embedder import Embedder
from .reranker import Reranker

__all__ = ["EmbedRerank"]

logger = logging.getLogger(__name__)


def _param_name(model: Any, param: Any) -> str | None:
    for name, p in model.named_parameters(remove_duplicate=False):
        if p is param:
            return name
    return None


class EmbedRerank:
    """One object for both retrieval roles: ``.embed`` (bi-encoder) and ``.rerank``
    (cross-encoder), with the word-embedding table stored once (the Merino-Nano
    design: both models are trained on one shared table, which the reranker's
    checkpoint may leave out; it is injected at load).

    Attributes:
        embedder: the :class:`~maxsim.models.Embedder`.
        reranker: the :class:`~maxsim.models.Reranker`.
        shared_word_embeddings: whether the two models now hold one table tensor.
        memory_saved_bytes: parameter memory saved by the sharing (0 if not shared).
    """

    def __init__(
        self, embedder: Embedder, reranker: Reranker, *, memory_saved_bytes: int = 0
    ) -> None:
        self.embedder = embedder
        self.reranker = reranker
        self.memory_saved_bytes = int(memory_saved_bytes)

    @property
    def shared_word_embeddings(self) -> bool:
        if self.embedder.model is None or self.reranker.model is None:
            return False  # ONNX Runtime sessions hold their own copies
        a = self.embedder.model.get_input_embeddings().weight
        b = self.reranker.model.get_input_embeddings().weight
        return a is b

    @classmethod
    def from_pretrained(
        cls,
        embedder_path: str | os.PathLike[str],
        reranker_path: str | os.PathLike[str],
        share_word_embeddings: bool | Literal["force"] = True,
        device: str = "cpu",
        dtype: Any = None,
        *,
        reranker_activation: Any = "config",
        backend: str = "torch",
        int8_linear: bool = False,
        session_options: Any = None,
        providers: Any = None,
    ) -> EmbedRerank:
        """Load both models and deduplicate their word-embedding tables.

        Args:
            embedder_path: sentence-transformers directory or hub id (bi-encoder).
            reranker_path: cross-encoder directory or hub id. Its checkpoint may omit
                the word-embedding table (it then gets the embedder's).
            share_word_embeddings: ``True`` (default): share when the two tables are
                equal (checked with ``torch.equal``) or the reranker has none, and
                raise ``ValueError`` when they differ; ``"force"``: inject the
                embedder's table into the reranker even when they differ (the
                reranker's scores then change); ``False``: keep two tables.

            backend: ``"torch"`` or ``"onnx"`` (two folders written by ``maxsim export
                onnx``). With ONNX the two graphs keep their own tables: the
                exported configs' table digests must be equal when
                ``share_word_embeddings=True`` (``"force"`` is torch-only).
            int8_linear / session_options / providers: ONNX backend options, as in
                :meth:`Embedder.from_pretrained`.

        Raises:
            ValueError: tables of different shapes, different tables with
                ``share_word_embeddings=True``, or a reranker without a table and
                ``share_word_embeddings=False``.
        """
        if share_word_embeddings not in (True, False, "force"):
            raise ValueError(
                "share_word_embeddings must be True, False or 'force', "
                f"got {share_word_embeddings!r}"
            )
        if backend == "onnx":
            return cls._from_onnx(
                embedder_path,
                reranker_path,
                share_word_embeddings,
                reranker_activation=reranker_activation,
                int8_linear=int8_linear,
                session_options=session_options,
                providers=providers,
                device=device,
                dtype=dtype,
            )
        if backend != "torch":
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        import torch
        from transformers import AutoModelForSequenceClassification

        embedder = Embedder.from_pretrained(embedder_path, device=device, dtype=dtype)
        rr_dir = resolve_model_dir(reranker_path)
        rr_model, info = load_backbone(
            rr_dir,
            dtype=resolve_dtype(dtype),
            device=device,
            model_class=AutoModelForSequenceClassification,
            output_loading_info=True,
        )
        from ._backbone import load_tokenizer

        reranker = Reranker.from_torch_model(
            rr_model,
            load_tokenizer(rr_dir),
            activation=reranker_activation,
            device=device,
            name=os.fspath(reranker_path),
        )

        emb_layer = embedder.model.get_input_embeddings()
        rr_layer = rr_model.get_input_embeddings()
        rr_name = _param_name(rr_model, rr_layer.weight)
        missing = set((info or {}).get("missing_keys", []) or [])
        rr_missing = rr_name is not None and rr_name in missing
        saved = 0
        if tuple(emb_layer.weight.shape) != tuple(rr_layer.weight.shape):
            if share_word_embeddings or rr_missing:
                raise ValueError(
                    "word-embedding tables differ in shape: embedder "
                    f"{tuple(emb_layer.weight.shape)} vs reranker {tuple(rr_layer.weight.shape)}"
                )
            return cls(embedder, reranker)
        if rr_missing and share_word_embeddings is False:
            raise ValueError(
                f"reranker {os.fspath(reranker_path)!r} stores no word-embedding table "
                f"({rr_name}); load it with share_word_embeddings=True"
            )
        if share_word_embeddings is False:
            return cls(embedder, reranker)
        if not rr_missing and share_word_embeddings is True:
            if not torch.equal(emb_layer.weight, rr_layer.weight):
                raise ValueError(
                    "the embedder's and the reranker's word-embedding tables differ; pass "
                    "share_word_embeddings='force' to use the embedder's table in both "
                    "(changes the reranker's scores) or False to keep two tables"
                )
        saved = rr_layer.weight.numel() * rr_layer.weight.element_size()
        rr_layer.weight = emb_layer.weight  # one Parameter, two modules
        logger.info(
            "EmbedRerank: shared word-embedding table %s, saved %.2f MiB",
            tuple(emb_layer.weight.shape),
            saved / 2**20,
        )
        return cls(embedder, reranker, memory_saved_bytes=saved)

    @classmethod
    def _from_onnx(
        cls,
        embedder_path: str | os.PathLike[str],
        reranker_path: str | os.PathLike[str],
        share_word_embeddings: bool | str,
        **options: Any,
    ) -> EmbedRerank:
        from ._onnx_folder import word_embedding_digest

        if share_word_embeddings == "force":
            raise ValueError(
                "share_word_embeddings='force' changes the reranker's weights: load the torch "
                "backend, or export a reranker that already holds the embedder's table"
            )
        activation = options.pop("reranker_activation")
        embedder = Embedder.from_pretrained(embedder_path, backend="onnx", **options)
        reranker = Reranker.from_pretrained(
            reranker_path, backend="onnx", activation=activation, **options
        )
        if share_word_embeddings:
            a = word_embedding_digest(resolve_model_dir(embedder_path))
            b = word_embedding_digest(resolve_model_dir(reranker_path))
            if a is None or b is None or a != b:
                raise ValueError(
                    "the embedder's and the reranker's exported word-embedding tables differ "
                    "(or a folder records none); pass share_word_embeddings=False to load "
                    "them as two models"
                )
        return cls(embedder, reranker)

    # ------------------------------------------------------------------ roles
    def embed(self, texts: str | list[str], is_query: bool = False, **kwargs: Any) -> np.ndarray:
        """Bi-encoder role: same as :meth:`Embedder.embed` (``(n, d)`` float32 by default)."""
        return self.embedder.embed(texts, is_query=is_query, **kwargs)

    def score(self, pairs: Sequence[tuple[str, str]], **kwargs: Any) -> np.ndarray:
        """Cross-encoder role: same as :meth:`Reranker.score` (``(n,)`` float32)."""
        return self.reranker.score(pairs, **kwargs)

    def rerank(
        self,
        query: str,
        docs: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = True,
        **kwargs: Any,
    ) -> list[tuple[str, float]] | list[dict[str, Any]]:
        """Cross-encoder role: same as :meth:`Reranker.rerank`."""
        return self.reranker.rerank(
            query, docs, top_k=top_k, return_documents=return_documents, **kwargs
        )

    def __repr__(self) -> str:
        return (
            f"EmbedRerank(embedder={self.embedder.name!r}, reranker={self.reranker.name!r}, "
            f"shared_word_embeddings={self.shared_word_embeddings}, "
            f"memory_saved_bytes={self.memory_saved_bytes})"
        )
