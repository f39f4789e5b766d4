"""maxsim.models.retrieve: embed -> search -> rerank, checked against brute force."""

from __future__ import annotations

import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest
from maxsim.models import ColBERT, Embedder, Reranker, retrieve
from maxsim.models.retrieve import binary_search_rescore

CORPUS = F.SENTENCES + [
    "gene expression data in mouse models",
    "the blue house and the red house",
    "patients with disease were treated",
    "one two three",
]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("retr")
    return {
        "emb": Embedder.from_pretrained(F.make_embedder_dir(root / "emb", seed=2)),
        "rr": Reranker.from_pretrained(F.make_cross_encoder_dir(root / "rr", seed=3)),
        "cb": ColBERT.from_pretrained(F.make_pylate_dir(root / "cb", seed=4)),
    }


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_dense_matches_brute_force():
    rng = np.random.default_rng(0)
    corpus = _unit(rng, 500, 48)
    q = _unit(rng, 1, 48)[0]
    scores, idx = retrieve(q, corpus, k=10)
    exp = np.argsort(-(corpus @ q), kind="stable")[:10]
    assert idx.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(idx, exp)
    np.testing.assert_allclose(scores, (corpus @ q)[exp], rtol=1e-6)
    s_all, i_all = retrieve(q, corpus[:7], k=50)  # k > n
    assert len(i_all) == 7 and sorted(i_all.tolist()) == list(range(7))


def test_binary_with_full_rescoring_equals_exact():
    rng = np.random.default_rng(1)
    corpus = _unit(rng, 300, 64)
    q = _unit(rng, 1, 64)[0]
    codes = np.packbits(corpus > 0, axis=-1)
    # depth * multiplier covers the corpus -> exact float ranking
    scores, idx = retrieve(q, codes, k=5, corpus_float=corpus, rescore_multiplier=60)
    exp = np.argsort(-(corpus @ q), kind="stable")[:5]
    np.testing.assert_array_equal(idx, exp)
    np.testing.assert_allclose(scores, (corpus @ q)[exp], atol=1e-5)


def test_binary_rescoring_uses_hamming_candidates_and_unpacked_bits():
    rng = np.random.default_rng(2)
    corpus = _unit(rng, 200, 32)
    q = _unit(rng, 1, 32)[0]
    codes = np.packbits(corpus > 0, axis=-1)
    s, idx = binary_search_rescore(q, codes, 3, rescore_multiplier=2)
    bits = np.unpackbits(codes, axis=1).astype(np.float32)  # 0/1, as sentence-transformers
    ham = (bits != (q > 0)).sum(axis=1)
    sixth = np.sort(ham)[5]  # candidates: the 6 nearest codes (ties at the 6th allowed)
    assert np.all(ham[idx] <= sixth)
    rescored = bits[idx] @ q
    np.testing.assert_allclose(s, rescored, atol=1e-5)
    assert np.all(np.diff(s) <= 0)


def test_text_query_and_matryoshka_corpus(models):
    emb = models["emb"]
    corpus = emb.embed(CORPUS, dim=16)
    q = emb.embed("cell protein expression", is_query=True, dim=16)
    scores, idx = retrieve("cell protein expression", corpus, k=4, embedder=emb)
    np.testing.assert_array_equal(idx, np.argsort(-(corpus @ q), kind="stable")[:4])
    codes = emb.embed(CORPUS, precision="ubinary")
    full = emb.embed(CORPUS)
    _, idx_b = retrieve(
        "cell protein expression",
        codes,
        k=3,
        embedder=emb,
        corpus_float=full,
        rescore_multiplier=10,
    )
    qf = emb.embed("cell protein expression", is_query=True)
    np.testing.assert_array_equal(idx_b, np.argsort(-(full @ qf), kind="stable")[:3])


def test_cross_encoder_second_stage(models):
    emb, rr = models["emb"], models["rr"]
    corpus = emb.embed(CORPUS)
    query = "protein expression in cells"
    scores, idx = retrieve(
        query, corpus, k=3, embedder=emb, reranker=rr, documents=CORPUS, candidates=6
    )
    first = np.argsort(-(corpus @ emb.embed(query, is_query=True)), kind="stable")[:6]
    ce = rr.score([(query, CORPUS[i]) for i in first])
    exp = first[np.argsort(-ce, kind="stable")[:3]]
    np.testing.assert_array_equal(idx, exp)
    np.testing.assert_allclose(scores, np.sort(ce)[::-1][:3], atol=1e-6)


def test_colbert_maxsim_second_stage(models):
    emb, cb = models["emb"], models["cb"]
    corpus = emb.embed(CORPUS)
    doc_tokens = cb.encode(CORPUS, is_query=False)
    query = "the cell and the house"
    scores, idx = retrieve(query, corpus, k=4, embedder=emb, colbert=cb, colbert_docs=doc_tokens)
    qt = cb.encode(query, is_query=True)
    maxsim_ref = np.array([(qt @ d.T).max(axis=1).sum() for d in doc_tokens])
    exp = np.argsort(-maxsim_ref, kind="stable")[:4]  # candidates = whole corpus here
    np.testing.assert_array_equal(idx, exp)
    np.testing.assert_allclose(scores, maxsim_ref[exp], atol=1e-4)


def test_bad_inputs(models):
    corpus = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="embedder"):
        retrieve("text", corpus, k=2)
    with pytest.raises(TypeError, match="k"):
        retrieve(corpus[0], corpus, k=2.5)
    with pytest.raises(ValueError, match="k"):
        retrieve(corpus[0], corpus, k=0)
    with pytest.raises(TypeError, match="corpus_embeddings"):
        retrieve(corpus[0], corpus.tolist(), k=1)
    with pytest.raises(ValueError, match="corpus_embeddings"):
        retrieve(corpus[0], corpus.astype(np.int32), k=1)
    with pytest.raises(ValueError, match="query"):
        retrieve(np.ones(3, np.float32), corpus, k=1)
    with pytest.raises(ValueError, match="documents"):
        retrieve(
            "cell", models["emb"].embed(CORPUS), k=1, embedder=models["emb"], reranker=models["rr"]
        )
    with pytest.raises(ValueError, match="query text"):
        retrieve(corpus[0], corpus, k=1, reranker=models["rr"], documents=["a"] * 4)
    with pytest.raises(ValueError, match="candidates"):
        retrieve(corpus[0], corpus, k=3, candidates=2)
