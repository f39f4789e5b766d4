"""Encoders that produce what the ``maxsim`` kernels score: text in, vectors / ranks out.

Two backends run the transformer: ``from_pretrained(..., backend="torch")`` (the
default: ``transformers`` + ``torch``, no sentence-transformers or PyLate) and
``backend="onnx"`` (ONNX Runtime + ``tokenizers``, no torch; export a model with
``maxsim export onnx`` / :func:`maxsim.models.export.export_onnx`). Tokenization and
everything after the transformer is the same code for both. Each backend's
libraries are imported when a model loads.

* :class:`ColBERT` -- multi-vector (late-interaction) encoder, PyLate / Stanford formats.
* :class:`Embedder` -- single-vector bi-encoder, sentence-transformers layouts.
* :class:`Reranker` -- cross-encoder with one relevance logit.
* :class:`CausalReranker` -- decoder-only reranker, ``logit(yes) - logit(no)``.
* :class:`MatryoshkaReranker` -- 2D-Matryoshka cross-encoder with early exit.
* :class:`EmbedRerank` -- embedder + reranker sharing one word-embedding table.
* :func:`retrieve` -- embed, search (optionally binary + rescoring), rerank.
"""

from __future__ import annotations

from ._common import ModelNotFoundError, quantize_embeddings
from .causal_reranker import CausalReranker
from .colbert import ColBERT
from .embedder import Embedder
from .matryoshka import MatryoshkaReranker
from .reranker import Reranker
from .retrieve import retrieve
from .router import EmbedRerank

__all__ = [
    "CausalReranker",
    "ColBERT",
    "Embedder",
    "EmbedRerank",
    "MatryoshkaReranker",
    "ModelNotFoundError",
    "Reranker",
    "quantize_embeddings",
    "retrieve",
]
