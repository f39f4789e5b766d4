"""End to end with a real (tiny, random-weight, offline) PyLate ColBERT model.

The model is built in a fixture: a small ``BertConfig``, a WordPiece
``vocab.txt`` loaded with ``BertTokenizerFast(vocab=...)`` (under transformers 5
the old ``vocab_file=`` argument is silently ignored and yields a 5-token
vocabulary), PyLate's Dense projection, saved and reloaded with
``pylate.models.ColBERT(path)``. Every expected value comes from PyLate.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch = pytest.importorskip("torch")
pylate = pytest.importorskip("pylate")
transformers = pytest.importorskip("transformers")

import maxsim.pylate as mp  # noqa: E402
from pylate import indexes, models, rank, retrieve  # noqa: E402
from pylate.scores import colbert as pylate_colbert  # noqa: E402

ATOL = 1e-5
EMBEDDING_SIZE = 24

WORDS = (
    "the a of and to in is it that fruit fruits apple apples banana healthy good bad "
    "for health fun red green sweet sour tree grows eat eating people like likes day "
    "every keeps doctor away juice river stone city music light dark"
).split()


def _vocab() -> list[str]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = list("abcdefghijklmnopqrstuvwxyz.,!?")
    pieces = ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"] + ["##s", "##ing"]
    return list(dict.fromkeys(special + WORDS + letters + pieces))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    base = tmp_path_factory.mktemp("tiny-bert")
    vocab = _vocab()
    vocab_path = base / "vocab.txt"
    vocab_path.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(vocab_path))
    assert len(tokenizer) == len(vocab), "vocab.txt was not loaded (vocab_file= pitfall)"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    built = models.ColBERT(
        str(base),
        device="cpu",
        embedding_size=EMBEDDING_SIZE,
        query_length=16,
        document_length=48,
    )
    assert isinstance(built[1], models.Dense)
    saved = tmp_path_factory.mktemp("tiny-colbert")
    built.save(str(saved))
    return models.ColBERT(str(saved), device="cpu")


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(0)
    documents = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 30)))) for _ in range(40)]
    queries = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 8)))) for _ in range(6)]
    return queries, documents


@pytest.fixture(scope="module")
def encoded(model, corpus):
    queries, documents = corpus
    q = model.encode(queries, is_query=True, batch_size=8, show_progress_bar=False)
    d = model.encode(documents, is_query=False, batch_size=8, show_progress_bar=False)
    assert len({x.shape[0] for x in d}) > 5  # documents of many lengths
    assert q[0].shape[1] == EMBEDDING_SIZE
    return q, d


@pytest.fixture(autouse=True)
def _not_patched():
    mp.unpatch()
    yield
    mp.unpatch()


def padded(docs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = [torch.from_numpy(d) for d in docs]
    batch = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True)
    lengths = torch.tensor([t.shape[0] for t in tensors])
    mask = (torch.arange(batch.shape[1])[None, :] < lengths[:, None]).long()
    # Garbage (not zeros) in the padding: a masked token must not count at all.
    batch = batch + (1 - mask)[..., None] * 3.0
    return batch, mask


def assert_same_results(got, expected, atol: float = ATOL) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert [r["id"] for r in g] == [r["id"] for r in e]
        np.testing.assert_allclose(
            [r["score"] for r in g], [r["score"] for r in e], atol=atol, rtol=0
        )


def test_colbert_scores_on_model_embeddings(encoded) -> None:
    q, d = encoded
    queries = torch.from_numpy(np.stack(q))
    docs, mask = padded(d)
    qmask = torch.ones(queries.shape[:2], dtype=torch.long)
    qmask[0, -3:] = 0
    expected = pylate_colbert.colbert_scores(queries, docs, qmask, mask, backend="torch")
    got = mp.colbert_scores(queries, docs, qmask, mask)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    # And the kd / pairwise variants on the same data.
    kd_docs = docs[:30].reshape(6, 5, *docs.shape[1:])
    kd_mask = mask[:30].reshape(6, 5, -1)
    expected = pylate_colbert.colbert_kd_scores(queries, kd_docs, qmask, kd_mask, backend="torch")
    torch.testing.assert_close(
        mp.colbert_kd_scores(queries, kd_docs, qmask, kd_mask), expected, atol=ATOL, rtol=0
    )
    expected = pylate_colbert.colbert_scores_pairwise(q, d[:6], backend="torch")
    torch.testing.assert_close(mp.colbert_scores_pairwise(q, d[:6]), expected, atol=ATOL, rtol=0)


def test_rerank_on_model_embeddings(encoded) -> None:
    q, d = encoded
    rng = np.random.default_rng(1)
    ids = [sorted(rng.choice(len(d), size=25, replace=False).tolist()) for _ in q]
    docs = [[d[i] for i in group] for group in ids]
    expected = rank.rerank(documents_ids=ids, queries_embeddings=q, documents_embeddings=docs)
    assert_same_results(mp.rerank(ids, q, docs), expected)
    # exact=True: PyLate scoring one candidate at a time (no padding) is the reference.
    exact = mp.rerank(ids, q, docs, exact=True)
    for qi, results in enumerate(exact):
        for r in results:
            ref = pylate_colbert.colbert_scores(
                torch.from_numpy(q[qi])[None], torch.from_numpy(d[r["id"]])[None], backend="torch"
            )
            assert r["score"] == pytest.approx(float(ref), abs=ATOL)


class _ArrayArgs:
    """voyager >= 2.2 (nanobind) takes only ndarrays, but PyLate 1.6's Voyager
    index passes lists of rows to ``add_items`` and ``query``: convert them."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def add_items(self, vectors, *args, **kwargs):
        return self._inner.add_items(np.asarray(vectors, dtype=np.float32), *args, **kwargs)

    def query(self, vectors, *args, **kwargs):
        return self._inner.query(np.asarray(vectors, dtype=np.float32), *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def test_voyager_retrieval_patched_equals_unpatched(encoded, tmp_path) -> None:
    q, d = encoded
    index = indexes.Voyager(
        index_folder=str(tmp_path),
        index_name="voyager",
        override=True,
        embedding_size=EMBEDDING_SIZE,
    )
    index.index = _ArrayArgs(index.index)
    index.add_documents(documents_ids=[f"doc{i}" for i in range(len(d))], documents_embeddings=d)
    retriever = retrieve.ColBERT(index=index)
    expected = retriever.retrieve(queries_embeddings=q, k=10, device="cpu")
    with mp.patched():
        assert pylate.retrieve.colbert.rerank is mp.rerank
        got = retriever.retrieve(queries_embeddings=q, k=10, device="cpu")
        got_default_device = retriever.retrieve(queries_embeddings=q, k=10)
    assert sum(len(r) for r in expected) > 0
    assert_same_results(got, expected)
    assert_same_results(got_default_device, expected)
    again = retriever.retrieve(queries_embeddings=q, k=10, device="cpu")
    assert_same_results(again, expected, atol=0)


def brute_force(q: list[np.ndarray], d: list[np.ndarray], ids: list[str], k: int):
    """Exact top-k with PyLate's own scorer, one document per call (no padding)."""
    out = []
    for query in q:
        scores = torch.stack(
            [
                pylate_colbert.colbert_scores(
                    torch.from_numpy(query)[None], torch.from_numpy(doc)[None], backend="torch"
                )[0, 0]
                for doc in d
            ]
        )
        order = torch.sort(scores, descending=True, stable=True).indices[:k]
        out.append([{"id": ids[i], "score": float(scores[i])} for i in order.tolist()])
    return out


def test_index_with_pylate_retriever(encoded, tmp_path) -> None:
    q, d = encoded
    ids = [f"doc{i}" for i in range(len(d))]
    index = mp.Index(index_folder=str(tmp_path), index_name="exact", override=True)
    index.add_documents(documents_ids=ids, documents_embeddings=d)
    assert isinstance(index, pylate.indexes.base.Base)
    retriever = retrieve.ColBERT(index=index)
    got = retriever.retrieve(queries_embeddings=q, k=7)
    assert_same_results(got, brute_force(q, d, ids, 7))
    # Tensor queries, one at a time, and a subset.
    one = retriever.retrieve(queries_embeddings=torch.from_numpy(q[0]), k=3)
    assert_same_results(one, brute_force(q[:1], d, ids, 3))
    subset = ids[::3]
    got = retriever.retrieve(queries_embeddings=q, k=4, subset=subset)
    assert_same_results(got, brute_force(q, d[::3], subset, 4))
    # Persisted: a new Index on the same folder finds the same documents.
    reloaded = retrieve.ColBERT(index=mp.Index(index_folder=str(tmp_path), index_name="exact"))
    first = retriever.retrieve(queries_embeddings=q, k=7)
    assert_same_results(reloaded.retrieve(queries_embeddings=q, k=7), first, atol=0)


def test_float16_index(encoded) -> None:
    q, d = encoded
    ids = [f"doc{i}" for i in range(len(d))]
    index = mp.Index(dtype="float16").add_documents(ids, d)
    rounded = [x.astype(np.float16).astype(np.float32) for x in d]
    got = retrieve.ColBERT(index=index).retrieve(queries_embeddings=q, k=5)
    assert_same_results(got, brute_force(q, rounded, ids, 5))
