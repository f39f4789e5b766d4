"""Smoke test of maxsim.bench.pylate (benches/bench_pylate.py): rows, agreement, memory."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")
pytest.importorskip("pylate")

WRAPPER = Path(__file__).resolve().parent.parent / "benches" / "bench_pylate.py"
TINY = {"n_queries": 2, "query_len": 8, "n_docs": 12, "min_len": 3, "max_len": 20, "dim": 16}


@pytest.fixture(scope="module")
def bench():
    from maxsim.bench import pylate

    return pylate


def test_wrapper_reexports(bench) -> None:
    spec = importlib.util.spec_from_file_location("bench_pylate", WRAPPER)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    assert module.pylate_rows is bench.pylate_rows
    assert module.peak_memory_mib is bench.peak_memory_mib


def test_pylate_rows(bench) -> None:
    rows = bench.pylate_rows(repeats=1, memory=False, config={**TINY, "scores_queries": 3})
    assert [(r["benchmark"], r["implementation"]) for r in rows] == [
        ("rerank", "pylate.rank.rerank"),
        ("rerank", "maxsim.pylate.rerank"),
        ("rerank", "maxsim.pylate.rerank(exact=True)"),
        ("colbert_scores", "pylate.scores.colbert_scores"),
        ("colbert_scores", "maxsim.pylate.colbert_scores"),
    ]
    for r in rows:
        assert set(r) == {
            "benchmark",
            "implementation",
            "median_ms",
            "speedup_vs_pylate",
            "gflops",
            "threads",
            "peak_mib",
            "same_as_pylate",
            "workload",
            "bf16_peak_gflops",
            "torch",
            "floor_ms",
        }
        assert r["median_ms"] > 0
    import torch

    # The capability torch's own kernels dispatch to (AVX2, AVX512, ...), so a
    # table says which path PyLate ran.
    capability = rows[0]["torch"].removeprefix(f"{torch.__version__} (").removesuffix(")")
    assert capability in {"DEFAULT", "NO AVX", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256"}
    from maxsim.bench import suites

    table = suites.format_suite("pylate", suites.annotate([dict(r) for r in rows]))
    assert f"PyLate ran on torch {torch.__version__} ({capability})" in table
    assert rows[0]["speedup_vs_pylate"] == 1.0
    assert rows[1]["same_as_pylate"] is True
    assert rows[4]["same_as_pylate"] is True


def test_floor_is_the_products_at_the_bf16_peak(bench) -> None:
    """floor_ms: 2 * Lq * d * (document tokens) flops per query, at the peak x threads."""
    import maxsim

    cfg = {**TINY, "scores_queries": 3}
    rows = bench.pylate_rows(repeats=1, memory=False, config=cfg, threads=2)
    # The same seeded workloads pylate_rows builds (FULL, overridden by cfg).
    _, _, docs = bench.rerank_workload({**bench.FULL, **cfg})
    rerank_tokens = sum(len(d) for group in docs for d in group)
    _, _, mask = bench.scores_workload({**bench.FULL, **cfg})
    scores_tokens = cfg["scores_queries"] * int(mask.sum())  # every query x real doc tokens
    expected_flop = {
        "rerank": 2 * cfg["query_len"] * cfg["dim"] * rerank_tokens,
        "colbert_scores": 2 * cfg["query_len"] * cfg["dim"] * scores_tokens,
    }
    peak = rows[0]["bf16_peak_gflops"]
    # The probe runs where the kernel in force screens float32 with vdpbf16ps
    # (AVX-512 with AVX512_BF16, not under MAXSIM_KERNEL=avx2 or scalar).
    has_bf16 = "vdpbf16ps" in maxsim.info()["kernel_paths"]["float32"]
    assert (peak is not None) == has_bf16
    if peak is None:
        assert all(r["floor_ms"] is None for r in rows)
        assert bench.floor_note(rows) is None
        return
    assert peak > 0
    for r in rows:
        assert r["threads"] == 2
        assert r["bf16_peak_gflops"] == peak
        flop = r["floor_ms"] * 1e-3 * peak * 1e9 * 2  # two cores
        assert flop == pytest.approx(expected_flop[r["benchmark"]], rel=1e-9)
    note = bench.floor_note(rows)
    assert note is not None
    assert f"at most {rows[0]['median_ms'] / rows[0]['floor_ms']:.1f}x PyLate" in note


def test_peak_memory_child(bench) -> None:
    cfg = {**TINY, "scores_queries": 3}
    peak, method = bench.peak_memory_mib("maxsim.pylate.colbert_scores", cfg)
    assert peak is not None and peak >= 0, method
    assert method in ("clear_refs+VmHWM", "ru_maxrss")
