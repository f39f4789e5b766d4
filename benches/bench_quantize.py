"""``maxsim.quantize`` against numpy's own conversions, same process.

The fixed document set of the reduced-precision suite (1000 × 300 × 128
float32, L2-normalised, seeded) converted to float16, bfloat16 and int8 on 1
and 2 threads. Peers: ``ndarray.astype(np.float16)``,
``ndarray.astype(ml_dtypes.bfloat16)`` and, for int8, the same per-token
absmax scheme written in numpy (``max|x| / 127`` per token, ``rint``, clip).
Every call allocates its output, as a user's call would. Medians of
``--repeat`` calls after a warm-up; the implementations alternate per round.

    PYTHONPATH=python python3 benches/bench_quantize.py [--threads 1,2] [--repeat 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

if importlib.util.find_spec("maxsim") is None:  # run from a source tree without install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import maxsim  # noqa: E402


def numpy_int8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = np.abs(x).max(axis=-1, keepdims=True) / np.float32(127)
    safe = np.where(scale > 0, scale, np.float32(1))
    return np.clip(np.rint(x / safe), -127, 127).astype(np.int8), scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    docs = rng.standard_normal((1000, 300, 128), dtype=np.float32)
    docs /= np.linalg.norm(docs, axis=-1, keepdims=True)
    impls: dict[str, Callable[[], object]] = {
        f"maxsim.quantize {dtype}": (lambda dtype=dtype: maxsim.quantize(docs, dtype))
        for dtype in ("float16", "bfloat16", "int8_per_token")
    }
    impls["numpy astype float16"] = lambda: docs.astype(np.float16)
    if importlib.util.find_spec("ml_dtypes") is not None:
        import ml_dtypes

        impls["numpy astype ml_dtypes.bfloat16"] = lambda: docs.astype(ml_dtypes.bfloat16)
    impls["numpy per-token absmax int8"] = lambda: numpy_int8(docs)

    print(f"input: {docs.shape} float32, {docs.nbytes / 1e6:.1f} MB; maxsim {maxsim.__version__}")
    print("| impl | threads | ms/call | input GB/s |")
    print("|---|---|---:|---:|")
    for threads in (int(t) for t in args.threads.split(",")):
        maxsim.set_num_threads(threads)
        # numpy's conversions are single-threaded: timed on one thread only.
        run = {k: f for k, f in impls.items() if threads == 1 or not k.startswith("numpy")}
        times: dict[str, list[float]] = {name: [] for name in run}
        for fn in run.values():
            fn()
        for _ in range(args.repeat):
            for name, fn in run.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        for name, t in times.items():
            ms = 1e3 * float(np.median(t))
            print(f"| {name} | {threads} | {ms:.1f} | {docs.nbytes / ms / 1e6:.1f} |")


if __name__ == "__main__":
    main()
