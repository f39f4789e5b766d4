"""LlamaIndex: ``MaxSimRerank``, a ColBERT node postprocessor.

Needs only ``llama-index-core`` (``pip install "maxsim[llamaindex]"``), plus
the encoder's backend: an ONNX export (``maxsim export onnx``) runs on ONNX
Runtime, without torch (``maxsim[onnx]``)::

    from maxsim.integrations.llamaindex import MaxSimRerank

    rerank = MaxSimRerank(model="gte-colbert-onnx", top_n=5)
    engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[rerank])

It takes ``ColbertRerank``'s arguments that apply (``top_n``, ``model``,
``keep_retrieval_score``; ``tokenizer`` only when it names the model, whose
own tokenizer is used; ``device`` for the torch backend) and follows its
contract: each node's ``score`` becomes its rerank score, the retrieval score
moves to ``node.metadata["retrieval_score"]`` with ``keep_retrieval_score``,
and the ``top_n`` best nodes are returned, best first.

The score is ColBERT's MaxSim on the model's projected, normalised token
vectors (the sum over query tokens of the best document-token similarity,
the query expanded as PyLate does), not ``ColbertRerank``'s mean over query
tokens of cosine similarities of the transformer's hidden states; the
order is the model's own ranking.
"""

from __future__ import annotations

import os
from typing import Any, List, Optional

from ._common import TextScorer, best_first, check_count, load_scorer, missing_framework

try:
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.callbacks import CBEventType, EventPayload
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
except ImportError as err:  # pragma: no cover - exercised in a venv without it
    raise ImportError(missing_framework("llama-index-core", "llamaindex", __name__)) from err

__all__ = ["MaxSimRerank"]

dispatcher = get_dispatcher(__name__)


class MaxSimRerank(BaseNodePostprocessor):
    """Reranks nodes by ColBERT MaxSim with maxsim's encoders and kernels.

    Args:
        top_n: nodes returned.
        model: a model folder or hub id (a ``maxsim export onnx`` folder loads
            on ONNX Runtime, without torch), or a loaded ``maxsim.models.ColBERT``.
        keep_retrieval_score: keep each node's retrieval score in
            ``node.metadata["retrieval_score"]``.
        backend: ``"torch"`` or ``"onnx"``; ``None``: ``"onnx"`` for a folder
            with an ONNX graph, else torch.
        batch_size: texts per forward pass.
        tokenizer: accepted for ``ColbertRerank`` compatibility: ``None`` or
            the model's own name (maxsim always uses the model's tokenizer).
        device: the torch backend's device (``None``: CPU). Scoring runs on the CPU.
        load_kwargs: more ``ColBERT.from_pretrained`` options (``int8_linear``, ...).
    """

    model: str = Field(description="ColBERT model name or folder.")
    top_n: int = Field(description="Number of nodes to return sorted by score.")
    keep_retrieval_score: bool = Field(
        default=False, description="Whether to keep the retrieval score in metadata."
    )
    backend: Optional[str] = Field(default=None, description="'torch', 'onnx' or None.")
    batch_size: int = Field(default=32, description="Texts per forward pass.")
    _scorer: TextScorer = PrivateAttr()

    def __init__(
        self,
        top_n: int = 5,
        model: Any = "colbert-ir/colbertv2.0",
        keep_retrieval_score: bool = False,
        *,
        backend: Optional[str] = None,
        batch_size: int = 32,
        tokenizer: Optional[str] = None,
        device: Optional[str] = None,
        **load_kwargs: Any,
    ) -> None:
        check_count(top_n, "top_n")
        is_path = isinstance(model, (str, os.PathLike))
        name = os.fspath(model) if is_path else str(getattr(model, "name", type(model).__name__))
        if tokenizer is not None and tokenizer != name:
            raise ValueError(
                f"tokenizer={tokenizer!r}: maxsim uses the model's own tokenizer; pass "
                "None or the model's name"
            )
        if device is not None:
            load_kwargs["device"] = device
        scorer = load_scorer(
            model, kind="colbert", backend=backend if is_path else None, batch_size=batch_size,
            **load_kwargs,
        )  # fmt: skip
        super().__init__(
            top_n=top_n,
            model=name,
            keep_retrieval_score=keep_retrieval_score,
            backend=getattr(scorer.model, "backend", backend),
            batch_size=batch_size,
        )
        self._scorer = scorer

    @classmethod
    def class_name(cls) -> str:
        return "MaxSimRerank"

    def _postprocess_nodes(
        self,
        nodes: List[NodeWithScore],
        query_bundle: Optional[QueryBundle] = None,
    ) -> List[NodeWithScore]:
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=self.model
            )
        )
        if query_bundle is None:
            raise ValueError("Missing query bundle in extra info.")
        if not nodes:
            return []
        texts = [str(n.node.get_content(metadata_mode=MetadataMode.EMBED)) for n in nodes]
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: self.model,
                EventPayload.QUERY_STR: query_bundle.query_str,
                EventPayload.TOP_K: self.top_n,
            },
        ) as event:
            scores = self._scorer.score(query_bundle.query_str, texts)
            for node, score in zip(nodes, scores):
                if self.keep_retrieval_score:
                    node.node.metadata["retrieval_score"] = node.score
                node.score = float(score)
            reranked = [nodes[i] for i in best_first(scores)[: self.top_n]]
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked
