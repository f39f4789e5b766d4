"""maxsim's Qdrant rerank against Qdrant's own multivector query, same process.

One collection in qdrant-client's in-process local mode (``:memory:``), with a
dense vector and a ColBERT-like multivector (``max_sim``, Cosine). Per query:

* ``qdrant``: ``client.query_points(prefetch=dense, query=multivector)``, the
  whole two-stage query in Qdrant (local mode scores the multivectors in numpy);
* ``maxsim``: :func:`maxsim.integrations.qdrant.query_points`, the same query
  with the prefetch in Qdrant and the MaxSim rerank in maxsim;
* ``maxsim rerank only``: :func:`rerank_points` on points already fetched
  with their multivectors (the second stage alone).

Alternating rounds, medians of per-query times, ratios against ``qdrant``.
Against a Qdrant server the first row would differ (Rust scoring, network).

Usage::

    PYTHONPATH=python python benches/integrations_qdrant.py [--points 5000]
        [--tokens 32] [--dim 128] [--prefetch 100] [--queries 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

_PY = Path(__file__).resolve().parents[1] / "python"
if _PY.is_dir() and str(_PY) not in sys.path:
    sys.path.insert(0, str(_PY))

from maxsim.integrations import qdrant as mq  # noqa: E402
from qdrant_client import QdrantClient, models  # noqa: E402


def build(args: argparse.Namespace, rng: np.random.Generator) -> QdrantClient:
    client = QdrantClient(":memory:")
    multi = models.VectorParams(
        size=args.dim,
        distance=models.Distance.COSINE,
        multivector_config=models.MultiVectorConfig(
            comparator=models.MultiVectorComparator.MAX_SIM
        ),
    )
    dense = models.VectorParams(size=args.dim, distance=models.Distance.COSINE)
    client.create_collection("c", vectors_config={"dense": dense, "colbert": multi})
    batch = []
    for i in range(args.points):
        n_tokens = int(rng.integers(args.tokens // 2, args.tokens * 3 // 2 + 1))
        mv = rng.standard_normal((n_tokens, args.dim), dtype=np.float32)
        batch.append(
            models.PointStruct(
                id=i, vector={"dense": mv.mean(axis=0).tolist(), "colbert": mv.tolist()}
            )
        )
        if len(batch) == 500:
            client.upsert("c", batch)
            batch = []
    if batch:
        client.upsert("c", batch)
    return client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--tokens", type=int, default=32, help="mean document tokens")
    parser.add_argument("--query-tokens", type=int, default=32)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--prefetch", type=int, default=100)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    client = build(args, rng)
    print(f"built {args.points} points in {time.perf_counter() - t0:.1f} s")
    queries = [
        rng.standard_normal((args.query_tokens, args.dim), dtype=np.float32)
        for _ in range(args.queries)
    ]
    prefetches = [
        models.Prefetch(query=q.mean(axis=0).tolist(), using="dense", limit=args.prefetch)
        for q in queries
    ]
    fetched = [
        client.query_points(
            "c", query=p.query, using="dense", limit=args.prefetch, with_vectors=["colbert"]
        ).points
        for p in prefetches
    ]

    def qdrant(i: int):
        return client.query_points(
            "c", prefetch=prefetches[i], query=queries[i].tolist(), using="colbert",
            limit=args.limit,
        ).points  # fmt: skip

    def ours(i: int):
        return mq.query_points(
            client, "c", prefetch=prefetches[i], query=queries[i], using="colbert",
            limit=args.limit, distance="Cosine",
        ).points  # fmt: skip

    def rerank_only(i: int):
        return mq.rerank_points(
            fetched[i], queries[i], using="colbert", distance="Cosine", limit=args.limit
        )

    for i in range(args.queries):  # same answers before timing anything
        a, b = qdrant(i), ours(i)
        assert [p.id for p in a] == [p.id for p in b], i
        np.testing.assert_allclose([p.score for p in a], [p.score for p in b], rtol=1e-4)
    rows = {"qdrant": qdrant, "maxsim": ours, "maxsim rerank only": rerank_only}
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.rounds):
        for name, fn in rows.items():  # alternating within each round
            for i in range(args.queries):
                t = time.perf_counter()
                fn(i)
                times[name].append(time.perf_counter() - t)
    base = statistics.median(times["qdrant"])
    print(
        f"\n{args.points} points, {args.tokens} tokens mean, dim {args.dim}, prefetch "
        f"{args.prefetch}, {args.query_tokens} query tokens, limit {args.limit}; "
        f"{args.rounds} rounds x {args.queries} queries"
    )
    print(f"{'':22s} {'median ms/query':>16s} {'vs qdrant':>10s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:22s} {med * 1e3:16.2f} {base / med:9.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
