"""Binary (Hamming) search benchmark: maxsim vs faiss, usearch and numpy, same run.

Workloads (the issue's): 1,000,000 database codes of 512 and 1024 bits, 100
queries, k = 10 and k = 100, on 1 and 2 threads; plus a single query, to show
one query split across threads. Every implementation searches the same random
codes; results are checked against maxsim's (distances must agree; faiss
indices too, since both break ties to the lower index).

Implementations:

- ``maxsim``: ``maxsim.binary.search`` on row-major ``(n, n_bytes)`` codes;
- ``maxsim-index``: ``maxsim.binary.BinaryIndex.search`` (codes pre-interleaved);
- ``faiss``: ``faiss.IndexBinaryFlat`` (OpenMP over queries; ``omp_set_num_threads``);
- ``usearch``: ``usearch.index.search(..., MetricKind.Hamming, exact=True, threads=t)``;
- ``numpy``: ``np.bitwise_count`` on uint64 words (a byte lookup table before
  numpy 2.0) + ``argpartition`` (one thread, timed on a few queries).

The peers are optional: one that is not installed is skipped (see
:data:`maxsim.bench._common.SKIPPED`).

Each row: ``suite`` (``"binary"``), ``workload``, ``impl``, ``threads``,
``ms_per_query``, ``qps``, ``gbps`` (compared code bytes per second: queries ×
codes × bytes per code / time), ``cpu_ms_per_query`` (process CPU time: on a
shared machine the fairer 1-thread figure), ``ratio_vs_faiss`` (qps / faiss qps
at the same threads), ``agrees``, ``speedup_vs_1_thread`` and, for maxsim,
``l1_peak_gbps`` / ``l1_peak_gbps_cpu`` (the same kernel on an L1-resident tile,
by wall and by CPU time: its ceiling here) and ``kernel``; single-query rows
also carry ``mem_read_gbps``, the read bandwidth of that many threads over a
buffer the size of the database, measured just before them. Times are medians
of ``repeat`` runs.

Command line (also ``benches/bench_binary.py``)::

    python -m maxsim.bench.binary [--n 1000000] [--threads 1,2] [--repeat 5]
        [--quick] [--json out.json] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from maxsim import _native
from maxsim import binary as mb

from ._common import SKIPPED, optional, plan, render_table, skipped_notes, step
from .timing import warm_up

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)


def _median_time(fn: Callable[[], object], repeat: int) -> tuple[float, object, float]:
    """``(median wall seconds, last result, median process CPU seconds)`` after a warm-up."""
    warm_up(fn)  # page faults, thread pools (see timing.MIN_WARMUP_SECONDS)
    times, cpu, out = [], [], None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), out, statistics.median(cpu)


def _numpy_search(q: np.ndarray, db: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest codes with numpy: ``db`` is uint64 words (numpy >= 2) or uint8 bytes."""
    words = db.dtype == np.uint64
    dists, ids = [], []
    for row in q.view(np.uint64) if words else q:
        if words:
            d = np.bitwise_count(db ^ row).sum(axis=1, dtype=np.int32)
        else:
            d = _POPCOUNT8[db ^ row].sum(axis=1, dtype=np.int32)
        part = np.argpartition(d, k - 1)[:k]
        order = np.lexsort((part, d[part]))
        ids.append(part[order])
        dists.append(d[part[order]])
    return np.array(dists), np.array(ids)


def _l1_peak(n_bytes: int) -> tuple[float, float]:
    """The search kernel's single-thread rate on an L1-resident tile: (by wall
    time, by process CPU time). The second is the fairer ceiling on a shared
    machine, where the process does not always have its core."""
    _native.set_num_threads(1)
    c0, t0 = time.process_time(), time.perf_counter()
    wall_gbps = _native.binary_l1_peak_gbps(None, n_bytes, 0.5)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return wall_gbps, wall_gbps * wall / max(cpu, 1e-9)


def _set_threads(t: int, faiss: Any) -> None:
    _native.set_num_threads(t)
    if faiss is not None:
        faiss.omp_set_num_threads(t)


