"""Ray: batch reranking throughput with MaxSimScorer, and ShardedIndex's
scatter-gather overhead, on a local cluster (``ray.init(num_cpus=2)``).

1. **Batch reranking.** ``--rows`` rows of (query, ``--candidates`` index ids)
   are generated inside the pipeline (so they stream rather than sit in the
   object store) and scored by :class:`MaxSimScorer` on an index with a
   float16 store (exact MaxSim on the stored vectors):

   * ``in-process, t threads``: the same generator and scorer, called in this
     process on the same batches, ``maxsim.set_num_threads(t)``;
   * ``ray, w workers``: ``Dataset.map_batches(MaxSimScorer,
     compute=ActorPoolStrategy(size=w), num_cpus=1)`` (one maxsim thread per worker), consumed by
     ``iter_batches``.

   Rows per second, median of ``--rounds``, and the ratio to in-process with 1
   thread. All configurations score the same rows (checked on a sample).

2. **Scatter-gather overhead.** One query per call (and a batch of 32) on a
   :class:`ShardedIndex` with 1 and 2 shards against one :class:`maxsim.Index`
   over the same documents in this process, alternating; the overhead is the
   difference of the medians.

Usage::

    PYTHONPATH=python python benches/integrations_ray.py [--rows 100000]
        [--candidates 100] [--docs 20000] [--tokens 32] [--dim 128] [--rounds 3]
        [--skip-scorer] [--skip-shards]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_PY = Path(__file__).resolve().parents[1] / "python"
if _PY.is_dir() and str(_PY) not in sys.path:
    sys.path.insert(0, str(_PY))

import maxsim  # noqa: E402
import ray  # noqa: E402
from maxsim.integrations.ray import MaxSimScorer, ShardedIndex, shard_of  # noqa: E402

BATCH = 256


def make_docs(n: int, tokens: int, dim: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.standard_normal((int(rng.integers(tokens // 2, tokens * 3 // 2 + 1)), dim))
        out.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return out


class RowMaker:
    """Rows of a batch of ``id`` s: a query ``(q_tokens, dim)`` and candidate
    ids, a pure function of the row id (so every configuration scores the
    same rows)."""

    def __init__(self, n_docs: int, n_candidates: int, q_tokens: int, dim: int) -> None:
        self.n_docs, self.n_candidates, self.q_tokens, self.dim = (
            n_docs, n_candidates, q_tokens, dim,
        )  # fmt: skip

    def __call__(self, batch: dict) -> dict:
        ids = np.asarray(batch["id"] if "id" in batch else batch["data"])
        rng = np.random.default_rng(int(ids[0]))
        q = rng.standard_normal((len(ids), self.q_tokens, self.dim)).astype(np.float32)
        q /= np.linalg.norm(q, axis=2, keepdims=True)
        cands = rng.integers(0, self.n_docs, size=(len(ids), self.n_candidates))
        return {"id": ids, "query": q, "candidates": cands}


def scorer_rows(args: argparse.Namespace, index_path: str) -> None:
    maker = RowMaker(args.docs, args.candidates, args.query_tokens, args.dim)
    starts = range(0, args.rows, BATCH)

    def in_process(threads: int) -> tuple[float, np.ndarray]:
        t = time.perf_counter()
        scorer = MaxSimScorer(index_path, num_threads=threads, keep_columns=["id"], verify=False)
        sample = None
        for s in starts:
            out = scorer(maker({"id": np.arange(s, min(s + BATCH, args.rows))}))
            if sample is None:
                sample = out["scores"][:4]
        return time.perf_counter() - t, sample

    def on_ray(workers: int) -> tuple[float, np.ndarray]:
        t = time.perf_counter()
        n_blocks = max(2 * workers, args.rows // (BATCH * 4))
        ds = (
            # Ids from the driver (no read task) and rows made in zero-CPU tasks:
            # the scorer workers hold both CPUs of the cluster. Zero-CPU tasks are
            # not limited by the CPUs, so `concurrency` bounds them: without it
            # Ray starts a worker process per block (80+ at 100k rows).
            ray.data.from_numpy(np.array_split(np.arange(args.rows), n_blocks))
            .map_batches(maker, batch_size=BATCH, num_cpus=0, concurrency=workers)
            .map_batches(
                MaxSimScorer,
                fn_constructor_args=(index_path,),
                fn_constructor_kwargs={"keep_columns": ["id"], "verify": False},
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=1,
                batch_size=BATCH,
                zero_copy_batch=True,
            )
        )
        sample, n = None, 0
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            n += len(batch["id"])
            if sample is None and batch["id"][0] == 0:
                sample = batch["scores"][:4]
        assert n == args.rows, n
        return time.perf_counter() - t, sample

    configs = {
        "in-process, 1 thread": lambda: in_process(1),
        "in-process, 2 threads": lambda: in_process(2),
        "ray, 1 worker": lambda: on_ray(1),
        "ray, 2 workers": lambda: on_ray(2),
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    reference = None
    for _ in range(args.rounds):
        for name, run in configs.items():
            seconds, sample = run()
            times[name].append(seconds)
            if sample is not None:
                if reference is None:
                    reference = sample
                np.testing.assert_array_equal(sample, reference)
    base = args.rows / statistics.median(times["in-process, 1 thread"])
    print(
        f"\nbatch rerank: {args.rows} rows x {args.candidates} candidates, {args.docs} docs "
        f"of ~{args.tokens} tokens, {args.query_tokens} query tokens, dim {args.dim}, "
        f"float16 store; median of {args.rounds} rounds, end to end (with the scorers' "
        "start: for Ray, actor processes, imports and the index open)"
    )
    print(f"{'':24s} {'rows/s':>10s} {'vs in-process 1t':>17s}")
    for name, ts in times.items():
        rate = args.rows / statistics.median(ts)
        print(f"{name:24s} {rate:10.0f} {rate / base:16.2f}x")
    maxsim.set_num_threads(os.cpu_count() or 1)


def shard_overhead(args: argparse.Namespace, root: Path, docs: list[np.ndarray]) -> None:
    single = maxsim.Index.open(root / "single")
    rng = np.random.default_rng(5)
    queries = []
    for _ in range(32):
        q = rng.standard_normal((args.query_tokens, args.dim))
        queries.append((q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32))
    maxsim.set_num_threads(1)
    for n_shards in (1, 2):
        paths = ShardedIndex.create(
            root / f"shards-{n_shards}", n_shards, dim=args.dim, train_docs=docs[:2000],
            store="float16", n_centroids=args.centroids,
        )  # fmt: skip
        for shard, path in enumerate(paths):
            mine = [i for i in range(len(docs)) if shard_of(i, n_shards) == shard]
            maxsim.Index.open(path).add(np.array(mine), [docs[i] for i in mine])
        with ShardedIndex(paths, num_cpus_per_shard=1) as sharded:
            sharded.search(queries[0], 10)  # warm
            one = {"one index": [], "sharded": []}
            batch = {"one index": [], "sharded": []}
            for _ in range(args.rounds):
                for q in queries:
                    for name, index in (("one index", single), ("sharded", sharded)):
                        t = time.perf_counter()
                        index.search(q, 10)
                        one[name].append(time.perf_counter() - t)
                for name, index in (("one index", single), ("sharded", sharded)):
                    t = time.perf_counter()
                    index.search(queries, 10)
                    batch[name].append(time.perf_counter() - t)
        a, b = statistics.median(one["one index"]), statistics.median(one["sharded"])
        c, d = statistics.median(batch["one index"]), statistics.median(batch["sharded"])
        print(
            f"{n_shards} shard(s): 1 query/call: one index {a * 1e3:.2f} ms, sharded "
            f"{b * 1e3:.2f} ms (overhead {(b - a) * 1e3:+.2f} ms); 32 queries/call: "
            f"{c * 1e3:.1f} ms vs {d * 1e3:.1f} ms ({(d - c) / 32 * 1e3:+.2f} ms/query)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--tokens", type=int, default=32, help="mean document tokens")
    parser.add_argument("--query-tokens", type=int, default=32)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--centroids", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-scorer", action="store_true")
    parser.add_argument("--skip-shards", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        docs = make_docs(args.docs, args.tokens, args.dim, seed=1)
        t = time.perf_counter()
        index = maxsim.Index.create(
            root / "single", args.dim, store="float16", n_centroids=args.centroids
        )
        index.train(docs[:2000])
        index.add(np.arange(len(docs)), docs)
        print(f"index of {len(docs)} docs built in {time.perf_counter() - t:.1f} s")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray.data.DataContext.get_current().enable_progress_bars = False
        try:
            if not args.skip_scorer:
                scorer_rows(args, os.fspath(root / "single"))
            if not args.skip_shards:
                print("\nscatter-gather (maxsim 1 thread per shard and in the driver):")
                shard_overhead(args, root, docs)
        finally:
            ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
