"""maxsim.integrations.langchain inside real LangChain: ContextualCompressionRetriever
chains (langchain-classic's), an in-memory vector store as the first stage, a
fake LLM at the end. References: MaxSim in float64 numpy on the encoder's
vectors, sentence-transformers' CrossEncoder for the cross-encoder."""

from __future__ import annotations

import asyncio

import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest

pytest.importorskip("langchain_core")
classic = pytest.importorskip("langchain_classic.retrievers")

import maxsim  # noqa: E402
from conftest import reference_maxsim  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402
from langchain_core.language_models.fake import FakeListLLM  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import PromptTemplate  # noqa: E402
from langchain_core.runnables import RunnablePassthrough  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402
from maxsim.integrations.langchain import MaxSimCompressor, MaxSimRetriever  # noqa: E402
from maxsim.models import ColBERT  # noqa: E402

CORPUS = [
    *F.SENTENCES,
    "gene expression levels in mouse cells",
    "the dog and the cat show increased risk",
    "a blue house",
    "vector search with late interaction scores each document token",
]
QUERY = "protein expression in human cells"


@pytest.fixture(scope="module")
def colbert_dir(tmp_path_factory: pytest.TempPathFactory):
    return F.make_pylate_dir(tmp_path_factory.mktemp("colbert") / "m", seed=7)


@pytest.fixture(scope="module")
def cross_dir(tmp_path_factory: pytest.TempPathFactory):
    return F.make_cross_encoder_dir(tmp_path_factory.mktemp("ce") / "m", seed=3)


@pytest.fixture(scope="module")
def colbert(colbert_dir):
    return ColBERT.from_pretrained(colbert_dir)


def colbert_reference(colbert: ColBERT, query: str, texts: list[str]) -> np.ndarray:
    q = colbert.encode(query, is_query=True)
    return np.array([reference_maxsim(q, colbert.encode(t, is_query=False)) for t in texts])


def first_stage(k: int = 6):
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=32))
    store.add_documents(
        [Document(page_content=t, metadata={"n": i}, id=f"d{i}") for i, t in enumerate(CORPUS)]
    )
    return store.as_retriever(search_kwargs={"k": k})


def test_compressor_in_a_contextual_compression_chain(colbert_dir, colbert):
    base = first_stage(k=6)
    retrieved = base.invoke(QUERY)
    assert len(retrieved) == 6
    compressor = MaxSimCompressor(model=colbert_dir, top_n=3)
    assert compressor.kind == "colbert"
    retriever = classic.ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=base
    )
    prompt = PromptTemplate.from_template("{context}\n\nQ: {question}")
    seen: list[str] = []

    def context(docs: list[Document]) -> str:
        seen.extend(d.page_content for d in docs)
        return "\n".join(d.page_content for d in docs)

    chain = (
        {"context": retriever | context, "question": RunnablePassthrough()}
        | prompt
        | FakeListLLM(responses=["the answer"])
        | StrOutputParser()
    )
    assert chain.invoke(QUERY) == "the answer"

    want = colbert_reference(colbert, QUERY, [d.page_content for d in retrieved])
    order = np.argsort(-want, kind="stable")[:3]
    assert seen == [retrieved[i].page_content for i in order]
    got = retriever.invoke(QUERY)
    assert [d.id for d in got] == [retrieved[i].id for i in order]
    np.testing.assert_allclose([d.metadata["relevance_score"] for d in got], want[order], rtol=1e-5)
    assert [d.metadata["n"] for d in got] == [retrieved[i].metadata["n"] for i in order]
    assert all("relevance_score" not in d.metadata for d in retrieved)  # copies, not edits
    again = asyncio.run(retriever.ainvoke(QUERY))
    assert [d.id for d in again] == [d.id for d in got]


def test_compressor_with_a_cross_encoder(cross_dir):
    from sentence_transformers import CrossEncoder

    docs = [Document(page_content=t) for t in CORPUS]
    compressor = MaxSimCompressor(model=cross_dir, top_n=None)
    assert compressor.kind == "cross-encoder"
    got = compressor.compress_documents(docs, QUERY)
    want = CrossEncoder(str(cross_dir), device="cpu").predict([(QUERY, t) for t in CORPUS])
    order = np.argsort(-np.asarray(want, dtype=np.float64), kind="stable")
    assert [d.page_content for d in got] == [CORPUS[i] for i in order]
    np.testing.assert_allclose(
        [d.metadata["relevance_score"] for d in got], np.asarray(want)[order], atol=1e-5
    )
    assert compressor.compress_documents([], QUERY) == []


def test_retriever_over_an_index_and_over_embeddings(tmp_path, colbert_dir, colbert):
    want = colbert_reference(colbert, QUERY, CORPUS)
    order = np.argsort(-want, kind="stable")
    in_memory = MaxSimRetriever.from_texts(
        CORPUS, colbert_dir, metadatas=[{"n": i} for i in range(len(CORPUS))], k=4
    )
    indexed = MaxSimRetriever.from_texts(
        CORPUS,
        colbert,
        ids=[f"doc-{i}" for i in range(len(CORPUS))],
        index_path=tmp_path / "lc.index",
        index_kwargs={"store": "float32", "n_centroids": 8},
        search_kwargs={"exact": True},
        k=4,
    )
    assert isinstance(indexed.index, maxsim.Index) and len(indexed.index) == len(CORPUS)
    for retriever in (in_memory, indexed):
        got = retriever.invoke(QUERY)
        assert [d.page_content for d in got] == [CORPUS[i] for i in order[:4]]
        np.testing.assert_allclose(
            [d.metadata["relevance_score"] for d in got], want[order[:4]], rtol=1e-5
        )
        assert len(retriever.invoke(QUERY, k=2)) == 2
    assert [d.metadata["n"] for d in in_memory.invoke(QUERY)] == order[:4].tolist()
    assert [d.id for d in indexed.invoke(QUERY)] == [f"doc-{i}" for i in order[:4]]
    # More than the corpus: every document once, no padding.
    assert len(indexed.invoke(QUERY, k=50)) == len(in_memory.invoke(QUERY, k=50)) == len(CORPUS)


