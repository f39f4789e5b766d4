"""maxsim.integrations.qdrant against Qdrant's own max_sim scoring, in the
client's in-process local mode (no server): same points, same order, same
scores, for Cosine and Dot multivectors, with filters and several prefetches."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from maxsim.integrations import qdrant as mq  # noqa: E402
from qdrant_client import QdrantClient, models  # noqa: E402

DIM, DENSE = 12, 16
N_POINTS = 120


def make_collection(distance: models.Distance, seed: int = 0, unnamed: bool = False):
    """Points with a dense vector and a multivector of 1 to 40 tokens (not
    normalised: Qdrant normalises Cosine multivectors at upsert)."""
    rng = np.random.default_rng(seed)
    client = QdrantClient(":memory:")
    multi = models.VectorParams(
        size=DIM,
        distance=distance,
        multivector_config=models.MultiVectorConfig(
            comparator=models.MultiVectorComparator.MAX_SIM
        ),
    )
    if unnamed:
        client.create_collection("c", vectors_config=multi)
    else:
        dense = models.VectorParams(size=DENSE, distance=models.Distance.COSINE)
        client.create_collection("c", vectors_config={"dense": dense, "colbert": multi})
    points = []
    for i in range(N_POINTS):
        n_tokens = 1 if i % 17 == 0 else int(rng.integers(2, 41))
        mv = (rng.standard_normal((n_tokens, DIM)) * rng.uniform(0.5, 2.0)).tolist()
        vector = mv if unnamed else {"dense": rng.standard_normal(DENSE).tolist(), "colbert": mv}
        points.append(models.PointStruct(id=i, vector=vector, payload={"group": i % 3}))
    client.upsert("c", points)
    return client, rng


def same(ours, theirs, rtol: float = 1e-5) -> None:
    assert [p.id for p in ours] == [p.id for p in theirs]
    np.testing.assert_allclose(
        [p.score for p in ours], [p.score for p in theirs], rtol=rtol, atol=1e-5
    )


@pytest.mark.parametrize("distance", [models.Distance.COSINE, models.Distance.DOT])
def test_scores_equal_qdrant_max_sim(distance):
    client, rng = make_collection(distance)
    for n_query_tokens in (1, 5, 32):
        query = rng.standard_normal((n_query_tokens, DIM)) * 3.0
        prefetch = models.Prefetch(
            query=rng.standard_normal(DENSE).tolist(), using="dense", limit=40
        )
        theirs = client.query_points(
            "c", prefetch=prefetch, query=query.tolist(), using="colbert", limit=40
        ).points
        ours = mq.query_points(
            client, "c", prefetch=prefetch, query=query, using="colbert", limit=40
        ).points
        assert len(ours) == 40
        same(ours, theirs)
        assert ours[0].payload == {"group": ours[0].id % 3} and ours[0].vector is None
        top = mq.query_points(
            client, "c", prefetch=prefetch, query=query, using="colbert", limit=7,
            with_vectors=["colbert"], with_payload=False,
        ).points  # fmt: skip
        same(top, theirs[:7])
        assert top[0].payload is None and set(top[0].vector) == {"colbert"}


def test_against_a_plain_numpy_max_sim():
    """First principles too: Σ_i max_j cos(q_i, d_j) on the vectors Qdrant holds."""
    client, rng = make_collection(models.Distance.COSINE, seed=3)
    query = rng.standard_normal((6, DIM))
    records = client.retrieve("c", ids=list(range(0, N_POINTS, 5)), with_vectors=["colbert"])
    got = mq.rerank_points(records, query, using="colbert", distance="Cosine", limit=None)
    qn = query / np.linalg.norm(query, axis=1, keepdims=True)
    want = {}
    for r in records:
        d = np.asarray(r.vector["colbert"])
        want[r.id] = (qn @ (d / np.linalg.norm(d, axis=1, keepdims=True)).T).max(axis=1).sum()
    assert [p.id for p in got] == sorted(want, key=lambda i: -want[i])
    np.testing.assert_allclose([p.score for p in got], [want[p.id] for p in got], rtol=1e-5)
    assert all(p.version == 0 for p in got)  # Records have no version


def test_filter_and_several_prefetches():
    client, rng = make_collection(models.Distance.COSINE, seed=1)
    query = rng.standard_normal((4, DIM)).tolist()
    prefetch = [
        models.Prefetch(query=rng.standard_normal(DENSE).tolist(), using="dense", limit=15),
        models.Prefetch(
            query=rng.standard_normal(DENSE).tolist(),
            using="dense",
            limit=15,
            filter=models.Filter(
                must_not=[models.FieldCondition(key="group", match=models.MatchValue(value=2))]
            ),
        ),
    ]
    only = models.Filter(
        must=[models.FieldCondition(key="group", match=models.MatchAny(any=[0, 2]))]
    )
    theirs = client.query_points(
        "c", prefetch=prefetch, query=query, using="colbert", query_filter=only, limit=25
    ).points
    ours = mq.query_points(
        client, "c", prefetch=prefetch, query=query, using="colbert", query_filter=only, limit=25
    ).points
    assert {p.payload["group"] for p in ours} <= {0, 2}
    same(ours, theirs)
    cut = ours[len(ours) // 2].score
    above = mq.query_points(
        client, "c", prefetch=prefetch, query=query, using="colbert", query_filter=only,
        limit=25, score_threshold=cut,
    ).points  # fmt: skip
    assert [p.id for p in above] == [p.id for p in ours if p.score >= cut]


def test_unnamed_multivector():
    client, rng = make_collection(models.Distance.DOT, seed=2, unnamed=True)
    query = rng.standard_normal((3, DIM))
    any_point = models.Prefetch(query=rng.standard_normal((2, DIM)).tolist(), limit=30)
    theirs = client.query_points("c", prefetch=any_point, query=query.tolist(), limit=30).points
    same(mq.query_points(client, "c", prefetch=any_point, query=query, limit=30).points, theirs)


def test_errors():
    client, rng = make_collection(models.Distance.COSINE)
    hits = client.query_points(
        "c", query=rng.standard_normal(DENSE).tolist(), using="dense", limit=3
    ).points
    query = rng.standard_normal((2, DIM))
    with pytest.raises(ValueError, match=r"points\[0\] \(id \d+\): has no 'colbert' multivector"):
        mq.rerank_points(hits, query, using="colbert")
    with pytest.raises(ValueError, match="supports Cosine and Dot multivectors, not Euclid"):
        mq.rerank_points(hits, query, using="colbert", distance="Euclid")
    with pytest.raises(ValueError, match="query: expected a multivector"):
        mq.rerank_points(hits, rng.standard_normal(DIM), using="colbert")
    with pytest.raises(ValueError, match="query: contains NaN"):
        mq.rerank_points(hits, np.full((2, DIM), np.nan), using="colbert")
    with pytest.raises(ValueError, match="is not a multivector with comparator max_sim"):
        mq.multivector_distance(client, "c", "dense")
    with pytest.raises(ValueError, match=r"has no such vector \(it has \['colbert', 'dense'\]\)"):
        mq.multivector_distance(client, "c", "nope")
    with_vectors = client.retrieve("c", ids=[1], with_vectors=["colbert"])
    with pytest.raises(ValueError, match=r"expected an \(n_tokens, 7\) multivector"):
        mq.rerank_points(with_vectors, rng.standard_normal((2, 7)), using="colbert")
    with pytest.raises(TypeError, match="prefetch: expected"):
        mq.query_points(client, "c", prefetch=[], query=query, using="colbert")
    assert mq.rerank_points([], query, using="colbert") == []
