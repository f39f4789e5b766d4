"""What the query's NaN/inf check costs: ``maxsim.scores`` with the check as
shipped, against the same call with the check replaced by a no-op and with
``np.isfinite(q).all()`` (the obvious alternative), alternating rounds in one
process, medians in µs per call.

Cases: a tiny call (4 x 16 query, 3 documents of 5 tokens: the per-call
overhead, where a check could show) and a standard one (32 x 128 query,
``--docs`` documents of 300 tokens). A 3-D batch of 32 queries is checked in
one pass, shown for the tiny documents.

    MAXSIM_NUM_THREADS=1 PYTHONPATH=python python3 benches/bench_query_check.py [--docs 200]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

if importlib.util.find_spec("maxsim") is None:  # run from a source tree without install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import maxsim  # noqa: E402
from maxsim import _convert  # noqa: E402
from maxsim.bench.timing import alternating_medians_ms  # noqa: E402

SHIPPED = _convert.all_finite


def _isfinite_all(array: np.ndarray) -> bool:
    return bool(np.isfinite(array).all())


def _no_check(array: np.ndarray) -> bool:
    return True


VARIANTS: dict[str, Callable[[np.ndarray], bool]] = {
    "no check": _no_check,
    "shipped (vdot)": SHIPPED,
    "np.isfinite().all()": _isfinite_all,
}


def _with(finite: Callable[[np.ndarray], bool], call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        _convert.all_finite = finite  # check_query_finite looks it up per call
        return call()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200, help="documents in the standard case")
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    q_tiny = rng.standard_normal((4, 16), dtype=np.float32)
    d_tiny = rng.standard_normal((3, 5, 16), dtype=np.float32)
    batch = rng.standard_normal((32, 4, 16), dtype=np.float32)
    q = rng.standard_normal((32, 128), dtype=np.float32)
    docs = rng.standard_normal((args.docs, 300, 128), dtype=np.float32)
    cases: list[tuple[str, Callable[[], Any], int]] = [
        ("scores, 4x16 query, 3 docs x 5 tokens", lambda: maxsim.scores(q_tiny, d_tiny), 300),
        (
            "scores_batch, 32 x 4x16 queries, same docs",
            lambda: maxsim.scores_batch(batch, d_tiny),
            100,
        ),
        (
            f"scores, 32x128 query, {args.docs} docs x 300 tokens",
            lambda: maxsim.scores(q, docs),
            3,
        ),
    ]
    print(f"maxsim {maxsim.__file__}, {maxsim.get_num_threads()} thread(s)")
    print("| case | " + " | ".join(f"{v} µs" for v in VARIANTS) + " |")
    print("|---|" + "---:|" * len(VARIANTS))
    for name, call, repeat in cases:
        calls = [_with(finite, call) for finite in VARIANTS.values()]
        ms = alternating_medians_ms(calls, rounds=args.rounds, repeat=repeat)
        print(f"| {name} | " + " | ".join(f"{1e3 * m:.2f}" for m in ms) + " |")
    _convert.all_finite = SHIPPED


if __name__ == "__main__":
    main()
