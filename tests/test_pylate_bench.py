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
        }
        assert r["median_ms"] > 0
    assert rows[0]["speedup_vs_pylate"] == 1.0
    assert rows[1]["same_as_pylate"] is True
    assert rows[4]["same_as_pylate"] is True


def test_peak_memory_child(bench) -> None:
    cfg = {**TINY, "scores_queries": 3}
    peak, method = bench.peak_memory_mib("maxsim.pylate.colbert_scores", cfg)
    assert peak is not None and peak >= 0, method
    assert method in ("clear_refs+VmHWM", "ru_maxrss")
