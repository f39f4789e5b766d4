"""pytest-benchmark: float32 MaxSim, maxsim against its peers on the standard workloads.

Not part of the test suite (``testpaths = tests``). Run::

    PYTHONPATH=python python3 -m pytest benches/test_bench_float32.py --benchmark-only \
        --benchmark-group-by=param:workload --benchmark-columns=median,iqr,rounds

Each benchmark is one pass of every query of the workload over every document
(fixed: 1 query x 1000 x 300 tokens; variable: 1 query x 1000 docs of 50-800
tokens; batch: 32 queries x the fixed set); peers that are not installed are
skipped. ``MAXSIM_BENCH_DOCS`` shrinks the document count for a quick run.
``maxsim bench`` prints the same comparison as a table with ratios.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from maxsim.bench import float32, workloads

N_DOCS = int(os.environ.get("MAXSIM_BENCH_DOCS", "1000"))
IMPLEMENTATIONS = [
    "maxsim",
    "maxsim-cpu",
    "numpy",
    "torch einsum",
    "torch matmul+amax",
    "torch matmul+segment_max",
]


def _workload(name: str) -> workloads.Workload:
    w = workloads.make(name, n_docs=N_DOCS)
    if name != "batch":
        w.queries = w.queries[:1]
    return w


_CACHE: dict[str, tuple[workloads.Workload, dict]] = {}


def _impls(name: str) -> tuple[workloads.Workload, dict]:
    if name not in _CACHE:
        w = _workload(name)
        _CACHE[name] = (w, float32.implementations(w))
    return _CACHE[name]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("workload", ["fixed", "variable", "batch"])
def test_maxsim(benchmark, workload: str, impl: str) -> None:
    w, impls = _impls(workload)
    if impl not in impls:
        pytest.skip(f"{impl} is not installed or does not apply to {workload}")
    fn = impls[impl]
    # Correctness first: every peer must agree with a float64 numpy reference.
    result = np.asarray(fn())
    q64 = w.queries.astype(np.float64)
    flat64 = w.flat.astype(np.float64)
    offsets = w.offsets
    expected = np.array(
        [
            [
                (flat64[offsets[i] : offsets[i + 1]] @ q.T).max(axis=0).sum()
                for i in range(len(offsets) - 1)
            ]
            for q in q64
        ]
    )
    np.testing.assert_allclose(result, expected, atol=1e-3)
    benchmark.extra_info["gflops_per_round"] = w.flops() / 1e9
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
