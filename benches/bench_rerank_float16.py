"""``maxsim.pylate.rerank`` with float16 candidates (a half-precision model's
output), against converting them to float32 first (what it did before), same
process: the ``rerank`` workload of ``maxsim bench --suite pylate`` (10 queries
of 32 tokens, 1000 candidates of 50-300 tokens each, d = 128) with the
candidates cast to float16, alternating rounds. Needs torch (``maxsim.pylate``).

    PYTHONPATH=python python3 benches/bench_rerank_float16.py [--threads 1,2]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

if importlib.util.find_spec("maxsim") is None:  # run from a source tree without install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import maxsim  # noqa: E402
from maxsim.bench.core import alternating_medians_ms  # noqa: E402
from maxsim.bench.pylate import FULL, rerank_workload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import maxsim.pylate as mp

    ids, queries, docs = rerank_workload(FULL)
    half = [[d.astype(np.float16) for d in group] for group in docs]

    def converted() -> list:
        widened = [[d.astype(np.float32) for d in group] for group in half]
        return mp.rerank(ids, queries, widened)

    def direct() -> list:
        return mp.rerank(ids, queries, half)

    same = [[r["id"] for r in q] for q in converted()] == [[r["id"] for r in q] for q in direct()]
    print(f"same ids and order: {same}")
    print("| threads | float32 candidates ms | float16, converted first ms | float16 ms |")
    print("|---|---:|---:|---:|")
    for threads in (int(t) for t in args.threads.split(",")):
        maxsim.set_num_threads(threads)
        calls = [lambda: mp.rerank(ids, queries, docs), converted, direct]
        a, b, c = alternating_medians_ms(calls, args.rounds, args.repeat)
        print(f"| {threads} | {a:.1f} | {b:.1f} | {c:.1f} |")


if __name__ == "__main__":
    main()
