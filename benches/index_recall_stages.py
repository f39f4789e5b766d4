"""Which stage of maxsim.Index's search loses the true top-10.

Builds one index on a small corpus, then measures recall@10 against
exhaustive MaxSim (``maxsim.scores_batch`` over every document) with one
stage at a time opened up:

* the defaults, residual-only and with ``rerank="exact"``;
* the residual codec's ceiling: every centroid probed, every document a
  candidate, scored on decoded residuals (no pipeline loss left);
* ``nprobe`` alone: the default ``nprobe``, every document a candidate,
  exact rerank;
* the centroid-interaction prune alone: every centroid probed, the default
  ``n_candidates``, exact rerank.

Corpora as in ``benches/index_bench.py`` (``scifact`` reads the cached MiniLM
token embeddings written by that script's ``--cache``). Commands::

    python benches/index_recall_stages.py scifact --cache /tmp/scifact-cache --docs 500
    python benches/index_recall_stages.py synthetic --docs 1000 --nbits 4
"""

from __future__ import annotations

import argparse
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
        docs = [np.array(flat[off[i] : off[i + 1]]) for i in range(args.docs)]
        q_flat = np.load(args.cache / "queries64_flat.npy")
        q_off = np.concatenate([[0], np.cumsum(np.load(args.cache / "queries64_lengths.npy"))])
        queries = [q_flat[q_off[i] : q_off[i + 1]] for i in range(args.queries)]
        return docs, queries
    import index_bench

    spec = argparse.Namespace(dim=128, tokens=args.docs * 125, queries=args.queries)
    batches, queries, _ = index_bench.synthetic(spec)
    docs = [d for _, batch in batches(0) for d in batch][: args.docs]
    return docs, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", choices=["scifact", "synthetic"])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/scifact-cache"))
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--nbits", type=int, default=2)
    args = parser.parse_args()
    docs, queries = corpus(args)
    exact = maxsim.scores_batch(queries, docs)
    truth = np.argsort(-exact, axis=1, kind="stable")[:, :K]

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        index = maxsim.Index.create(
            f"{tmp}/index", docs[0].shape[1], nbits=args.nbits, store="float16"
        )
        index.add(np.arange(len(docs)), docs)
        stats = index.stats()
        print(
            f"{args.corpus}: {len(docs)} documents, {stats['n_tokens']} tokens, "
            f"{stats['n_centroids']} centroids, nbits {args.nbits}, "
            f"build {time.perf_counter() - start:.1f} s"
        )
        every_centroid, every_doc = stats["n_centroids"], len(docs)
        stages = [
            ("defaults", {}),
            ("defaults, rerank", {"rerank": "exact"}),
            ("codec ceiling", {"nprobe": every_centroid, "n_candidates": every_doc}),
            ("nprobe only, rerank", {"n_candidates": every_doc, "rerank": "exact"}),
            ("interaction prune only, rerank", {"nprobe": every_centroid, "rerank": "exact"}),
        ]
        for label, settings in stages:
            _, ids = index.search(queries, K, **settings)
            hits = [len(set(got[:K]) & set(ref)) / K for got, ref in zip(np.asarray(ids), truth)]
            print(f"| {label} | {settings} | {np.mean(hits):.3f} |")


if __name__ == "__main__":
    main()