def binary_rows(
    threads_list: Sequence[int] = (1, 2),
    n: int = 1_000_000,
    bits_list: Sequence[int] = (512, 1024),
    ks: Sequence[int] = (10, 100),
    n_queries: int = 100,
    repeat: int = 3,
    numpy_queries: int = 3,
    single_query_repeat: int = 30,
    peers: bool = True,
    seed: int = 0,
) -> list[dict]:
    """Runs the workloads and returns one dict per (workload, impl, threads).

    All thread counts run in this process (faiss and maxsim resize their pools
    per call); ``maxsim bench`` calls it once per thread count, each in a fresh
    process. Missing peers are skipped.
    """
    faiss = usearch = None
    if peers:
        faiss = optional("faiss")
        index_mod = optional("usearch.index")
        if index_mod is not None:
            usearch = (index_mod.search, index_mod.MetricKind)

    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    plan(len(bits_list) * (len(ks) + 1))  # per width: each k, then one query at a time
    previous = _native.num_threads()
    try:
        for bits in bits_list:
            db = rng.integers(0, 256, size=(n, bits // 8), dtype=np.uint8)
            q = rng.integers(0, 256, size=(n_queries, bits // 8), dtype=np.uint8)
            rows.extend(
                _bench_bits(
                    db, q, threads_list, ks, repeat, numpy_queries if peers else 0,
                    single_query_repeat, faiss, usearch,
                )
            )  # fmt: skip
    finally:
        _native.set_num_threads(previous)
    add_scaling(rows)
    return rows


def _bench_bits(
    db, q, threads_list, ks, repeat, numpy_queries, single_query_repeat, faiss, usearch
):
    n, n_bytes = db.shape
    n_queries = q.shape[0]
    bits = 8 * n_bytes
    kernel = _native.binary_impls()[1]
    index = mb.BinaryIndex(bits)
    index.add(db)
    fidx = None
    if faiss is not None:
        fidx = faiss.IndexBinaryFlat(bits)
        fidx.add(db)
    if hasattr(np, "bitwise_count"):
        db_np = db.view(np.uint64) if n_bytes % 8 == 0 else None
    else:  # numpy < 2.0: a byte lookup table
        db_np = db
    peak = _l1_peak(n_bytes)
    rows: list[dict] = []
    for k in ks:
        workload = f"hamming_{n // 1000}k_{bits}bit_{n_queries}q_k{k}"
        step(workload)
        for t in threads_list:
            _set_threads(t, faiss)
            res: dict[str, tuple] = {}
            res["maxsim"] = (*_median_time(lambda k=k: mb.search(q, db, k), repeat), n_queries)
            res["maxsim-index"] = (*_median_time(lambda k=k: index.search(q, k), repeat), n_queries)
            if fidx is not None:
                res["faiss"] = (*_median_time(lambda k=k: fidx.search(q, k), repeat), n_queries)
            if usearch is not None:
                search, metric = usearch

                def run_usearch(t=t, k=k, search=search, metric=metric):
                    return search(db, q, k, metric.Hamming, exact=True, threads=t)

                res["usearch"] = (*_median_time(run_usearch, repeat), n_queries)
            if numpy_queries and db_np is not None and t == 1:
                nq = numpy_queries
                res["numpy"] = (
                    *_median_time(lambda k=k, nq=nq: _numpy_search(q[:nq], db_np, k), 1),
                    nq,
                )
            rows.extend(_rows_for(workload, t, n, n_bytes, res, kernel, peak))
    # One query at a time: maxsim splits each query across the threads.
    workload = f"hamming_{n // 1000}k_{bits}bit_1q_k10"
    step(workload)
    one = [q[i] for i in range(min(single_query_repeat, n_queries))]
    k1 = min(10, n)
    for t in threads_list:
        _set_threads(t, faiss)
        # A streamed query reads the codes once from memory; a plain read of as
        # many bytes (repeated, as the queries repeat) is its ceiling. Sized like
        # the database because a scan a few times the L3 still hits it partly.
        mem_gbps = _native.read_bandwidth_gbs(t, mib=max(1, (n * n_bytes) >> 20))
        res = {}
        res["maxsim"] = (*_median_time(lambda: [mb.search(x, db, k1) for x in one], 3), len(one))
        res["maxsim-index"] = (
            *_median_time(lambda: [index.search(x, k1) for x in one], 3),
            len(one),
        )
        if fidx is not None:
            res["faiss"] = (
                *_median_time(lambda: [fidx.search(x[None], k1) for x in one], 3),
                len(one),
            )
        single_rows = _rows_for(workload, t, n, n_bytes, res, kernel, peak, single=True)
        for row in single_rows:
            row["mem_read_gbps"] = mem_gbps
        rows.extend(single_rows)
    return rows


def _rows_for(workload, threads, n, n_bytes, res, kernel, peak, single=False) -> list[dict]:
    ours = res["maxsim"][1]
    faiss_qps = res["faiss"][3] / res["faiss"][0] if "faiss" in res else None
    out = []
    for impl, (seconds, result, cpu_seconds, n_q) in res.items():
        qps = n_q / seconds
        row = {
            "suite": "binary",
            "workload": workload,
            "impl": impl,
            "threads": threads,
            "ms_per_query": 1e3 * seconds / n_q,
            "qps": qps,
            "gbps": n_q * n * n_bytes / seconds / 1e9,
            "ratio_vs_faiss": qps / faiss_qps if faiss_qps else None,
            "cpu_ms_per_query": 1e3 * cpu_seconds / n_q,
            "agrees": _agrees(impl, result, ours, single),
        }
        if impl.startswith("maxsim"):
            row["kernel"] = kernel
            row["l1_peak_gbps"], row["l1_peak_gbps_cpu"] = peak
        out.append(row)
    return out


def _agrees(impl: str, result, ours, single: bool) -> Optional[bool]:
    if single:
        ours_d = np.stack([r[0] for r in ours])
        if impl.startswith("maxsim"):
            got = np.stack([r[0] for r in result])
        else:
            got = np.concatenate([r[0] for r in result])
        return bool(np.array_equal(got, ours_d))
    d, i = ours
    if impl == "usearch":
        return bool(np.array_equal(result.distances.astype(np.int64), d))
    got_d, got_i = result[0], result[1]
    rows = got_d.shape[0]
    same_d = np.array_equal(np.asarray(got_d), d[:rows])
    if impl == "numpy":
        return bool(same_d)
    return bool(same_d and np.array_equal(np.asarray(got_i), i[:rows]))


def add_scaling(rows: list[dict]) -> None:
    """``speedup_vs_1_thread`` for every row whose 1-thread row exists."""
    base = {(r["workload"], r["impl"]): r["qps"] for r in rows if r["threads"] == 1}
    for r in rows:
        b = base.get((r["workload"], r["impl"]))
        r["speedup_vs_1_thread"] = r["qps"] / b if b else None


def l1_peaks(rows: list[dict]) -> dict[str, tuple[float, float]]:
    """``{"512bit": (wall GB/s, CPU-time GB/s)}``: the kernel's L1-resident ceiling."""
    return {
        r["workload"].split("_")[2]: (r["l1_peak_gbps"], r["l1_peak_gbps_cpu"])
        for r in rows
        if "l1_peak_gbps" in r
    }


def memory_ceilings(rows: list[dict]) -> dict[str, dict[int, float]]:
    """``{"512bit": {threads: GB/s}}``: the memory read bandwidth measured
    beside the single-query rows (the ceiling of a query that streams the codes)."""
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        if "mem_read_gbps" in r:
            out.setdefault(r["workload"].split("_")[2], {})[r["threads"]] = r["mem_read_gbps"]
    return out


def memory_note(rows: list[dict]) -> Optional[str]:
    """One line for the table notes, or None without single-query rows."""
    ceilings = memory_ceilings(rows)
    if not ceilings:
        return None
    return (
        "memory read bandwidth (a plain read of as many bytes as the database, best of "
        "10 passes; the ceiling of a single query, which streams the codes): "
        + "; ".join(
            f"{bits}: " + ", ".join(f"{t} thr {g:.1f} GB/s" for t, g in by_threads.items())
            for bits, by_threads in ceilings.items()
        )
    )


def format_table(rows: list[dict], markdown: bool = False) -> str:
    headers = ["workload", "impl", "threads", "ms/query", "queries/s", "GB/s", "vs faiss",
               "vs 1 thread", "cpu ms/query", "agrees"]  # fmt: skip
    lines = []
    for r in rows:
        ratio = r["ratio_vs_faiss"]
        scale = r["speedup_vs_1_thread"]
        lines.append([
            r["workload"], r["impl"], str(r["threads"]), f"{r['ms_per_query']:.3f}",
            f"{r['qps']:.0f}", f"{r['gbps']:.1f}", "-" if ratio is None else f"{ratio:.2f}x",
            "-" if scale is None or r["threads"] == 1 else f"{scale:.2f}x",
            "-" if r["cpu_ms_per_query"] is None else f"{r['cpu_ms_per_query']:.3f}",
            {True: "yes", False: "NO", None: "-"}[r["agrees"]],
        ])  # fmt: skip
    return render_table(headers, lines, markdown)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description="maxsim binary search benchmark")
    p.add_argument("--n", type=int, default=1_000_000, help="database codes")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--bits", default="512,1024")
    p.add_argument("--k", default="10,100")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="100k codes, 512 bits, k=10")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.bits, args.k, args.repeat = 100_000, "512", "10", 3
    rows = binary_rows(
        threads_list=[int(t) for t in args.threads.split(",")],
        n=args.n,
        bits_list=[int(b) for b in args.bits.split(",")],
        ks=[int(k) for k in args.k.split(",")],
        n_queries=args.queries,
        repeat=args.repeat,
        peers=not args.no_peers,
    )
    impls, selected = _native.binary_impls()
    print(f"kernel: {selected} (available: {', '.join(impls)}); cpu features: "
          f"{', '.join(_native.cpu_features())}")  # fmt: skip
    peaks = l1_peaks(rows)
    print("L1-resident kernel ceiling, 1 thread (wall / CPU time): "
          + ", ".join(f"{b}: {w:.1f} / {c:.1f} GB/s" for b, (w, c) in peaks.items()))  # fmt: skip
    note = memory_note(rows)
    if note:
        print(note)
    print(format_table(rows, args.markdown))
    for note in skipped_notes(SKIPPED):
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
