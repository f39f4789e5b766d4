"""maxsim.pylate against PyLate on the CPU, in the same run.

Workloads (the issue's):

* ``rerank``: 10 queries of 32 tokens, each with 1000 candidate documents of
  50-300 tokens (uniform), d = 128, unit-norm float32 numpy arrays (what
  ``pylate.models.ColBERT.encode`` returns). ``pylate.rank.rerank`` against
  ``maxsim.pylate.rerank`` (default = PyLate's results; and ``exact=True``).
* ``colbert_scores``: 32 queries x 32 tokens against a padded batch of 1000
  documents (50-300 real tokens, padded to 300) with its ``documents_mask``,
  as torch float32 tensors: ``pylate.scores.colbert_scores`` (its torch
  einsum) against ``maxsim.pylate.colbert_scores``.

Timing: wall clock (``time.perf_counter``), one warm-up call, then the median
of ``--repeats`` calls (PyLate gets a quarter as many, at least 3).
``--threads N`` sets torch's and maxsim's thread counts (default: all CPUs).
On a shared machine, ``--threads 1 --cpu-time`` times with process CPU time,
which other processes disturb far less (torch's OpenMP threads spin-wait when
the CPUs are oversubscribed, which inflates PyLate's wall time a lot).

Peak memory: each function runs once in a fresh child process, which builds
its inputs, resets the kernel's peak-RSS counter (``echo 5 >
/proc/self/clear_refs``, Linux) and reports ``VmHWM - VmRSS`` (peak resident
memory during the call above the resident memory before it), which counts
torch, numpy and Rust allocations alike (tracemalloc sees only numpy's).
Where ``clear_refs`` is unavailable it falls back to ``ru_maxrss`` minus the
RSS before the call (inputs are generated in float32, without temporaries
larger than themselves, so the pre-call peak does not mask the call's).

Run (``benches/bench_pylate.py`` is the same command line)::

    python -m maxsim.bench.pylate            # full, 2 cores
    python -m maxsim.bench.pylate --quick    # smaller, seconds
    python -m maxsim.bench.pylate --threads 1 --cpu-time

``pylate_rows()`` returns the same figures as table rows for ``maxsim bench
--suite pylate``. It needs torch and pylate; when either is missing it returns
no rows and records why in :data:`maxsim.bench._common.SKIPPED`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from ._common import SKIPPED, child_env, optional, plan, skipped_notes, step
from .timing import median_seconds

FULL = {
    "n_queries": 10,
    "query_len": 32,
    "n_docs": 1000,
    "min_len": 50,
    "max_len": 300,
    "dim": 128,
    "scores_queries": 32,
}
QUICK = {
    "n_queries": 3,
    "query_len": 32,
    "n_docs": 200,
    "min_len": 50,
    "max_len": 300,
    "dim": 128,
    "scores_queries": 8,
}


# ------------------------------------------------------------------ workloads


def _unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape, dtype=np.float32)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x


def rerank_workload(cfg: dict[str, int], seed: int = 0) -> tuple[list, list, list]:
    """``(documents_ids, queries_embeddings, documents_embeddings)`` for rerank."""
    rng = np.random.default_rng(seed)
    queries = [_unit(rng, cfg["query_len"], cfg["dim"]) for _ in range(cfg["n_queries"])]
    docs = [
        [
            _unit(rng, int(n), cfg["dim"])
            for n in rng.integers(cfg["min_len"], cfg["max_len"] + 1, size=cfg["n_docs"])
        ]
        for _ in range(cfg["n_queries"])
    ]
    ids = [list(range(cfg["n_docs"])) for _ in range(cfg["n_queries"])]
    return ids, queries, docs


def scores_workload(cfg: dict[str, int], seed: int = 1) -> tuple[Any, Any, Any]:
    """``(queries, padded_docs, documents_mask)`` torch tensors for colbert_scores."""
    import torch

    rng = np.random.default_rng(seed)
    queries = torch.from_numpy(_unit(rng, cfg["scores_queries"], cfg["query_len"], cfg["dim"]))
    docs = _unit(rng, cfg["n_docs"], cfg["max_len"], cfg["dim"])
    lengths = rng.integers(cfg["min_len"], cfg["max_len"] + 1, size=cfg["n_docs"])
    mask = np.arange(cfg["max_len"])[None, :] < lengths[:, None]
    docs[~mask] = 0.0  # zero padding, as pad_sequence leaves it
    return queries, torch.from_numpy(docs), torch.from_numpy(mask.astype(np.int64))


def available() -> bool:
    """Whether torch and pylate import (recorded in ``SKIPPED`` when not)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random data: no model downloads
    return optional("torch") is not None and optional("pylate") is not None


