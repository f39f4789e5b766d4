"""Per-call cost of the Python layer: tiny inputs, so the kernels take almost
nothing and the time is argument checks, conversions and dispatch.

For changes to the Python package (conversion helpers, drop-ins): run it with
the build before and the build after in alternating processes and compare the
medians; each line is the median of ``--calls`` calls after a warm-up, in µs.
Needs torch and pylate for the ``maxsim.pylate`` rows (skipped without them).

    MAXSIM_NUM_THREADS=1 PYTHONPATH=python python3 benches/bench_call_overhead.py [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

if importlib.util.find_spec("maxsim") is None:  # run from a source tree without install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import maxsim  # noqa: E402
from maxsim import binary as mb  # noqa: E402


def median_us(fn: Callable[[], object], calls: int) -> float:
    """Median of ``calls`` timed calls after 50 untimed ones, in µs (one call
    per sample: these calls are microseconds long, far above the timer's
    resolution)."""
    for _ in range(50):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e6 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    q = rng.standard_normal((4, 16), dtype=np.float32)
    d = rng.standard_normal((3, 5, 16), dtype=np.float32)
    codes = rng.integers(0, 256, (16, 8), dtype=np.uint8)
    x = rng.standard_normal((4, 64), dtype=np.float32)
    calls: dict[str, Callable[[], object]] = {
        "maxsim.scores, numpy": lambda: maxsim.scores(q, d),
        "maxsim.topk, numpy": lambda: maxsim.topk(q, d, 2),
        "maxsim.PackedDocs.from_list": lambda: maxsim.PackedDocs.from_list(list(d)),
        "maxsim.binary.search": lambda: mb.search(codes[:2], codes, 3),
        "maxsim.binary.quantize": lambda: mb.quantize(x),
    }
    if importlib.util.find_spec("torch") is not None:
        import torch

        tq, td = torch.from_numpy(q), torch.from_numpy(d)
        calls["maxsim.scores, torch"] = lambda: maxsim.scores(tq, td)
        if importlib.util.find_spec("pylate") is not None:
            import maxsim.pylate as mp

            calls["maxsim.pylate.colbert_scores"] = lambda: mp.colbert_scores(tq[None], td)
            calls["maxsim.pylate.rerank"] = lambda: mp.rerank([[0, 1, 2]], [q], [list(d)])
    results = {name: median_us(fn, args.calls) for name, fn in calls.items()}
    if args.json:
        print(json.dumps({"maxsim": maxsim.__file__, **results}))
        return
    print(f"maxsim {maxsim.__file__}, {maxsim.get_num_threads()} threads")
    print("| call | µs |")
    print("|---|---:|")
    for name, us in results.items():
        print(f"| {name} | {us:.1f} |")


if __name__ == "__main__":
    main()
