"""maxsim.pylate.Index: storage, search and the PyLate index interface.

Expected values come from a float64 numpy MaxSim written from the definition.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

import maxsim.pylate as mp  # noqa: E402

ATOL = 1e-5


def unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def ref_maxsim(q: np.ndarray, d: np.ndarray) -> float:
    return float((q.astype(np.float64) @ d.astype(np.float64).T).max(axis=1).sum())


def ref_topk(q: np.ndarray, docs: dict, k: int) -> list[tuple[object, float]]:
    """Best first; ties keep insertion order (Python's sort is stable)."""
    scored = [(doc_id, ref_maxsim(q, d)) for doc_id, d in docs.items()]
    return sorted(scored, key=lambda t: -t[1])[:k]


def check(results, expected) -> None:
    assert [r["id"] for r in results] == [e[0] for e in expected]
    np.testing.assert_allclose(
        [r["score"] for r in results], [e[1] for e in expected], atol=ATOL, rtol=0
    )


@pytest.fixture
def docs() -> dict:
    rng = np.random.default_rng(0)
    return {f"d{i}": unit(rng, int(rng.integers(1, 25)), 16) for i in range(50)}


@pytest.fixture
def queries() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [unit(rng, 8, 16) for _ in range(3)]


def test_search_is_exact_maxsim(docs, queries) -> None:
    index = mp.Index().add_documents(list(docs), list(docs.values()))
    assert len(index) == 50
    results = index(queries, k=10)
    assert len(results) == 3
    for q, r in zip(queries, results):
        check(r, ref_topk(q, docs, 10))
    # k larger than the index; a stacked 3-D tensor; a single 2-D query.
    check(index(np.stack(queries), k=500)[1], ref_topk(queries[1], docs, 500))
    check(index(torch.from_numpy(queries[2]), k=3)[0], ref_topk(queries[2], docs, 3))
    # Queries of different lengths.
    ragged = [queries[0][:3], queries[1]]
    for q, r in zip(ragged, index(ragged, k=5)):
        check(r, ref_topk(q, docs, 5))


def test_add_in_batches_remove_update(docs, queries) -> None:
    items = list(docs.items())
    index = mp.Index()
    index.add_documents([k for k, _ in items[:20]], [v for _, v in items[:20]])
    index.add_documents([k for k, _ in items[20:]], [torch.from_numpy(v) for _, v in items[20:]])
    check(index(queries[:1], k=50)[0], ref_topk(queries[0], docs, 50))

    index.remove_documents(["d3", "d40"])
    remaining = {k: v for k, v in docs.items() if k not in ("d3", "d40")}
    assert len(index) == 48
    check(index(queries[:1], k=50)[0], ref_topk(queries[0], remaining, 50))

    rng = np.random.default_rng(2)
    new = unit(rng, 4, 16)
    index.update_documents(["d7"], [new])  # replaced, now last in insertion order
    remaining.pop("d7")
    remaining["d7"] = new
    check(index(queries[:1], k=50)[0], ref_topk(queries[0], remaining, 50))

    with pytest.raises(KeyError, match="nope"):
        index.remove_documents(["d1", "nope"])
    assert len(index) == 48  # nothing removed on error


def test_subset(docs, queries) -> None:
    index = mp.Index().add_documents(list(docs), list(docs.values()))
    subset = ["d1", "d5", "d9", "unknown", "d30"]
    wanted = {k: docs[k] for k in ("d1", "d5", "d9", "d30")}
    for q, r in zip(queries, index(queries, k=3, subset=subset)):
        check(r, ref_topk(q, wanted, 3))
    per_query = [["d2"], ["d2", "d3"], []]
    results = index(queries, k=3, subset=per_query)
    check(results[0], ref_topk(queries[0], {"d2": docs["d2"]}, 3))
    check(results[1], ref_topk(queries[1], {k: docs[k] for k in ("d2", "d3")}, 3))
    assert results[2] == []
    with pytest.raises(ValueError, match="subset: 2 lists for 3 queries"):
        index(queries, k=3, subset=[["d1"], ["d2"]])


def test_ties_go_to_the_first_added() -> None:
    rng = np.random.default_rng(3)
    a = unit(rng, 3, 8)
    index = mp.Index().add_documents(["x", "y", "z"], [a, a.copy(), unit(rng, 2, 8)])
    q = unit(rng, 4, 8)
    order = [r["id"] for r in index([q], k=3)[0]]
    assert order.index("x") < order.index("y")


def test_float16_storage(docs, queries) -> None:
    index = mp.Index(dtype="float16")
    index.add_documents(list(docs), list(docs.values()))
    rounded = {k: v.astype(np.float16).astype(np.float32) for k, v in docs.items()}
    for q, r in zip(queries, index(queries, k=20)):
        check(r, ref_topk(q, rounded, 20))
    out = index.get_documents_embeddings([["d4", "d0"]])
    assert out[0][0].dtype == np.float32
    np.testing.assert_array_equal(out[0][0], rounded["d4"])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_ragged_queries_and_subsets(docs, dtype) -> None:
    """Queries of different lengths (one without tokens) in one call, and
    per-query subsets, against the float64 reference on the stored values."""
    rng = np.random.default_rng(5)
    index = mp.Index(dtype=dtype).add_documents(list(docs), list(docs.values()))
    stored = {k: v.astype(dtype).astype(np.float32) for k, v in docs.items()}
    queries = [unit(rng, 3, 16), np.zeros((0, 16), np.float32), unit(rng, 30, 16)]
    results = index(queries, k=7)
    check(results[0], ref_topk(queries[0], stored, 7))
    # No tokens: every document scores 0; ties go to the first added.
    assert [r["id"] for r in results[1]] == list(docs)[:7]
    assert all(r["score"] == 0.0 for r in results[1])
    check(results[2], ref_topk(queries[2], stored, 7))
    subsets = [[f"d{i}" for i in range(0, 50, 3)], ["d7", "d1", "missing"], ["d2", "d40"]]
    results = index(queries, k=5, subset=subsets)
    for q, subset, r in zip(queries, subsets, results):
        kept = {k: stored[k] for k in sorted(set(subset) & set(stored), key=list(docs).index)}
        if q.shape[0]:
            check(r, ref_topk(q, kept, 5))
        else:
            assert [x["score"] for x in r] == [0.0] * len(kept)


def test_get_documents_embeddings(docs) -> None:
    index = mp.Index().add_documents(list(docs), list(docs.values()))
    out = index.get_documents_embeddings([["d2", "d9"], ["d0"]])
    np.testing.assert_array_equal(out[0][1], docs["d9"])
    np.testing.assert_array_equal(out[1][0], docs["d0"])
    out[0][0][:] = 0  # copies: the index is unaffected
    np.testing.assert_array_equal(index.get_documents_embeddings([["d2"]])[0][0], docs["d2"])
    with pytest.raises(KeyError):
        index.get_documents_embeddings([["missing"]])


def test_persistence(tmp_path, docs, queries) -> None:
    index = mp.Index(index_folder=tmp_path, index_name="idx", dtype="float16")
    index.add_documents(list(docs), list(docs.values()))
    index.remove_documents(["d0"])
    expected = index(queries, k=10)
    reloaded = mp.Index(index_folder=tmp_path, index_name="idx", dtype="float16")
    assert len(reloaded) == 49
    assert reloaded(queries, k=10) == expected
    fresh = mp.Index(index_folder=tmp_path, index_name="idx", override=True)
    assert len(fresh) == 0


def test_integer_ids_and_single_document() -> None:
    rng = np.random.default_rng(4)
    index = mp.Index().add_documents(7, unit(rng, 5, 8))
    index.add_documents([1, 2], unit(rng, 2, 3, 8))  # a 3-D batch
    assert len(index) == 3
    assert {r["id"] for r in index([unit(rng, 2, 8)], k=5)[0]} == {7, 1, 2}


def test_errors(docs) -> None:
    rng = np.random.default_rng(5)
    index = mp.Index()
    with pytest.raises(ValueError, match="empty"):
        index([unit(rng, 3, 16)], k=2)
    with pytest.raises(ValueError, match=r"documents_ids has 2 ids but documents_embeddings has 1"):
        index.add_documents(["a", "b"], [unit(rng, 3, 16)])
    with pytest.raises(ValueError, match="duplicate"):
        index.add_documents(["a", "a"], [unit(rng, 3, 16), unit(rng, 3, 16)])
    with pytest.raises(ValueError, match=r"documents_embeddings\[0\].*zero tokens.*\(0, 16\)"):
        index.add_documents(["a"], [np.zeros((0, 16), np.float32)])
    index.add_documents(["a"], [unit(rng, 3, 16)])
    with pytest.raises(
        ValueError, match=r"embedding size 8 does not match the index's 16.*\(3, 8\)"
    ):
        index.add_documents(["b"], [unit(rng, 3, 8)])
    with pytest.raises(ValueError, match=r"queries_embeddings\[0\].*embedding size 8"):
        index([unit(rng, 3, 8)], k=1)
    with pytest.raises(ValueError, match="dtype"):
        mp.Index(dtype="int8")
    with pytest.raises(ValueError, match="k: must be at least 1, got 0"):
        index([unit(rng, 3, 16)], k=0)
    with pytest.raises(TypeError, match="k: expected an integer"):
        index([unit(rng, 3, 16)], k=2.5)


def test_is_a_pylate_index() -> None:
    base = pytest.importorskip("pylate.indexes.base")
    index = mp.Index()
    assert isinstance(index, base.Base)
    assert index.is_end_to_end_index is True
