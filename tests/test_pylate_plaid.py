"""maxsim.pylate.PLAID inside PyLate's own retriever, with a tiny ColBERT model.

Expected results come from PyLate: its ``colbert_scores`` over every
document (exhaustive), and its retriever's handling of the index.
"""

from __future__ import annotations

import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pylate = pytest.importorskip("pylate")

import maxsim.pylate as mp  # noqa: E402
from pylate import models, retrieve  # noqa: E402
from pylate.scores import colbert as pylate_colbert  # noqa: E402


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    path = F.make_pylate_dir(tmp_path_factory.mktemp("colbert"), dim=16)
    model = models.ColBERT(str(path), device="cpu")
    rng = np.random.default_rng(0)
    words = F.WORDS
    docs = [" ".join(rng.choice(words, int(rng.integers(3, 15)))) for _ in range(60)]
    queries = [" ".join(rng.choice(words, 4)) for _ in range(5)]
    d = model.encode(docs, is_query=False, convert_to_numpy=True)
    q = model.encode(queries, is_query=True, convert_to_numpy=True)
    return [np.asarray(x, np.float32) for x in q], [np.asarray(x, np.float32) for x in d]


def brute_force(q, d, ids, k):
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
        out.append([(ids[i], float(scores[i])) for i in order.tolist()])
    return out


def check(got, expected, atol=1e-5):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert [r["id"] for r in g] == [x[0] for x in e]
        np.testing.assert_allclose([r["score"] for r in g], [x[1] for x in e], atol=atol, rtol=0)


def test_exact_plaid_in_pylate_retriever(encoded, tmp_path) -> None:
    q, d = encoded
    ids = [f"doc{i}" for i in range(len(d))]
    index = mp.PLAID(
        index_folder=str(tmp_path),
        index_name="p",
        override=True,
        store="float32",
        rerank="exact",
        n_ivf_probe=1024,
        n_full_scores=len(d),
    )
    index.add_documents(documents_ids=ids, documents_embeddings=d)
    assert isinstance(index, pylate.indexes.base.Base)
    retriever = retrieve.ColBERT(index=index)
    check(retriever.retrieve(queries_embeddings=q, k=7), brute_force(q, d, ids, 7))
    # One tensor query; a subset; removal (unknown ids ignored) and update.
    check(
        retriever.retrieve(queries_embeddings=torch.from_numpy(q[0]), k=3),
        brute_force(q[:1], d, ids, 3),
    )
    subset = ids[::4]
    check(
        retriever.retrieve(queries_embeddings=q, k=4, subset=subset),
        brute_force(q, d[::4], subset, 4),
    )
    index.remove_documents(["doc0", "doc1", "not-there"])
    check(retriever.retrieve(queries_embeddings=q, k=5), brute_force(q, d[2:], ids[2:], 5))
    index.update_documents(["doc5"], [d[0]])
    new_d = d[2:5] + d[6:] + [d[0]]
    new_ids = ids[2:5] + ids[6:] + ["doc5"]
    check(retriever.retrieve(queries_embeddings=q, k=5), brute_force(q, new_d, new_ids, 5))
    emb = index.get_documents_embeddings([["doc5", "doc7"]])
    np.testing.assert_array_equal(emb[0][0], d[0])
    np.testing.assert_array_equal(emb[0][1], d[7])
    # Persisted: a new object on the same folder answers the same.
    again = retrieve.ColBERT(
        index=mp.PLAID(
            index_folder=str(tmp_path),
            index_name="p",
            rerank="exact",
            n_ivf_probe=1024,
            n_full_scores=len(d),
        )
    )
    check(again.retrieve(queries_embeddings=q, k=5), brute_force(q, new_d, new_ids, 5))


def test_compressed_plaid_finds_the_exhaustive_results(encoded, tmp_path) -> None:
    q, d = encoded
    ids = list(range(len(d)))
    index = mp.PLAID(index_folder=str(tmp_path), index_name="c", override=True)
    index.add_documents(documents_ids=ids, documents_embeddings=d)
    got = retrieve.ColBERT(index=index).retrieve(queries_embeddings=q, k=5)
    want = brute_force(q, d, ids, 5)
    found = sum(len({r["id"] for r in g} & {x[0] for x in w}) for g, w in zip(got, want))
    # A random-weight 16-d model gives many near-tied scores; 4-bit residuals
    # still find most of the exhaustive top 5.
    assert found >= 0.6 * 5 * len(q)
    assert all(isinstance(r["id"], int) for r in got[0])
    with pytest.raises(ValueError, match="empty"):
        mp.PLAID(index_folder=str(tmp_path), index_name="e", override=True)(q, k=3)