def test_retriever_as_the_first_stage_of_a_compression_chain(colbert, cross_dir):
    from sentence_transformers import CrossEncoder

    first = MaxSimRetriever.from_documents(
        [Document(page_content=t, id=str(i)) for i, t in enumerate(CORPUS)], colbert, k=5
    )
    retriever = classic.ContextualCompressionRetriever(
        base_compressor=MaxSimCompressor(model=cross_dir, top_n=2), base_retriever=first
    )
    candidates = [d.page_content for d in first.invoke(QUERY)]
    ce = CrossEncoder(str(cross_dir), device="cpu").predict([(QUERY, t) for t in candidates])
    order = np.argsort(-np.asarray(ce, dtype=np.float64), kind="stable")[:2]
    got = retriever.invoke(QUERY)
    assert [d.page_content for d in got] == [candidates[i] for i in order]


def test_bad_arguments(tmp_path, colbert, cross_dir):
    docs = [Document(page_content=t) for t in CORPUS[:3]]
    emb = colbert.encode(CORPUS[:3], is_query=False)
    with pytest.raises(ValueError, match="exactly one of index"):
        MaxSimRetriever(encoder=colbert, documents=docs)
    with pytest.raises(ValueError, match="2 Documents for 3 embedded"):
        MaxSimRetriever(encoder=colbert, documents=docs[:2], embeddings=emb)
    with pytest.raises(TypeError, match="expected Documents, found a str"):
        MaxSimRetriever(encoder=colbert, documents=CORPUS[:3], embeddings=emb)
    index = maxsim.Index.create(tmp_path / "wide", dim=colbert.dim + 1)
    with pytest.raises(ValueError, match="dimension 16, the corpus's 17"):
        MaxSimRetriever(encoder=colbert, documents=docs, index=index)
    with pytest.raises(TypeError, match="only an index= retriever"):
        MaxSimRetriever(encoder=colbert, documents=docs, embeddings=emb).invoke("q", nprobe=4)
    with pytest.raises(ValueError, match="k: must be at least 1"):
        MaxSimRetriever(encoder=colbert, documents=docs, embeddings=emb, k=0)
    with pytest.raises(ValueError, match="kind"):
        MaxSimCompressor(model=cross_dir, kind="colbert-ish")
    with pytest.raises(ValueError, match="kind='colbert' but model is a Reranker"):
        from maxsim.models import Reranker

        MaxSimCompressor(model=Reranker.from_pretrained(cross_dir), kind="colbert")
    embedder = F.make_embedder_dir(tmp_path / "emb")
    with pytest.raises(ValueError, match="a Embedder .its class in maxsim.models. does not score"):
        MaxSimCompressor(model=embedder)
    with pytest.raises(TypeError, match="texts\\[1\\]: expected a str"):
        MaxSimCompressor(model=colbert).compress_documents(
            [Document(page_content="a"), Document.model_construct(page_content=3)], "q"
        )


# ------------------------------------------------- LangChain's own standard tests

standard = pytest.importorskip("langchain_tests.integration_tests")
pytest.importorskip("pytest_asyncio")  # runs the suite's async test

_STANDARD: dict = {}  # retriever arguments, built once by the fixture below


@pytest.fixture(scope="module", autouse=True)
def _standard_retrievers(tmp_path_factory: pytest.TempPathFactory, colbert):
    docs = [Document(page_content=t, id=str(i)) for i, t in enumerate(CORPUS)]
    index = maxsim.Index.create(
        tmp_path_factory.mktemp("std") / "ix", colbert.dim, store="float32", n_centroids=8
    )
    vectors = colbert.encode(CORPUS, is_query=False)
    index.add(list(range(len(CORPUS))), vectors)
    _STANDARD["embeddings"] = {"encoder": colbert, "documents": docs, "embeddings": vectors}
    _STANDARD["index"] = {
        "encoder": colbert,
        "documents": docs,
        "index": index,
        "search_kwargs": {"exact": True},
    }


class TestStandardOverEmbeddings(standard.RetrieversIntegrationTests):
    """langchain-tests' retriever suite on the exhaustive (embeddings=) retriever."""

    @property
    def retriever_constructor(self) -> type[MaxSimRetriever]:
        return MaxSimRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return dict(_STANDARD["embeddings"])

    @property
    def retriever_query_example(self) -> str:
        return QUERY


class TestStandardOverAnIndex(TestStandardOverEmbeddings):
    """The same suite on the maxsim.Index (index=) retriever."""

    @property
    def retriever_constructor_params(self) -> dict:
        return dict(_STANDARD["index"])