def _function(impl: str) -> Callable[[Any], Any]:
    """The callable for ``impl``; imports PyLate only for PyLate's own rows."""
    import maxsim.pylate as mp

    if impl.startswith("pylate."):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import pylate.rank.rank
        import pylate.scores

        mp.unpatch()
        if impl == "pylate.rank.rerank":
            return lambda w: pylate.rank.rank.rerank(*w)
        if impl == "pylate.scores.colbert_scores":
            return lambda w: pylate.scores.colbert_scores(w[0], w[1], None, w[2])
    if impl == "maxsim.pylate.rerank":
        return lambda w: mp.rerank(*w)
    if impl == "maxsim.pylate.rerank(exact=True)":
        return lambda w: mp.rerank(*w, exact=True)
    if impl == "maxsim.pylate.colbert_scores":
        return lambda w: mp.colbert_scores(w[0], w[1], None, w[2])
    raise ValueError(f"unknown implementation {impl!r}")


RERANK_IMPLS = (
    "pylate.rank.rerank",
    "maxsim.pylate.rerank",
    "maxsim.pylate.rerank(exact=True)",
)
SCORES_IMPLS = ("pylate.scores.colbert_scores", "maxsim.pylate.colbert_scores")


# ------------------------------------------------------------------ measuring


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _child_peak(impl: str, cfg: dict[str, int]) -> dict[str, Any]:
    """Run in a fresh process: peak memory of one call of ``impl``, in MiB."""
    import gc

    fn = _function(impl)
    workload = rerank_workload(cfg) if impl in RERANK_IMPLS else scores_workload(cfg)
    gc.collect()
    method = "clear_refs+VmHWM"
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        method = "ru_maxrss"
    before = _status_kib("VmRSS") or 0
    fn(workload)
    if method == "clear_refs+VmHWM":
        peak = _status_kib("VmHWM") or 0
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"peak_mib": max(peak - before, 0) / 1024.0, "method": method}


