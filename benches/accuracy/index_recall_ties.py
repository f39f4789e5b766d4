"""How close to a tie the exhaustive top-10 is, and the index's recall with
and without counting near-ties.

    PYTHONPATH=python python3 benches/accuracy/index_recall_ties.py \\
        synthetic --tokens 10000000 --workdir /work/idx10m-pq
    HF_HUB_OFFLINE=1 PYTHONPATH=python python3 benches/accuracy/index_recall_ties.py \\
        scifact --cache /tmp/scifact-cache --workdir /work/sfull-pq

``--workdir`` is one of ``benches/index_bench.py``'s (its ``maxsim`` index
and ``exhaustive.npz``, the exhaustive top-100 of the same queries), so
nothing is rebuilt and the corpus is not read. Per setting (``--nprobe`` x
``--n-candidates``, residual scoring: no store is read) it prints:

* recall@10 against the exhaustive top-10 (the issue's measure);
* ε-recall@10: a returned document also counts when its exact MaxSim is
  within ``ε`` of the 10th best's, ``score >= (1 - ε) s10`` (ann-benchmarks'
  epsilon recall, for similarities). Exact scores come from the stored
  top-100; a document outside it scores at most ``s100``, so it counts only
  if ``s100 >= (1 - ε) s10``, and such queries are reported as undecided
  (counted as misses);
* the share of queries whose first result is the exhaustive first (with
  ``--query-noise``, the document each query was drawn from);

and per corpus how crowded the top is: the median of ``(s1 - s10) / s10``
(how far the best document stands above the 10th), of ``(s10 - s11) / s10``,
and of the number of documents within 1 % of ``s10``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import index_bench  # noqa: E402
import maxsim  # noqa: E402

K = index_bench.K


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    index_bench.corpus_arguments(parser)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--nprobe", default="8")
    parser.add_argument("--n-candidates", default="256,1024")
    parser.add_argument("--epsilon", type=float, default=0.01)
    args = parser.parse_args()
    _, queries, _ = (index_bench.scifact if args.corpus == "scifact" else index_bench.synthetic)(
        args
    )
    ref_s, ref_i, _ = index_bench.stored_exhaustive(args.workdir / "exhaustive.npz", queries)
    index = maxsim.Index.open(str(args.workdir / "maxsim"))
    print(
        f"{args.corpus}, {index.stats()['n_tokens']} tokens, {len(queries)} queries: "
        + index_bench.crowding_text(index_bench.crowding(ref_s))
    )
    print(
        f"| nprobe | n_candidates | recall@10 | ε-recall@10 (ε = {args.epsilon}) | undecided "
        "| first result is the exhaustive first |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for nprobe in map(int, args.nprobe.split(",")):
        for n_candidates in map(int, args.n_candidates.split(",")):
            _, ids = index.search(queries, K, nprobe=nprobe, n_candidates=n_candidates, rerank=None)
            ids = np.asarray(ids)
            strict = index_bench.recall(ids, ref_i)
            loose, undecided = index_bench.epsilon_recall(ids, ref_s, ref_i, args.epsilon)
            first = float(np.mean(ids[:, 0] == ref_i[:, 0]))
            print(
                f"| {nprobe} | {n_candidates} | {strict:.3f} | {loose:.3f} | {undecided} "
                f"| {first:.2f} |"
            )


if __name__ == "__main__":
    main()
