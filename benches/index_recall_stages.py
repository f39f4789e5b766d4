"""Which stage of maxsim.Index's search loses the true top-10.

Builds one index on a corpus (or reuses the one at ``--index``), then
measures recall@10 against exhaustive MaxSim (``maxsim.scores_batch`` over
every document) with one stage at a time opened up:

* the defaults (exact rerank with a store), and residual-only (``rerank=None``);
* the exhaustive scan itself (the reference), with its queries per second;
* the store's ceiling: exhaustive MaxSim over the stored (float16) vectors,
  the best any exact rerank can do;
* the residual codec's ceiling: every centroid probed, every document a
  candidate, scored on decoded residuals (no pipeline loss left);
* ``nprobe`` alone: the default ``nprobe``, every document a candidate,
  exact rerank;
* the centroid-interaction prune alone: every centroid probed, the default
  ``n_candidates``, exact rerank;
* ``--candidates``: exact rerank at each ``n_candidates`` (``--nprobe``,
  default 8; with ``--sweep-every-centroid`` also every centroid probed),
  with queries per second (all queries in one batch, one
  round, ``maxsim.get_num_threads()`` threads).

Corpora as in ``benches/index_bench.py`` (``scifact`` reads the cached MiniLM
token embeddings written by that script's ``--cache``; ``synthetic`` with
``--docs 8000`` is that script's ``--tokens 1000000`` corpus). Commands::

    python benches/index_recall_stages.py scifact --cache /tmp/scifact-cache --docs 500
    python benches/index_recall_stages.py synthetic --docs 1000 --nbits 4
    python benches/index_recall_stages.py synthetic --docs 8000 --queries 50 \
        --index /tmp/idx2/syn1m/maxsim --candidates 256,1024,2048,4096
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import maxsim  # noqa: E402

K = 10


def corpus(args) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if args.corpus == "scifact":
        flat = np.load(args.cache / "docs256_flat.npy", mmap_mode="r")
        off = np.concatenate([[0], np.cumsum(np.load(args.cache / "docs256_lengths.npy"))])
        # Views of the mapped cache: the full corpus is 1.9 GB as float32.
        docs = [np.asarray(flat[off[i] : off[i + 1]]) for i in range(args.docs)]
        q_flat = np.load(args.cache / "queries64_flat.npy")
        q_off = np.concatenate([[0], np.cumsum(np.load(args.cache / "queries64_lengths.npy"))])
        queries = [q_flat[q_off[i] : q_off[i + 1]] for i in range(args.queries)]
        return docs, queries
    import index_bench

    spec = argparse.Namespace(dim=128, tokens=args.docs * 125, queries=args.queries, noise=1.4)
    batches, queries, _ = index_bench.synthetic(spec)
    docs = [d for _, batch in batches(0) for d in batch][: args.docs]
    return docs, queries


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(got[:K]) & set(ref)) / K for got, ref in zip(ids, truth)]))


def open_or_build(args, docs: list[np.ndarray], folder: str) -> maxsim.Index:
    path = args.index or f"{folder}/index"
    if os.path.exists(os.path.join(path, "manifest.json")):
        return maxsim.Index.open(path)
    start = time.perf_counter()
    index = maxsim.Index.create(
        path,
        docs[0].shape[1],
        nbits=args.nbits,
        store="float16",
        n_centroids=args.n_centroids,
        kmeans_iters=args.kmeans_iters,
    )
    if args.batch_docs:
        # As benches/index_bench.py builds: train on the first batch, with the
        # centroid count PLAID's rule gives the whole corpus, then stream.
        tokens = sum(len(d) for d in docs)
        index.train(docs[: args.batch_docs], expected_tokens=tokens)
        for a in range(0, len(docs), args.batch_docs):
            batch = docs[a : a + args.batch_docs]
            index.add(np.arange(a, a + len(batch)), batch)
    else:
        index.add(np.arange(len(docs)), docs)
    print(f"build {time.perf_counter() - start:.1f} s")
    return index


def store_ceiling(index: maxsim.Index, queries: list[np.ndarray], n_docs: int) -> np.ndarray:
    """Exhaustive top-10 over the vectors as stored (rounded to the store's type)."""
    scores = np.concatenate(
        [
            maxsim.scores_batch(queries, index.get(np.arange(a, min(a + 1000, n_docs))))
            for a in range(0, n_docs, 1000)
        ],
        axis=1,
    )
    return np.argsort(-scores, axis=1, kind="stable")[:, :K]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", choices=["scifact", "synthetic"])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/scifact-cache"))
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--nbits", type=int, default=2)
    parser.add_argument("--n-centroids", type=int, default=None)
    parser.add_argument("--kmeans-iters", type=int, default=4)
    parser.add_argument("--index", default=None, help="reuse (or build into) this folder")
    parser.add_argument(
        "--batch-docs",
        type=int,
        default=None,
        help="build in batches of this many documents, trained on the first (default: one add)",
    )
    parser.add_argument("--candidates", default="", help="n_candidates to sweep, e.g. 256,1024")
    parser.add_argument(
        "--skip-stages", action="store_true", help="defaults, residual only and sweep only"
    )
    parser.add_argument("--skip-codec", action="store_true", help="no codec-ceiling row")
    parser.add_argument("--nprobe", type=int, default=None, help="nprobe of the sweep")
    parser.add_argument(
        "--sweep-every-centroid",
        action="store_true",
        help="also sweep with every centroid probed (the interaction prune alone)",
    )
    args = parser.parse_args()
    docs, queries = corpus(args)
    start = time.perf_counter()
    exact = maxsim.scores_batch(queries, docs)
    print(
        f"exhaustive maxsim.scores_batch: {len(queries) / (time.perf_counter() - start):.2f} QPS "
        f"({maxsim.get_num_threads()} threads, all queries in one call)"
    )
    truth = np.argsort(-exact, axis=1, kind="stable")[:, :K]

    with tempfile.TemporaryDirectory() as tmp:
        index = open_or_build(args, docs, tmp)
        stats = index.stats()
        assert stats["n_docs"] == len(docs), "--index holds another corpus"
        print(
            f"{args.corpus}: {len(docs)} documents, {stats['n_tokens']} tokens, "
            f"{stats['n_centroids']} centroids, nbits {stats['nbits']}, "
            f"{len(queries)} queries, {maxsim.get_num_threads()} threads"
        )
        every_centroid, every_doc = stats["n_centroids"], len(docs)
        if not args.skip_stages:
            print(
                f"| store ceiling | exhaustive on stored vectors | "
                f"{recall(store_ceiling(index, queries, every_doc), truth):.3f} | |"
            )
        stages = [
            ("defaults", {}),
            ("residual only", {"rerank": None}),
            ("codec ceiling", {"nprobe": every_centroid, "n_candidates": every_doc,
                               "rerank": None}),
            ("nprobe only, rerank", {"n_candidates": every_doc, "rerank": "exact"}),
            ("interaction prune only, rerank", {"nprobe": every_centroid, "rerank": "exact"}),
        ]  # fmt: skip
        if args.skip_stages:
            stages = stages[:2]
        elif args.skip_codec:  # decoding every document is the slow row
            stages = [st for st in stages if st[0] != "codec ceiling"]
        for c in map(int, filter(None, args.candidates.split(","))):
            sweep = {"n_candidates": c, "rerank": "exact"}
            if args.nprobe:
                sweep["nprobe"] = args.nprobe
            stages.append((f"rerank, {c} candidates", sweep))
            if args.sweep_every_centroid:
                every = {"nprobe": every_centroid, "n_candidates": c, "rerank": "exact"}
                stages.append((f"rerank, every centroid, {c} candidates", every))
        for label, settings in stages:
            start = time.perf_counter()
            _, ids = index.search(queries, K, **settings)
            qps = len(queries) / (time.perf_counter() - start)
            print(f"| {label} | {settings} | {recall(np.asarray(ids), truth):.3f} | {qps:.1f} |")
        # How often the defaults' result is certified to be the exhaustive top-10.
        *_, certified = index.search(queries, K, return_certified=True)
        print(f"certified at the defaults: {int(np.sum(certified))} of {len(queries)}")


if __name__ == "__main__":
    main()
