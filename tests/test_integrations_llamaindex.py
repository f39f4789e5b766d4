"""maxsim.integrations.llamaindex.MaxSimRerank in a real LlamaIndex query
engine over a small VectorStoreIndex (a mock LLM, an ONNX bi-encoder as the
embedding), on the ONNX backend: no torch in the pipeline (checked in a
process where torch cannot be imported).

References: MaxSim in float64 numpy on the model's vectors, and the torch
backend's vectors of the same model (the ONNX fixtures' ``refs.npz``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import _onnx_fixtures as OF  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("onnxruntime")

from conftest import reference_maxsim  # noqa: E402
from llama_index.core import Document, VectorStoreIndex  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.bridge.pydantic import PrivateAttr  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode  # noqa: E402
from maxsim.integrations.llamaindex import MaxSimRerank  # noqa: E402
from maxsim.models import ColBERT, Embedder  # noqa: E402

CORPUS = OF.F.SENTENCES  # the texts whose torch-backend vectors refs.npz holds
QUERY_AT = 3  # OF.TEXTS[3] is the query; refs hold its query vectors too


@pytest.fixture(scope="module")
def fx() -> Path:
    prebuilt = os.environ.get("MAXSIM_ONNX_FIXTURES")
    if prebuilt:
        return Path(prebuilt)
    pytest.importorskip("torch")  # exports the fixtures (once, cached)
    return OF.build_all(OF.default_root())


class OnnxEmbedding(BaseEmbedding):
    """A LlamaIndex embedding on maxsim's ONNX bi-encoder (the test fixture)."""

    _model: Any = PrivateAttr()

    def __init__(self, folder: Path) -> None:
        super().__init__(model_name="fixture-embedder")
        self._model = Embedder.from_pretrained(folder, backend="onnx")

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._model.embed(query, is_query=True).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._model.embed(text).tolist()


def reference_scores(fx: Path, query: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """MaxSim of ``query`` on ``texts`` from the ONNX model's vectors, and from
    the torch backend's (refs.npz)."""
    model = ColBERT.from_pretrained(fx / "colbert" / "onnx", backend="onnx")
    q = model.encode(query, is_query=True)
    onnx = np.array([reference_maxsim(q, model.encode(t, is_query=False)) for t in texts])
    refs = dict(np.load(fx / "colbert" / "refs.npz"))
    tq = OF.unragged(refs, "query")[OF.TEXTS.index(query)]
    tdocs = OF.unragged(refs, "doc")
    torch = np.array([reference_maxsim(tq, tdocs[OF.TEXTS.index(t)]) for t in texts])
    return onnx, torch


def test_rerank_in_a_query_engine(fx):
    query = OF.TEXTS[QUERY_AT]
    docs = [Document(text=t, id_=f"doc-{i}") for i, t in enumerate(CORPUS) if i != QUERY_AT]
    index = VectorStoreIndex.from_documents(
        docs, embed_model=OnnxEmbedding(fx / "embedder" / "onnx")
    )
    retrieved = index.as_retriever(similarity_top_k=6).retrieve(query)
    texts = [n.node.get_content() for n in retrieved]
    assert len(retrieved) == 6

    rerank = MaxSimRerank(model=fx / "colbert" / "onnx", top_n=3, keep_retrieval_score=True)
    assert rerank.backend == "onnx" and rerank.top_n == 3
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=6, node_postprocessors=[rerank])
    response = engine.query(query)

    onnx, torch = reference_scores(fx, query, texts)
    order = np.argsort(-onnx, kind="stable")[:3]
    assert order.tolist() == np.argsort(-torch, kind="stable")[:3].tolist()
    assert order.tolist() != [0, 1, 2]  # the rerank changes the dense order
    got = response.source_nodes
    assert [n.node.node_id for n in got] == [retrieved[i].node.node_id for i in order]
    np.testing.assert_allclose([n.score for n in got], onnx[order], rtol=1e-5)
    np.testing.assert_allclose([n.score for n in got], torch[order], atol=1e-3)
    np.testing.assert_allclose(
        [n.node.metadata["retrieval_score"] for n in got], [retrieved[i].score for i in order]
    )
    # MockLLM answers with its prompt: the reranked context, best first.
    answer = str(response)
    positions = [answer.index(texts[i]) for i in order]
    assert positions == sorted(positions)


def test_direct_calls_and_arguments(fx):
    folder = fx / "colbert" / "onnx"
    model = ColBERT.from_pretrained(folder, backend="onnx")
    nodes = [NodeWithScore(node=TextNode(text=t), score=0.5) for t in CORPUS]
    rerank = MaxSimRerank(top_n=2, model=model, tokenizer=model.name)  # ColbertRerank's args
    assert rerank.model == model.name and rerank.keep_retrieval_score is False
    got = rerank.postprocess_nodes(nodes, query_str="cells and genes")
    q = model.encode("cells and genes", is_query=True)
    want = [reference_maxsim(q, model.encode(t, is_query=False)) for t in CORPUS]
    assert [n.node.get_content() for n in got] == [
        CORPUS[i] for i in np.argsort(-np.array(want), kind="stable")[:2]
    ]
    assert "retrieval_score" not in got[0].node.metadata
    assert rerank.postprocess_nodes([], QueryBundle("q")) == []
    with pytest.raises(ValueError, match="Missing query bundle"):
        rerank.postprocess_nodes(nodes)
    with pytest.raises(ValueError, match="top_n: must be at least 1"):
        MaxSimRerank(top_n=0, model=model)
    with pytest.raises(ValueError, match="maxsim uses the model's own tokenizer"):
        MaxSimRerank(model=folder, tokenizer="colbert-ir/colbertv2.0")
    with pytest.raises(ValueError, match="holds a 'Embedder' model, not a ColBERT"):
        MaxSimRerank(model=fx / "embedder" / "onnx")


def test_pipeline_runs_without_torch(fx):
    """torch and transformers cannot be imported in this process at all."""
    code = f"""
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError("blocked by the test: " + name)

sys.meta_path.insert(0, Block())
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from maxsim.integrations.llamaindex import MaxSimRerank

texts = {list(CORPUS)!r}
index = VectorStoreIndex.from_documents(
    [Document(text=t) for t in texts], embed_model=MockEmbedding(embed_dim=8)
)
rerank = MaxSimRerank(model={os.fspath(fx / "colbert" / "onnx")!r}, top_n=2)
engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=5, node_postprocessors=[rerank])
nodes = engine.query("protein expression in cells").source_nodes
assert len(nodes) == 2 and nodes[0].score >= nodes[1].score, nodes
assert "torch" not in sys.modules and "transformers" not in sys.modules
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
