"""Lists of document arrays: the one-pass native check against per-entry conversion.

``maxsim.scores`` and ``maxsim.pylate.rerank`` take a list of ready arrays
(C-contiguous float32 numpy, one width) after one native pass over the list
(``_native.ready_f32_list``); any other list is converted and checked entry by
entry in Python. Lists of float16 or ml_dtypes bfloat16 arrays have their own
one-pass check (``_native.ready_half_list``; ``--dtypes``), and the native
layer takes those arrays as they are; ``rerank`` converts bfloat16 candidates
to float32 either way, so its bfloat16 row is skipped. Lists of CPU tensors
(``--dtypes torch-float32,torch-float16``) are first viewed as numpy arrays in
one pass (``tensor_views``; the per-entry rows skip that).

This times both paths on the same lists in one process by stubbing the check
out for the per-entry rows, alternating rounds: the PyLate ``rerank`` workload
of ``maxsim bench --suite pylate`` (10 queries of 32 tokens, 1000 candidates of
50-300 tokens each, d = 128), through ``maxsim.pylate.rerank`` and through
``maxsim.scores`` per query. Needs torch (``maxsim.pylate``) and ml_dtypes.

    PYTHONPATH=python python3 benches/bench_list_path.py [--threads 1,2] [--rounds 3]
        [--dtypes float32,float16,bfloat16]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

if importlib.util.find_spec("maxsim") is None:  # run from a source tree without install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import maxsim  # noqa: E402
from maxsim import _native  # noqa: E402
from maxsim.bench.pylate import FULL, rerank_workload  # noqa: E402
from maxsim.bench.timing import alternating_medians_ms  # noqa: E402


@contextlib.contextmanager
def per_entry_path(dtype: str) -> Iterator[None]:
    """Every list takes the per-entry conversion: the readiness check of
    ``dtype`` reports "not ready", or (for tensor lists) the one-pass numpy
    views are skipped."""
    import maxsim._scoring
    import maxsim.pylate.rank

    if dtype.startswith("torch-"):
        stubs = [(maxsim._scoring, "tensor_views"), (maxsim.pylate.rank, "tensor_views")]
        stub: Any = lambda items: items  # noqa: E731
    else:
        stubs = [(_native, "ready_f32_list" if dtype == "float32" else "ready_half_list")]
        stub = lambda docs: None  # noqa: E731
    saved = [getattr(module, name) for module, name in stubs]
    for module, name in stubs:
        setattr(module, name, stub)
    try:
        yield
    finally:
        for (module, name), original in zip(stubs, saved):
            setattr(module, name, original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dtypes", default="float32")
    args = parser.parse_args()

    import maxsim.pylate as mp
    import ml_dtypes
    import torch

    ids, queries, docs32 = rerank_workload(FULL)
    dtypes = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
    print("| call | dtype | threads | per-entry ms | one-pass ms | speedup |")
    print("|---|---|---|---:|---:|---:|")
    for dtype in args.dtypes.split(","):
        numpy_dtype = dtypes[dtype.removeprefix("torch-")]
        docs: list = [[d.astype(numpy_dtype) for d in group] for group in docs32]
        if dtype.startswith("torch-"):
            docs = [[torch.from_numpy(d) for d in group] for group in docs]
        calls = {
            "maxsim.pylate.rerank": lambda docs=docs: mp.rerank(ids, queries, docs),
            "maxsim.scores per query": lambda docs=docs: [
                maxsim.scores(q, d) for q, d in zip(queries, docs)
            ],
        }
        if dtype.endswith("bfloat16"):
            del calls["maxsim.pylate.rerank"]
        for threads in (int(t) for t in args.threads.split(",")):
            maxsim.set_num_threads(threads)
            for name, call in calls.items():

                def per_entry(call: Any = call, dtype: str = dtype) -> object:
                    with per_entry_path(dtype):
                        return call()

                old, new = alternating_medians_ms([per_entry, call], args.rounds, args.repeat)
                print(
                    f"| {name} | {dtype} | {threads} | {old:.1f} | {new:.1f} | {old / new:.2f}x |"
                )


if __name__ == "__main__":
    main()