def peak_memory_mib(impl: str, cfg: dict[str, int]) -> tuple[float | None, str]:
    """Peak extra resident memory of one call of ``impl`` (fresh child process)."""
    cmd = [
        sys.executable,
        "-m",
        "maxsim.bench.pylate",
        "--child",
        impl,
        "--config",
        json.dumps(cfg),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    if proc.returncode != 0:
        return None, f"child failed: {proc.stderr.strip()[-300:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["peak_mib"], out["method"]


def _same_results(a: list, b: list, atol: float = 1e-5) -> bool:
    for ra, rb in zip(a, b):
        if [r["id"] for r in ra] != [r["id"] for r in rb]:
            return False
        if max(abs(x["score"] - y["score"]) for x, y in zip(ra, rb)) > atol:
            return False
    return len(a) == len(b)


# ------------------------------------------------------------------ the table


def pylate_rows(
    quick: bool = False,
    repeats: int | None = None,
    memory: bool = True,
    config: dict[str, int] | None = None,
    threads: int | None = None,
    clock: str = "wall",
) -> list[dict[str, Any]]:
    """Benchmark rows, one per implementation, for ``maxsim bench``.

    Parameters
    ----------
    quick
        Smaller workload (3 x 200 rerank, 8 x 200 scores) for smoke runs.
    repeats
        Timed calls per maxsim implementation (default 20, quick 5); PyLate
        gets ``max(3, repeats // 4)``.
    memory
        Also measure peak memory of the ``colbert_scores`` pair (two child
        processes).
    config
        Override the workload sizes (keys of ``FULL``), e.g. for tests.
    threads
        Threads for both torch and maxsim during the timings (default: leave
        both as they are, i.e. all CPUs); restored afterwards.
    clock
        ``"wall"`` (default) or ``"cpu"`` (process CPU time; use with
        ``threads=1`` on a shared machine).

    Returns
    -------
    list[dict]
        Empty when torch or pylate is not installed (see :func:`available`).
        Keys: ``benchmark`` (str), ``implementation`` (str), ``median_ms``
        (float), ``speedup_vs_pylate`` (float; PyLate's median / this one),
        ``gflops`` (float; useful MaxSim work, i.e. unpadded tokens only, per
        second), ``threads`` (int; torch's thread count during the timing),
        ``peak_mib`` (float or None), ``same_as_pylate`` (bool or None:
        identical ids and order, scores within 1e-5), ``workload`` (str),
        ``bf16_peak_gflops`` (float or None: this core's measured
        ``vdpbf16ps`` throughput; None without AVX512_BF16) and ``floor_ms``
        (float or None: the workload's MaxSim products alone at that peak on
        ``threads`` cores; see :func:`floor_ms`), ``torch`` (str: the
        version and the CPU capability its kernels run, e.g. ``"2.11.0 (AVX2)"``;
        ``ATEN_CPU_CAPABILITY`` lowers it).
    """
    if not available():
        return []
    import torch

    import maxsim

    if threads is not None:
        saved = (torch.get_num_threads(), maxsim.get_num_threads())
        torch.set_num_threads(threads)
        maxsim.set_num_threads(threads)
        try:
            return pylate_rows(quick, repeats, memory, config, None, clock)
        finally:
            torch.set_num_threads(saved[0])
            maxsim.set_num_threads(saved[1])

    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock: expected 'wall' or 'cpu', got {clock!r}")
    cfg = dict(QUICK if quick else FULL)
    cfg.update(config or {})
    repeats = repeats or (5 if quick else 20)
    slow_repeats = max(3, repeats // 4)
    fns = {impl: _function(impl) for impl in RERANK_IMPLS + SCORES_IMPLS}
    rows: list[dict[str, Any]] = []
    from maxsim import _native

    bf16_peak = _native.bf16_dot_peak_gflops()
    torch_build = f"{torch.__version__} ({torch.backends.cpu.get_cpu_capability()})"

    plan(2)
    step("rerank")
    rr = rerank_workload(cfg)
    rerank_flop = 2.0 * cfg["query_len"] * cfg["dim"] * sum(d.shape[0] for g in rr[2] for d in g)
    desc = (
        f"{cfg['n_queries']} queries x {cfg['query_len']} tok, {cfg['n_docs']} docs/query of "
        f"{cfg['min_len']}-{cfg['max_len']} tok, d={cfg['dim']}"
    )
    reference = fns["pylate.rank.rerank"](rr)
    base = None
    for impl in RERANK_IMPLS:
        n = slow_repeats if impl.startswith("pylate") else repeats
        median = median_seconds(lambda impl=impl: fns[impl](rr), n, clock=clock)
        base = median if base is None else base
        same = None
        if impl == "maxsim.pylate.rerank":
            same = _same_results(fns[impl](rr), reference)
        rows.append(
            {
                "benchmark": "rerank",
                "implementation": impl,
                "median_ms": median * 1e3,
                "speedup_vs_pylate": base / median,
                "gflops": rerank_flop / median / 1e9,
                "threads": torch.get_num_threads(),
                "peak_mib": None,
                "same_as_pylate": same,
                "workload": desc,
                "bf16_peak_gflops": bf16_peak,
                "torch": torch_build,
                "floor_ms": floor_ms(rerank_flop, bf16_peak, torch.get_num_threads()),
            }
        )

    step("colbert_scores")
    sw = scores_workload(cfg)
    scores_flop = 2.0 * sw[0].shape[0] * cfg["query_len"] * cfg["dim"] * int(sw[2].sum())
    desc = (
        f"{cfg['scores_queries']} queries x {cfg['query_len']} tok vs {cfg['n_docs']} docs padded "
        f"to {cfg['max_len']} tok (+documents_mask), d={cfg['dim']}"
    )
    expected = fns["pylate.scores.colbert_scores"](sw)
    base = None
    for impl in SCORES_IMPLS:
        n = slow_repeats if impl.startswith("pylate") else repeats
        median = median_seconds(lambda impl=impl: fns[impl](sw), n, clock=clock)
        base = median if base is None else base
        same = None
        if impl.startswith("maxsim"):
            same = bool(torch.allclose(fns[impl](sw), expected, atol=1e-5, rtol=0))
        peak = peak_memory_mib(impl, cfg)[0] if memory else None
        rows.append(
            {
                "benchmark": "colbert_scores",
                "implementation": impl,
                "median_ms": median * 1e3,
                "speedup_vs_pylate": base / median,
                "gflops": scores_flop / median / 1e9,
                "threads": torch.get_num_threads(),
                "peak_mib": peak,
                "same_as_pylate": same,
                "workload": desc,
                "bf16_peak_gflops": bf16_peak,
                "torch": torch_build,
                "floor_ms": floor_ms(scores_flop, bf16_peak, torch.get_num_threads()),
            }
        )
    return rows


def floor_ms(flop: float, bf16_peak_gflops: float | None, threads: int) -> float | None:
    """Milliseconds the MaxSim products of ``flop`` take at the ``vdpbf16ps`` peak.

    A lower bound for the float32 kernel on this machine: it screens every
    (query token, document token) pair with ``vdpbf16ps`` (64 flops per
    instruction, one instruction per cycle on Zen 4) before it converts the
    documents, tracks candidates and recomputes the maxima in float32, none
    of which this counts. ``threads`` cores at ``bf16_peak_gflops`` each;
    None when the peak is unknown (no AVX512_BF16: the float32 kernel runs
    plain FMAs instead).
    """
    if bf16_peak_gflops is None:
        return None
    return flop / (bf16_peak_gflops * 1e9 * threads) * 1e3


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'benchmark':<15} {'implementation':<34} {'median ms':>10} "
        f"{'x PyLate':>9} {'GFLOP/s':>8} {'peak MiB':>9} {'same':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        peak = "" if r["peak_mib"] is None else f"{r['peak_mib']:.1f}"
        same = "" if r["same_as_pylate"] is None else ("yes" if r["same_as_pylate"] else "NO")
        print(
            f"{r['benchmark']:<15} {r['implementation']:<34} {r['median_ms']:>10.2f} "
            f"{r['speedup_vs_pylate']:>9.1f} {r['gflops']:>8.1f} {peak:>9} {same:>5}"
        )
    seen = set()
    for r in rows:
        if r["benchmark"] not in seen:
            seen.add(r["benchmark"])
            print(f"  {r['benchmark']}: {r['workload']}")
    note = floor_note(rows)
    if note:
        print(f"  {note}")


def floor_note(rows: list[dict[str, Any]]) -> str | None:
    """One line: per benchmark, the products-only floor and the best ratio to
    PyLate it allows (PyLate's median in the same run over the floor)."""
    parts = []
    peak = None
    for r in rows:
        if r.get("floor_ms") is None or not r["implementation"].startswith("pylate."):
            continue
        peak = r["bf16_peak_gflops"]
        parts.append(
            f"{r['benchmark']} {r['floor_ms']:.1f} ms on {r['threads']} "
            f"thread{'' if r['threads'] == 1 else 's'}, "
            f"at most {r['median_ms'] / r['floor_ms']:.1f}x PyLate"
        )
    if not parts:
        return None
    return (
        f"floor = the MaxSim products alone at this core's vdpbf16ps peak ({peak:.0f} GFLOP/s) "
        "x threads, before conversion, candidate tracking and float32 recomputation: "
        + "; ".join(parts)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workload")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls for maxsim")
    parser.add_argument("--no-memory", action="store_true", help="skip peak-memory children")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for torch and maxsim (default: all)"
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with process CPU time instead of wall clock (use with --threads 1)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child_peak(args.child, json.loads(args.config))))
        return 0
    if not available():
        for note in skipped_notes(SKIPPED):
            print(f"note: {note}", file=sys.stderr)
        return 1
    import torch

    import maxsim

    threads = args.threads or torch.get_num_threads()
    load = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"
    print(
        f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
        f"maxsim {maxsim.__version__} ({maxsim.info()['kernel']}), "
        f"{threads} threads each, {os.cpu_count()} CPUs, load average "
        f"{load}; {'CPU' if args.cpu_time else 'wall-clock'} time; "
        "peak memory = VmHWM - VmRSS in a fresh process"
    )
    rows = pylate_rows(
        quick=args.quick,
        repeats=args.repeats,
        memory=not args.no_memory,
        threads=args.threads,
        clock="cpu" if args.cpu_time else "wall",
    )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
        by = {(r["benchmark"], r["implementation"]): r for r in rows}
        rerank = by[("rerank", "maxsim.pylate.rerank")]
        scores = by[("colbert_scores", "maxsim.pylate.colbert_scores")]
        pylate_scores = by[("colbert_scores", "pylate.scores.colbert_scores")]
        print()
        print(f"rerank speedup: {rerank['speedup_vs_pylate']:.1f}x (target >= 20x)")
        print(f"colbert_scores speedup: {scores['speedup_vs_pylate']:.1f}x (target >= 10x)")
        if scores["peak_mib"] is not None and pylate_scores["peak_mib"]:
            ratio = scores["peak_mib"] / pylate_scores["peak_mib"]
            print(f"colbert_scores peak memory ratio: {ratio:.4f} (target < 0.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
