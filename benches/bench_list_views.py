"""Lists of views of one array against lists of separate arrays, same values.

The rows of a 3-D array and ``np.split`` of a packed matrix are lists whose
entries share one base array. The bindings read list entries without numpy's
borrow table, whose check of each new borrow against every earlier borrow of
the same base made such lists quadratic to pass. This times ``maxsim.scores``
of one 32-token query over ``n`` documents of 20 tokens (d = 128), given as
``np.split`` views and as copies, alternating rounds; on a build with the
quadratic check the views column grows with ``n²``.

    PYTHONPATH=python python3 benches/bench_list_views.py [--sizes 1000,5000,20000]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
from pathlib import Path

import numpy as np

if importlib.util.find_spec("maxsim") is None:  # run from a source tree without install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import maxsim  # noqa: E402
from maxsim.bench.timing import alternating_medians_ms  # noqa: E402

DOC_TOKENS = 20
DIM = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--threads", type=int, default=0, help="0: maxsim's default")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        maxsim.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    query = rng.standard_normal((32, DIM), dtype=np.float32)
    print(f"threads {maxsim.get_num_threads()}")
    print("| documents | views of one array ms | separate arrays ms | ratio |")
    print("|---:|---:|---:|---:|")
    for n in (int(s) for s in args.sizes.split(",")):
        flat = rng.standard_normal((n * DOC_TOKENS, DIM), dtype=np.float32)
        views = np.split(flat, np.arange(DOC_TOKENS, n * DOC_TOKENS, DOC_TOKENS))
        copies = [v.copy() for v in views]
        if not np.array_equal(maxsim.scores(query, views), maxsim.scores(query, copies)):
            raise SystemExit("views and copies scored differently")
        calls = [functools.partial(maxsim.scores, query, docs) for docs in (views, copies)]
        v, c = alternating_medians_ms(calls, args.rounds, args.repeat)
        print(f"| {n} | {v:.1f} | {c:.1f} | {v / c:.2f}x |")


if __name__ == "__main__":
    main()
